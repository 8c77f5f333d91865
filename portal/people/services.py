"""Finding and creating people, sectors, and recording consent."""
from __future__ import annotations

from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.core.clock import now
from portal.core.errors import DomainError
from portal.extensions import db
from portal.people.models import ConsentKind, ConsentRecord, Person, Sector

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


def normalize_email(raw: str | None) -> str:
    """Trim, validate and case-fold an address; raise `InvalidEmail` if it is not one."""
    candidate = (raw or "").strip()
    if not candidate or len(candidate) > 320:
        raise InvalidEmail()
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail() from exc
    return result.normalized.casefold()


def seed_sectors() -> None:
    """Create the standard sectors if they are missing (idempotent)."""
    existing = {s.slug: s for s in db.session.execute(select(Sector)).scalars()}
    for position, (slug, name_en, name_fr) in enumerate(SECTORS):
        if slug not in existing:
            db.session.add(Sector(slug=slug, name_en=name_en, name_fr=name_fr, position=position))
    db.session.flush()


def list_sectors() -> list[Sector]:
    return list(db.session.execute(select(Sector).order_by(Sector.position)).scalars())


def find_person(email: str) -> Person | None:
    return db.session.execute(
        select(Person).where(Person.email == normalize_email(email))
    ).scalar_one_or_none()


def get_or_create_person(email: str, **details: object) -> Person:
    """Return the person with this address, creating them if new.

    Details given (name, organization, ...) fill in blanks and update what the person has
    just told us; an empty value never overwrites a known one. Safe under concurrency: a
    simultaneous insert of the same address is caught by the unique constraint and re-read.
    """
    address = normalize_email(email)
    person = db.session.execute(select(Person).where(Person.email == address)).scalar_one_or_none()
    if person is None:
        try:
            with db.session.begin_nested():
                person = Person(email=address)
                db.session.add(person)
                db.session.flush()
        except IntegrityError:
            person = db.session.execute(select(Person).where(Person.email == address)).scalar_one()
    for field, value in details.items():
        if value not in (None, "") and hasattr(person, field):
            setattr(person, field, value)
    return person


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
