"""Passwords, login and logout.

Passwords are hashed with argon2id at OWASP ASVS 5 strength (m=19 MiB, t=2, p=1);
Werkzeug's default scrypt (N=2^15) is below it.
"""
from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.auth.models import LoginAttempt, LoginSession, OrganizerAccount, Role
from portal.core.audit import record_audit
from portal.core.clock import now
from portal.core.errors import DomainError
from portal.core.tokens import hash_token, new_raw_token
from portal.extensions import db
from portal.people.services import InvalidEmail, normalize_email

password_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128

#: Hash used to spend the same time on unknown accounts, so timing reveals nothing.
_DUMMY_HASH = password_hasher.hash("not-a-real-password")


class LoginFailed(DomainError):
    message = _l("That email and password do not match an organizer account.")
    status = 400


class TooManyAttempts(DomainError):
    message = _l("Too many failed attempts for this account. Try again in an hour.")
    status = 429


class WeakPassword(DomainError):
    message = _l("Use a password of at least 8 characters.")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword()
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(_l("Use a password of at most 128 characters."))
    return password_hasher.hash(password)


def create_organizer(email: str, password: str, *, name: str = "", admin: bool = False) -> OrganizerAccount:
    """Create an organizer account, or reset the password and role of an existing one."""
    address = normalize_email(email)
    account = db.session.execute(
        select(OrganizerAccount).where(OrganizerAccount.email == address)
    ).scalar_one_or_none()
    if account is None:
        account = OrganizerAccount(email=address, name=name, password_hash="")
        db.session.add(account)
    account.password_hash = hash_password(password)
    account.role = (Role.ADMIN if admin else Role.ORGANIZER).value
    if name:
        account.name = name
    db.session.flush()
    return account


def authenticate(email: str, password: str, *, origin: str = "") -> tuple[OrganizerAccount, str]:
    """Check credentials and open a login session.

    Returns the account and the raw session key to keep in the cookie. Every attempt is
    recorded; an account with 100 failures in the past hour is refused before the password
    is even checked.
    """
    try:
        address = normalize_email(email)
    except InvalidEmail:
        address = (email or "").strip().casefold()[:320]
    moment = now()
    failures = db.session.execute(
        select(func.count(LoginAttempt.id)).where(
            LoginAttempt.email == address,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at > moment - timedelta(hours=1),
        )
    ).scalar_one()
    from flask import current_app

    if failures >= current_app.config["LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR"]:
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
    """The account for a cookie, only while its login session is open."""
    if not key or not account_id.isdigit():
        return None
    login = db.session.execute(
        select(LoginSession).where(LoginSession.key_hash == hash_token(key))
    ).scalar_one_or_none()
    if login is None or login.ended_at is not None or login.account_id != int(account_id):
        return None
    account = db.session.get(OrganizerAccount, login.account_id)
    return account if account is not None and account.active else None


def end_session(key: str | None, *, account: OrganizerAccount | None = None, origin: str = "") -> None:
    """Close the login session so the cookie no longer authenticates anywhere."""
    if not key:
        return
    login = db.session.execute(
        select(LoginSession).where(LoginSession.key_hash == hash_token(key))
    ).scalar_one_or_none()
    if login is not None and login.ended_at is None:
        login.ended_at = now()
        record_audit("auth.logout", actor=account, origin=origin)
