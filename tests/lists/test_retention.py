"""Retention per list: a former subscriber's subscription goes after the list's period."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.core import clock
from portal.core.clock import now
from portal.extensions import db
from tests.lists.conftest import add_subscriber
from tests.conftest import forecast_day


def _subscription_ids(app) -> set[int]:
    from portal.lists.models import Subscription

    with app.app_context():
        return set(db.session.execute(select(Subscription.id)).scalars())


def test_unsubscribed_people_are_purged_after_the_lists_period_once(app, client, auth, organizer, public_list):
    from portal.lists.models import MailingList
    from portal.people.jobs import purge_expired_personal_data
    from portal.people.models import ConsentRecord, Person

    start = now()
    with app.app_context():
        db.session.get(MailingList, public_list).retention_months = 2  # 60 days
        db.session.commit()
    clock.set_now(start)
    old, old_person, _ = add_subscriber(app, public_list, "old@example.ca", status="unsubscribed")
    clock.set_now(start + timedelta(days=40))
    recent, _, _ = add_subscriber(app, public_list, "recent@example.ca", status="unsubscribed")
    active, _, _ = add_subscriber(app, public_list, "active@example.ca")
    pending, _, _ = add_subscriber(app, public_list, "pending@example.ca", status="pending", consent=None)

    clock.set_now(start + timedelta(days=59))
    with app.app_context():
        purge_expired_personal_data()
    assert _subscription_ids(app) == {old, recent, active, pending}

    auth.login(organizer)
    html = client.get("/admin/privacy/retention").get_data(as_text=True)
    assert "The subscription of someone who unsubscribed" in html
    assert f"{forecast_day(start + timedelta(days=60))}: 1" in html
    assert f"{forecast_day(start + timedelta(days=100))}: 1" in html

    clock.set_now(start + timedelta(days=61))
    with app.app_context():
        from portal.lists.retention import purge_due

        purge_expired_personal_data()
        assert purge_due(now()) == 0  # a second run finds nothing more
        db.session.rollback()
        # The person and their ledger stay (the withdrawal is kept; the people area's own
        # rule erases them later); only the subscription went.
        assert db.session.get(Person, old_person) is not None
        kinds = db.session.execute(select(ConsentRecord.kind).where(ConsentRecord.person_id == old_person)
                                   .order_by(ConsentRecord.id)).scalars().all()
        assert kinds[-1] == "withdrawn"
    # A pending one is left to the people area's own rule (30 days after it was asked for).
    assert _subscription_ids(app) == {recent, active, pending}


def test_no_period_breaks_an_unsubscribe_link_within_60_days_nor_touches_a_groups_list(app, public_list):
    from portal.groups.models import WorkingGroup
    from portal.lists.models import MailingList
    from portal.lists.retention import purge_due
    from tests.groups.conftest import GroupFactories

    info = GroupFactories(app).group()
    start = now()
    clock.set_now(start)
    with app.app_context():
        db.session.get(MailingList, public_list).retention_months = 1  # set before the form's floor of 2
        group_list_id = db.session.get(WorkingGroup, info.id).mailing_list_id
        db.session.get(MailingList, group_list_id).retention_months = 1
        db.session.commit()
    public, _, token = add_subscriber(app, public_list, "jordan@example.ca", status="unsubscribed")
    grouped, _, _ = add_subscriber(app, group_list_id, "bob@example.ca", status="unsubscribed")

    clock.set_now(start + timedelta(days=45))
    with app.app_context():
        assert purge_due(now()) == 0
        db.session.commit()
    assert {public, grouped} <= _subscription_ids(app)
    assert app.test_client().get(f"/lists/unsubscribe/{token}").status_code == 200  # still works

    clock.set_now(start + timedelta(days=61))
    with app.app_context():
        assert purge_due(now()) == 1  # the public list's row; the group's is the groups area's
        db.session.commit()
    assert public not in _subscription_ids(app) and grouped in _subscription_ids(app)
