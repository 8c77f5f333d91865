"""Small pieces views share: where a request came from, safe redirects, domain errors."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import request
from werkzeug.routing import IntegerConverter, UnicodeConverter
from werkzeug.wrappers import Response

from portal.core.db import MAX_ID


def request_origin() -> str:
    """The client address (ProxyFix, when configured, has already resolved forwarding)."""
    return (request.remote_addr or "")[:64]


def user_agent() -> str:
    """The browser's own description, as stored beside consent and audit records: a forged
    header's NUL or control characters are dropped (PostgreSQL refuses NUL outright)."""
    from portal.core.forms import without_control_characters

    return without_control_characters(request.headers.get("User-Agent") or "")[:300]


def per_typed_address(prefix: str) -> Callable[[], str]:
    """A rate-limit key: the address typed in the form's `email` field, whatever IP it comes
    from, for forms that email that address (nobody floods someone else's inbox)."""
    def key() -> str:
        return f"{prefix}:" + (request.form.get("email") or "").strip().casefold()[:320]
    return key


def form_accepted(response: Response) -> bool:
    """For `deduct_when` on a per-address limit: only a submission the form accepted uses up
    the address's allowance. A refused one sends nothing; counted, a blank address would
    share one allowance among every visitor, and anyone's bad posts could use up someone
    else's (the per-IP limit still counts every attempt)."""
    return response.status_code < 400


def is_safe_next(target: str | None) -> bool:
    """Only a path on this site: no scheme, no host, no protocol-relative `//evil`."""
    if not target or len(target) > 500:
        return False
    if any(ch.isspace() or not ch.isprintable() for ch in target):
        return False  # a path the portal links to has no spaces, line breaks or controls
    if target.startswith("//") or target.startswith("/\\") or "\\" in target:
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and target.startswith("/")


class BoundedIntegerConverter(IntegerConverter):
    """`<int:id>` that only matches ids a database column can hold.

    Werkzeug's converter accepts any length of digits; SQLite then raises OverflowError and
    PostgreSQL a NumericValueOutOfRange, i.e. a 500 for a typo. Past `MAX_ID` (every id
    column is an int4) this is a 404.
    """

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class PathTextConverter(UnicodeConverter):
    """`<slug>`, `<token>`: any text of one path segment except NUL, which no slug or token
    holds and which PostgreSQL refuses even to compare (a 500 where a 404 is meant)."""

    def __init__(self, map, *args, **kwargs) -> None:
        super().__init__(map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\\x00]")  # werkzeug sets it per instance


def speak_the_language_of(person: Any) -> None:
    """A page reached from a link we emailed someone speaks their language, as the email
    did, unless this browser has chosen one with the language switch."""
    from flask import g
    from flask_babel import refresh

    language = getattr(person, "language", None)
    if language:
        g.portal_person_language = language
        refresh()


def current_language() -> str:
    """The page's language as the portal stores it: "fr" for any French locale, else "en"."""
    from flask_babel import get_locale

    locale = get_locale()
    return "fr" if locale and str(locale).startswith("fr") else "en"


def audit_page_view(action: str, subject: str, **detail: object) -> None:
    """Record that the signed-in organizer or chair looked at personal data (from a GET).

    A GET's transaction began as a reader; on SQLite turning it into a writer midway can fail
    under load, so the entry is written and committed in its own short writer transaction
    before the page is rendered.
    """
    from flask_login import current_user

    from portal.core.audit import record_audit
    from portal.core.db import writing
    from portal.extensions import db

    actor = current_user._get_current_object()
    db.session.rollback()
    with writing():
        record_audit(action, actor=actor, subject=subject, origin=request_origin(), **detail)
        db.session.commit()


def submit_form(form: Any, action: Callable[[], Any], *, error_field: str,
                redirect_to: str | Callable[[Any], str], success: str | None = None) -> Response | int:
    """The POST half of a form page, in the portal's fixed steps: validate, call the service,
    commit once.

    Returns the redirect after a commit, or the status to render the form again with: 200 for
    a GET, 400 for an invalid form, or the DomainError's own status, its message shown on
    the field the error names (its `field`) or else `error_field`, after the transaction is
    rolled back. `redirect_to` is a URL, or a function
    of what the service returned (e.g. the page of the group just created); `success` is
    flashed after the commit.
    """
    from flask import flash, redirect

    from portal.core.errors import DomainError
    from portal.extensions import db

    if not form.validate_on_submit():
        return 400 if request.method == "POST" else 200
    try:
        result = action()
    except DomainError as error:
        db.session.rollback()
        # An error may name the field it is about (DomainError.field); else `error_field`.
        field = form[error.field] if error.field and error.field in form else form[error_field]
        field.errors = list(field.errors) + [str(error.message)]
        return error.status
    # Built before the commit, which expires what the service returned.
    target = redirect_to(result) if callable(redirect_to) else redirect_to
    db.session.commit()
    if success:
        flash(success, "success")
    return redirect(target)
