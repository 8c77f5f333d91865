"""Term-end reminders: 30 days before, once per membership and term, safe to run twice."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from portal.core import clock
from portal.extensions import db
from tests.groups.conftest import confirmed_application


def _reminders(app):
    from portal.mail.models import OutboxMessage

    with app.app_context():
        return [(m.to_address, m.subject) for m in db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "groups.term_end_reminder")).scalars()]


def _run(app) -> int:
    from portal.groups.jobs import send_term_end_reminders

    with app.app_context():
        return send_term_end_reminders()


def test_chairs_are_reminded_once_thirty_days_before_a_term_ends(app, groups, smtp_server):
    from portal.mail.delivery import deliver_due

    clock.set_now(datetime(2026, 3, 1, 14, tzinfo=UTC))
    info = groups.group()
    groups.member(info, "member-chair@example.ca", name="Cora Chair", role="chair")  # a member: no sign-in
    groups.chair(info, "cora@example.ca")  # the chair's account, who can act on the reminder
    groups.member(info, "member@example.ca", name="Mo Member", term_end=date(2026, 6, 30))

    clock.set_now(datetime(2026, 5, 30, 14, tzinfo=UTC))  # 31 days before: not yet
    assert _run(app) == 0
    assert _reminders(app) == []

    clock.set_now(datetime(2026, 5, 31, 14, tzinfo=UTC))  # 30 days before
    assert _run(app) == 1
    assert _run(app) == 0  # twice: nothing more
    clock.advance(timedelta(days=3))
    assert _run(app) == 0  # late runs: nothing more
    # Not to the chair who is only a member: the reminder links to pages they cannot open
    # (a review found it went to them, and not to the chair's account).
    [(to, subject)] = _reminders(app)
    assert to.endswith("<cora@example.ca>") and "June 30, 2026" in subject

    with app.app_context():
        deliver_due()
    smtp_server.wait_for(3)  # the two "you are a member" notices and the reminder
    [message] = [m for m in smtp_server.to("cora@example.ca") if "ends on" in str(m["Subject"])]
    assert "cora@example.ca" in str(message["To"])
    assert "Mo Member (member)" in message.get_body(("plain",)).get_content()
    assert message["List-Unsubscribe"] is None  # a transactional notice


def test_a_new_term_end_gets_its_own_reminder(app, groups):
    from portal.groups.models import Membership
    from portal.groups.services import set_role

    clock.set_now(datetime(2026, 6, 10, 14, tzinfo=UTC))
    info = groups.group()
    groups.chair(info, "cora@example.ca")
    member_id = groups.member(info, "member@example.ca", term_end=date(2026, 6, 30))
    assert _run(app) == 1
    with app.app_context():
        membership = db.session.get(Membership, member_id)
        set_role(membership, role="member", term_start=date(2026, 7, 1), term_end=date(2026, 7, 31), actor=None)
        db.session.commit()
    clock.set_now(datetime(2026, 7, 2, 14, tzinfo=UTC))
    assert _run(app) == 1
    assert len(_reminders(app)) == 2


def test_members_who_left_or_whose_term_passed_are_not_reminded(app, groups):
    from portal.groups.models import Membership
    from portal.groups.services import remove_member

    clock.set_now(datetime(2026, 6, 10, 14, tzinfo=UTC))
    info = groups.group()
    groups.member(info, "chair@example.ca", role="chair")
    gone = groups.member(info, "gone@example.ca", term_end=date(2026, 6, 30))
    groups.member(info, "past@example.ca", term_end=date(2026, 6, 1))
    with app.app_context():
        remove_member(db.session.get(Membership, gone), actor=None)
        db.session.commit()
    assert _run(app) == 0
    assert _reminders(app) == []


def test_without_a_chair_member_the_chair_accounts_are_reminded(app, groups):
    clock.set_now(datetime(2026, 6, 10, 14, tzinfo=UTC))
    info = groups.group()
    groups.chair(info, email="account-chair@example.ca")
    groups.member(info, "member@example.ca", term_end=date(2026, 6, 30))
    assert _run(app) == 1
    [(to, _subject)] = _reminders(app)
    assert "account-chair@example.ca" in to


def test_cli_creates_a_chair_and_sends_reminders(app, runner, groups):
    from portal.auth.models import OrganizerAccount
    from portal.groups.services import chaired_group_ids

    info = groups.group()
    result = runner.invoke(args=["create-chair", "cli-chair@example.ca", info.slug, "--name", "Cli Chair",
                                 "--password", "long enough pass"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        from sqlalchemy import select

        account = db.session.execute(select(OrganizerAccount).where(
            OrganizerAccount.email == "cli-chair@example.ca")).scalar_one()
        assert account.role == "chair" and chaired_group_ids(account) == {info.id}
    missing = runner.invoke(args=["create-chair", "x@example.ca", "nope", "--password", "long enough pass"])
    assert missing.exit_code != 0 and "No working group" in missing.output
    result = runner.invoke(args=["send-term-reminders"])
    assert result.exit_code == 0 and "Reminded about 0" in result.output


def test_former_applicants_are_forgotten_after_the_retention_period(app, client, groups):
    """The groups retention rule, as the privacy purge job runs it (more in test_retention)."""
    from portal.core.db import writing
    from portal.groups.models import Membership, WorkingGroup
    from portal.groups.retention import purge_due

    def forget_former_applicants() -> int:
        with writing():
            count = purge_due(clock.now())
            db.session.commit()
        return count

    from portal.groups.services import decide_application, remove_member

    clock.set_now(datetime(2026, 1, 10, 14, tzinfo=UTC))
    info = groups.group()
    with app.app_context():
        group = db.session.get(WorkingGroup, info.id)
        ids = []
        for email in ("declined@example.ca", "left@example.ca", "staying@example.ca"):
            membership = confirmed_application(group, email=email, name="N", why=f"Why {email}", consent=True,
                                        consent_wording="w")
            ids.append(membership.id)
        declined, left, staying = (db.session.get(Membership, i) for i in ids)
        decide_application(declined, approve=False, actor=None)
        decide_application(left, approve=True, actor=None)
        decide_application(staying, approve=True, actor=None)
        remove_member(left, actor=None)
        db.session.commit()

    clock.set_now(datetime(2027, 12, 1, 14, tzinfo=UTC))  # 23 months later: kept
    with app.app_context():
        assert forget_former_applicants() == 0
    clock.set_now(datetime(2028, 1, 20, 14, tzinfo=UTC))  # past 24 months
    with app.app_context():
        # Two memberships, and the left member's unsubscribed row on the group's list.
        assert forget_former_applicants() == 3
        assert forget_former_applicants() == 0
        rows = [db.session.get(Membership, i) for i in ids]
    assert rows[:2] == [None, None]
    assert rows[2].why == "Why staying@example.ca"


def test_a_french_chair_reads_the_date_and_role_in_french(app, groups):
    from portal.mail.models import OutboxMessage

    clock.set_now(datetime(2026, 12, 1, 14, tzinfo=UTC))
    info = groups.group()
    groups.chair(info, "helene@example.ca")
    groups.member(info, "membre@example.ca", name="François Bélanger", term_end=date(2026, 12, 31))
    with app.app_context():
        from portal.people.services import get_or_create_person

        get_or_create_person("helene@example.ca", name="Hélène Présidente", language="fr")
        db.session.commit()
    assert _run(app) == 1
    with app.app_context():
        reminder = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "groups.term_end_reminder")).scalar_one()
        assert "31 décembre 2026" in reminder.subject and "2026-12-31" not in reminder.subject
        assert "François Bélanger (membre)" in reminder.body_text
