"""Events and registrations: seats, the waitlist, the sector cap, check-in and exports.

Every change to who holds a seat starts by locking the event row (`lock_event`), then counts,
then writes, in one transaction: PostgreSQL serializes on `SELECT ... FOR UPDATE`; SQLite
already holds its single write lock because the transaction began with BEGIN IMMEDIATE
(requests that POST, and `portal.core.db.writing()` elsewhere). A partial unique index on
(event, person) for active registrations backs "one person, one place", and a unique
(event, waitlist ticket) keeps the line unambiguous.
"""
from __future__ import annotations

import hashlib
import io
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import contains_eager, joinedload, raiseload
from sqlalchemy.orm.attributes import set_committed_value

from portal.auth.models import OrganizerAccount, Role
from portal.core.audit import record_audit
from portal.core.clock import now
from portal.core.db import fold, folded, insert_row, locked, unique_or
from portal.core.kept import forget, kept
from portal.core.spreadsheets import csv_chunks, xlsx_row
from portal.core.formatting import in_language, zone_time
from portal.core.errors import Busy, DomainError, InvalidToken, NotFound
from portal.core.tokens import AccessToken, hash_token, resolve_token, revoke_tokens
from portal.events import notifications
from portal.events.models import (
    Event,
    EventOrganizer,
    EventQuestion,
    EventStatus,
    QuestionKind,
    Registration,
    RegistrationStatus,
    registration_window_open,
    seats_per_sector,
)
from portal.extensions import db
from portal.mail.models import OutboxMessage, OutboxState
from portal.mail.services import queued_under
from portal.people.models import Person, Sector
from portal.people.services import (
    correct_details,
    fill_blanks,
    insert_person,
    list_sectors,
    normalize_email,
    person_with_address,
)

#: What the opt-in box says, word for word, and its version (CASL evidence).
ANNOUNCEMENTS_PURPOSE = "list:symposium-announcements"
ANNOUNCEMENTS_WORDING_VERSION = "events-announcements-2026-01"
ANNOUNCEMENTS_WORDING = _l(
    "Yes, send me announcements of future symposiums and events from the Ontario Working "
    "Group on Collaborative Risk-driven Community Safety. I can unsubscribe at any time "
    "with the link in every message or by writing to the contact address below."
)


class RegistrationClosed(DomainError):
    message = _l("Registration for this event is not open.")
    status = 409


class NotTakingRegistrations(DomainError):
    """An organizer adding someone: the event is a draft, cancelled or over."""

    message = _l("People can be added only to a published or closed event that has not ended.")
    status = 409


class NotWaiting(DomainError):
    message = _l("This person is not on the waitlist.")
    status = 409


class NoSeatFree(DomainError):
    message = _l("Every seat is taken: free one first (cancel a registration or add seats).")
    status = 409


class AlreadyRegistered(DomainError):
    """An organizer adding someone whose address already holds a seat or a place in line."""

    message = _l("This address already holds a registration for this event: find it in the attendee list.")
    status = 409
    field = "email"


class NoSeatToConfirm(DomainError):
    message = _l("Only a confirmed seat has a confirmation to send.")
    status = 409


class CheckedInAlready(DomainError):
    message = _l("You are checked in at the event: to give up your seat now, speak to the organizers.")
    status = 409


class NotCheckedIn(DomainError):
    message = _l("This person is not checked in.")
    status = 409


class DeadCheckInCode(DomainError):
    """A code of this event's that admits no one now; the message names whose it was."""

    status = 409

    def __init__(self, registration: Registration) -> None:
        name = registration.person.name if registration.person else ""
        if registration.status == RegistrationStatus.CANCELLED:
            message = _l("This code was %(name)s's: their registration was cancelled.", name=name)
        elif registration.status == RegistrationStatus.WAITLISTED:
            message = _l("This code is %(name)s's, who is on the waitlist and holds no seat.", name=name)
        else:
            message = _l("This is an old code of %(name)s's that was replaced: find them by name.", name=name)
        super().__init__(message)


class RegistrationAnonymized(DomainError):
    message = _l("This registration was anonymized: no details of the person are left to correct.")
    status = 409


class RegistrationNotActive(DomainError):
    message = _l("This registration has already been cancelled.")
    status = 409


class MessageAlreadySent(DomainError):
    message = _l("This message was already sent. To send another, open the form again.")
    status = 409


class SlugTaken(DomainError):
    message = _l("Another event already uses this web address. Choose a different one.")
    status = 409
    field = "slug"


class DraftWithRegistrations(DomainError):
    message = _l("People have registered for this event, so it cannot go back to being a draft: close "
                 "registration instead, or cancel the event (which emails everyone).")
    status = 409
    field = "status"


class EditedMeanwhile(DomainError):
    message = _l("Someone else saved changes to this event after you opened this page, so yours were not "
                 "saved. Open the event again to see theirs, then make your changes.")
    status = 409


class EventNotEditable(DomainError):
    message = _l("This event was cancelled and can no longer be changed.")
    status = 409


class CapacityBelowConfirmed(DomainError):
    message = _l("More people already hold a seat than this. Cancel registrations first, or keep "
                 "at least as many seats as there are confirmed attendees.")
    status = 409
    field = "capacity"


class SectorOverCap(DomainError):
    message = _l("One sector already holds more seats than this share would allow. Choose a larger "
                 "share, or cancel registrations first.")
    status = 409
    field = "sector_cap_percent"


class FewerSeatsThanSectorHolds(SectorOverCap):
    """The share is unchanged, but fewer seats would leave a sector over it."""

    message = _l("One sector already holds more seats than its share of this many seats would allow. "
                 "Keep more seats, or cancel registrations first.")
    status = 409
    field = "capacity"


class NotCheckable(DomainError):
    message = _l("Only confirmed attendees can be checked in.")
    status = 409


class UnknownSector(DomainError):
    message = _l("Choose your sector from the list.")
    status = 400


class EndsBeforeItStarts(DomainError):
    message = _l("The event must end after it starts.")
    status = 400
    field = "ends_at"


class AlreadyOver(DomainError):
    message = _l("This end is already past: no one could register. Enter when the event will end.")
    status = 400
    field = "ends_at"


class ClosesBeforeItOpens(DomainError):
    message = _l("Registration must close after it opens.")
    status = 400
    field = "registration_closes_at"


class ClosesAfterItEnds(DomainError):
    message = _l("Registration must close by the time the event ends.")
    status = 400
    field = "registration_closes_at"


class OpensAfterItEnds(DomainError):
    message = _l("Registration must open before the event ends.")
    status = 400
    field = "registration_opens_at"


class EventIsOver(DomainError):
    message = _l("This event is over.")
    status = 409


class CannotMoveThere(DomainError):
    message = _l("That event is not taking registrations: choose another.")
    status = 409
    field = "event"


class CheckedInCannotMove(DomainError):
    message = _l("They are checked in at this event, so they cannot be moved to another.")
    status = 409


class FormChanged(DomainError):
    message = _l("The organizers changed this registration form while you were filling it in. "
                 "Check your answers and send it again.")
    status = 409


# --- locking and counting -------------------------------------------------------------


# The statements of the registration path, built once (SQLAlchemy then reuses their compiled
# form instead of constructing and hashing a new statement on every registration).
#: With its questions in the same query: the registration form needs them, and a lazy load
#: afterwards cost a second statement and ~0.4 ms of ORM work per registration.
_EVENT_BY_SLUG = select(Event).where(Event.slug == bindparam("slug")).options(joinedload(Event.questions))
_EVENT_FOR_UPDATE = (
    select(Event).where(Event.id == bindparam("event_id")).with_for_update()
    .execution_options(populate_existing=True)
)
_ACTIVE_REGISTRATION = select(Registration).where(
    Registration.event_id == bindparam("event_id"), Registration.person_id == bindparam("person_id"),
    Registration.status.in_(RegistrationStatus.active()),
)
_CONFIRMED_BY_SECTOR = (
    select(Registration.sector_id, func.count())
    .where(Registration.event_id == bindparam("event_id"),
           Registration.status == RegistrationStatus.CONFIRMED.value)
    .group_by(Registration.sector_id)
)
#: The last waitlist ticket handed out, and how many people are waiting now.
_WAITLIST_TAIL = select(
    func.max(Registration.waitlist_position),
    func.count().filter(Registration.status == RegistrationStatus.WAITLISTED.value),
).where(Registration.event_id == bindparam("event_id"))


def lock_event(event_id: int) -> Event:
    """Take the event's row lock for the rest of the transaction and return it, fresh.

    PostgreSQL waits at most DATABASE_LOCK_TIMEOUT_MS (10 seconds; the connections'
    lock_timeout, set in create_app) for the lock, then the person is asked to try again.
    """
    try:
        event = db.session.execute(_EVENT_FOR_UPDATE, {"event_id": event_id}).scalar_one_or_none()
    except OperationalError as error:
        db.session.rollback()
        raise Busy() from error
    if event is None:
        raise NotFound()
    return event


def confirmed_by_sector(event_id: int) -> Counter[int | None]:
    """Confirmed seats per sector id, in one query."""
    rows = db.session.execute(_CONFIRMED_BY_SECTOR, {"event_id": event_id}).all()
    return Counter({sector_id: count for sector_id, count in rows})


def seat_counts(event: Event) -> dict[str, int]:
    """Confirmed, waitlisted and seats left (for the public page and the dashboard)."""
    rows = dict(db.session.execute(
        select(Registration.status, func.count())
        .where(Registration.event_id == event.id).group_by(Registration.status)
    ).all())
    confirmed = rows.get(RegistrationStatus.CONFIRMED.value, 0)
    return {
        "confirmed": confirmed,
        "waitlisted": rows.get(RegistrationStatus.WAITLISTED.value, 0),
        "cancelled": rows.get(RegistrationStatus.CANCELLED.value, 0),
        "seats_left": max(event.capacity - confirmed, 0),
    }


def waitlist_place(registration: Registration) -> int | None:
    """1 for the next person in line; None when not waitlisted."""
    if registration.status != RegistrationStatus.WAITLISTED:
        return None
    return db.session.execute(
        select(func.count()).where(
            Registration.event_id == registration.event_id,
            Registration.status == RegistrationStatus.WAITLISTED.value,
            Registration.waitlist_position <= registration.waitlist_position,
        )
    ).scalar_one()


def waitlist_places(event: Event, registrations: Iterable[Registration]) -> dict[int, int]:
    """Place in line (1 = next) of each waitlisted registration among `registrations`, by id:
    the number the person was told, not their ticket (tickets of people who left stay
    unused). One query, whatever the number of registrations."""
    tickets = {r.id: r.waitlist_position for r in registrations
               if r.status == RegistrationStatus.WAITLISTED and r.waitlist_position is not None}
    if not tickets:
        return {}
    waiting = list(db.session.execute(
        select(Registration.waitlist_position)
        .where(Registration.event_id == event.id, Registration.status == RegistrationStatus.WAITLISTED.value,
               Registration.waitlist_position <= max(tickets.values()))
        .order_by(Registration.waitlist_position)
    ).scalars())
    return {registration_id: bisect_right(waiting, ticket) for registration_id, ticket in tickets.items()}


def _has_room(event: Event, counts: Counter[int | None], sector_id: int | None) -> bool:
    if sum(counts.values()) >= event.capacity:
        return False
    cap = event.seat_cap_per_sector
    return cap is None or counts[sector_id] < cap


def _seats_still_move(event: Event) -> bool:
    """Seats may still change hands: the event is published or closed (a closed registration
    still moves its waitlist) and not over; not a draft, not cancelled."""
    return event.status in (EventStatus.PUBLISHED, EventStatus.CLOSED) and not event.is_over


def promote_from_waitlist(event: Event) -> list[Registration]:
    """Fill free seats from the waitlist, first come first served, skipping anyone whose
    sector is at its cap. The caller holds the event lock. Each promoted person is emailed."""
    if not _seats_still_move(event):
        return []
    counts = confirmed_by_sector(event.id)
    if sum(counts.values()) >= event.capacity:
        return []
    waiting = db.session.execute(
        select(Registration)
        .where(Registration.event_id == event.id,
               Registration.status == RegistrationStatus.WAITLISTED.value)
        .order_by(Registration.waitlist_position)
        .with_for_update().execution_options(populate_existing=True)
    ).scalars()
    promoted: list[Registration] = []
    moment = now()
    for registration in waiting:
        if sum(counts.values()) >= event.capacity:
            break
        if not _has_room(event, counts, registration.sector_id):
            continue
        registration.status = RegistrationStatus.CONFIRMED.value
        registration.confirmed_at = moment
        registration.promoted_at = moment
        counts[registration.sector_id] += 1
        promoted.append(registration)
    db.session.flush()
    for registration in promoted:
        notifications.notify_promoted(registration)
    return promoted


# --- registering ----------------------------------------------------------------------


@dataclass
class RegistrationDetails:
    """What a person tells us on the registration form."""

    email: str
    name: str
    organization: str
    sector_slug: str
    community: str
    job_title: str = ""
    accessibility_needs: str = ""
    dietary_needs: str = ""
    answers: dict[str, Any] = field(default_factory=dict)
    announcements: bool = False
    language: str = "en"
    ip: str = ""
    user_agent: str = ""


@dataclass
class RegistrationOutcome:
    registration: Registration
    #: False when the address already held an active registration (nothing changed).
    created: bool
    #: Place in line (1 = next) when waitlisted.
    place: int | None = None
    #: Waitlisted although seats were left: their sector holds its capped share.
    sector_full: bool = False
    #: The address was known to the portal and what was typed changed nothing saved for it
    #: (blanks in its record are filled in; nothing saved is overwritten).
    saved_details_kept: bool = False
    #: They ticked the announcements box and were emailed a link to confirm it.
    announcements_to_confirm: bool = False


def find_sector_id(slug: str) -> int:
    """The id of the sector with this slug, among those the form offered (`list_sectors`,
    read once per worker, so no query here)."""
    sector_id = next((sector.id for sector in list_sectors() if sector.slug == slug), None)
    if sector_id is None:
        raise UnknownSector()
    return sector_id


def active_registration(event_id: int, person_id: int) -> Registration | None:
    return db.session.execute(
        _ACTIVE_REGISTRATION, {"event_id": event_id, "person_id": person_id}
    ).scalar_one_or_none()


def register_for_event(
    event_id: int, details: RegistrationDetails, material: notifications.SeatMaterial | None = None,
    *, form_version: int | None = None, added_by: Any = None, origin: str = "",
) -> RegistrationOutcome:
    """Give the person a seat, or a place on the waitlist, and queue the email that says so.

    Guarantees, whatever the concurrency: confirmed registrations never exceed capacity; a
    sector never holds more than its capped share of seats; waitlist tickets are distinct and
    in order of arrival; an address with an active registration never gets a second one
    (it is sent a fresh manage link instead, and nothing else changes).
    `material` (from `prepare_seat_material`, drawn before the transaction) keeps drawing
    the tokens out of the seat lock. `form_version`, the event's `questions_version` the
    answers were checked against, refuses answers to questions that have since changed.
    `added_by`, an organizer registering someone (by phone, a speaker): the registration
    window does not apply (the event must still be published or closed and not over), the
    seat rules do; an address already registered is refused (AlreadyRegistered) rather than
    sent a manage link, and the addition is audited.
    Raises RegistrationClosed, FormChanged, UnknownSector, InvalidEmail, NotFound, Busy,
    NotTakingRegistrations, AlreadyRegistered.
    """
    address = normalize_email(details.email)
    if material is None:
        material = notifications.prepare_seat_material()
    sector_id = find_sector_id(details.sector_slug)

    # Who they are is settled before the seat lock: it does not depend on seats.
    about = dict(name=details.name.strip(), organization=details.organization.strip(),
                 sector_id=sector_id, community=details.community.strip(),
                 job_title=details.job_title.strip(), language=details.language)
    # Most registrants are new to the portal: try the insert first (one statement for them).
    person = insert_person(address, **about)
    created = person is not None
    details_kept = False
    if person is None:
        person = person_with_address(address)
        if active_registration(event_id, person.id) is None:
            # Only what the typed details said differently was left as saved.
            filled = fill_blanks(person, **about)
            details_kept = any(value not in (None, "") and getattr(person, name) != value
                               for name, value in about.items() if name not in filled)

    event = lock_event(event_id)
    if added_by is not None:
        if not _seats_still_move(event):
            raise NotTakingRegistrations()
    elif not event.registration_is_open(now()):
        raise RegistrationClosed()
    if form_version is not None and event.questions_version != form_version:
        raise FormChanged()
    # Someone added by this very transaction cannot hold a registration yet.
    existing = None if created else active_registration(event.id, person.id)
    if existing is not None:
        if added_by is not None:
            raise AlreadyRegistered()
        # Change nothing a stranger typed; only the owner of the address hears about it.
        notifications.notify_manage_link(existing)
        return RegistrationOutcome(existing, created=False, place=waitlist_place(existing))

    counts = confirmed_by_sector(event.id)
    values = _new_registration_values(event, person.id, sector_id, answers=details.answers,
                                      accessibility_needs=details.accessibility_needs.strip(),
                                      dietary_needs=details.dietary_needs.strip())
    place, sector_full = _seat_or_end_of_line(event, counts, sector_id, values)
    registration = insert_row(Registration, values)
    # Known already: attached as loaded, so nothing is written or read back for them.
    set_committed_value(registration, "event", event)
    set_committed_value(registration, "person", person)

    asked_to_confirm = bool(details.announcements) and _ask_for_announcements(person, event.slug, details)

    if added_by is not None:
        record_audit("events.registration.added", actor=added_by, subject=f"registration:{registration.id}",
                     origin=origin, status=registration.status)
    if registration.status == RegistrationStatus.CONFIRMED:
        notifications.notify_registration_confirmed(registration, material)
    else:
        notifications.notify_waitlisted(registration, place or 0, material.manage_raw,
                                        sector_seats=event.seat_cap_per_sector if sector_full else None)
    return RegistrationOutcome(registration, created=True, place=place, sector_full=sector_full,
                               saved_details_kept=details_kept, announcements_to_confirm=asked_to_confirm)


def _new_registration_values(event: Event, person_id: int, sector_id: int | None, *, accessibility_needs: str,
                             dietary_needs: str, answers: dict[str, Any]) -> dict[str, Any]:
    """Every column of a new registration holding a seat (`_seat_or_end_of_line` may make it
    a place in line): inserted as one statement, nothing left to defaults or read back."""
    moment = now()
    return dict(
        event_id=event.id, person_id=person_id, sector_id=sector_id, accessibility_needs=accessibility_needs,
        dietary_needs=dietary_needs, answers=answers,
        status=RegistrationStatus.CONFIRMED.value, waitlist_position=None, confirmed_at=moment,
        promoted_at=None, cancelled_at=None, cancelled_by="", moved_to_id=None, checked_in_at=None,
        checked_in_by_id=None, reminder_sent_at=None, created_at=moment,
    )


def _seat_or_end_of_line(event: Event, counts: Counter[int | None], sector_id: int | None,
                         values: dict[str, Any]) -> tuple[int | None, bool]:
    """Under the event's lock: a seat, if one is free within the sector's share (`values`
    unchanged), or the next waitlist ticket (`values` made a waiting registration). Returns
    the place in line (None with a seat) and whether seats were left but not for this sector."""
    if _has_room(event, counts, sector_id):
        return None, False
    last_ticket, waiting = db.session.execute(_WAITLIST_TAIL, {"event_id": event.id}).one()
    values.update(status=RegistrationStatus.WAITLISTED.value, confirmed_at=None,
                  waitlist_position=(last_ticket or 0) + 1)
    return waiting + 1, sum(counts.values()) < event.capacity


def _ask_for_announcements(person: Person, slug: str, details: RegistrationDetails) -> bool:
    """The person ticked the announcements box: the announcements list (when it exists) asks
    the address to confirm, as its own form does (double opt-in). Registering proves nothing
    about the address, so nobody can put someone else's on the list; the consent, with the
    wording they ticked, is recorded when they confirm. Returns whether they were asked."""
    # Imported here: lists imports people and mail, and events must not pull lists in at import.
    from portal.lists.models import MailingList
    from portal.lists.services import RateLimited, request_subscription

    mailing_list = db.session.execute(
        select(MailingList).where(MailingList.slug == ANNOUNCEMENTS_PURPOSE.removeprefix("list:"))
    ).scalar_one_or_none()
    if mailing_list is None or not mailing_list.is_public:
        return False
    try:
        request_subscription(
            mailing_list, person.email, person.name, details.language, str(ANNOUNCEMENTS_WORDING),
            ANNOUNCEMENTS_WORDING_VERSION, details.ip, details.user_agent, shown_in=details.language,
            source=f"events.registration:{slug}")
    except RateLimited:
        return False  # the address was asked to confirm several times this hour already: enough
    return True


def registration_for_manage_token(raw: str | None) -> Registration:
    """The registration a manage link acts on; InvalidToken for anything else."""
    token = resolve_token(notifications.MANAGE_PURPOSE, raw)
    registration = db.session.get(Registration, token.subject_id) if token.subject_id else None
    if registration is None or registration.person_id is None or registration.person_id != token.person_id:
        raise InvalidToken()
    return registration


def cancel_registration(
    registration: Registration, *, by: str = "registrant", actor: Any = None, origin: str = ""
) -> list[Registration]:
    """Give the seat (or place in line) back and, in the same transaction, promote the first
    eligible people on the waitlist. Returns who was promoted. Cancelling twice raises
    RegistrationNotActive, so two simultaneous cancellations free one seat, not two; a
    registrant already checked in cannot cancel (CheckedInAlready), organizers can."""
    event = lock_event(registration.event_id)
    registration = db.session.execute(
        select(Registration).where(Registration.id == registration.id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if registration.status == RegistrationStatus.CANCELLED:
        raise RegistrationNotActive()
    if by == "registrant" and registration.checked_in_at is not None:
        # They are at the event: a seat given up now would go to someone who is not.
        raise CheckedInAlready()
    if by == "registrant" and event.is_over:
        # A seat freed after the event helps no one, and would email a 'promotion' to it.
        raise EventIsOver(_l("This event is over: there is nothing left to cancel."))
    held_seat = registration.status == RegistrationStatus.CONFIRMED
    registration.status = RegistrationStatus.CANCELLED.value
    registration.cancelled_at = now()
    registration.cancelled_by = by
    revoke_tokens(notifications.CHECK_IN_PURPOSE, subject_id=registration.id)
    db.session.flush()
    if actor is not None:
        record_audit("events.registration.cancelled", actor=actor,
                     subject=f"registration:{registration.id}", origin=origin)
    notifications.notify_registration_cancelled(registration, held_seat=held_seat)
    return promote_from_waitlist(event) if held_seat else []


def give_seat_by_hand(registration: Registration, *, actor: Any, origin: str = "") -> Registration:
    """An organizer gives a waitlisted person a free seat, even beyond their sector's capped
    share (pretix's "assign from the waiting list by hand"): the waitlist fills free seats
    by itself, so a seat stays free only while everyone waiting is held back by the cap.
    Never beyond capacity; the person is emailed as when promoted, and it is audited.
    Raises NotWaiting, NoSeatFree, NotTakingRegistrations."""
    event = lock_event(registration.event_id)
    registration = db.session.execute(
        select(Registration).where(Registration.id == registration.id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if registration.status != RegistrationStatus.WAITLISTED:
        raise NotWaiting()
    if not _seats_still_move(event):
        raise NotTakingRegistrations()
    counts = confirmed_by_sector(event.id)
    if sum(counts.values()) >= event.capacity:
        raise NoSeatFree()
    moment = now()
    registration.status = RegistrationStatus.CONFIRMED.value
    registration.confirmed_at = moment
    registration.promoted_at = moment
    db.session.flush()
    record_audit("events.registration.given_seat", actor=actor, subject=f"registration:{registration.id}",
                 origin=origin, beyond_sector_share=not _has_room(event, counts, registration.sector_id))
    notifications.notify_promoted(registration)
    return registration


@dataclass
class MoveOutcome:
    #: Their registration for the event they were moved to.
    registration: Registration
    #: Place in line there (1 = next) when it had no seat for them.
    place: int | None
    #: Who took the seat they gave up.
    promoted: list[Registration]


def events_to_move_to(registration: Registration, account: Any) -> list[Event]:
    """Where an organizer may move someone: the other events they run that still take people
    (published or closed, not over), soonest first."""
    query = (select(Event).where(Event.id != registration.event_id,
                                 Event.status.in_([EventStatus.PUBLISHED.value, EventStatus.CLOSED.value]),
                                 Event.ends_at > now())
             .order_by(Event.starts_at, Event.id))
    runs = events_run_by(account)
    if runs is not None:
        query = query.where(Event.id.in_(runs or {0}))
    return list(db.session.execute(query).scalars())


def move_registration(registration: Registration, target_event_id: int, *, actor: Any,
                      origin: str = "") -> MoveOutcome:
    """Move someone to another event (the wrong day chosen, a session swapped), as pretix
    moves an order to another date: under both events' locks (taken in id order, so two
    moves crossing each other never deadlock), they get a seat there if one is free within
    their sector's share, otherwise the end of its waitlist; their registration here is
    cancelled ('moved') and its seat goes to the next person waiting, in the same
    transaction. Their needs go with them; their answers stay with this event's questions.
    They are emailed the cancellation (with the calendar entry's removal) and the new
    confirmation or place in line. Audited. Raises CannotMoveThere, AlreadyRegistered,
    RegistrationNotActive, RegistrationAnonymized, CheckedInCannotMove, EventIsOver, Busy."""
    if target_event_id == registration.event_id:
        raise CannotMoveThere()
    events_locked = {event_id: lock_event(event_id) for event_id in sorted((registration.event_id, target_event_id))}
    source, target = events_locked[registration.event_id], events_locked[target_event_id]
    registration = locked(registration)
    if registration.status == RegistrationStatus.CANCELLED:
        raise RegistrationNotActive()
    if registration.person_id is None:
        raise RegistrationAnonymized()
    if registration.checked_in_at is not None:
        raise CheckedInCannotMove()
    if source.is_over:
        raise EventIsOver()
    if not _seats_still_move(target):
        raise CannotMoveThere()
    if active_registration(target.id, registration.person_id) is not None:
        raise AlreadyRegistered()
    values = _new_registration_values(target, registration.person_id, registration.sector_id, answers={},
                                      accessibility_needs=registration.accessibility_needs,
                                      dietary_needs=registration.dietary_needs)
    place, sector_full = _seat_or_end_of_line(target, confirmed_by_sector(target.id), registration.sector_id, values)
    moved = insert_row(Registration, values)
    set_committed_value(moved, "event", target)
    set_committed_value(moved, "person", registration.person)
    held_seat = registration.status == RegistrationStatus.CONFIRMED
    registration.status = RegistrationStatus.CANCELLED.value
    registration.cancelled_at = values["created_at"]
    registration.cancelled_by = "moved"
    registration.moved_to_id = moved.id
    revoke_tokens(notifications.CHECK_IN_PURPOSE, subject_id=registration.id)
    db.session.flush()
    record_audit("events.registration.moved", actor=actor, subject=f"registration:{registration.id}",
                 origin=origin, to=f"registration:{moved.id}", event=target.id, status=moved.status)
    notifications.notify_registration_cancelled(registration, held_seat=held_seat, moved_to=target)
    material = notifications.prepare_seat_material()
    if moved.status == RegistrationStatus.CONFIRMED:
        notifications.notify_registration_confirmed(moved, material)
    else:
        notifications.notify_waitlisted(moved, place or 0, material.manage_raw,
                                        sector_seats=target.seat_cap_per_sector if sector_full else None)
    promoted = promote_from_waitlist(source) if held_seat else []
    return MoveOutcome(moved, place, promoted)


def send_confirmation_again(registration: Registration) -> bool:
    """Email a seat holder their confirmation again, with fresh check-in and manage codes
    and the calendar file (for someone who lost the first one); at most once an hour.
    Returns False when one already went this hour. Raises NoSeatToConfirm."""
    if registration.status != RegistrationStatus.CONFIRMED or registration.person is None:
        raise NoSeatToConfirm()
    if registration.event.is_over:
        raise EventIsOver()  # new codes for a door that has closed
    return notifications.notify_confirmation_again(registration)


def update_needs(
    registration: Registration, *, accessibility_needs: str, dietary_needs: str,
    actor: Any = None, origin: str = "",
) -> Registration:
    """Replace the person's accessibility and dietary needs (only while registered, and,
    for the registrant, before the event is over)."""
    registration = locked(registration)  # a cancellation under way is seen, not written over
    if registration.status == RegistrationStatus.CANCELLED:
        raise RegistrationNotActive()
    if actor is None and registration.event.is_over:
        raise EventIsOver()
    registration.accessibility_needs = accessibility_needs.strip()
    registration.dietary_needs = dietary_needs.strip()
    if actor is not None:
        record_audit("events.registration.edited", actor=actor,
                     subject=f"registration:{registration.id}", origin=origin)
    db.session.flush()
    return registration


@dataclass
class DetailsCorrection:
    #: The person's details that changed (name, organization, sector_id, ...).
    changed: list[str]
    #: People promoted from the waitlist because the change left a sector room under the cap.
    promoted: list[Registration]
    #: A seat holder moved into a sector that now holds more than its capped share.
    beyond_sector_share: bool = False


def correct_attendee_details(
    registration: Registration, *, name: str, organization: str, sector_slug: str, community: str,
    job_title: str, actor: Any, origin: str = "",
) -> DetailsCorrection:
    """An organizer corrects what a registrant typed: a misspelt name for the badge, the
    wrong organization or sector. It is the person's record that is corrected (the same
    person wherever they appear in the portal), and the registration's sector follows it.

    A seat holder's new sector is a fact, not a new seat: it is kept even where that sector
    then holds more than its capped share (said in the outcome and the audit log), and the
    sector they leave may have room again, so the waitlist is looked at, under the event's
    lock. Raises RegistrationAnonymized, UnknownSector."""
    person = registration.person
    if person is None:
        raise RegistrationAnonymized()
    sector_id = find_sector_id(sector_slug)
    event = None
    if registration.sector_id != sector_id and registration.status != RegistrationStatus.CANCELLED:
        # Who holds a seat, and in which sector, is read and changed under the seat lock.
        event = lock_event(registration.event_id)
        registration = db.session.execute(
            select(Registration).where(Registration.id == registration.id).with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
    changed = correct_details(person, actor=actor, origin=origin, name=name.strip(),
                              organization=organization.strip(), sector_id=sector_id,
                              community=community.strip(), job_title=job_title.strip())
    outcome = DetailsCorrection(changed=changed, promoted=[])
    if registration.sector_id == sector_id:
        return outcome
    holds_seat = registration.status == RegistrationStatus.CONFIRMED
    registration.sector_id = sector_id
    if "sector_id" not in changed:  # their record said so already; the registration did not
        changed.append("sector_id")
    db.session.flush()
    if event is not None and event.seat_cap_per_sector is not None:
        # A seat holder leaves room in their old sector; someone waiting may now be in a
        # sector with room: either way the free seats may go to someone in line.
        if holds_seat:
            counts = confirmed_by_sector(event.id)
            outcome.beyond_sector_share = counts[sector_id] > event.seat_cap_per_sector
        outcome.promoted = promote_from_waitlist(event)
    record_audit("events.registration.edited", actor=actor, subject=f"registration:{registration.id}",
                 origin=origin, sector_changed=True, beyond_sector_share=outcome.beyond_sector_share)
    return outcome


# --- organizers: events and questions -------------------------------------------------

EVENT_FIELDS = (
    "slug", "title", "summary", "description", "starts_at", "ends_at", "timezone",
    "venue_name", "venue_address", "venue_accessibility", "capacity", "sector_cap_percent",
    "registration_opens_at", "registration_closes_at", "reminder_days", "retention_days",
    "title_fr", "summary_fr", "description_fr", "venue_accessibility_fr",
)


#: What registrants are told about when it changes (and their calendars updated).
SCHEDULE_FIELDS = ("starts_at", "ends_at", "timezone", "venue_name", "venue_address")


def _changed(new: Any, old: Any) -> bool:
    """Whether an organizer changed this value; times count to the minute, as the form keeps
    them (an event stored with seconds is not 'moved' by saving its form unchanged)."""
    if isinstance(new, datetime) and isinstance(old, datetime):
        return abs(new - old) >= timedelta(minutes=1)
    return new != old


def _check_dates(values: dict[str, Any], *, new_end: bool) -> None:
    """The event ends after it starts, and registration opens before it ends and closes
    after it opens (and by its end). An end being
    set (a new event, or a changed end) must be still to come: an event that is already
    over could never take a registration. An old event can still be corrected."""
    if values["ends_at"] <= values["starts_at"]:
        raise EndsBeforeItStarts()
    if new_end and values["ends_at"] <= now():
        raise AlreadyOver()
    opens, closes = values.get("registration_opens_at"), values.get("registration_closes_at")
    if opens is not None and closes is not None and closes <= opens:
        raise ClosesBeforeItOpens()
    if closes is not None and closes > values["ends_at"]:
        raise ClosesAfterItEnds()
    if opens is not None and opens >= values["ends_at"]:
        # With no closing time the door would open on an event already over: no one could register.
        raise OpensAfterItEnds()


def create_event(*, actor: Any, origin: str = "", **values: Any) -> Event:
    """A new event, in draft until an organizer publishes it."""
    _check_dates(values, new_end=True)
    if db.session.execute(select(Event.id).where(Event.slug == values["slug"])).first():
        raise SlugTaken()
    event = Event(status=EventStatus.DRAFT.value, **{k: values[k] for k in EVENT_FIELDS if k in values})
    with unique_or(SlugTaken(), "slug"):
        db.session.add(event)
    record_audit("events.event.created", actor=actor, subject=f"event:{event.id}", origin=origin)
    if getattr(actor, "is_organizer", False):
        # Whoever creates an event runs it; they add the rest of the team.
        db.session.add(EventOrganizer(event_id=event.id, account_id=actor.id))
        db.session.flush()
    return event


# --- who runs an event -----------------------------------------------------------------


class RepeatedOption(DomainError):
    # Two identical boxes on the form, and answers no one could tell apart.
    message = _l("Each option must be different.")
    status = 400
    field = "choices_text"


class RepeatedFrenchOption(RepeatedOption):
    field = "choices_fr_text"


class FrenchChoicesMismatch(DomainError):
    message = _l("Give one French option for each English option, in the same order, or none.")
    status = 400
    field = "choices_fr_text"


class NotAnOrganizer(DomainError):
    message = _l("Choose an active organizer account.")
    status = 400


def runs_event(account: Any, event_id: int) -> bool:
    """Whether `account` is one of the organizers of this event (admins run every event).

    Only they see its attendee list, the needs people told us about, check-in, exports and
    messages, as the privacy notice promises registrants."""
    if getattr(account, "is_admin", False):
        return True
    if not getattr(account, "is_organizer", False):
        return False
    return db.session.execute(
        select(EventOrganizer.id).where(EventOrganizer.event_id == event_id,
                                        EventOrganizer.account_id == account.id)
    ).first() is not None


def events_run_by(account: Any) -> set[int] | None:
    """Ids of the events `account` organizes; None for an admin, who runs them all."""
    if getattr(account, "is_admin", False):
        return None
    return set(db.session.execute(
        select(EventOrganizer.event_id).where(EventOrganizer.account_id == account.id)).scalars())


def event_organizers(event: Event) -> list[OrganizerAccount]:
    """The accounts on this event's team, by name."""
    return list(db.session.execute(
        select(OrganizerAccount).join(EventOrganizer, EventOrganizer.account_id == OrganizerAccount.id)
        .where(EventOrganizer.event_id == event.id).order_by(OrganizerAccount.name, OrganizerAccount.email)
    ).scalars())


def organizers_to_add(event: Event) -> list[OrganizerAccount]:
    """Active organizer and admin accounts not yet on this event's team."""
    on_team = select(EventOrganizer.account_id).where(EventOrganizer.event_id == event.id)
    return list(db.session.execute(
        select(OrganizerAccount)
        .where(OrganizerAccount.active.is_(True),
               OrganizerAccount.role.in_([Role.ORGANIZER.value, Role.ADMIN.value]),
               OrganizerAccount.id.not_in(on_team))
        .order_by(OrganizerAccount.name, OrganizerAccount.email)
    ).scalars())


def add_event_organizer(event: Event, account_id: int, *, actor: Any, origin: str = "") -> OrganizerAccount:
    """Put an active organizer (or admin) account on the event's team; adding someone who is
    already on it changes nothing. Raises NotAnOrganizer for any other account."""
    account = db.session.get(OrganizerAccount, account_id)
    if account is None or not account.active or not account.is_organizer:
        raise NotAnOrganizer()
    added = insert_row(EventOrganizer, {"event_id": event.id, "account_id": account.id, "created_at": now()},
                       unless_taken=("event_id", "account_id"))
    if added is not None:
        record_audit("events.organizer.added", actor=actor, subject=f"event:{event.id}", origin=origin,
                     account=account.email)
    return account


def remove_event_organizer(event: Event, account_id: int, *, actor: Any, origin: str = "") -> None:
    """Take an account off the event's team (it keeps any other event it organizes)."""
    link = db.session.execute(
        select(EventOrganizer).where(EventOrganizer.event_id == event.id, EventOrganizer.account_id == account_id)
    ).scalar_one_or_none()
    if link is None:
        raise NotFound()
    account = db.session.get(OrganizerAccount, account_id)
    db.session.delete(link)
    db.session.flush()
    record_audit("events.organizer.removed", actor=actor, subject=f"event:{event.id}", origin=origin,
                 account=account.email if account else str(account_id))


@dataclass
class EventUpdate:
    """What saving an event's details did besides saving them."""

    #: People promoted from the waitlist by more seats or a looser sector share.
    promoted: list[Registration]
    #: People emailed the new time or place (0 when neither changed).
    told_of_move: int = 0


def edition_of(event: Event) -> str:
    """A fingerprint of the event's details as its edit form shows them. The form carries it,
    and `update_event` refuses a save made from a page opened before someone else's save."""
    details = "\x1f".join(repr(getattr(event, name)) for name in EVENT_FIELDS)
    return hashlib.sha256(details.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def update_event(event: Event, *, actor: Any, origin: str = "", seen_edition: str | None = None,
                 **values: Any) -> EventUpdate:
    """Change an event's details. More seats (or a looser sector cap) promote from the
    waitlist at once. Fewer seats never take a confirmed seat away: going below the number of
    confirmed attendees raises CapacityBelowConfirmed, and a tighter sector cap (or fewer seats
    under a cap) that one sector already exceeds raises SectorOverCap, so confirmed <= capacity
    and the cap hold at every moment. A new time or place is emailed to everyone registered.
    `seen_edition`, the `edition_of` the organizer's page showed: if the event was saved by
    someone else since, EditedMeanwhile (the whole form is written back, so theirs would
    silently be undone). Returns who was promoted and how many were told of a move."""
    event = lock_event(event.id)
    if event.status == EventStatus.CANCELLED:
        raise EventNotEditable()
    if seen_edition and seen_edition != edition_of(event):
        raise EditedMeanwhile()
    merged = {k: getattr(event, k) for k in EVENT_FIELDS} | values
    # The form keeps whole minutes: an end it sends back unchanged may differ by the seconds.
    _check_dates(merged, new_end=_changed(merged["ends_at"], event.ends_at))
    counts = confirmed_by_sector(event.id)
    if merged["capacity"] < event.capacity and merged["capacity"] < sum(counts.values()):
        raise CapacityBelowConfirmed()
    old_cap = event.seat_cap_per_sector
    new_cap = seats_per_sector(merged["sector_cap_percent"], merged["capacity"])
    if (new_cap is not None and (old_cap is None or new_cap < old_cap)
            and max(counts.values(), default=0) > new_cap):
        # Say it beside what the organizer changed: the share, or only the seats.
        if merged["sector_cap_percent"] == event.sector_cap_percent:
            raise FewerSeatsThanSectorHolds()
        raise SectorOverCap()
    if merged["slug"] != event.slug and db.session.execute(
        select(Event.id).where(Event.slug == merged["slug"], Event.id != event.id)
    ).first():
        raise SlugTaken()
    moved = any(key in values and _changed(values[key], getattr(event, key)) for key in SCHEDULE_FIELDS)
    new_start = "starts_at" in values and _changed(values["starts_at"], event.starts_at)
    with unique_or(SlugTaken(), "slug"):
        for key in EVENT_FIELDS:
            if key in values:
                setattr(event, key, values[key])
    if moved:
        event.schedule_version = (event.schedule_version or 0) + 1
        withheld = _withhold_outdated_notices(event)
        again: Any = None
        if new_start and event.starts_at - timedelta(days=event.reminder_days or 0) > now():
            # The reminder already sent was for the old day: one is due again before the new one.
            again = Registration.event_id == event.id
        elif withheld and event.starts_at > now():
            # Reminders queued but not yet sent were withheld with the old details: theirs
            # go again, with the new ones (at once, where already due).
            again = Registration.id.in_(withheld)
        if again is not None:
            db.session.execute(
                update(Registration).where(again)
                .values(reminder_sent_at=None).execution_options(synchronize_session=False))
    db.session.flush()
    record_audit("events.event.updated", actor=actor, subject=f"event:{event.id}", origin=origin)
    promoted = promote_from_waitlist(event)
    told = 0
    if moved and event.status in (EventStatus.PUBLISHED, EventStatus.CLOSED):
        # Everyone holding a seat or a place in line hears of the new time or place at once
        # (not the people just promoted: their promotion already has the new details).
        for registration in db.session.execute(
            select(Registration).where(Registration.event_id == event.id,
                                       Registration.status.in_(RegistrationStatus.active()))
        ).scalars():
            if registration not in promoted:
                notifications.notify_event_changed(registration)
                told += 1
    return EventUpdate(promoted, told)


#: Messages whose content is the event's time and place as it was when they were queued.
_SCHEDULE_NOTICES = ("events.changed", "events.reminder")


def _withhold_outdated_notices(event: Event, why: str = "the event moved") -> list[int]:
    """Withhold the change notices and reminders of this event not yet sent (queued, or
    waiting to retry after a refusal): they give the old time or place, and would arrive
    after the notice of the new one, so the last word a registrant read would be wrong.
    Confirmations stay: they carry the seat's manage link and check-in code. Returns the
    registrations whose reminder was withheld (they are owed one with the new details)."""
    registration_ids = {str(i) for i in db.session.execute(
        select(Registration.id).where(Registration.event_id == event.id)).scalars()}
    pending = db.session.execute(
        select(OutboxMessage.id, OutboxMessage.idempotency_key)
        .join(Registration, Registration.person_id == OutboxMessage.person_id)
        .where(Registration.event_id == event.id, OutboxMessage.purpose.in_(_SCHEDULE_NOTICES),
               OutboxMessage.state.in_([OutboxState.QUEUED.value, OutboxState.RETRY.value]))
    ).all()
    # Keys: "<purpose>:registration:<id>[:<schedule version>]"; only this event's registrations.
    outdated = {message_id: key for message_id, key in pending
                if key.split(":")[2:3] and key.split(":")[2] in registration_ids}
    if not outdated:
        return []
    withheld = db.session.execute(
        update(OutboxMessage).where(OutboxMessage.id.in_(list(outdated)),
                                    OutboxMessage.state.in_([OutboxState.QUEUED.value, OutboxState.RETRY.value]))
        .values(state=OutboxState.WITHHELD.value, last_error=why, lease_until=None)
        .returning(OutboxMessage.id).execution_options(synchronize_session=False)
    ).scalars().all()
    return [int(outdated[message_id].split(":")[2]) for message_id in withheld
            if outdated[message_id].startswith("events.reminder:")]


def set_event_status(event: Event, status: EventStatus, *, actor: Any, origin: str = "") -> int:
    """Publish, close, reopen or cancel. Cancelling frees every registration and emails each
    registrant; returns how many were told."""
    event = lock_event(event.id)
    if event.status == EventStatus.CANCELLED:
        raise EventNotEditable()
    if status == EventStatus.DRAFT and event.status != EventStatus.DRAFT and db.session.execute(
            select(Registration.id).where(Registration.event_id == event.id).limit(1)).first():
        # A draft is hidden: the event page and every link in the registrants' emails would
        # answer 404 while their manage pages still said "you have a seat".
        raise DraftWithRegistrations()
    event.status = status.value
    told = 0
    if status == EventStatus.CANCELLED:
        active = db.session.execute(
            select(Registration).where(Registration.event_id == event.id,
                                       Registration.status.in_(RegistrationStatus.active()))
        ).scalars().all()
        moment = now()
        seat_holders = {r.id for r in active if r.status == RegistrationStatus.CONFIRMED}
        # The cancellation's calendar entry outranks every calendar file sent before it.
        event.schedule_version = (event.schedule_version or 0) + 1
        # Reminders and change notices not yet sent would arrive after the cancellation
        # notice, inviting people to an event that is not happening.
        _withhold_outdated_notices(event, "the event was cancelled")
        for registration in active:
            registration.status = RegistrationStatus.CANCELLED.value
            registration.cancelled_at = moment
            registration.cancelled_by = "event"
        db.session.flush()
        for registration in active:
            notifications.notify_event_cancelled(registration, held_seat=registration.id in seat_holders)
            told += 1
    db.session.flush()
    record_audit(f"events.event.{status.value}", actor=actor, subject=f"event:{event.id}",
                 origin=origin, told=told)
    if status == EventStatus.PUBLISHED:
        promote_from_waitlist(event)
    return told


def _questions_changed(event_id: int) -> None:
    """Count a change to the event's questions (in SQL: two organizers' changes both count)."""
    db.session.execute(
        update(Event).where(Event.id == event_id)
        .values(questions_version=Event.questions_version + 1)
    )
    forget_registration_door()


def _clean_choices(kind: QuestionKind, choices_text: str) -> list[str]:
    """The options of a choice question, one per non-blank line; other kinds have none (any
    typed would never be offered)."""
    if kind not in (QuestionKind.SINGLE_CHOICE, QuestionKind.MULTIPLE_CHOICE):
        return []
    choices = [line.strip() for line in choices_text.splitlines() if line.strip()]
    if len(choices) < 2:
        raise DomainError(_l("A choice question needs at least two options, one per line."))
    if len({choice.casefold() for choice in choices}) < len(choices):
        raise RepeatedOption()
    return choices


def _clean_french_choices(choices: list[str], choices_fr_text: str) -> list[str]:
    """The French labels of the options, one per English option in the same order, or none;
    different from each other, as the English ones are (French readers see only these)."""
    french = [line.strip() for line in choices_fr_text.splitlines() if line.strip()]
    if french and len(french) != len(choices):
        raise FrenchChoicesMismatch()
    if len({choice.casefold() for choice in french}) < len(french):
        raise RepeatedFrenchOption()
    return french


def add_question(event: Event, *, label: str, kind: QuestionKind, required: bool = False,
                 hint: str = "", choices_text: str = "", label_fr: str = "", hint_fr: str = "",
                 choices_fr_text: str = "", actor: Any = None, origin: str = "") -> EventQuestion:
    """A new question at the end of the event's form."""
    choices = _clean_choices(kind, choices_text)
    french = _clean_french_choices(choices, choices_fr_text)
    position = db.session.execute(
        select(func.coalesce(func.max(EventQuestion.position), 0)).where(EventQuestion.event_id == event.id)
    ).scalar_one() + 1
    question = EventQuestion(event_id=event.id, label=label.strip(), kind=kind.value, required=required,
                             hint=hint.strip(), choices_text="\n".join(choices), position=position,
                             label_fr=label_fr.strip(), hint_fr=hint_fr.strip(), choices_fr_text="\n".join(french))
    db.session.add(question)
    db.session.flush()
    _questions_changed(event.id)
    record_audit("events.question.added", actor=actor, subject=f"event:{event.id}", origin=origin)
    return question


def update_question(question: EventQuestion, *, label: str, kind: QuestionKind, required: bool = False,
                    hint: str = "", choices_text: str = "", label_fr: str = "", hint_fr: str = "",
                    choices_fr_text: str = "", actor: Any = None, origin: str = "") -> EventQuestion:
    """Change a question; answers already given stay as they were."""
    choices = _clean_choices(kind, choices_text)
    question.choices_fr_text = "\n".join(_clean_french_choices(choices, choices_fr_text))
    question.choices_text = "\n".join(choices)
    question.label, question.kind, question.required, question.hint = label.strip(), kind.value, required, hint.strip()
    question.label_fr, question.hint_fr = label_fr.strip(), hint_fr.strip()
    db.session.flush()
    _questions_changed(question.event_id)
    record_audit("events.question.updated", actor=actor, subject=f"event:{question.event_id}", origin=origin)
    return question


def remove_question(question: EventQuestion, *, actor: Any = None, origin: str = "") -> None:
    """Existing answers stay in registrations (shown in exports by their question id)."""
    record_audit("events.question.removed", actor=actor, subject=f"event:{question.event_id}", origin=origin,
                 question=f"q{question.id}: {question.label}")
    event_id = question.event_id
    db.session.delete(question)
    db.session.flush()
    _questions_changed(event_id)


# --- organizers: attendees ------------------------------------------------------------

SORTS = {
    "registered": lambda: (Registration.id,),
    "name": lambda: (folded(Person.name), Registration.id),
    "organization": lambda: (folded(Person.organization), Registration.id),
    "sector": lambda: (Sector.position, Registration.id),
    "status": lambda: (Registration.status, Registration.waitlist_position, Registration.id),
}


@dataclass
class AttendeeFilter:
    status: str = ""
    sector: str = ""
    community: str = ""
    search: str = ""
    sort: str = "registered"
    descending: bool = False


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def attendee_query(event: Event, filters: AttendeeFilter):
    """The filtered, sorted registrations, with person and sector loaded in the same query
    (and every other lazy load refused, so a page is always the same two queries)."""
    query = (
        select(Registration)
        .outerjoin(Registration.person)
        .outerjoin(Registration.sector)
        .where(Registration.event_id == event.id)
        .options(contains_eager(Registration.person), contains_eager(Registration.sector),
                 raiseload("*"))
    )
    if filters.status in {s.value for s in RegistrationStatus}:
        query = query.where(Registration.status == filters.status)
    if filters.sector:
        query = query.where(Sector.slug == filters.sector)
    if filters.community:
        query = query.where(folded(Person.community) == fold(filters.community.strip()))
    if filters.search.strip():
        pattern = f"%{_escape_like(fold(filters.search.strip()))}%"
        query = query.where(or_(
            folded(Person.name).like(pattern, escape="\\"),
            Person.email.like(pattern, escape="\\"),
            folded(Person.organization).like(pattern, escape="\\"),
        ))
    order = SORTS.get(filters.sort, SORTS["registered"])()
    if filters.descending:
        order = tuple(column.desc() for column in order)
    return query.order_by(*order)


def attendee_page(event: Event, filters: AttendeeFilter, page: int, per_page: int) -> tuple[list[Registration], int]:
    """One page of attendees and the total: exactly two queries, whatever the page size."""
    query = attendee_query(event, filters)
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    rows = db.session.execute(query.limit(per_page).offset((page - 1) * per_page)).scalars().all()
    return list(rows), total


def communities(event: Event) -> list[str]:
    """The communities the event's registrants gave, in the order a reader expects, each
    once however it was typed ("Sudbury", "sudbury", " Sudbury"): the filter matches them
    alike, so the list offers the most used spelling."""
    spellings: dict[str, Counter[str]] = {}
    for community, count in db.session.execute(
        select(Person.community, func.count()).join(Registration, Registration.person_id == Person.id)
        .where(Registration.event_id == event.id, Person.community != "")
        .group_by(Person.community)
    ).tuples():
        spellings.setdefault(fold(community.strip()), Counter())[community.strip()] += count
    return sorted((counts.most_common(1)[0][0] for counts in spellings.values()), key=fold)


# --- exports --------------------------------------------------------------------------

def removed_question_ids(event: Event) -> list[str]:
    """Ids of questions removed from the form that people had already answered: their
    answers stay, and exports keep a column for each (read answer by answer, so memory
    stays flat)."""
    current = {str(question.id) for question in event.questions}
    removed: set[str] = set()
    for (answers,) in db.session.execute(
        select(Registration.answers).where(Registration.event_id == event.id).execution_options(yield_per=1000)
    ):
        removed.update(key for key in (answers or {}) if key not in current)
    return sorted(removed, key=lambda key: (len(key), key))


#: The full export's columns before the questions, in the organizer's language.
EXPORT_COLUMNS = (_l("Registration number"), _l("Status"), _l("Waitlist ticket"), _l("Name"), _l("Email"),
                  _l("Organization"), _l("Sector"), _l("Community"), _l("Job title"), _l("Accessibility needs"),
                  _l("Dietary needs"))
STATUS_WORDS = {RegistrationStatus.CONFIRMED.value: _l("Confirmed"),
                RegistrationStatus.WAITLISTED.value: _l("Waitlisted"),
                RegistrationStatus.CANCELLED.value: _l("Cancelled")}


def export_header(event: Event, language: str) -> list[str]:
    """The full export's first row, in the organizer's language (the labels in the request's
    or the command's locale, the questions in `language`): times are in the event's own zone,
    and the header says which. A question keeps its number beside its label when another
    question has the same label, so no two columns read alike."""
    zone = zone_time(event.timezone)
    labels = [in_language(question, "label", language) for question in event.questions]
    questions = [label if labels.count(label) == 1 else f"{label} (q{question.id})"
                 for question, label in zip(event.questions, labels)]
    return [str(label) for label in EXPORT_COLUMNS] + [
        _("Registered (%(zone)s)", zone=zone), _("Checked in (%(zone)s)", zone=zone),
    ] + questions + [_("Removed question (q%(id)s)", id=key) for key in removed_question_ids(event)]


def _answer_text(value: Any, question: EventQuestion | None, language: str) -> str:
    if isinstance(value, list):
        return "; ".join(_answer_text(item, question, language) for item in value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if value is None:
        return ""
    return question.option_label(str(value), language) if question is not None else str(value)


def _local_minute(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)


def _as_text(value: Any) -> Any:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else value


def export_rows(event: Event, language: str) -> Iterator[list[Any]]:
    """Every registration as a row, read in batches so memory stays flat: statuses, sectors,
    yes/no and the options chosen in `language`; what people typed as they typed it."""
    zone = ZoneInfo(event.timezone)
    asked = {str(question.id): question for question in event.questions}
    question_ids = list(asked) + removed_question_ids(event)
    # An unticked box is stored as no answer at all; in the sheet it reads "no".
    checkboxes = {qid for qid, question in asked.items() if question.kind == QuestionKind.CHECKBOX}
    query = attendee_query(event, AttendeeFilter()).execution_options(yield_per=500)
    for registration in db.session.execute(query).scalars():
        person, sector = registration.person, registration.sector
        answers = registration.answers or {}
        yield [
            registration.id, str(STATUS_WORDS.get(registration.status, registration.status)),
            registration.waitlist_position or "",
            person.name if person else "", person.email if person else "",
            person.organization if person else "", sector.name(language) if sector else "",
            person.community if person else "", person.job_title if person else "",
            registration.accessibility_needs, registration.dietary_needs,
            # Local times to the minute, as values: the CSV writes them as text, the XLSX as
            # dates a spreadsheet can sort and compute with.
            _local_minute(registration.created_at, zone),
            _local_minute(registration.checked_in_at, zone) if registration.checked_in_at else "",
        ] + [_answer_text(answers.get(qid, False if qid in checkboxes else None), asked.get(qid), language)
             for qid in question_ids]


def export_csv_chunks(event: Event, language: str) -> Iterator[str]:
    """The CSV as text chunks: UTF-8 BOM first (Excel), then the header, then rows, with no
    cell a spreadsheet would run as a formula."""
    # A generator: nothing is read until the streaming starts.
    yield from csv_chunks(export_header(event, language),
                          ([_as_text(value) for value in row] for row in export_rows(event, language)))


def export_xlsx(event: Event, language: str) -> bytes:
    return _xlsx(_("Registrations"), export_header(event, language), export_rows(event, language))


def _xlsx(title: str, header: list[str], rows: Iterable[list[Any]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])  # Excel's limit on a sheet's name
    sheet.append(xlsx_row(sheet, header))
    for row in rows:
        sheet.append(xlsx_row(sheet, row))
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


#: The name list's columns, in the organizer's language (see `name_list_rows`).
NAME_LIST_HEADER = (_l("Name"), _l("Organization"), _l("Sector"), _l("Community"), _l("Job title"),
                    _l("Checked in"))


def name_list_rows(event: Event, language: str) -> Iterator[list[Any]]:
    """The people holding a seat, by name, with only what a badge, a sign-in sheet or a
    co-host needs: name, organization, sector, community, job title and whether they have
    checked in. No address and no needs or answers, so a list that leaves the organizers'
    hands (to a printer, on a table at the door) carries no more than it must."""
    query = attendee_query(event, AttendeeFilter(status=RegistrationStatus.CONFIRMED.value, sort="name"))
    for registration in db.session.execute(query.execution_options(yield_per=500)).scalars():
        person, sector = registration.person, registration.sector
        yield [
            person.name if person else "", person.organization if person else "",
            sector.name(language) if sector else "", person.community if person else "",
            person.job_title if person else "",
            str(_l("yes")) if registration.checked_in_at else "",
        ]


def name_list_csv_chunks(event: Event, language: str) -> Iterator[str]:
    """The name list as CSV text chunks (BOM first, no formula cells), like the full export."""
    yield from csv_chunks([str(label) for label in NAME_LIST_HEADER], name_list_rows(event, language))


def name_list_xlsx(event: Event, language: str) -> bytes:
    return _xlsx(str(_l("Name list")), [str(label) for label in NAME_LIST_HEADER], name_list_rows(event, language))


# --- check-in -------------------------------------------------------------------------


def check_in(registration: Registration, *, actor: Any, origin: str = "") -> bool:
    """Mark a confirmed attendee as arrived; False if they already were (harmless)."""
    registration = locked(registration)
    if registration.status != RegistrationStatus.CONFIRMED:
        raise NotCheckable()
    if registration.checked_in_at is not None:
        return False
    registration.checked_in_at = now()
    registration.checked_in_by_id = getattr(actor, "id", None)
    record_audit("events.registration.checked_in", actor=actor,
                 subject=f"registration:{registration.id}", origin=origin)
    db.session.flush()
    return True


def undo_check_in(registration: Registration, *, actor: Any, origin: str = "") -> None:
    """Take back a check-in made by mistake (the wrong row clicked, a code scanned twice)."""
    registration = locked(registration)
    if registration.checked_in_at is None:
        raise NotCheckedIn()
    registration.checked_in_at = None
    registration.checked_in_by_id = None
    record_audit("events.registration.check_in_undone", actor=actor,
                 subject=f"registration:{registration.id}", origin=origin)
    db.session.flush()


def check_in_by_code(event: Event, raw: str, *, actor: Any, origin: str = "") -> tuple[Registration, bool]:
    """Check in the holder of a scanned or typed QR code. InvalidToken if it is no code of
    this event's; DeadCheckInCode, naming the person, for one of this event's that no longer
    admits anyone (their registration was cancelled, or they wait for a seat), so the desk
    can tell them why rather than "not valid"."""
    try:
        token = resolve_token(notifications.CHECK_IN_PURPOSE, raw.strip())
    except InvalidToken:
        _explain_dead_code(event, raw.strip())
        raise
    registration = db.session.get(Registration, token.subject_id) if token.subject_id else None
    if registration is None or registration.event_id != event.id:
        raise InvalidToken()
    if registration.status != RegistrationStatus.CONFIRMED:
        raise DeadCheckInCode(registration)
    return registration, check_in(registration, actor=actor, origin=origin)


def _explain_dead_code(event: Event, raw: str) -> None:
    """Raise DeadCheckInCode when `raw` was a check-in code of this event's (revoked or past
    its time); return for anything else."""
    if not raw or len(raw) > 200:
        return
    subject_id = db.session.execute(
        select(AccessToken.subject_id).where(AccessToken.token_hash == hash_token(raw),
                                             AccessToken.purpose == notifications.CHECK_IN_PURPOSE)
    ).scalar_one_or_none()
    registration = db.session.get(Registration, subject_id) if subject_id else None
    if registration is not None and registration.event_id == event.id and registration.person is not None:
        raise DeadCheckInCode(registration)


def check_in_counts(event: Event, language: str = "en") -> list[tuple[str, int, int]]:
    """(sector name in `language`, checked in, confirmed) per sector, in the sectors' order."""
    name = Sector.name_fr if language == "fr" else Sector.name_en
    rows = db.session.execute(
        select(name, func.count(Registration.checked_in_at), func.count(Registration.id))
        .select_from(Registration).outerjoin(Sector, Registration.sector_id == Sector.id)
        .where(Registration.event_id == event.id,
               Registration.status == RegistrationStatus.CONFIRMED.value)
        .group_by(name, Sector.position).order_by(Sector.position)
    ).all()
    return [(sector or "—", checked, total) for sector, checked, total in rows]


# --- dashboard ------------------------------------------------------------------------


def sector_mix(event: Event) -> list[tuple[Sector, int, int]]:
    """(sector, confirmed, waitlisted) for every sector, in order."""
    rows = db.session.execute(
        select(Registration.sector_id, Registration.status, func.count())
        .where(Registration.event_id == event.id,
               Registration.status.in_(RegistrationStatus.active()))
        .group_by(Registration.sector_id, Registration.status)
    ).all()
    counts: dict[tuple[int | None, str], int] = {(s, st): n for s, st, n in rows}
    sectors = db.session.execute(select(Sector).order_by(Sector.position)).scalars().all()
    return [(sector, counts.get((sector.id, "confirmed"), 0), counts.get((sector.id, "waitlisted"), 0))
            for sector in sectors]


@dataclass
class AnswerTally:
    """How the people holding a seat or a place in line answered one question: per option
    (the stored English option; an answer to an option since removed keeps its own row),
    or, for text, how many wrote something."""

    question: EventQuestion
    #: (option, confirmed, waitlisted), in the question's order; empty for text questions.
    options: list[tuple[str, int, int]]
    #: How many gave any answer (confirmed, waitlisted).
    answered: tuple[int, int]


def answer_tallies(event: Event) -> list[AnswerTally]:
    """Each question's answers, counted for the dashboard (workshops, meals, materials to
    plan); one query for the answers, whatever the number of questions."""
    questions = sorted(event.questions, key=lambda q: (q.position, q.id))
    if not questions:
        return []
    counts: dict[int, Counter[tuple[str, str]]] = {q.id: Counter() for q in questions}
    answered: dict[int, Counter[str]] = {q.id: Counter() for q in questions}
    for status, answers in db.session.execute(
        select(Registration.status, Registration.answers)
        .where(Registration.event_id == event.id, Registration.status.in_(RegistrationStatus.active()))
    ):
        for question in questions:
            answer = (answers or {}).get(str(question.id))
            if answer in (None, "", [], False):
                continue
            answered[question.id][status] += 1
            given = answer if isinstance(answer, list) else [answer]
            for option in given:
                counts[question.id][(str(option) if question.kind != QuestionKind.CHECKBOX else "yes", status)] += 1
    tallies = []
    for question in questions:
        if question.kind in (QuestionKind.SHORT_TEXT, QuestionKind.LONG_TEXT):
            options: list[str] = []
        elif question.kind == QuestionKind.CHECKBOX:
            options = ["yes"]
        else:
            options = list(question.choices)
            options += sorted({option for option, _status in counts[question.id]} - set(options))
        tallies.append(AnswerTally(
            question,
            [(option, counts[question.id][(option, "confirmed")], counts[question.id][(option, "waitlisted")])
             for option in options],
            (answered[question.id]["confirmed"], answered[question.id]["waitlisted"]),
        ))
    return tallies


#: Beyond this many days the chart counts registrations per week (a bar a day would be a
#: chart taller than the page).
DAYS_CHARTED_DAY_BY_DAY = 62


def registrations_over_time(event: Event) -> tuple[str, list[tuple[date, int]]]:
    """New registrations (every status) per day in the event's zone, oldest first, days
    with none included so the chart shows the gaps; per week (Monday first) when they span
    more than DAYS_CHARTED_DAY_BY_DAY days. Returns ("day" or "week", [(day, count)])."""
    zone = ZoneInfo(event.timezone or current_app.config["PORTAL_TIMEZONE"])
    days: Counter[date] = Counter(
        created.astimezone(zone).date() for (created,) in db.session.execute(
            select(Registration.created_at).where(Registration.event_id == event.id)))
    if not days:
        return "day", []
    first, last = min(days), max(days)
    unit = "day" if (last - first).days < DAYS_CHARTED_DAY_BY_DAY else "week"
    if unit == "week":
        weeks: Counter[date] = Counter()
        for day, count in days.items():
            weeks[day - timedelta(days=day.weekday())] += count
        days, first = weeks, first - timedelta(days=first.weekday())
    step = timedelta(days=1 if unit == "day" else 7)
    series, moment = [], first
    while moment <= last:
        series.append((moment, days.get(moment, 0)))
        moment += step
    return unit, series


# --- messages to attendees ------------------------------------------------------------


@dataclass(frozen=True)
class AttendeeMessage:
    """What an organizer writes to attendees: English, and French for those who read the
    portal in French (they get the English where no French was written)."""

    subject: str
    body: str
    subject_fr: str = ""
    body_fr: str = ""

    def in_language(self, language: str) -> tuple[str, str, str]:
        """(subject, body, the language they are written in) for a reader of `language`."""
        if language == "fr" and self.subject_fr.strip() and self.body_fr.strip():
            return self.subject_fr.strip(), self.body_fr.strip(), "fr"
        return self.subject.strip(), self.body.strip(), "en"


class NoRecipientsChosen(DomainError):
    message = _l("Choose who should receive the message.")
    field = "recipients"


def _message_recipients(event: Event, statuses: Iterable[str]) -> list[str]:
    wanted = [s for s in statuses if s in RegistrationStatus.active()]
    if not wanted:
        raise NoRecipientsChosen()
    return wanted


def message_audience(event: Event, statuses: Iterable[str]) -> dict[str, int]:
    """How many people a message to `statuses` reaches, by the language they read ("en",
    "fr"), as the organizer sees before sending."""
    wanted = _message_recipients(event, statuses)
    rows = db.session.execute(
        select(Person.language, func.count())
        .join(Registration, Registration.person_id == Person.id)
        .where(Registration.event_id == event.id, Registration.status.in_(wanted))
        .group_by(Person.language)
    ).all()
    audience = {"en": 0, "fr": 0}
    for language, count in rows:
        audience["fr" if language == "fr" else "en"] += count
    return audience


def preview_attendee_message(event: Event, message: AttendeeMessage, language: str) -> tuple[str, str, str]:
    """The subject and text a person reading `language` would receive, with a stand-in for
    their name and manage link, and the language the organizer's words are in (English
    where no French was written); nothing is queued."""
    subject, body, written_in = message.in_language(language)
    return (*notifications.attendee_message_preview(event, language, subject, body, written_in), written_in)


def message_attendees(event: Event, *, statuses: Iterable[str], message: AttendeeMessage, batch: str,
                      actor: Any, origin: str = "") -> int:
    """Queue an organizer's message to every confirmed and/or waitlisted registrant, each in
    the language they read the portal in. `batch` names this message (the form's): sending
    it again raises MessageAlreadySent rather than mailing everyone twice."""
    wanted = _message_recipients(event, statuses)
    if queued_under(f"events.message:{batch}:"):
        raise MessageAlreadySent()
    registrations = db.session.execute(
        select(Registration).where(Registration.event_id == event.id, Registration.status.in_(wanted),
                                   Registration.person_id.is_not(None))
        .options(joinedload(Registration.person))
        .order_by(Registration.id)
    ).scalars().all()
    notifications.notify_attendee_messages(
        [(registration, *message.in_language(registration.person.language or "en")) for registration in registrations],
        batch)
    record_audit("events.attendees.messaged", actor=actor, subject=f"event:{event.id}",
                 origin=origin, statuses=wanted, count=len(registrations),
                 in_french=bool(message.subject_fr.strip() and message.body_fr.strip()))
    return len(registrations)


def upcoming_events(moment: datetime | None = None) -> list[Event]:
    return list(db.session.execute(
        select(Event).where(Event.status.in_([EventStatus.PUBLISHED.value, EventStatus.CLOSED.value]),
                            Event.ends_at >= (moment or now()))
        .order_by(Event.starts_at)
    ).scalars())


#: The form's shape of a question: (id, kind, label, hint, required, choices).
#: (id, kind, label, hint, required, options, label_fr, hint_fr, options_fr): a question as the
#: registration form needs it, in both languages (forms.registration_form picks one).
QuestionShape = tuple[int, str, str, str, bool, tuple[str, ...], str, str, tuple[str, ...]]


def question_shapes(questions: Iterable[EventQuestion]) -> tuple[QuestionShape, ...]:
    return tuple((question.id, question.kind, question.label, question.hint, question.required,
                  tuple(question.choices or ()), question.label_fr, question.hint_fr,
                  tuple(question.choices_fr or ())) for question in questions)


@dataclass(frozen=True)
class RegistrationDoor:
    """What a registration needs to know about its event before the seat lock: which event,
    whether registration looks open, and the questions its form checks answers against.

    Kept per process for a few seconds (every registration asks), and never trusted for the
    seat: register_for_event reads the event afresh under its lock, re-checks that
    registration is open, and refuses answers checked against an older `questions_version`.
    """

    event_id: int
    slug: str
    status: str
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    starts_at: datetime
    ends_at: datetime
    questions_version: int
    questions: tuple[QuestionShape, ...]

    def is_open(self, moment: datetime) -> bool:
        return registration_window_open(self.status, self.registration_opens_at,
                                        self.registration_closes_at, self.starts_at, moment, self.ends_at)


#: How long a process keeps an event's RegistrationDoor (organizers' changes in other
#: processes show after at most this long; see RegistrationDoor for why that is safe).
DOOR_KEPT_SECONDS = 5.0
#: More events than this taking registrations at once is not expected; beyond it, start over.
DOORS_KEPT = 256
_DOORS = "registration_doors"

_DOOR = select(
    Event.id, Event.slug, Event.status, Event.registration_opens_at, Event.registration_closes_at,
    Event.starts_at, Event.ends_at, Event.questions_version,
).where(Event.slug == bindparam("slug"))
_DOOR_QUESTIONS = (
    select(EventQuestion).where(EventQuestion.event_id == bindparam("event_id"))
    .order_by(EventQuestion.position, EventQuestion.id)
)


def registration_door(slug: str, *, fresh: bool = False) -> RegistrationDoor:
    """The event's RegistrationDoor, from this process's copy of the last few seconds unless
    `fresh`; drafts and unknown slugs are NotFound (and are not kept)."""
    return kept(_DOORS, slug, DOOR_KEPT_SECONDS, lambda: _read_door(slug), fresh=fresh, limit=DOORS_KEPT)


def _read_door(slug: str) -> RegistrationDoor:
    if len(slug) > 80:
        raise NotFound()
    row = db.session.execute(_DOOR, {"slug": slug}).one_or_none()
    if row is None or row.status == EventStatus.DRAFT:
        raise NotFound()
    questions = question_shapes(db.session.execute(_DOOR_QUESTIONS, {"event_id": row.id}).scalars())
    return RegistrationDoor(row.id, row.slug, row.status, row.registration_opens_at,
                            row.registration_closes_at, row.starts_at, row.ends_at, row.questions_version, questions)


def forget_registration_door(slug: str | None = None) -> None:
    """Drop this process's copy of one event's door (or all): the next registration reads it."""
    forget(_DOORS, slug)


def public_event(slug: str) -> Event:
    """A listed event by its address; drafts and unknown slugs are the same 404."""
    if len(slug) > 80:
        raise NotFound()
    event = db.session.execute(_EVENT_BY_SLUG, {"slug": slug}).unique().scalar_one_or_none()
    if event is None or event.status == EventStatus.DRAFT:
        raise NotFound()
    return event
