"""Person, Sector and the consent ledger."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models import Timestamped
from portal.extensions import db


class Sector(db.Model):
    """A professional sector; the symposiums exist to mix them."""

    __tablename__ = "sector"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable identifier used in code, forms and exports.
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    #: Name in English.
    name_en: Mapped[str] = mapped_column(String(80))
    #: Name in French.
    name_fr: Mapped[str] = mapped_column(String(80))
    #: Order in lists and charts.
    position: Mapped[int] = mapped_column(default=0)

    def name(self, language: str = "en") -> str:
        return self.name_fr if language == "fr" else self.name_en


class Person(Timestamped, db.Model):
    """Someone the portal knows by email: a registrant, member, subscriber or requester."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Normalized (trimmed, case-folded) email address; one person per address.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    #: Full name as they gave it.
    name: Mapped[str] = mapped_column(String(200), default="")
    #: Organization they work for.
    organization: Mapped[str] = mapped_column(String(200), default="")
    #: Their sector, if they told us.
    sector_id: Mapped[int | None] = mapped_column(ForeignKey("sector.id"), index=True)
    #: Community they work in (e.g. "Sudbury").
    community: Mapped[str] = mapped_column(String(120), default="")
    #: Job title, optional.
    job_title: Mapped[str] = mapped_column(String(200), default="")
    #: Language for messages: "en" or "fr".
    language: Mapped[str] = mapped_column(String(5), default="en")
    #: Set when the person's data was erased; the row stays as an anonymous placeholder.
    erased_at: Mapped[datetime | None]

    sector: Mapped[Sector | None] = relationship(lazy="joined")


class ConsentKind(StrEnum):
    EXPRESS = "express"
    IMPLIED = "implied"
    WITHDRAWN = "withdrawn"


class ConsentRecord(Timestamped, db.Model):
    """One consent event, kept as CASL evidence. Append-only."""

    __tablename__ = "consent_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    #: What the consent covers, e.g. "list:symposium-announcements".
    purpose: Mapped[str] = mapped_column(String(120), index=True)
    #: express, implied or withdrawn.
    kind: Mapped[str] = mapped_column(String(12))
    #: The exact wording the person saw.
    wording: Mapped[str] = mapped_column(Text, default="")
    #: Version of that wording.
    wording_version: Mapped[str] = mapped_column(String(40), default="")
    #: The form or import the consent came from.
    source: Mapped[str] = mapped_column(String(120), default="")
    #: How it was given: "web form", "double opt-in", "import", "one-click unsubscribe"...
    method: Mapped[str] = mapped_column(String(60), default="")
    #: IP address of the request, if any.
    ip: Mapped[str] = mapped_column(String(64), default="")
    #: Browser user agent, if any.
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    #: Language the wording was shown in.
    language: Mapped[str] = mapped_column(String(5), default="en")
    #: Implied consent lapses at this moment (CASL: 2 years after a transaction, 6 months
    #: after an inquiry); express consent has none.
    expires_at: Mapped[datetime | None]


class PrivacyRequestKind(StrEnum):
    ACCESS = "access"    # the person asked to see their data (answered by the my-data link)
    ERASURE = "erasure"  # the person asked to be erased (an organizer completes or refuses it)


class PrivacyRequestState(StrEnum):
    OPEN = "open"            # waiting for an organizer
    COMPLETED = "completed"  # answered: data shown, or person erased
    REFUSED = "refused"      # refused with a recorded reason (e.g. a record we must keep)


class PrivacyRequest(Timestamped, db.Model):
    """A request to see or erase personal data; MFIPPA/PIPEDA expect an answer within 30 days."""

    __tablename__ = "privacy_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The person who asked (the row stays, anonymized, after an erasure).
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    #: access or erasure.
    kind: Mapped[str] = mapped_column(String(12))
    #: open, completed or refused.
    state: Mapped[str] = mapped_column(String(12), default=PrivacyRequestState.OPEN.value, index=True)
    #: The answer is owed by this moment (30 days after the request).
    due_at: Mapped[datetime]
    #: When an organizer (or the portal itself) answered it.
    handled_at: Mapped[datetime | None]
    #: The organizer who answered it, if one did.
    handled_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizer_account.id", ondelete="SET NULL")
    )
    #: Why an erasure was refused, as told to the person (e.g. a record we must keep).
    refusal_reason: Mapped[str] = mapped_column(Text, default="")


#: The name the issue uses for the erasure side of the ledger.
ErasureRequest = PrivacyRequest
