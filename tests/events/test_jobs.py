"""Reminders before the event, and the retention rules, under a moved clock."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.core import clock
from portal.core.errors import InvalidToken
from portal.events import services
from portal.events.jobs import send_due_reminders
from portal.events.models import Event, EventStatus, Registration
from portal.events.retention import purge_due
from portal.extensions import db
from portal.mail.models import OutboxMessage


def _register(event: Event, n: int, **extra) -> Registration:
    return services.register_for_event(event.id, services.RegistrationDetails(
        email=f"r{n}@example.ca", name=f"R {n}", organization="Org", sector_slug="police",
        community="Toronto", **extra)).registration


def _reminders() -> list[str]:
    return list(db.session.execute(
        select(OutboxMessage.to_address).where(OutboxMessage.purpose == "events.reminder")).scalars())


def test_reminders_go_once_to_confirmed_people_when_due(app_context, make_event):
    start = clock.now()
    clock.set_now(start)
    event = db.session.get(Event, make_event(capacity=2, reminder_days=2, starts_in=timedelta(days=10)))
    for n in range(3):
        _register(event, n)
    services.cancel_registration(db.session.execute(
        select(Registration).order_by(Registration.id)).scalars().first())  # r1 is promoted
    db.session.commit()
    assert send_due_reminders() == 0  # eight days too early
    clock.set_now(start + timedelta(days=8, hours=1))
    assert send_due_reminders() == 2
    assert send_due_reminders() == 0  # twice is harmless
    assert sorted(_reminders()) == ["R 1 <r1@example.ca>", "R 2 <r2@example.ca>"]
    clock.set_now(start + timedelta(days=11))
    assert send_due_reminders() == 0  # nothing after the start


def test_no_reminder_follows_a_confirmation_sent_once_reminders_began(app_context, make_event):
    """Found by a review: registering within the reminder window brought the confirmation,
    then ten seconds later a reminder with a second, different check-in code."""
    start = clock.now()
    clock.set_now(start)
    event = db.session.get(Event, make_event(capacity=5, reminder_days=2, starts_in=timedelta(days=10)))
    _register(event, 1)
    db.session.commit()
    clock.set_now(start + timedelta(days=8, hours=1))  # reminders have begun
    _register(event, 2)
    db.session.commit()
    assert send_due_reminders() == 1
    assert _reminders() == ["R 1 <r1@example.ca>"]
    # A day on, the late registrant is reminded too (a code review: with a 14-day window,
    # anyone registering in its last two weeks was never reminded at all).
    clock.set_now(start + timedelta(days=9, hours=2))
    assert send_due_reminders() == 1
    assert sorted(_reminders()) == ["R 1 <r1@example.ca>", "R 2 <r2@example.ca>"]


def test_retention_clears_needs_after_30_days_then_anonymizes(app_context, make_event):
    event = db.session.get(Event, make_event(capacity=5, retention_days=365))
    registration = _register(event, 1, accessibility_needs="Ramp", dietary_needs="Vegan",
                             answers={"1": "x"})
    db.session.commit()
    from portal.events.notifications import manage_path

    link = manage_path(registration).rsplit("/", 1)[1]
    db.session.commit()
    ends = event.ends_at
    assert purge_due(ends + timedelta(days=29)) == 0
    assert purge_due(ends + timedelta(days=31)) == 1
    db.session.commit()
    db.session.refresh(registration)
    assert registration.accessibility_needs == "" and registration.dietary_needs == ""
    assert registration.person_id is not None and registration.answers == {"1": "x"}
    assert purge_due(ends + timedelta(days=32)) == 0  # idempotent
    assert purge_due(ends + timedelta(days=366)) == 1
    db.session.commit()
    db.session.refresh(registration)
    assert registration.person_id is None and registration.answers == {}
    assert registration.status == "confirmed" and registration.sector_id is not None  # counts survive
    with pytest.raises(InvalidToken):
        services.registration_for_manage_token(link)
    assert purge_due(ends + timedelta(days=400)) == 0
    assert db.session.execute(select(func.count()).select_from(Registration)).scalar_one() == 1


def test_a_closed_event_still_reminds_its_attendees(app_context, make_event):
    start = clock.now()
    clock.set_now(start)
    event = db.session.get(Event, make_event(capacity=2, reminder_days=2, starts_in=timedelta(days=10)))
    _register(event, 1)
    event.status = "closed"  # no more registrations; the event still happens
    db.session.commit()
    clock.set_now(start + timedelta(days=8, hours=1))
    assert send_due_reminders() == 1
    assert _reminders() == ["R 1 <r1@example.ca>"]


def test_organizers_see_when_the_events_rules_fall_due(app, client, auth, organizer, make_event):
    from portal.events.retention import forecast

    event_id = make_event(capacity=5, retention_days=60)
    with app.app_context():
        event = db.session.get(Event, event_id)
        _register(event, 1, accessibility_needs="Ramp")
        _register(event, 2)
        db.session.commit()
        ends = event.ends_at
        needs, registrations = forecast(ends)
    assert (needs.due_now, needs.upcoming) == (0, [((ends + timedelta(days=30)).date(), 1)])
    assert (registrations.due_now, registrations.upcoming) == (0, [((ends + timedelta(days=60)).date(), 2)])
    with app.app_context():
        needs, registrations = forecast(ends + timedelta(days=45))
    assert needs.due_now == 1 and registrations.upcoming == [((ends + timedelta(days=60)).date(), 2)]
    clock.set_now(ends + timedelta(days=45))
    auth.login(organizer)
    html = client.get("/admin/privacy/retention").get_data(as_text=True)
    assert "Accessibility and dietary answers are cleared." in html and "Registrations are anonymized" in html
    assert "retention_days" not in html  # the rules, not the code's notes


def test_an_anonymized_seat_cannot_be_traced_back_through_its_messages(app_context, make_event):
    """The outbox keeps each message's row and key (nothing is sent twice), but once the
    registration is anonymized, its messages no longer name or point to the person; the
    same person's messages about another event stay as they are."""
    event_id, later_id = make_event(capacity=5, retention_days=30), make_event(capacity=5, starts_in=timedelta(days=400))
    event, later = db.session.get(Event, event_id), db.session.get(Event, later_id)
    gone = _register(event, 1)
    _register(later, 1)  # the same person, at an event still ahead
    db.session.commit()
    purge_due(event.ends_at + timedelta(days=31))
    db.session.commit()
    messages = db.session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
    about_gone = [m for m in messages if m.idempotency_key.endswith(f":registration:{gone.id}")]
    assert about_gone and all(m.person_id is None and m.to_address == "" and m.body_text == "" and not m.attachments
                              for m in about_gone)
    others = [m for m in messages if m not in about_gone]
    assert others and all(m.person_id is not None and "r1@example.ca" in m.to_address for m in others)


def test_the_reminder_carries_a_check_in_code_that_works_at_the_door(app_context, make_event):
    """Someone who lost the confirmation still has a code to show: the reminder's own, for
    the same seat; the confirmation's keeps working."""
    from portal.mail.models import OutboxAttachment

    start = clock.now()
    clock.set_now(start)
    event = db.session.get(Event, make_event(capacity=2, reminder_days=2, starts_in=timedelta(days=10)))
    registration = _register(event, 1)
    db.session.commit()
    clock.set_now(start + timedelta(days=8, hours=1))
    assert send_due_reminders() == 1
    reminder = db.session.execute(select(OutboxMessage).where(OutboxMessage.purpose == "events.reminder")).scalar_one()
    (qr,) = db.session.execute(select(OutboxAttachment).where(OutboxAttachment.message_id == reminder.id)).scalars()
    code = qr.content.decode("ascii")
    assert code in reminder.body_text and code in reminder.body_html
    checked, first_time = services.check_in_by_code(event, code, actor=None)
    assert checked.id == registration.id and first_time and checked.checked_in_at is not None


def test_an_event_moved_later_is_reminded_of_again_and_outdated_notices_are_withheld(app_context, make_event):
    """Found by a reliability pass: with the SMTP server refusing for a while, the reminder and
    change notice for the old date went out after the notice of the new one; and once an event
    moved weeks later, no reminder came before its new day."""
    from portal.mail.models import OutboxState

    event, actor = _an_event_whose_reminder_is_queued(make_event)
    # Moved two days later; its change notice waits to retry (the SMTP server refused it).
    services.update_event(event, actor=actor, starts_at=event.starts_at + timedelta(days=2),
                          ends_at=event.ends_at + timedelta(days=2))
    db.session.commit()
    first_notice = db.session.execute(
        select(OutboxMessage).where(OutboxMessage.purpose == "events.changed")).scalar_one()
    first_notice.state = OutboxState.RETRY.value
    db.session.commit()
    # Then moved thirty days later: everything still unsent about the earlier dates is withheld.
    services.update_event(event, actor=actor, starts_at=event.starts_at + timedelta(days=28),
                          ends_at=event.ends_at + timedelta(days=28))
    db.session.commit()
    states = dict(db.session.execute(select(OutboxMessage.idempotency_key, OutboxMessage.state)
                                     .where(OutboxMessage.purpose.in_(["events.changed", "events.reminder"]))).tuples().all())
    version = event.schedule_version
    registration_id = db.session.execute(select(Registration.id)).scalar_one()
    assert states == {
        f"events.reminder:registration:{registration_id}:0": OutboxState.WITHHELD.value,  # the old day's
        f"events.changed:registration:{registration_id}:{version - 1}": OutboxState.WITHHELD.value,
        f"events.changed:registration:{registration_id}:{version}": OutboxState.QUEUED.value,
    }
    assert send_due_reminders() == 0  # weeks before the new day
    clock.set_now(event.starts_at - timedelta(days=1))
    assert send_due_reminders() == 1  # ...and reminded again before it
    assert send_due_reminders() == 0
    new_reminder = db.session.execute(select(OutboxMessage).where(
        OutboxMessage.idempotency_key == f"events.reminder:registration:{registration_id}:{version}")).scalar_one()
    assert new_reminder.state == OutboxState.QUEUED.value


def test_a_reminder_withheld_by_a_new_venue_is_sent_again_with_it(app_context, make_event):
    """Found by review: a reminder queued but not yet sent was withheld when the venue
    changed, and never replaced (the start had not moved), so the person got none: and the
    reminder carries the code for the door."""
    from portal.mail.models import OutboxState

    event, actor = _an_event_whose_reminder_is_queued(make_event)
    services.update_event(event, actor=actor, venue_name="Another hall")
    db.session.commit()
    assert send_due_reminders() == 1  # still due: at once, with the new hall
    reminders = db.session.execute(select(OutboxMessage).where(OutboxMessage.purpose == "events.reminder")
                                   .order_by(OutboxMessage.id)).scalars().all()
    assert [r.state for r in reminders] == [OutboxState.WITHHELD.value, OutboxState.QUEUED.value]
    assert "Another hall" in reminders[1].body_text
    assert send_due_reminders() == 0


def _an_event_whose_reminder_is_queued(make_event):
    """An event in 3 days with one registrant, a day later: the reminder (2 days ahead) is
    queued, not yet sent; and an organizer to change the event."""
    from portal.auth.models import OrganizerAccount

    start = clock.now()
    clock.set_now(start)
    event = db.session.get(Event, make_event(capacity=5, reminder_days=2, starts_in=timedelta(days=3)))
    _register(event, 1)
    db.session.commit()
    clock.set_now(start + timedelta(days=1, hours=1))
    assert send_due_reminders() == 1
    actor = OrganizerAccount(email="chair@example.ca", name="Chair", password_hash="x")
    db.session.add(actor)
    return event, actor


def test_reminders_go_in_short_batches_each_reading_the_event_afresh(app_context, make_event, monkeypatch):
    """A concurrency review: the job read the event once and held one transaction for the
    whole run (11 s for 4,000 people on PostgreSQL: registrations waited, an organizer's
    cancel failed on a lock timeout), so a move of the event during it left reminders with
    the old venue queued after the change notice. Each batch now runs under the event's lock
    and reads it afresh."""
    from portal.auth.models import OrganizerAccount
    from portal.events import jobs

    monkeypatch.setattr(jobs, "REMINDER_BATCH", 2)
    start = clock.now()
    clock.set_now(start)
    event = db.session.get(Event, make_event(capacity=10, reminder_days=2, starts_in=timedelta(days=3)))
    for n in range(5):
        _register(event, n)
    db.session.commit()
    clock.set_now(start + timedelta(days=1, hours=1))
    assert jobs._remind_a_batch(event.id, clock.now()) == 2  # a batch, committed
    actor = OrganizerAccount(email="chair@example.ca", name="Chair", password_hash="x")
    db.session.add(actor)
    services.update_event(db.session.get(Event, event.id), actor=actor, venue_name="New Hall")
    db.session.commit()
    assert send_due_reminders() == 5  # the other three, then the two the move withheld
    reminders = db.session.execute(select(OutboxMessage).where(
        OutboxMessage.purpose == "events.reminder", OutboxMessage.state == "queued")).scalars().all()
    assert len(reminders) == 5 and all("New Hall" in m.body_text for m in reminders)
    assert send_due_reminders() == 0


def test_cancelling_an_event_withholds_its_unsent_reminders(app_context, make_event):
    """A concurrency review: reminders still queued went out after the 'event cancelled'
    notices, with check-in codes, inviting people to an event that was not happening."""
    from portal.mail.models import OutboxState

    event, actor = _an_event_whose_reminder_is_queued(make_event)
    services.set_event_status(event, EventStatus.CANCELLED, actor=actor)
    db.session.commit()
    reminder = db.session.execute(select(OutboxMessage).where(OutboxMessage.purpose == "events.reminder")).scalar_one()
    assert reminder.state == OutboxState.WITHHELD.value
    assert send_due_reminders() == 0
