"""Login, logout, the life of a login session, and changing one's password.

The password rule and hashing live in `portal.auth.passwords`.

A login session ends at logout, after SESSION_IDLE_MINUTES without a request, and
SESSION_MAX_HOURS after sign-in whatever the activity (OWASP ASVS 3.3.1, 3.3.2). Both limits
are checked against the session's row on every request, so neither a copied cookie nor one
Flask signs again keeps it alive.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update

from portal.auth.models import LoginAttempt, LoginSession, OrganizerAccount, Role
from portal.auth.passwords import (  # noqa: F401  (hash_password and WeakPassword are used from here)
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    WeakPassword,
    hash_password,
    password_hasher,
)
from portal.core.audit import AuditEntry, record_audit
from portal.core.clock import now
from portal.core.db import locked
from portal.core.errors import DomainError
from portal.core.tokens import hash_token, new_raw_token
from portal.extensions import db
from portal.people.services import InvalidEmail, normalize_email

#: Hash used to spend the same time on unknown accounts, so timing reveals nothing.
_DUMMY_HASH = password_hasher.hash("not-a-real-password")

#: last_seen_at is moved on at most this often: a GET that writes costs a writer transaction.
SEEN_PRECISION = timedelta(minutes=1)


class LoginFailed(DomainError):
    message = _l("That email and password do not match an organizer account.")
    status = 400


class TooManyAttempts(DomainError):
    message = _l("Too many failed attempts for this account. Try again in an hour.")
    status = 429


class WrongCurrentPassword(DomainError):
    message = _l("That is not your current password.")
    field = "current_password"


class SamePassword(DomainError):
    message = _l("Choose a new password, not the one you have now.")
    field = "new_password"


class SessionEnd(StrEnum):
    """Why the server ended a login session on its own."""

    IDLE = "idle"          # SESSION_IDLE_MINUTES without a request
    LIFETIME = "lifetime"  # SESSION_MAX_HOURS since sign-in


def create_organizer(email: str, password: str, *, name: str = "", admin: bool = False) -> OrganizerAccount:
    """Create an organizer account, or set the password and role of an existing one (the
    demo data and the tests' factories; the command line refuses an existing account unless
    told to reset it: `reset_account`)."""
    address = normalize_email(email)
    account = db.session.execute(
        select(OrganizerAccount).where(OrganizerAccount.email == address)
    ).scalar_one_or_none()
    if account is None:
        account = OrganizerAccount(email=address, name=name, password_hash="")
        db.session.add(account)
    account.password_hash = hash_password(password, email=address, name=name or account.name)
    account.role = (Role.ADMIN if admin else Role.ORGANIZER).value
    if name:
        account.name = name
    db.session.flush()
    return account


def account_with_address(email: str) -> OrganizerAccount | None:
    return db.session.execute(
        select(OrganizerAccount).where(OrganizerAccount.email == normalize_email(email))
    ).scalar_one_or_none()


def reset_account(account: OrganizerAccount, password: str, *, admin: bool, name: str = "",
                  origin: str = "command line") -> int:
    """Give an existing account a new password and role (the operator, from the command
    line: a forgotten password, a promotion); every login session of the account ends, and
    the reset is audited (never the password). Returns how many sessions ended."""
    account.password_hash = hash_password(password, email=account.email, name=name or account.name)
    was = account.role
    account.role = (Role.ADMIN if admin else Role.ORGANIZER).value
    if name:
        account.name = name
    ended = db.session.execute(
        update(LoginSession).where(LoginSession.account_id == account.id, LoginSession.ended_at.is_(None))
        .values(ended_at=now()).execution_options(synchronize_session=False)
    ).rowcount or 0
    record_audit("auth.account.reset", actor_label="command line", subject=f"account:{account.id}",
                 origin=origin, role_was=was, role=account.role, sessions_ended=ended)
    db.session.flush()
    return ended


def authenticate(email: str, password: str, *, origin: str = "") -> tuple[OrganizerAccount, str]:
    """Check credentials and open a login session.

    Returns the account and the raw session key to keep in the cookie. Every attempt is
    recorded; an account with 100 failures in the past hour is refused before the password
    is even checked.
    """
    address = attempted_address(email)
    moment = now()
    if address != NOT_AN_ADDRESS and (
            _recent_failures(address, moment) >= current_app.config["LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR"]):
        _log_attempt(address, False, origin, reason="throttled")
        raise TooManyAttempts()

    account = db.session.execute(
        select(OrganizerAccount).where(OrganizerAccount.email == address)
    ).scalar_one_or_none()
    ok = False
    try:
        ok = password_hasher.verify(account.password_hash if account else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or account is None or not account.active:
        _log_attempt(address, False, origin, account=account)
        raise LoginFailed()
    if password_hasher.check_needs_rehash(account.password_hash):
        account.password_hash = password_hasher.hash(password)
    _log_attempt(address, True, origin, account=account)
    key = new_raw_token()
    db.session.add(LoginSession(key_hash=hash_token(key), account_id=account.id, last_seen_at=moment))
    return account, key


#: What a login attempt is recorded under when what was typed is not an email address: it may
#: well be the password typed in the wrong box, and credentials are never logged (ASVS).
NOT_AN_ADDRESS = "(not an email address)"


def attempted_address(email: str | None) -> str:
    """The address a login attempt is recorded (and counted) under: the typed address,
    normalized, or NOT_AN_ADDRESS (no account has it, so nothing is lost by not keeping it)."""
    try:
        return normalize_email(email or "")
    except InvalidEmail:
        return NOT_AN_ADDRESS


def refused_login_to_record(email: str | None, *, origin: str = "") -> str | None:
    """A login attempt refused by the rate limit (before the password was looked at) goes on
    the audit log once a minute per address and per origin, so a flood of refused attempts,
    even with a new address each time, is not a flood of writes (the application log has a
    line for every one). Returns the address to record it under, or None. Only reads."""
    address = attempted_address(email)
    since = now() - timedelta(minutes=1)
    recently = db.session.execute(
        select(AuditEntry.id).where(AuditEntry.action == "auth.login.rate_limited", AuditEntry.at > since,
                                    or_(AuditEntry.actor_label == address, AuditEntry.origin == origin[:64]))
        .limit(1)
    ).first()
    return None if recently is not None else address


def record_refused_login(address: str, *, origin: str = "") -> None:
    """Put a rate-limited login attempt on the audit log (see `refused_login_to_record`); it is
    not counted as a failed password against the account."""
    record_audit("auth.login.rate_limited", actor_label=address, origin=origin)


def _recent_failures(address: str, moment: datetime) -> int:
    """Failed password checks for this address in the past hour (logins and password changes)."""
    return db.session.execute(
        select(func.count(LoginAttempt.id)).where(
            LoginAttempt.email == address,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at > moment - timedelta(hours=1),
        )
    ).scalar_one()


def _log_attempt(address: str, succeeded: bool, origin: str, *, account=None, reason: str = "") -> None:
    db.session.add(LoginAttempt(email=address, succeeded=succeeded, at=now(), origin=origin[:64]))
    record_audit(
        "auth.login.succeeded" if succeeded else "auth.login.failed",
        actor=account if succeeded else None,
        actor_label=address,
        origin=origin,
        **({"reason": reason} if reason else {}),
    )


def load_session_account(account_id: str, key: str | None) -> OrganizerAccount | None:
    """The account for a cookie, only while its login session is open and within its limits."""
    if not key or not account_id.isdigit():
        return None
    login = find_login_session(key)
    if login is None or login.ended_at is not None or login.account_id != int(account_id):
        return None
    if session_expiry(login, now()) is not None:
        return None  # the request's first step ends it (keep_session_alive); it authenticates nothing
    account = db.session.get(OrganizerAccount, login.account_id)
    return account if account is not None and account.active else None


def find_login_session(key: str | None) -> LoginSession | None:
    if not key:
        return None
    return db.session.execute(
        select(LoginSession).where(LoginSession.key_hash == hash_token(key))
    ).scalar_one_or_none()


def session_expiry(login: LoginSession, moment: datetime) -> SessionEnd | None:
    """Why `login` should end at `moment`, or None while it is within both limits."""
    config = current_app.config
    if moment - login.created_at > timedelta(hours=config["SESSION_MAX_HOURS"]):
        return SessionEnd.LIFETIME
    if moment - (login.last_seen_at or login.created_at) > timedelta(minutes=config["SESSION_IDLE_MINUTES"]):
        return SessionEnd.IDLE
    return None


@dataclass(frozen=True)
class SessionDue:
    """A login session with something to write: its end (`reason`), or a new last_seen_at."""

    login_id: int
    account_id: int
    reason: SessionEnd | None


def session_due(key: str | None) -> SessionDue | None:
    """Read-only: what the login session behind a request's cookie needs written before the
    request is served, or None (no open session, or seen less than a minute ago and within
    its limits: most requests stop here without writing)."""
    login = find_login_session(key)
    if login is None or login.ended_at is not None:
        return None
    moment = now()
    reason = session_expiry(login, moment)
    if reason is None and login.last_seen_at is not None and moment - login.last_seen_at < SEEN_PRECISION:
        return None
    return SessionDue(login.id, login.account_id, reason)


def keep_session_alive(due: SessionDue, *, origin: str = "") -> SessionEnd | None:
    """End a login session past its limits (audited; returns why) or move its last_seen_at
    on (returns None). Run in a writer transaction of its own, which the caller commits (on
    SQLite a reading transaction promoted to a writer may fail with "database is locked"
    under load). Both are guarded UPDATEs: two requests racing do the work once."""
    moment = now()
    if due.reason is None:
        db.session.execute(
            update(LoginSession)
            .where(LoginSession.id == due.login_id, LoginSession.ended_at.is_(None),
                   or_(LoginSession.last_seen_at.is_(None), LoginSession.last_seen_at <= moment - SEEN_PRECISION))
            .values(last_seen_at=moment)
            .execution_options(synchronize_session=False)
        )
        return None
    ended = db.session.execute(
        update(LoginSession)
        .where(LoginSession.id == due.login_id, LoginSession.ended_at.is_(None))
        .values(ended_at=moment)
        .execution_options(synchronize_session=False)
    ).rowcount
    if ended:
        record_audit("auth.session.expired", actor=db.session.get(OrganizerAccount, due.account_id),
                     origin=origin, reason=due.reason.value)
    return due.reason


def end_session(key: str | None, *, account: OrganizerAccount | None = None, origin: str = "") -> None:
    """Close the login session so the cookie no longer authenticates anywhere."""
    login = find_login_session(key)
    if login is not None and login.ended_at is None:
        login.ended_at = now()
        record_audit("auth.logout", actor=account, origin=origin)


def change_password(account: OrganizerAccount, current: str, new: str, *, keep_session_key: str | None,
                    origin: str = "") -> int:
    """Give `account` the password `new` once `current` is checked; returns how many of its
    other login sessions were ended (the one whose key is `keep_session_key` stays open).

    A wrong current password counts as a failed login for the account (the same 100 an hour
    throttle applies, checked first: `TooManyAttempts`) and raises `WrongCurrentPassword`;
    the caller commits to keep that record. A new password that breaks the rule raises
    `WeakPassword`, one equal to the current `SamePassword`. The change is audited, never
    the password.
    """
    moment = now()
    if _recent_failures(account.email, moment) >= current_app.config["LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR"]:
        record_audit("auth.password.change_refused", actor=account, origin=origin, reason="throttled")
        raise TooManyAttempts()
    # The password as it is now, under the account's row lock: two browsers changing it at
    # once both passed the check against the old one, and only the last change held.
    account = locked(account)
    try:
        ok = password_hasher.verify(account.password_hash, current or "")
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        db.session.add(LoginAttempt(email=account.email, succeeded=False, at=moment, origin=origin[:64]))
        record_audit("auth.password.change_refused", actor=account, origin=origin, reason="wrong current password")
        raise WrongCurrentPassword()
    if new == current:
        raise SamePassword()
    try:
        account.password_hash = hash_password(new, email=account.email, name=account.name)
    except WeakPassword as error:
        error.field = "new_password"
        raise
    others = update(LoginSession).where(LoginSession.account_id == account.id, LoginSession.ended_at.is_(None))
    if keep_session_key:
        others = others.where(LoginSession.key_hash != hash_token(keep_session_key))
    ended = db.session.execute(
        others.values(ended_at=moment).execution_options(synchronize_session=False)
    ).rowcount or 0
    record_audit("auth.password.changed", actor=account, subject=f"account:{account.id}", origin=origin,
                 other_sessions_ended=ended)
    db.session.flush()
    return ended
