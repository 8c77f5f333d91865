"""The outbox: every message the portal sends is first a row here."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models import Timestamped
from portal.extensions import db


class OutboxState(StrEnum):
    QUEUED = "queued"        # waiting for its first attempt
    SENDING = "sending"      # claimed by a sender until lease_until
    SENT = "sent"            # the SMTP server answered 250
    RETRY = "retry"          # a temporary failure; next attempt at next_attempt_at
    FAILED = "failed"        # a permanent failure or too many attempts
    WITHHELD = "withheld"    # the recipient unsubscribed before it went out


class MessageCategory(StrEnum):
    TRANSACTIONAL = "transactional"  # confirmations, notices about something the person did
    LIST = "list"                    # list posts and announcements: consent and List-* headers


class OutboxMessage(Timestamped, db.Model):
    """One email to one recipient, rendered when queued, sent at most once barring a crash."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index(
            "ix_outbox_message_due",
            "next_attempt_at",
            postgresql_where=text("state IN ('queued', 'retry', 'sending')"),
            sqlite_where=text("state IN ('queued', 'retry', 'sending')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: purpose + object + recipient: queueing the same message twice is a no-op.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    #: What the message is, e.g. "events.confirmation".
    purpose: Mapped[str] = mapped_column(String(80), index=True)
    #: transactional or list.
    category: Mapped[str] = mapped_column(String(20), default=MessageCategory.TRANSACTIONAL.value)
    #: The recipient, while they exist (erasure scrubs the address and keeps the row).
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), index=True
    )
    #: The mailing list this message went to, if any: re-checked at send time.
    list_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_list.id", ondelete="SET NULL"), index=True
    )
    #: The To: value, "Name <address>". No length limit: a non-ASCII name is RFC 2047-encoded
    #: (base64 of its UTF-8), and a 200-letter name alone can then take 1,100 characters.
    to_address: Mapped[str] = mapped_column(Text)
    #: The From: value, the operator's MAIL_*_SENDER as given.
    from_address: Mapped[str] = mapped_column(Text)
    #: The Reply-To: value (MAIL_REPLY_TO), or empty.
    reply_to: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(5), default="en")
    subject: Mapped[str] = mapped_column(String(400))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text, default="")
    #: The Message-ID header, derived from the idempotency key.
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    #: Extra headers (List-Id, List-Unsubscribe, Auto-Submitted...).
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(12), default=OutboxState.QUEUED.value, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    #: When a sender may next try it (queued: now; retry: after the backoff).
    next_attempt_at: Mapped[datetime]
    #: A claimed message belongs to its sender until then; afterwards anyone may claim it.
    lease_until: Mapped[datetime | None]
    #: Which sender holds the claim (host:pid:random).
    claimed_by: Mapped[str] = mapped_column(String(120), default="")
    sent_at: Mapped[datetime | None]
    #: The last error or the server's reply to a refused message.
    last_error: Mapped[str] = mapped_column(Text, default="")

    attachments: Mapped[list["OutboxAttachment"]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="OutboxAttachment.id"
    )


class OutboxAttachment(db.Model):
    """A file attached to an outbox message (an .ics, a QR code...).

    Most rows hold the file. A row whose `generated` is set holds what the file is drawn from
    when the message is sent (portal/mail/attachments.py); `file` is what goes out either way.
    """

    __tablename__ = "outbox_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("outbox_message.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    generated: Mapped[str] = mapped_column(String(20), default="", server_default="")

    message: Mapped[OutboxMessage] = relationship(back_populates="attachments")

    @property
    def file(self) -> bytes:
        from portal.mail.attachments import attachment_file

        return attachment_file(self.generated, self.content)
