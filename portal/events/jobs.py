"""Scheduled work for events: reminders before an event (the scheduler runs it)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select, update

from portal.core.clock import now
from portal.core.db import writing
from portal.events.models import Event, EventStatus, Registration, RegistrationStatus
from portal.events.notifications import notify_reminder
from portal.extensions import db


def send_due_reminders() -> int:
    """Queue the reminder for every confirmed registration whose event (published, or closed
    to new registrations) starts within its `reminder_days`, once per registration. Each
    registration is claimed with a guarded UPDATE (`reminder_sent_at IS NULL`) and the mail has
    an idempotency key, so running twice, in two processes, or late is harmless. Returns how
    many reminders were queued. Someone given their seat after reminders began is not
    reminded: their confirmation is that recent."""
    moment = now()
    sent = 0
    with writing():
        events = db.session.execute(
            # A closed event has stopped taking registrations, not stopped happening.
            select(Event).where(Event.status.in_([EventStatus.PUBLISHED.value, EventStatus.CLOSED.value]),
                                Event.reminder_days > 0, Event.starts_at > moment)
        ).scalars().all()
        due_events = [e for e in events if e.starts_at - timedelta(days=e.reminder_days) <= moment]
        for event in due_events:
            reminders_began = event.starts_at - timedelta(days=event.reminder_days)
            candidates = db.session.execute(
                select(Registration.id).where(
                    Registration.event_id == event.id,
                    Registration.status == RegistrationStatus.CONFIRMED.value,
                    Registration.reminder_sent_at.is_(None),
                    Registration.person_id.is_not(None),
                    # Given their seat once reminders had begun: their confirmation (with the
                    # calendar file and the code) is that recent; a reminder seconds after it
                    # only repeated it, with a second, different check-in code.
                    or_(Registration.confirmed_at.is_(None), Registration.confirmed_at < reminders_began),
                ).order_by(Registration.id)
            ).scalars().all()
            for registration_id in candidates:
                claimed = db.session.execute(
                    update(Registration)
                    .where(Registration.id == registration_id, Registration.reminder_sent_at.is_(None))
                    .values(reminder_sent_at=moment)
                ).rowcount
                if claimed != 1:
                    continue
                notify_reminder(db.session.get(Registration, registration_id))
                sent += 1
        db.session.commit()
    return sent
