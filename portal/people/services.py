"""Finding and creating people, sectors, and recording consent."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta
from typing import Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select

from portal.core.audit import record_audit
from portal.core.clock import now
from portal.core.db import insert_row
from portal.core.kept import forget, kept
from portal.core.errors import DomainError
from portal.extensions import db
from portal.people.models import (
    ConsentKind,
    ConsentRecord,
    Person,
    PrivacyRequest,
    PrivacyRequestKind,
    PrivacyRequestState,
    Sector,
)

K = TypeVar("K")

#: The sectors of the working group, in the order they are shown.
SECTORS: list[tuple[str, str, str]] = [
    ("health-care", "Health care", "Soins de santé"),
    ("mental-health", "Mental health", "Santé mentale"),
    ("addictions", "Addictions", "Dépendances"),
    ("child-protection", "Child protection", "Protection de l'enfance"),
    ("education", "Education", "Éducation"),
    ("corrections", "Corrections", "Services correctionnels"),
    ("criminal-justice", "Criminal justice", "Justice pénale"),
    ("community-development", "Community development", "Développement communautaire"),
    ("housing", "Housing", "Logement"),
    ("police", "Police", "Police"),
    ("other", "Other", "Autre"),
]

#: CASL: implied consent from a transaction lasts two years, from an inquiry six months.
IMPLIED_AFTER_TRANSACTION = timedelta(days=730)
IMPLIED_AFTER_INQUIRY = timedelta(days=183)


class InvalidEmail(DomainError):
    message = _l("Enter a valid email address, like name@example.ca.")


class AccentedEmail(InvalidEmail):
    """The outbox cannot address internationalized mailboxes (no SMTPUTF8; an accented
    domain would need IDNA): refused where it is typed, not when the mail fails to go."""

    message = _l("Enter an email address using only unaccented letters, like name@example.ca.")


def take_turns_for(person: Person) -> None:
    """Hold the person's row lock for the rest of the transaction, so requests about one
    address (counting how many it made this hour) take turns. PostgreSQL's FOR NO KEY
    UPDATE: rows that merely refer to the person (a consent, an outbox message, a token),
    written meanwhile by a confirmation or an unsubscription holding their own locks, are
    not held up, so the two never wait on each other (a plain FOR UPDATE deadlocked them).
    SQLite's writers take turns already."""
    db.session.execute(select(Person.id).where(Person.id == person.id).with_for_update(key_share=True))


def normalize_email(raw: str | None) -> str:
    """Trim, validate and case-fold an address; raise `InvalidEmail` if it is not one, or
    `AccentedEmail` if it holds anything but ASCII."""
    candidate = (raw or "").strip()
    if not candidate or len(candidate) > 320:
        raise InvalidEmail()
    address = _normalized_address(candidate)  # an address at all first: then say what is wrong with it
    # What was typed, not the normalized form: casefolding turns "straße" into "strasse" and
    # a ligature or the Kelvin sign into letters, which would send the mail to someone else.
    if not candidate.isascii():
        raise AccentedEmail()
    return address


@lru_cache(maxsize=256)
def _normalized_address(candidate: str) -> str:
    # Cached: a form checks the address (to show every error at once) and then the service
    # it calls normalizes the same string again; the second time is free.
    try:
        # strict: at most 64 characters before the @, as SMTP requires (servers refuse more).
        result = validate_email(candidate, check_deliverability=False, strict=True)
    except EmailNotValidError as exc:
        raise InvalidEmail() from exc
    # An internationalized domain typed in its ASCII form (xn--...) stays so: `normalized`
    # spells it in Unicode, which the outbox could not address (every address is ASCII).
    return (result.ascii_email or result.normalized).casefold()


def seed_sectors() -> None:
    """Create the standard sectors if they are missing (idempotent)."""
    existing = {s.slug: s for s in db.session.execute(select(Sector)).scalars()}
    for position, (slug, name_en, name_fr) in enumerate(SECTORS):
        if slug not in existing:
            db.session.add(Sector(slug=slug, name_en=name_en, name_fr=name_fr, position=position))
    db.session.flush()
    forget(_SECTORS)


@dataclass(frozen=True)
class SectorChoice:
    """A sector as forms and pages list it (a snapshot, not tied to a session)."""

    id: int
    slug: str
    name_en: str
    name_fr: str

    def name(self, language: str = "en") -> str:
        return self.name_fr if language == "fr" else self.name_en


#: How long a worker reuses the sectors it read. They are reference data: only migrations
#: and `seed_sectors` add them, so this bounds how stale a running worker can be.
SECTORS_CACHE_SECONDS = 300.0
_SECTORS = "sectors"


def list_sectors() -> list[SectorChoice]:
    """The sectors in their order. Every registration form needs them; reading them once per
    worker and five minutes, rather than per request, spares a query and its ORM work."""
    return list(kept(_SECTORS, None, SECTORS_CACHE_SECONDS, _read_sectors))


def _read_sectors() -> list[SectorChoice]:
    return [
        SectorChoice(*row) for row in db.session.execute(
            select(Sector.id, Sector.slug, Sector.name_en, Sector.name_fr).order_by(Sector.position, Sector.id)
        )
    ]


def find_person(email: str) -> Person | None:
    """The person with this address as typed (validated and normalized first), if known."""
    return person_with_address(normalize_email(email))


def person_with_address(address: str) -> Person | None:
    """The person with this normalized address, if the portal knows them."""
    return db.session.execute(_PERSON_BY_ADDRESS, {"address": address}).scalar_one_or_none()


def get_or_create_person(email: str, **details: object) -> Person:
    """Return the person with this address, creating them if new.

    Details given (name, organization, ...) only fill in blanks. The public forms that call
    this prove nothing about who is typing, so they must not change what a known person's
    record says (a stranger could rename an attendee by registering their address); people
    correct their own details through their token links (manage, my data, preferences).
    Safe under concurrency: a simultaneous insert of the same address is caught by the
    unique constraint and re-read.
    """
    address = normalize_email(email)
    person = person_with_address(address)
    if person is None:
        return create_person(address, **details)[0]
    fill_blanks(person, **details)
    return person


def create_person(address: str, **details: object) -> tuple[Person, bool]:
    """Add someone new with a normalized `address` and these details, in one statement;
    returns (person, True).

    If the address arrived meanwhile (another transaction inserted it first), returns that
    person, with only blanks filled in, and False.
    """
    person = insert_person(address, **details)
    if person is not None:
        return person, True
    person = db.session.execute(_PERSON_BY_ADDRESS, {"address": address}).scalar_one()
    fill_blanks(person, **details)
    return person, False


def insert_person(address: str, **details: object) -> Person | None:
    """Add someone new with a normalized `address` and these details, in one statement;
    None (and nothing written) if the portal already knows the address."""
    values = {name: None if name == "sector_id" else "" for name in _PERSON_DETAILS}
    values.update((name, value) for name, value in details.items()
                  if name in values and value not in (None, ""))
    values["language"] = values["language"] or "en"
    values.update(email=address, created_at=now(), erased_at=None)
    return insert_row(Person, values, unless_taken=("email",))


def fill_blanks(person: Person, **details: object) -> list[str]:
    """Set the details the person's record does not have yet; never overwrite one. Returns
    the names of those filled in."""
    filled = []
    for name, value in details.items():
        if value in (None, "") or name not in _PERSON_DETAILS:
            continue
        if getattr(person, name) in (None, ""):
            setattr(person, name, value)
            filled.append(name)
    return filled


#: What public forms may tell us about a person (and fill in when blank).
_PERSON_DETAILS = ("name", "organization", "sector_id", "community", "job_title", "language")
_PERSON_BY_ADDRESS = select(Person).where(Person.email == bindparam("address"))


def record_consent(
    person: Person,
    *,
    purpose: str,
    kind: ConsentKind,
    wording: str = "",
    wording_version: str = "",
    source: str = "",
    method: str = "",
    ip: str = "",
    user_agent: str = "",
    language: str = "en",
    implied_from: str | None = None,
    at: datetime | None = None,
) -> ConsentRecord:
    """Append a consent (or withdrawal) to the ledger.

    `implied_from` is "transaction" or "inquiry" for implied consent, and sets its expiry.
    """
    moment = at or now()
    expires_at = None
    if kind == ConsentKind.IMPLIED:
        span = IMPLIED_AFTER_INQUIRY if implied_from == "inquiry" else IMPLIED_AFTER_TRANSACTION
        expires_at = moment + span
    record = ConsentRecord(
        person_id=person.id,
        purpose=purpose,
        kind=kind.value,
        wording=wording,
        wording_version=wording_version,
        source=source,
        method=method,
        ip=ip[:64],
        user_agent=user_agent[:300],
        language=language,
        expires_at=expires_at,
        created_at=moment,
    )
    db.session.add(record)
    return record


def has_consent(person_id: int, purpose: str, at: datetime | None = None) -> bool:
    """True when the newest consent event for `purpose` is a live consent.

    A withdrawal ends it; implied consent also ends by itself at its expiry.
    """
    latest = db.session.execute(
        select(ConsentRecord)
        .where(ConsentRecord.person_id == person_id, ConsentRecord.purpose == purpose)
        .order_by(ConsentRecord.created_at.desc(), ConsentRecord.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is None or latest.kind == ConsentKind.WITHDRAWN:
        return False
    return latest.expires_at is None or latest.expires_at > (at or now())


# --- Data rights: see, correct, withdraw, erase -------------------------------------------

#: MFIPPA and PIPEDA: an access or erasure request is answered within 30 days.
REQUEST_ANSWER_WITHIN = timedelta(days=30)
#: How long a my-data link works.
MY_DATA_LINK_VALID = timedelta(days=7)
MY_DATA_PURPOSE = "people.my_data"
#: At most one my-data message per person per this window, so the form cannot flood a mailbox.
MY_DATA_RESEND_WINDOW_MINUTES = 10


class RequestNotOpen(DomainError):
    message = _l("This request has already been answered.")
    status = 409


class NoLiveConsent(DomainError):
    message = _l("There is no consent to withdraw for that purpose.")
    status = 400


def send_my_data_link(email: str, *, my_data_path: Callable[[str], str]) -> bool:
    """Queue a my-data link to `email` if the portal knows that address.

    Returns whether a message was queued; the caller must answer the same either way, so
    the form reveals nothing about who is known. `my_data_path(raw_token)` builds the link's
    path. Records the access request (answered at once by the link) for the 30-day ledger.
    Raises InvalidEmail for something that is not an address.
    """
    from portal.mail.models import MessageCategory
    from portal.mail.services import already_queued, queue_email
    from portal.core.tokens import issue_token

    person = find_person(email)
    if person is None or person.erased_at is not None:
        return False
    moment = now()
    window = moment.strftime("%Y%m%d%H") + str(moment.minute // MY_DATA_RESEND_WINDOW_MINUTES)
    key = f"people.my_data:{person.id}:{window}"
    if already_queued(key):
        return False
    raw = issue_token(MY_DATA_PURPOSE, person_id=person.id, valid_for=MY_DATA_LINK_VALID)
    queue_email(
        key=key,
        to=person,
        template="people/my_data_link",
        purpose="people.my_data_link",
        context={"my_data_path": my_data_path(raw), "valid_days": MY_DATA_LINK_VALID.days},
        category=MessageCategory.TRANSACTIONAL,
    )
    db.session.add(
        PrivacyRequest(
            person_id=person.id,
            kind=PrivacyRequestKind.ACCESS.value,
            state=PrivacyRequestState.COMPLETED.value,
            due_at=moment + REQUEST_ANSWER_WITHIN,
            handled_at=moment,
            created_at=moment,
        )
    )
    db.session.flush()
    return True


def person_for_my_data(raw_token: str | None) -> Person:
    """The person a my-data link belongs to; InvalidToken for any bad, old or foreign link."""
    from portal.core.errors import InvalidToken
    from portal.core.tokens import resolve_token

    token = resolve_token(MY_DATA_PURPOSE, raw_token)
    person = db.session.get(Person, token.person_id) if token.person_id else None
    if person is None or person.erased_at is not None:
        raise InvalidToken()
    return person


#: The details a person may correct themselves.
CORRECTABLE_FIELDS = ("name", "organization", "sector_id", "community", "job_title", "language")


def correct_details(person: Person, *, origin: str = "", actor: Any = None, **details: object) -> list[str]:
    """Replace the person's details with what they typed (blank clears an optional one) and
    return the names of the details that changed. `actor`: the organizer correcting them
    (otherwise the person did, on their my-data page)."""
    changed = []
    for name in CORRECTABLE_FIELDS:
        if name not in details:
            continue
        value = details[name]
        if name == "sector_id" and value is not None and db.session.get(Sector, value) is None:
            raise DomainError(_l("Choose a sector from the list."))
        if name == "language" and value not in ("en", "fr"):
            raise DomainError(_l("Choose English or French."))
        if getattr(person, name) != value:
            setattr(person, name, value if value is not None or name == "sector_id" else "")
            changed.append(name)
    if changed:
        record_audit("people.details.corrected", actor=actor,
                     actor_label=None if actor is not None else "the person (my data)",
                     subject=f"person:{person.id}", origin=origin, fields=changed)
    db.session.flush()
    return changed


def live_consent_purposes(person: Person) -> list[str]:
    """Purposes the person currently consents to (express, or implied and not lapsed)."""
    purposes = db.session.execute(
        select(ConsentRecord.purpose).where(ConsentRecord.person_id == person.id).distinct()
    ).scalars()
    return sorted(p for p in purposes if has_consent(person.id, p))


def withdraw_consent(person: Person, purpose: str, *, origin: str = "", user_agent: str = "") -> ConsentRecord | None:
    """Withdraw the person's consent for `purpose`, at once.

    Appends a withdrawal to the ledger and, for a list ("list:<slug>"), unsubscribes them
    through the lists service when it exists, so nothing more is sent. Raises NoLiveConsent
    when there is nothing to withdraw.
    """
    if purpose not in live_consent_purposes(person):
        raise NoLiveConsent()
    if purpose.startswith("list:"):
        _unsubscribe_from_list(person, purpose.removeprefix("list:"), origin=origin,
                               user_agent=user_agent)
    if not has_consent(person.id, purpose):
        return None  # the lists service already recorded the withdrawal
    return record_consent(
        person,
        purpose=purpose,
        kind=ConsentKind.WITHDRAWN,
        source="people.my_data",
        method="my data page",
        ip=origin,
        user_agent=user_agent,
        language=person.language or "en",
    )


def _unsubscribe_from_list(person: Person, slug: str, *, origin: str, user_agent: str = "") -> None:
    from portal.lists.models import MailingList, Subscription, SubscriptionStatus

    subscription = db.session.execute(
        select(Subscription)
        .join(MailingList, Subscription.list_id == MailingList.id)
        .where(MailingList.slug == slug, Subscription.person_id == person.id)
        .with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if subscription is None or subscription.status == SubscriptionStatus.UNSUBSCRIBED:
        return
    try:
        from portal.lists.services import unsubscribe
    except ImportError:  # the lists area not installed: take them off directly
        subscription.status = SubscriptionStatus.UNSUBSCRIBED.value
        subscription.unsubscribed_at = now()
    else:
        unsubscribe(subscription, "my data page", source="people.my_data", ip=origin,
                    user_agent=user_agent)
    db.session.flush()


def open_erasure_request(person: Person) -> PrivacyRequest | None:
    return db.session.execute(
        select(PrivacyRequest).where(
            PrivacyRequest.person_id == person.id,
            PrivacyRequest.kind == PrivacyRequestKind.ERASURE.value,
            PrivacyRequest.state == PrivacyRequestState.OPEN.value,
        )
    ).scalar_one_or_none()


def request_erasure(person: Person, *, origin: str = "") -> PrivacyRequest:
    """Log the person's erasure request, due 30 days later; asking twice keeps one request.

    Queues an acknowledgement that says by when they will hear back.
    """
    from portal.mail.services import queue_email

    existing = open_erasure_request(person)
    if existing is not None:
        return existing
    moment = now()
    request_row = PrivacyRequest(
        person_id=person.id,
        kind=PrivacyRequestKind.ERASURE.value,
        state=PrivacyRequestState.OPEN.value,
        due_at=moment + REQUEST_ANSWER_WITHIN,
        created_at=moment,
    )
    db.session.add(request_row)
    db.session.flush()
    record_audit("people.erasure.requested", actor_label="the person (my data)",
                 subject=f"person:{person.id}", origin=origin, request=request_row.id)
    queue_email(
        key=f"people.erasure_received:{request_row.id}",
        to=person,
        template="people/erasure_received",
        purpose="people.erasure_received",
        context={"due_at": request_row.due_at},
    )
    return request_row


def _lock_open_erasure(privacy_request: PrivacyRequest) -> PrivacyRequest:
    locked = db.session.execute(
        select(PrivacyRequest).where(PrivacyRequest.id == privacy_request.id).with_for_update()
        .execution_options(populate_existing=True)  # the request as it is now, not as the page loaded it
    ).scalar_one()
    if locked.kind != PrivacyRequestKind.ERASURE or locked.state != PrivacyRequestState.OPEN:
        raise RequestNotOpen()
    return locked


def complete_erasure(privacy_request: PrivacyRequest, *, actor: Any, origin: str = "") -> PrivacyRequest:
    """An organizer carries out an open erasure request: the person is erased everywhere
    (see `portal.people.privacy.erase_person`) and the request is marked completed."""
    from portal.people.privacy import erase_person

    locked = _lock_open_erasure(privacy_request)
    person = db.session.get(Person, locked.person_id)
    erase_person(person, actor=actor, reason=f"erasure request {locked.id}", origin=origin)
    locked.state = PrivacyRequestState.COMPLETED.value
    locked.handled_at = now()
    locked.handled_by_id = getattr(actor, "id", None)
    db.session.flush()
    return locked


def refuse_erasure(privacy_request: PrivacyRequest, *, actor: Any, reason: str, origin: str = "") -> PrivacyRequest:
    """An organizer refuses an open erasure request with a reason the person is told
    (e.g. a record the working group is required to keep)."""
    from portal.mail.services import queue_email

    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_l("Give the reason for refusing; the person will be told."))
    locked = _lock_open_erasure(privacy_request)
    locked.state = PrivacyRequestState.REFUSED.value
    locked.handled_at = now()
    locked.handled_by_id = getattr(actor, "id", None)
    locked.refusal_reason = reason[:2000]
    record_audit("people.erasure.refused", actor=actor, subject=f"person:{locked.person_id}",
                 origin=origin, request=locked.id)
    person = db.session.get(Person, locked.person_id)
    queue_email(
        key=f"people.erasure_refused:{locked.id}",
        to=person,
        template="people/erasure_refused",
        purpose="people.erasure_refused",
        context={"reason": locked.refusal_reason},
    )
    db.session.flush()
    return locked


# --- Least privilege in reports ---------------------------------------------------------

#: Below this many people, a count could point at someone.
SMALL_COUNT_THRESHOLD = 5


def suppress_small_counts(counts: Mapping[K, int], threshold: int = SMALL_COUNT_THRESHOLD,
                          *, protect_total: bool = True) -> dict[K, int | str]:
    """Counts ready to show in a sector (or any) report, with small cells hidden.

    Any count from 1 to `threshold - 1` is shown as "fewer than 5" so no one is identifiable;
    0 stays 0 (it identifies no one). With `protect_total` (a report that also shows the
    total), a single hidden cell could be worked out by subtraction, so the next smallest
    count is hidden too. Order of keys is kept.
    """
    label = gettext("fewer than %(threshold)s", threshold=threshold)
    hidden = {key for key, value in counts.items() if 0 < value < threshold}
    if protect_total and len(hidden) == 1:
        others = sorted(((v, i) for i, (k, v) in enumerate(counts.items()) if k not in hidden and v > 0))
        if others:
            keys = list(counts)
            hidden.add(keys[others[0][1]])
    return {key: (label if key in hidden else value) for key, value in counts.items()}
