"""The audit log: who did what with personal data, and every login attempt.

Append-only: the portal never updates or deletes an entry (erasure scrubs the subject's
name from `detail` but keeps the entry).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.core.clock import now
from portal.extensions import db


class AuditEntry(db.Model):
    """One action on personal data or one authentication event."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: When it happened (UTC).
    at: Mapped[datetime] = mapped_column(index=True)
    #: The organizer account that acted, if any.
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizer_account.id", ondelete="SET NULL"), index=True
    )
    #: Who acted, as shown to admins (kept when the account is gone).
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    #: Dotted action name, e.g. "events.attendees.exported".
    action: Mapped[str] = mapped_column(String(80), index=True)
    #: What was acted on, e.g. "event:3" or "person:17".
    subject: Mapped[str] = mapped_column(String(120), default="")
    #: Where the request came from (IP address).
    origin: Mapped[str] = mapped_column(String(64), default="")
    #: Anything else worth keeping; never tokens or passwords.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def record_audit(
    action: str,
    *,
    actor: Any = None,
    actor_label: str | None = None,
    subject: str = "",
    origin: str = "",
    **detail: Any,
) -> AuditEntry:
    """Append an audit entry in the current transaction."""
    entry = AuditEntry(
        at=now(),
        actor_id=getattr(actor, "id", None),
        actor_label=actor_label if actor_label is not None else getattr(actor, "email", "") or "",
        action=action,
        subject=subject,
        origin=origin[:64],
        detail=detail,
    )
    db.session.add(entry)
    return entry


class AuditLogIsAppendOnly(RuntimeError):
    """Raised when code tries to change or remove an audit entry."""


#: Set only by `scrub_audit_entries` (erasure), the one sanctioned change to old entries.
_scrubbing: ContextVar[bool] = ContextVar("portal_audit_scrubbing", default=False)


@event.listens_for(AuditEntry, "before_update")
def _refuse_update(mapper, connection, target) -> None:
    if not _scrubbing.get():
        raise AuditLogIsAppendOnly("audit entries are never updated")


@event.listens_for(AuditEntry, "before_delete")
def _refuse_delete(mapper, connection, target) -> None:
    raise AuditLogIsAppendOnly("audit entries are never deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state) -> None:
    # `update(AuditEntry)` / `delete(AuditEntry)` bypass the flush events above.
    if not (state.is_update or state.is_delete) or not state.is_orm_statement:
        return
    mapper = state.bind_mapper
    if mapper is not None and mapper.class_ is AuditEntry:
        if state.is_delete or not _scrubbing.get():
            raise AuditLogIsAppendOnly("audit entries are never updated or deleted")


@contextmanager
def scrub_audit_entries() -> Iterator[None]:
    """Allow erasure to replace a person's address or name inside existing entries.

    Only updates are allowed, never deletes: the entry and its action stay on record.
    """
    token = _scrubbing.set(True)
    try:
        yield
    finally:
        _scrubbing.reset(token)
