"""Mail about registrations. Every function only writes outbox rows, in the caller's transaction."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import icalendar
from flask import current_app
from flask_babel import force_locale, gettext
from sqlalchemy import insert

from portal.core.clock import now
from portal.core.formatting import in_language
from portal.core.tokens import AccessToken, hash_token, issue_token, new_raw_token
from portal.events.models import Event, Registration
from portal.extensions import db
from portal.mail.attachments import QR_CODE
from portal.mail.services import (
    Attachment,
    already_queued,
    hourly_key,
    mail_domain,
    queue_email,
    queue_emails,
    render_email,
)

MANAGE_PURPOSE = "events.manage"
CHECK_IN_PURPOSE = "events.check_in"


def path_for(endpoint: str, **values: object) -> str:
    """A site-relative path, built with or without a request (jobs have none)."""
    return current_app.url_map.bind("localhost").build(endpoint, values)


def _token_lifetime(event: Event) -> timedelta:
    return max(event.tokens_valid_until - now(), timedelta(days=1))


def _store_tokens(registration: Registration, *tokens: tuple[str, str, timedelta]) -> None:
    """Record (purpose, raw, valid_for) tokens of one registration, drawn earlier (outside the
    seat lock), in one statement: no ORM flush, nothing read back."""
    moment = now()
    db.session.connection().execute(_INSERT_TOKEN, [
        dict(token_hash=hash_token(raw), purpose=purpose, person_id=registration.person_id,
             subject_id=registration.id, expires_at=moment + valid_for, use_count=0, created_at=moment)
        for purpose, raw, valid_for in tokens
    ])


_INSERT_TOKEN = insert(AccessToken.__table__)


def _check_in_lifetime(event: Event) -> timedelta:
    return max(event.ends_at + timedelta(days=2) - now(), timedelta(days=1))


def manage_path(registration: Registration, raw: str | None = None) -> str:
    """Issue a fresh manage link (opaque, 256 bits) and return its path."""
    if raw is None:
        raw = issue_token(
            MANAGE_PURPOSE, person_id=registration.person_id, subject_id=registration.id,
            valid_for=_token_lifetime(registration.event),
        )
    else:
        _store_tokens(registration, (MANAGE_PURPOSE, raw, _token_lifetime(registration.event)))
    return path_for("events.manage", token=raw)


@dataclass(frozen=True)
class SeatMaterial:
    """The raw manage and check-in tokens of a registration not yet made, drawn before the
    seat lock is taken (nothing that needs them has to wait for the lock)."""

    manage_raw: str
    check_in_raw: str


def prepare_seat_material() -> SeatMaterial:
    """Draw the tokens for a registration not yet made."""
    return SeatMaterial(new_raw_token(), new_raw_token())


def zone_transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, timedelta, timedelta]]:
    """Each change of the zone's UTC offset between `start` and `end` (aware): the instant
    (UTC), the offset before and the offset after. Found day by day, then to the second."""
    def offset(moment: datetime) -> timedelta:
        return moment.astimezone(zone).utcoffset() or timedelta(0)

    changes = []
    day = timedelta(days=1)
    moment = start
    while moment < end:
        before, after = offset(moment), offset(moment + day)
        if before != after:
            low, high = moment, moment + day  # offset(low) == before, offset(high) == after
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == before else (low, middle)
            changes.append((high.replace(microsecond=0), before, after))
        moment += day
    return changes


@lru_cache(maxsize=64)
def _vtimezone(tzid: str, year: int) -> bytes:
    """The VTIMEZONE block for an event starting in `year`: the same for every registration,
    so it is built and serialized once per zone and year.

    Built from the zone's own transitions rather than icalendar's Timezone.from_tzinfo, which
    writes the spring onset as 03:00 beside TZOFFSETFROM -0500 (an hour late; RFC 5545
    3.6.5 wants the onset's local time in the offset in force before it, 02:00), and
    calendars that go by the VTIMEZONE (Outlook) then place times near the change wrongly.
    Only the years around the event: a full 1970-2038 zone is much longer.
    """
    zone = ZoneInfo(tzid)
    start = datetime(year - 1, 1, 1, tzinfo=zone).astimezone(ZoneInfo("UTC"))
    end = datetime(year + 2, 1, 1, tzinfo=zone).astimezone(ZoneInfo("UTC"))
    timezone = icalendar.Timezone()
    timezone.add("tzid", tzid)

    def observance(onset_utc: datetime, before: timedelta, after: timedelta) -> None:
        local = onset_utc.astimezone(zone)
        kind = icalendar.TimezoneDaylight if local.dst() else icalendar.TimezoneStandard
        component = kind()
        component.add("dtstart", (onset_utc + before).replace(tzinfo=None))
        component.add("tzname", local.tzname())
        component.add("tzoffsetfrom", before)
        component.add("tzoffsetto", after)
        timezone.add_component(component)

    first = start.astimezone(zone).utcoffset() or timedelta(0)
    observance(start, first, first)  # what is in force when the block begins
    for onset, before, after in zone_transitions(zone, start, end):
        observance(onset, before, after)
    return timezone.to_ical()


def calendar_file(event: Event, language: str = "en") -> bytes:
    """An iCalendar file with the event in its own zone (TZID plus a VTIMEZONE), its title
    and summary in `language` where the event has them.

    It is the same for everyone registered in a language: one UID per event, so a calendar that already has
    it replaces the entry when a later file carries new times. Nothing personal goes in it
    (calendars get shared and synced; the manage link stays in the message). So it is built
    once per version of the event's details and then reused, but for its DTSTAMP, the moment
    this file is made: with an equal SEQUENCE, calendars keep the entry with the later
    DTSTAMP (RFC 5546 2.1.5), so a confirmation after a cancellation must carry a later one.
    """
    body = _calendar_for(
        event.id, in_language(event, "title", language), in_language(event, "summary", language),
        event.venue_name, event.venue_address,
        event.starts_at, event.ends_at, event.timezone, event.schedule_version or 0, mail_domain(),
    )
    return body.replace(_STAMP_PLACEHOLDER, f"DTSTAMP:{now().astimezone(UTC):%Y%m%dT%H%M%SZ}".encode())


#: The DTSTAMP line of a cached calendar file, replaced by the moment of each copy.
_STAMP_PLACEHOLDER = b"DTSTAMP:20000101T000000Z"


@lru_cache(maxsize=32)
def _calendar_for(event_id: int, title: str, summary: str, venue_name: str, venue_address: str,
                  starts_at: datetime, ends_at: datetime, timezone: str, sequence: int, domain: str) -> bytes:
    entry = _calendar_entry(event_id, title, venue_name, venue_address, starts_at, ends_at, timezone,
                            sequence, domain, stamp=datetime(2000, 1, 1, tzinfo=UTC))
    if summary:
        entry.add("description", summary)
    body = _calendar_with(entry, "PUBLISH", timezone, starts_at.year)
    assert _STAMP_PLACEHOLDER in body
    return body


def cancellation_calendar_file(event: Event, language: str, attendee_address: str) -> bytes:
    """The iCalendar cancellation (RFC 5546 CANCEL) of the entry `calendar_file` made: same
    UID, SEQUENCE not lower, STATUS:CANCELLED, so a calendar that holds the entry drops it or
    marks it cancelled. CANCEL names its organizer (the portal's sender) and the attendee it
    removes (the recipient), so this one is per person; it goes only to the person's own inbox.
    """
    sender = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]
    entry = _calendar_entry(
        event.id, in_language(event, "title", language), event.venue_name, event.venue_address,
        event.starts_at, event.ends_at, event.timezone, event.schedule_version or 0, mail_domain())
    entry.add("status", "CANCELLED")
    if sender:
        entry.add("organizer", f"mailto:{sender}")
    entry.add("attendee", f"mailto:{attendee_address}")
    return _calendar_with(entry, "CANCEL", event.timezone, event.starts_at.year)


def _calendar_entry(event_id: int, title: str, venue_name: str, venue_address: str, starts_at: datetime,
                    ends_at: datetime, timezone: str, sequence: int, domain: str,
                    stamp: datetime | None = None) -> icalendar.Event:
    zone = ZoneInfo(timezone)
    entry = icalendar.Event()
    entry.add("uid", f"event-{event_id}@{domain}")
    entry.add("sequence", sequence)  # higher than before once the time or place changed
    entry.add("dtstamp", stamp or now())
    entry.add("dtstart", starts_at.astimezone(zone))
    entry.add("dtend", ends_at.astimezone(zone))
    entry.add("summary", title)
    location = ", ".join(part for part in (venue_name, venue_address) if part)
    if location:
        entry.add("location", location)
    return entry


def _calendar_with(entry: icalendar.Event, method: str, timezone: str, year: int) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Community Safety Portal//events//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add_component(entry)
    body = calendar.to_ical()
    # The VTIMEZONE goes before the VEVENT, as add_component(timezone) then (entry) would put
    # it. Folded lines start with a space, so this finds the component's own first line.
    at = body.index(b"\r\nBEGIN:VEVENT\r\n") + 2
    return body[:at] + _vtimezone(timezone, year) + body[at:]


@dataclass(frozen=True)
class EventFacts:
    """What seat mail says about an event, as hashable values: the part of a confirmation that
    everyone gets alike is rendered once per version of these (mail.render_merged_email)."""

    slug: str
    title: str
    title_fr: str
    venue_name: str
    venue_address: str
    starts_at: datetime
    ends_at: datetime
    timezone: str


def event_facts(event: Event) -> EventFacts:
    return EventFacts(event.slug, event.title, event.title_fr, event.venue_name, event.venue_address,
                      event.starts_at, event.ends_at, event.timezone)


def _seat_context(event: Event) -> dict:
    """The shared part of a seat message's context (see queue_email's `personal`)."""
    return {"event": event_facts(event), "event_path": path_for("events.detail", slug=event.slug)}


def _base_context(registration: Registration, path: str) -> dict:
    event = registration.event
    return {
        "event": event,
        "registration": registration,
        "manage_path": path,
        "event_path": path_for("events.detail", slug=event.slug),
        "waitlist_place": None,
    }


def _calendar_attachment(registration: Registration) -> Attachment:
    """The event's calendar file, in the registrant's language (built once per version)."""
    event = registration.event
    return Attachment(f"{event.slug[:60]}.ics", "text/calendar; charset=utf-8; method=PUBLISH",
                      calendar_file(event, (registration.person.language if registration.person else "") or "en"))


def _check_in_attachment(check_in_raw: str) -> Attachment:
    """The check-in code as a QR picture, drawn by the sender (portal/mail/attachments.py)."""
    return Attachment("check-in-code.svg", "image/svg+xml", check_in_raw.encode("ascii"), generated=QR_CODE)


def _seat_mail(registration: Registration, material: SeatMaterial) -> tuple[dict, list[Attachment]]:
    """Store the material's tokens for this registration; the person's own values for the
    mail (beside `_seat_context`) and its attachments.

    The calendar file is the event's (built once per version of it); the QR code is drawn
    from the check-in code when the message is sent (portal/mail/attachments.py)."""
    event = registration.event
    _store_tokens(
        registration,
        (MANAGE_PURPOSE, material.manage_raw, _token_lifetime(event)),
        (CHECK_IN_PURPOSE, material.check_in_raw, _check_in_lifetime(event)),
    )
    path = path_for("events.manage", token=material.manage_raw)
    attachments = [_calendar_attachment(registration), _check_in_attachment(material.check_in_raw)]
    return {"manage_path": path, "check_in_code": material.check_in_raw}, attachments


def notify_registration_confirmed(registration: Registration, material: SeatMaterial | None = None) -> None:
    """The seat is theirs: what, when, where, a calendar file, the check-in QR, a manage link."""
    personal, attachments = _seat_mail(registration, material or prepare_seat_material())
    queue_email(
        key=f"events.confirmation:registration:{registration.id}", to=registration.person,
        template="events/confirmation", purpose="events.confirmation",
        context=_seat_context(registration.event), personal=personal,
        attachments=attachments, repeatable=False,
    )


def notify_confirmation_again(registration: Registration) -> bool:
    """A seat holder lost their confirmation: a fresh copy with new codes (the old ones keep
    working), at most once an hour. False when one went within the hour."""
    key = hourly_key(f"events.confirmation_again:registration:{registration.id}")
    if already_queued(key):
        return False
    personal, attachments = _seat_mail(registration, prepare_seat_material())
    queue_email(
        key=key, to=registration.person, template="events/confirmation", purpose="events.confirmation",
        context=_seat_context(registration.event), personal=personal, attachments=attachments,
        repeatable=False,
    )
    return True


def notify_waitlisted(registration: Registration, place: int, manage_raw: str | None = None, *,
                      sector_seats: int | None = None) -> None:
    """`sector_seats`: the person's sector holds this many seats, its capped share, while
    other seats are left (the message says why they wait, not that the room is full)."""
    path = manage_path(registration, manage_raw)
    queue_email(
        key=f"events.waitlisted:registration:{registration.id}", to=registration.person,
        template="events/waitlisted", purpose="events.waitlisted",
        context={**_seat_context(registration.event), "sector_seats": sector_seats},
        personal={"manage_path": path, "waitlist_place": str(place)}, repeatable=False,
    )


def notify_promoted(registration: Registration) -> None:
    """A seat opened up for someone on the waitlist: they now hold it."""
    personal, attachments = _seat_mail(registration, prepare_seat_material())
    queue_email(
        key=f"events.promoted:registration:{registration.id}", to=registration.person,
        template="events/promoted", purpose="events.promoted",
        context=_seat_context(registration.event), personal=personal, attachments=attachments,
    )


def notify_manage_link(registration: Registration) -> None:
    """Someone registered again with this address: send the owner a fresh manage link."""
    # At most one such message per registration and hour, so nobody can flood an inbox
    # by registering someone else's address over and over.
    key = hourly_key(f"events.manage_link:registration:{registration.id}")
    if already_queued(key):
        return
    path = manage_path(registration)
    queue_email(
        key=key,
        to=registration.person, template="events/manage_link", purpose="events.manage_link",
        context=_base_context(registration, path),
    )


def _cancellation_attachment(registration: Registration) -> Attachment:
    """The calendar file that takes the event out of the person's calendar again."""
    person = registration.person
    event = registration.event
    return Attachment(f"{event.slug[:60]}.ics", "text/calendar; charset=utf-8; method=CANCEL",
                      cancellation_calendar_file(event, person.language or "en", person.email))


def notify_registration_cancelled(registration: Registration, *, held_seat: bool = False,
                                  moved_to: Event | None = None) -> None:
    """Their registration is cancelled (by them or by the organizers, or moved by the
    organizers to the event `moved_to`, whose own confirmation follows). `held_seat`: they had
    the confirmation's calendar file, so a cancellation of that entry comes along."""
    if registration.person is None:
        return
    queue_email(
        key=f"events.cancelled:registration:{registration.id}:{registration.cancelled_at.isoformat()}",
        to=registration.person, template="events/cancelled", purpose="events.cancelled",
        context={**_base_context(registration, path_for("events.detail", slug=registration.event.slug)),
                 "calendar_attached": held_seat, "moved_to": moved_to},
        attachments=[_cancellation_attachment(registration)] if held_seat else None,
    )


def notify_event_changed(registration: Registration) -> None:
    """The event's time or place changed: say so, with the new details and, to those who hold
    a seat, a calendar file that replaces the entry (same UID, higher SEQUENCE)."""
    if registration.person is None:
        return
    event = registration.event
    attachments = [_calendar_attachment(registration)] if registration.status == "confirmed" else []
    queue_email(
        key=f"events.changed:registration:{registration.id}:{event.schedule_version}", to=registration.person,
        template="events/changed", purpose="events.changed",
        context=_base_context(registration, manage_path(registration)), attachments=attachments,
    )


def notify_event_cancelled(registration: Registration, *, held_seat: bool = False) -> None:
    """The event is cancelled; to those who held a seat (and so the calendar file), with the
    cancellation of that calendar entry."""
    if registration.person is None:
        return
    queue_email(
        key=f"events.event_cancelled:registration:{registration.id}", to=registration.person,
        template="events/event_cancelled", purpose="events.event_cancelled",
        context={**_base_context(registration, ""), "calendar_attached": held_seat},
        attachments=[_cancellation_attachment(registration)] if held_seat else None,
    )


def notify_reminder(registration: Registration) -> None:
    """A few days before: what, when, where, and a check-in code (with its QR code) for the
    door, so someone who lost the confirmation still has one. The confirmation's code keeps
    working (only hashes are kept, so this is a second code for the same seat)."""
    path = manage_path(registration)
    check_in_raw = new_raw_token()
    _store_tokens(registration, (CHECK_IN_PURPOSE, check_in_raw, _check_in_lifetime(registration.event)))
    queue_email(
        # Per schedule: an event moved later is reminded of again before its new day.
        key=f"events.reminder:registration:{registration.id}:{registration.event.schedule_version}",
        to=registration.person,
        template="events/reminder", purpose="events.reminder",
        context={**_base_context(registration, path), "check_in_code": check_in_raw},
        attachments=[_check_in_attachment(check_in_raw)],
    )


def attendee_message_preview(event: Event, language: str, subject: str, body: str,
                             written_in: str = "") -> tuple[str, str]:
    """An organizer's message as a person reading `language` gets it (subject, text), with
    stand-ins for their name and manage link."""
    with force_locale(language):
        stand_in = SimpleNamespace(name=gettext("[their name]"))
    manage = path_for("events.manage", token="THEIR-OWN-LINK")
    subject, text, _html = render_email(
        "events/message", language, event=event, registration=None, recipient=stand_in,
        manage_path=manage, event_path=path_for("events.detail", slug=event.slug), waitlist_place=None,
        message_subject=subject, message_body=body, message_language=written_in or language)
    return subject, text


def notify_attendee_messages(messages: list[tuple[Registration, str, str, str]], batch: str, *,
                             chunk: int = 200) -> int:
    """An organizer's message about the event to each (registration, subject, body, written
    in) at once (transactional: facts about their registration). `written in`: the language
    of the organizer's words (English for a French reader when no French was written),
    marked on them in the HTML for screen readers. Each gets their own manage link. A chunk
    of people at a time: its links in one statement, its messages in another
    (mail.queue_emails), then on to the next, so an event of ten thousand is queued well
    within a request and its rendered messages never all sit in memory at once. Returns how
    many were queued."""
    if not messages:
        return 0
    event = messages[0][0].event
    shared = _seat_context(event)
    lifetime = _token_lifetime(event)
    queued = 0
    for start in range(0, len(messages), chunk):
        moment = now()
        links: list[dict] = []
        outgoing: list[dict] = []
        for registration, subject, body, written_in in messages[start:start + chunk]:
            raw = new_raw_token()
            links.append(dict(token_hash=hash_token(raw), purpose=MANAGE_PURPOSE, person_id=registration.person_id,
                              subject_id=registration.id, expires_at=moment + lifetime, use_count=0,
                              created_at=moment))
            outgoing.append(dict(
                key=f"events.message:{batch}:registration:{registration.id}", to=registration.person,
                template="events/message", purpose="events.message",
                context=shared | {"message_subject": subject, "message_body": body,
                                  "message_language": written_in or registration.person.language or "en"},
                personal={"manage_path": path_for("events.manage", token=raw)},
            ))
        db.session.connection().execute(_INSERT_TOKEN, links)
        queued += queue_emails(outgoing, chunk=chunk)
    return queued
