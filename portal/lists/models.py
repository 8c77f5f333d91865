"""Mailing lists and subscriptions."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models import Timestamped
from portal.extensions import db
from portal.people.models import Person


class ListKind(StrEnum):
    PUBLIC = "public"   # anyone may subscribe (double opt-in)
    GROUP = "group"     # subscribers are exactly a working group's active members


class SubscriptionStatus(StrEnum):
    PENDING = "pending"            # asked, not yet confirmed: only the confirmation is sent
    ACTIVE = "active"              # receives posts
    UNSUBSCRIBED = "unsubscribed"  # withdrew; nothing more is sent


class MailingList(Timestamped, db.Model):
    """A list people receive announcements or group posts through."""

    __tablename__ = "mailing_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Used in URLs, the List-Id header and the CLI.
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_fr: Mapped[str] = mapped_column(String(200), default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    description_fr: Mapped[str] = mapped_column(Text, default="")
    #: public or group.
    kind: Mapped[str] = mapped_column(String(10), default=ListKind.PUBLIC.value)
    #: Only organizers (and chairs) post; replies are not distributed.
    announce_only: Mapped[bool] = mapped_column(default=True)
    #: Months to keep unsubscribed people's data before purging it.
    retention_months: Mapped[int] = mapped_column(default=24)

    def name(self, language: str = "en") -> str:
        return (self.name_fr or self.name_en) if language == "fr" else self.name_en


class Subscription(Timestamped, db.Model):
    """A person on a list, and where they stand."""

    __tablename__ = "subscription"
    __table_args__ = (UniqueConstraint("list_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    #: pending, active or unsubscribed.
    status: Mapped[str] = mapped_column(String(14), default=SubscriptionStatus.PENDING.value)
    #: SHA-256 of the opaque token in every message's unsubscribe link (valid while subscribed).
    unsubscribe_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]

    mailing_list: Mapped[MailingList] = relationship()
    person: Mapped[Person] = relationship()
