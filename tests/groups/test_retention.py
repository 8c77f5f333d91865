"""Groups retention: with the clock moved past a group's period, exactly the former members
and declined applicants due are forgotten (membership, links, list row), once."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from portal.core import clock
from portal.extensions import db
from tests.groups.conftest import confirmed_application
from tests.retention import purge_at
from tests.conftest import forecast_day

T0 = datetime(2026, 1, 10, 14, tzinfo=UTC)
DAY = timedelta(days=1)


def _purge(app, at: datetime) -> int:
    from portal.groups.retention import purge_due

    return purge_at(app, purge_due, at)


def _state(app) -> dict[str, object]:
    """Who has a membership (email: status), a group-list row (email: status), and links."""
    from portal.core.tokens import AccessToken
    from portal.groups.models import Membership, WorkingGroup
    from portal.lists.models import Subscription
    from portal.people.models import Person

    with app.app_context():
        memberships = {
            f"{slug}/{email}": status for slug, email, status in db.session.execute(
                select(WorkingGroup.slug, Person.email, Membership.status)
                .join(WorkingGroup, WorkingGroup.id == Membership.group_id)
                .join(Person, Person.id == Membership.person_id))
        }
        subscriptions = {
            f"{slug}/{email}": status for slug, email, status in db.session.execute(
                select(WorkingGroup.slug, Person.email, Subscription.status)
                .join(WorkingGroup, WorkingGroup.mailing_list_id == Subscription.list_id)
                .join(Person, Person.id == Subscription.person_id))
        }
        links = sorted(db.session.execute(
            select(Person.email).join(AccessToken, AccessToken.person_id == Person.id)
            .where(AccessToken.purpose.like("groups.%"))).scalars())
        people = sorted(db.session.execute(select(Person.email).where(Person.erased_at.is_(None))).scalars())
        return {"memberships": memberships, "subscriptions": subscriptions, "links": links, "people": people}


def _seed(app, groups) -> None:
    """Group "long" (24 months) and group "short" (1 month), with people in every state."""
    from portal.groups.models import Membership, WorkingGroup
    from portal.groups.services import decide_application, remove_member
    from portal.lists.models import MailingList, Subscription
    from portal.lists.services import add_group_subscriber, unsubscribe

    clock.set_now(T0)
    long_info = groups.group(slug="long", name="Long")
    short_info = groups.group(slug="short", name="Short")

    def apply(group, email):
        return confirmed_application(group, email=email, name=email.split("@")[0], why=f"Why {email}",
                              consent=True, consent_wording="w")

    with app.app_context():
        long = db.session.get(WorkingGroup, long_info.id)
        short = db.session.get(WorkingGroup, short_info.id)
        short.retention_months = 1
        m = {email: apply(long, email) for email in (
            "left@example.ca", "unsub@example.ca", "declined@example.ca", "active@example.ca",
            "applied@example.ca", "again@example.ca")}
        m["short@example.ca"] = apply(short, "short@example.ca")
        for email in ("left", "unsub", "active", "again", "short"):
            decide_application(m[f"{email}@example.ca"], approve=True, actor=None)
        decide_application(m["declined@example.ca"], approve=False, actor=None)
        for email in ("left", "again", "short"):
            remove_member(m[f"{email}@example.ca"], actor=None)
        # Inconsistent on purpose: the declined applicant somehow sits on the group's list.
        add_group_subscriber(db.session.get(MailingList, long.mailing_list_id),
                             m["declined@example.ca"].person)
        db.session.commit()

    clock.set_now(T0 + 10 * DAY)
    with app.app_context():
        # Leaves by unsubscribing from the group's list (the lists area ends the membership).
        membership = db.session.execute(select(Membership).join(Membership.person)
                                        .where(Membership.person.has(email="unsub@example.ca"))).scalar_one()
        subscription = db.session.execute(select(Subscription).where(
            Subscription.person_id == membership.person_id)).scalar_one()
        unsubscribe(subscription, method="one-click")
        db.session.commit()

    clock.set_now(T0 + 100 * DAY)
    with app.app_context():
        long = db.session.get(WorkingGroup, long_info.id)
        apply(long, "again@example.ca")  # left, then applies again: an open application
        db.session.commit()


def test_former_members_are_deleted_when_due_and_nothing_else(app, groups):
    _seed(app, groups)
    start = _state(app)
    assert start["memberships"] == {
        "long/left@example.ca": "left", "long/unsub@example.ca": "left", "long/declined@example.ca": "declined",
        "long/active@example.ca": "active", "long/applied@example.ca": "applied",
        "long/again@example.ca": "applied", "short/short@example.ca": "left",
    }
    assert start["subscriptions"] == {
        "long/left@example.ca": "unsubscribed", "long/unsub@example.ca": "unsubscribed",
        "long/declined@example.ca": "active", "long/active@example.ca": "active",
        "long/again@example.ca": "unsubscribed", "short/short@example.ca": "unsubscribed",
    }
    everyone = start["people"]

    # The short group's period (30 days) is not over yet.
    assert _purge(app, T0 + 29 * DAY) == 0
    assert _state(app) == start

    # 30 days: the short group's former member goes, and their members' link with them; the
    # row on the group's list waits until 60 days after they were taken off (CASL).
    assert _purge(app, T0 + 31 * DAY) == 1
    after_short = _state(app)
    assert "short/short@example.ca" not in after_short["memberships"]
    assert after_short["subscriptions"]["short/short@example.ca"] == "unsubscribed"
    assert "short@example.ca" not in after_short["links"]
    assert {k: v for k, v in after_short["memberships"].items()} == {
        k: v for k, v in start["memberships"].items() if k != "short/short@example.ca"}
    assert _purge(app, T0 + 31 * DAY) == 0
    assert _state(app) == after_short

    assert _purge(app, T0 + 61 * DAY) == 1
    after_list = _state(app)
    assert "short/short@example.ca" not in after_list["subscriptions"]
    assert _purge(app, T0 + 61 * DAY) == 0

    # 24 months (720 days) after leaving or being declined.
    assert _purge(app, T0 + 719 * DAY) == 0
    assert _state(app) == after_list
    # left: membership + list row; declined: membership (taken off the list they should not
    # have been on, with a withdrawal in the ledger; the row waits 60 days).
    assert _purge(app, T0 + 721 * DAY) == 3
    state = _state(app)
    assert state["memberships"] == {
        "long/unsub@example.ca": "left", "long/active@example.ca": "active",
        "long/applied@example.ca": "applied", "long/again@example.ca": "applied",
    }
    assert state["subscriptions"] == {
        "long/unsub@example.ca": "unsubscribed", "long/declined@example.ca": "unsubscribed",
        "long/active@example.ca": "active", "long/again@example.ca": "unsubscribed",
    }
    assert "left@example.ca" not in state["links"] and "active@example.ca" in state["links"]
    assert _purge(app, T0 + 721 * DAY) == 0
    assert _state(app) == state

    # The one who left by unsubscribing, ten days later.
    assert _purge(app, T0 + 731 * DAY) == 2
    assert _purge(app, T0 + 780 * DAY) == 0
    # The declined applicant's list row, 60 days after the purge took them off.
    assert _purge(app, T0 + 782 * DAY) == 1
    final = _state(app)
    assert final["memberships"] == {"long/active@example.ca": "active", "long/applied@example.ca": "applied",
                                    "long/again@example.ca": "applied"}
    # The re-applicant's old list row is the lists area's to purge (by the list's period).
    assert final["subscriptions"] == {"long/active@example.ca": "active", "long/again@example.ca": "unsubscribed"}
    assert _purge(app, T0 + 782 * DAY) == 0
    assert _state(app) == final
    # Nobody is erased by this area: the people area decides when someone has nothing left.
    assert final["people"] == everyone


def test_the_consent_to_member_mail_ends_with_the_membership(app, groups):
    from portal.groups.services import decide_application
    from portal.groups.models import WorkingGroup
    from portal.people.models import ConsentRecord, Person

    clock.set_now(T0)
    info = groups.group()
    with app.app_context():
        membership = confirmed_application(db.session.get(WorkingGroup, info.id), email="no@example.ca", name="No",
                                    consent=True, consent_wording="w")
        decide_application(membership, approve=False, actor=None)
        person_id = membership.person_id
        db.session.commit()

    def kinds():
        with app.app_context():
            return db.session.execute(select(ConsentRecord.kind, ConsentRecord.source)
                                      .where(ConsentRecord.person_id == person_id)
                                      .order_by(ConsentRecord.id)).all()

    assert [k for k, _ in kinds()] == ["express"]  # declining wrote no withdrawal
    assert _purge(app, T0 + 721 * DAY) == 1
    assert kinds()[-1] == ("withdrawn", "groups.retention")
    assert _purge(app, T0 + 721 * DAY) == 0
    assert len(kinds()) == 2
    with app.app_context():
        assert db.session.get(Person, person_id).erased_at is None
        # Dated at the decline, not at the purge (found by a privacy pass: the person was
        # then kept two more years than the notice says).
        withdrawal = db.session.execute(select(ConsentRecord).where(
            ConsentRecord.person_id == person_id).order_by(ConsentRecord.id.desc())).scalars().first()
        assert withdrawal.created_at.replace(tzinfo=UTC) == T0
    from portal.people.jobs import purge_expired_personal_data

    clock.set_now(T0 + 731 * DAY)  # 24 months after the decline: nothing of theirs is left
    with app.app_context():
        purge_expired_personal_data()
        assert db.session.get(Person, person_id).erased_at is not None


def test_a_former_member_with_nothing_else_is_erased_by_the_purge_job(app, groups):
    """The whole job: the groups rule removes the membership; 24 months after the consent
    ended, the people area erases the person, who had nothing else left."""
    from portal.groups.models import WorkingGroup
    from portal.groups.services import decide_application, remove_member
    from portal.people.jobs import purge_expired_personal_data
    from portal.people.models import Person

    clock.set_now(T0)
    info = groups.group()
    with app.app_context():
        group = db.session.get(WorkingGroup, info.id)
        gone = confirmed_application(group, email="gone@example.ca", name="Gone Member", consent=True, consent_wording="w")
        stays = confirmed_application(group, email="stays@example.ca", name="Stays", consent=True, consent_wording="w")
        decide_application(gone, approve=True, actor=None)
        decide_application(stays, approve=True, actor=None)
        remove_member(gone, actor=None)
        ids = (gone.person_id, stays.person_id)
        db.session.commit()

    def erased() -> list[bool]:
        with app.app_context():
            return [db.session.get(Person, i).erased_at is not None for i in ids]

    clock.set_now(T0 + 721 * DAY)
    with app.app_context():
        assert purge_expired_personal_data() >= 1
        assert purge_expired_personal_data() == 0
    assert erased() == [False, False]  # the withdrawal was 24 months ago only now
    clock.set_now(T0 + 731 * DAY)
    with app.app_context():
        assert purge_expired_personal_data() == 1
        assert purge_expired_personal_data() == 0
    assert erased() == [True, False]


def test_organizers_see_when_former_members_go(app, client, auth, organizer, groups):
    _seed(app, groups)
    clock.set_now(T0 + 20 * DAY)
    auth.login(organizer)
    html = client.get("/admin/privacy/retention").get_data(as_text=True)
    assert "Working groups" in html
    assert "The membership of someone who left a working group" in html
    assert f"{forecast_day(T0 + 30 * DAY)}: 1" in html  # the short group's former member
    assert f"{forecast_day(T0 + 60 * DAY)}: 1" in html  # their list row
