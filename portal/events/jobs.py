"""Scheduled work for events: reminders before an event (the scheduler runs it)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select, update

from portal.core.clock import now
from portal.core.db import writing
from portal.core.errors import DomainError
from portal.events.models import Event, EventStatus, Registration, RegistrationStatus
from portal.events.notifications import notify_reminder
from portal.events.services import lock_event
from portal.extensions import db


#: A confirmation this recent is reminder enough: no reminder follows it sooner.
CONFIRMATION_STILL_FRESH = timedelta(days=1)

#: How many reminders one transaction queues: the event's lock is held that long (a
#: registration, a cancellation or a move of the event waits at most one batch).
REMINDER_BATCH = 200


def send_due_reminders() -> int:
    """Queue the reminder for every confirmed registration whose event (published, or closed
    to new registrations) starts within its `reminder_days`, once per registration. Someone
    given their seat after reminders began is reminded no sooner than a day after their
    confirmation (CONFIRMATION_STILL_FRESH). Returns how many reminders were queued.

    Each batch runs under the event's lock (`lock_event`), as registrations, cancellations
    and moves of the event do, and reads the event afresh there: a move either comes first
    (the reminders carry the new time and place) or after the batch committed (and withholds
    it, owing new ones); a cancellation either comes first (no reminder) or after. A
    registration is claimed with a guarded UPDATE (still confirmed, `reminder_sent_at IS
    NULL`) and the mail has an idempotency key, so running twice, in two processes, or late
    is harmless."""
    moment = now()
    sent = 0
    with writing():
        due = [(event_id, starts_at, reminder_days) for event_id, starts_at, reminder_days in db.session.execute(
            # A closed event has stopped taking registrations, not stopped happening.
            select(Event.id, Event.starts_at, Event.reminder_days)
            .where(Event.status.in_([EventStatus.PUBLISHED.value, EventStatus.CLOSED.value]),
                   Event.reminder_days > 0, Event.starts_at > moment)
        ).tuples() if starts_at - timedelta(days=reminder_days) <= moment]
        db.session.rollback()
        for event_id, _starts_at, _days in due:
            while (queued := _remind_a_batch(event_id, moment)) is not None:
                sent += queued
    return sent


def _remind_a_batch(event_id: int, moment) -> int | None:
    """Queue up to REMINDER_BATCH reminders of one event in one transaction under its lock;
    None when none was left to send."""
    try:
        event = lock_event(event_id)
    except DomainError:  # gone, or busy past the lock timeout: the next run goes on
        db.session.rollback()
        return None
    reminders_began = event.starts_at - timedelta(days=event.reminder_days)
    if (event.status not in (EventStatus.PUBLISHED, EventStatus.CLOSED) or event.starts_at <= moment
            or reminders_began > moment):
        db.session.rollback()  # moved or closed since the list of due events was read
        return None
    candidates = db.session.execute(
        select(Registration.id).where(
            Registration.event_id == event.id,
            Registration.status == RegistrationStatus.CONFIRMED.value,
            Registration.reminder_sent_at.is_(None),
            Registration.person_id.is_not(None),
            # Given their seat once reminders had begun: a reminder seconds after the
            # confirmation only repeated it (with a second check-in code), so it waits a day;
            # someone who registered weeks ahead of a long reminder window still gets one.
            or_(Registration.confirmed_at.is_(None), Registration.confirmed_at < reminders_began,
                Registration.confirmed_at <= moment - CONFIRMATION_STILL_FRESH),
        ).order_by(Registration.id).limit(REMINDER_BATCH)
    ).scalars().all()
    if not candidates:
        db.session.rollback()
        return None
    queued = 0
    for registration_id in candidates:
        claimed = db.session.execute(
            update(Registration)
            .where(Registration.id == registration_id, Registration.reminder_sent_at.is_(None),
                   Registration.status == RegistrationStatus.CONFIRMED.value)
            .values(reminder_sent_at=moment)
        ).rowcount
        if claimed != 1:
            continue
        notify_reminder(db.session.get(Registration, registration_id))
        queued += 1
    db.session.commit()
    return queued
