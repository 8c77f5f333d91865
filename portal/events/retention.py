"""Keeping attendees' personal data only as long as needed (the privacy work calls this).

Two written rules: accessibility and dietary answers (possibly health information) are
cleared 30 days after the event ends; `retention_days` after the end every registration of
the event is anonymized: detached from the person, answers cleared, links revoked, and its
messages in the outbox emptied and untied from the person. Counts by sector and status
survive for reporting.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from portal.core.tokens import AccessToken
from portal.events.models import Event, Registration
from portal.extensions import db

NEEDS_KEPT_FOR = timedelta(days=30)


def purge_due(moment: datetime) -> int:
    """Apply both rules to every event that is due at `moment`; idempotent (events carry a
    marker once done). Flushes; the caller commits. Returns how many registrations changed."""
    changed = 0
    events = db.session.execute(
        select(Event).where(Event.ends_at <= moment - NEEDS_KEPT_FOR,
                            Event.personal_data_purged_at.is_(None))
    ).scalars().all()
    for event in events:
        if event.needs_purged_at is None:
            changed += db.session.execute(
                update(Registration).where(Registration.event_id == event.id)
                .values(accessibility_needs="", dietary_needs="")
            ).rowcount
            event.needs_purged_at = moment
        if event.ends_at + timedelta(days=event.retention_days) <= moment:
            _forget_their_messages(event)
            ids = select(Registration.id).where(Registration.event_id == event.id)
            db.session.execute(
                update(AccessToken).where(AccessToken.purpose.in_(("events.manage", "events.check_in")),
                                          AccessToken.subject_id.in_(ids), AccessToken.revoked_at.is_(None))
                .values(revoked_at=moment)
            )
            changed += db.session.execute(
                update(Registration).where(Registration.event_id == event.id)
                .values(person_id=None, accessibility_needs="", dietary_needs="", answers={})
            ).rowcount
            event.personal_data_purged_at = moment
    db.session.flush()
    return changed


#: Every events message's key names its registration: "events.reminder:registration:12",
#: "events.message:<batch>:registration:12", "events.cancelled:registration:12:<when>".
_REGISTRATION_IN_KEY = re.compile(r":registration:(\d+)(?::|$)")


def _forget_their_messages(event: Event) -> None:
    """The event's messages go with its registrations: emptied and untied from the person
    (mail.retention.empty_messages). Otherwise the outbox row's person and the registration
    named in its key would lead back from the anonymous seat to who held it."""
    from portal.mail.models import OutboxMessage
    from portal.mail.retention import empty_messages

    held = dict(db.session.execute(
        select(Registration.id, Registration.person_id)
        .where(Registration.event_id == event.id, Registration.person_id.is_not(None))
    ).all())
    people = sorted(set(held.values()))
    about: list[int] = []
    for start in range(0, len(people), 500):
        for message_id, key in db.session.execute(
            select(OutboxMessage.id, OutboxMessage.idempotency_key).where(
                OutboxMessage.person_id.in_(people[start:start + 500]),
                OutboxMessage.idempotency_key.like("events.%"))
        ).all():
            named = _REGISTRATION_IN_KEY.search(key)
            if named and int(named.group(1)) in held:
                about.append(message_id)
    empty_messages(about, detach=True)


def forecast(moment: datetime) -> list:
    """What the two rules change now and over the next 90 days, by day. Changes nothing."""
    from portal.people.retention import Forecast, _by_day

    has_needs = (Registration.accessibility_needs != "") | (Registration.dietary_needs != "")
    rows = db.session.execute(
        select(Event.ends_at, Event.retention_days, Event.needs_purged_at,
               func.count().filter(has_needs), func.count().filter(Registration.person_id.is_not(None)))
        .join(Registration, Registration.event_id == Event.id)
        .where(Event.personal_data_purged_at.is_(None))
        .group_by(Event.id, Event.ends_at, Event.retention_days, Event.needs_purged_at)
    ).all()
    needs_due: list[datetime] = []
    anonymized_due: list[datetime] = []
    for ends_at, retention_days, needs_purged_at, with_needs, with_person in rows:
        if needs_purged_at is None:
            needs_due += [ends_at + NEEDS_KEPT_FOR] * with_needs
        # purge_due looks at an event once its needs are due; anonymizing waits at least that long.
        anonymized_due += [ends_at + max(timedelta(days=retention_days), NEEDS_KEPT_FOR)] * with_person
    return [
        Forecast("events.needs", _l("Accessibility and dietary answers are cleared."),
                 _l("30 days after the event ends"), *_by_day(needs_due, moment)),
        Forecast("events.registrations",
                 _l("Registrations are anonymized: detached from the person, answers cleared, links revoked. "
                    "Counts by sector and status remain."),
                 _l("The event's retention period after it ends (365 days unless set otherwise)"),
                 *_by_day(anonymized_due, moment)),
    ]
