"""Opaque, expiring, single-purpose tokens for links in emails.

The raw token (256 bits from `secrets`) goes into the link and is never stored or logged;
the database keeps its SHA-256. A token answers one purpose only, so a manage link cannot be
replayed as a download link.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, event, select, update
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from portal.core.clock import now
from portal.core.errors import InvalidToken
from portal.core.models import Timestamped
from portal.extensions import db


def new_raw_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


class AccessToken(Timestamped, db.Model):
    """A link someone received by email, and what it lets them do."""

    __tablename__ = "access_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 of the token in the link.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: What the link is for, e.g. "events.manage", "lists.confirm", "guidelines.download".
    purpose: Mapped[str] = mapped_column(String(60), index=True)
    #: The person the link was sent to.
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), index=True
    )
    #: The id of the thing the link acts on (a registration, a subscription, ...).
    subject_id: Mapped[int | None] = mapped_column(index=True)
    #: After this moment the link no longer works.
    expires_at: Mapped[datetime]
    #: Set when an organizer or the person revoked the link.
    revoked_at: Mapped[datetime | None]
    #: Set the first time a one-use link was used.
    used_at: Mapped[datetime | None]
    #: How many times the link was used by a request that was kept (committed): one that
    #: changed something or downloaded a file. Only looking at its page is not counted.
    use_count: Mapped[int] = mapped_column(default=0)


def issue_token(
    purpose: str,
    *,
    person_id: int | None,
    subject_id: int | None = None,
    valid_for: timedelta,
) -> str:
    """Create a token for `purpose` and return the raw value for the link (only time it exists)."""
    raw = new_raw_token()
    db.session.add(
        AccessToken(
            token_hash=hash_token(raw),
            purpose=purpose,
            person_id=person_id,
            subject_id=subject_id,
            expires_at=now() + valid_for,
        )
    )
    return raw


def resolve_token(purpose: str, raw: str | None, *, consume: bool = False) -> AccessToken:
    """Return the live token for `raw`, or raise `InvalidToken` (unknown, other purpose,
    expired, revoked or already used all look the same to the visitor)."""
    if not raw or len(raw) > 200:
        raise InvalidToken()
    token = db.session.execute(
        select(AccessToken).where(AccessToken.token_hash == hash_token(raw))
    ).scalar_one_or_none()
    moment = now()
    if (
        token is None
        or token.purpose != purpose
        or token.revoked_at is not None
        or token.expires_at <= moment
        or (consume and token.used_at is not None)
    ):
        raise InvalidToken()
    if consume:
        token.used_at = moment
    # Counted as the transaction commits (`_count_uses`), not here: a page that only looks
    # writes nothing (on SQLite a reader that writes fails if another writer went first),
    # the row is locked last, after whatever the use locks, and two uses at once add two.
    db.session.info.setdefault(_USED_TOKENS, set()).add(token.id)
    return token


#: session.info key: ids of the tokens resolved in the current transaction.
_USED_TOKENS = "portal_used_tokens"


@event.listens_for(Session, "before_commit")
def _count_uses(session: Session) -> None:
    if session.in_nested_transaction() or not session.info.get(_USED_TOKENS):
        return
    used = sorted(session.info.pop(_USED_TOKENS))  # in id order: two such commits never deadlock
    session.execute(update(AccessToken).where(AccessToken.id.in_(used))
                    .values(use_count=AccessToken.use_count + 1).execution_options(synchronize_session=False))


@event.listens_for(Session, "after_transaction_end")
def _forget_uses(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back or closed uncommitted: those uses are not kept
        session.info.pop(_USED_TOKENS, None)


def revoke_tokens(purpose: str, *, person_id: int | None = None, subject_id: int | None = None) -> int:
    """Revoke every live token for this purpose and person/subject; returns how many."""
    query = select(AccessToken).where(
        AccessToken.purpose == purpose, AccessToken.revoked_at.is_(None)
    )
    if person_id is not None:
        query = query.where(AccessToken.person_id == person_id)
    if subject_id is not None:
        query = query.where(AccessToken.subject_id == subject_id)
    count = 0
    for token in db.session.execute(query).scalars():
        token.revoked_at = now()
        count += 1
    return count


def mask(raw: str | None) -> str:
    """What a log may show of a token."""
    if not raw:
        return ""
    return raw[:4] + "…"
