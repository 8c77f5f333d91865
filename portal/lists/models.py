"""Mailing lists, subscriptions, list posts and subscriber imports."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
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


class PostStatus(StrEnum):
    DRAFT = "draft"          # being written; nobody has received it
    SCHEDULED = "scheduled"  # will go out at send_at
    SENDING = "sending"      # claimed by the sender; being queued for every recipient
    SENT = "sent"            # queued for every recipient; in the archive


class ImportStatus(StrEnum):
    PENDING = "pending"      # uploaded, waiting for the background worker
    RUNNING = "running"      # being checked and imported
    DONE = "done"            # imported; see the report
    REJECTED = "rejected"    # the file had bad rows: nothing was imported
    FAILED = "failed"        # an error stopped it: nothing was imported


class MailingList(Timestamped, db.Model):
    """A list people receive announcements or group posts through."""

    __tablename__ = "mailing_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Used in URLs, the List-Id header and the CLI.
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    #: Name in English.
    name_en: Mapped[str] = mapped_column(String(200))
    #: Name in French.
    name_fr: Mapped[str] = mapped_column(String(200), default="")
    #: What subscribers will receive, in English.
    description_en: Mapped[str] = mapped_column(Text, default="")
    #: What subscribers will receive, in French.
    description_fr: Mapped[str] = mapped_column(Text, default="")
    #: public or group.
    kind: Mapped[str] = mapped_column(String(10), default=ListKind.PUBLIC.value)
    #: Only organizers (and chairs) post; replies are not distributed.
    announce_only: Mapped[bool] = mapped_column(default=True)
    #: Months to keep unsubscribed people's data before purging it.
    retention_months: Mapped[int] = mapped_column(default=24)

    def name(self, language: str = "en") -> str:
        return (self.name_fr or self.name_en) if language == "fr" else self.name_en

    def description(self, language: str = "en") -> str:
        return (self.description_fr or self.description_en) if language == "fr" else self.description_en

    @property
    def is_public(self) -> bool:
        return self.kind == ListKind.PUBLIC

    @property
    def consent_purpose(self) -> str:
        """The consent-ledger purpose that covers this list's posts."""
        return f"list:{self.slug}"


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
    #: Random value the unsubscribe token is derived from (with the secret key), so the
    #: token can be rebuilt for each message without ever being stored.
    unsubscribe_salt: Mapped[str] = mapped_column(String(64), default="")
    #: Where the subscription came from: the subscribe form, an import, group membership...
    source: Mapped[str] = mapped_column(String(120), default="")
    #: When the person last asked to subscribe (double opt-in: before confirming).
    requested_at: Mapped[datetime | None]
    #: The consent wording shown when they asked, kept for the ledger row at confirmation.
    requested_wording: Mapped[str] = mapped_column(Text, default="", info={"personal": True})
    #: Version of that wording.
    requested_wording_version: Mapped[str] = mapped_column(String(40), default="")
    #: IP address the request came from.
    requested_ip: Mapped[str] = mapped_column(String(64), default="", info={"personal": True})
    #: Browser user agent of the request.
    requested_user_agent: Mapped[str] = mapped_column(String(300), default="", info={"personal": True})
    #: Language the wording was shown in.
    requested_language: Mapped[str] = mapped_column(String(5), default="en")
    #: Language they asked their messages in; theirs once they confirm (the link proves the
    #: address), not before (anyone can type an address into the form).
    requested_message_language: Mapped[str] = mapped_column(String(5), default="", server_default="")
    #: When they confirmed (or were added with evidence of consent).
    confirmed_at: Mapped[datetime | None]
    #: When they left the list.
    unsubscribed_at: Mapped[datetime | None]

    mailing_list: Mapped[MailingList] = relationship()
    person: Mapped[Person] = relationship()


class ListPost(Timestamped, db.Model):
    """A message written for a list: a draft, scheduled, or sent (and then in the archive)."""

    __tablename__ = "list_post"
    __table_args__ = (
        Index(
            "ix_list_post_due",
            "send_at",
            postgresql_where=text("status = 'scheduled'"),
            sqlite_where=text("status = 'scheduled'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"), index=True)
    #: Subject line of the message.
    subject: Mapped[str] = mapped_column(String(200))
    #: The message in markdown; recipients get sanitized HTML and this text.
    body: Mapped[str] = mapped_column(Text, default="")
    #: The language it is written in ("en" or "fr"): pages and emails mark it, so a screen
    #: reader speaks an English message on a French page in English (WCAG 3.1.2).
    language: Mapped[str] = mapped_column(String(2), default="en", server_default="en")
    #: The organizer (or chair) who wrote it.
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizer_account.id", ondelete="SET NULL"), index=True
    )
    #: draft, scheduled, sending or sent.
    status: Mapped[str] = mapped_column(String(12), default=PostStatus.DRAFT.value, index=True)
    #: When a scheduled post goes out.
    send_at: Mapped[datetime | None]
    #: When it was queued for every recipient.
    sent_at: Mapped[datetime | None]
    #: How many subscribers it was queued for.
    recipient_count: Mapped[int] = mapped_column(default=0)

    mailing_list: Mapped[MailingList] = relationship()


class ImportJob(Timestamped, db.Model):
    """A CSV of subscribers being imported into a list, with its progress and report."""

    __tablename__ = "list_import_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"), index=True)
    #: The organizer who uploaded it.
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizer_account.id", ondelete="SET NULL"), index=True
    )
    #: Name of the uploaded file, as shown back to the organizer.
    filename: Mapped[str] = mapped_column(String(200), default="")
    #: The uploaded CSV; emptied once the import has finished.
    content: Mapped[str] = mapped_column(Text, default="", info={"personal": True})
    #: Send a confirmation request to rows without consent evidence (else leave them out).
    ask_unconfirmed: Mapped[bool] = mapped_column(default=True)
    #: pending, running, done, rejected or failed.
    status: Mapped[str] = mapped_column(String(10), default=ImportStatus.PENDING.value, index=True)
    #: Rows in the file (without the header).
    total_rows: Mapped[int] = mapped_column(default=0)
    #: Rows checked so far.
    processed_rows: Mapped[int] = mapped_column(default=0)
    #: A worker owns a running import until then; afterwards another may take it over.
    lease_until: Mapped[datetime | None]
    #: When it finished.
    finished_at: Mapped[datetime | None]
    #: What happened to each row: counts and line numbers.
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, info={"personal": True})

    mailing_list: Mapped[MailingList] = relationship()
