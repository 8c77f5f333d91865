"""Organizer accounts and their server-side login sessions."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.models import Timestamped
from portal.extensions import db


class Role(StrEnum):
    ADMIN = "admin"          # everything, including accounts and the audit log
    ORGANIZER = "organizer"  # events, groups, lists, guidelines
    CHAIR = "chair"          # a working-group chair: only their own group (groups package)


class OrganizerAccount(UserMixin, Timestamped, db.Model):
    """Someone who runs the portal: publishes events, manages lists and releases."""

    __tablename__ = "organizer_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Login address, normalized.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    #: Name shown in the audit log and on posts.
    name: Mapped[str] = mapped_column(String(200), default="")
    #: argon2id hash of the password.
    password_hash: Mapped[str] = mapped_column(String(255))
    #: admin or organizer.
    role: Mapped[str] = mapped_column(String(20), default=Role.ORGANIZER.value)
    #: A deactivated account cannot log in.
    active: Mapped[bool] = mapped_column(default=True)

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_organizer(self) -> bool:
        return self.role in (Role.ADMIN, Role.ORGANIZER)


class LoginSession(Timestamped, db.Model):
    """A signed-in browser. Logout ends it here, so a copied cookie stops working."""

    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 of the random key kept in the session cookie.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("organizer_account.id", ondelete="CASCADE"), index=True
    )
    #: Set at logout; an ended session no longer authenticates.
    ended_at: Mapped[datetime | None]
    #: Last request seen with this session.
    last_seen_at: Mapped[datetime | None]


class LoginAttempt(db.Model):
    """Every login attempt, for throttling per account and for the record."""

    __tablename__ = "login_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The address typed (normalized when it parses).
    email: Mapped[str] = mapped_column(String(320), index=True)
    succeeded: Mapped[bool]
    at: Mapped[datetime] = mapped_column(index=True)
    origin: Mapped[str] = mapped_column(String(64), default="")
