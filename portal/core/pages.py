"""Error pages in the portal's layout; no error a visitor can cause becomes a 500."""
from __future__ import annotations

import math
import time

from flask import Flask, render_template, request
from flask_babel import lazy_gettext as _l
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.core.errors import DomainError

ERROR_TEXT = {
    400: (_l("Bad request"), _l("The request could not be understood. Check what you entered and try again.")),
    403: (_l("Not allowed"), _l("You do not have permission to see this page.")),
    404: (_l("Page not found"), _l("We could not find that page. It may have moved, or the link may have expired.")),
    405: (_l("Not allowed"), _l("That action is not available here.")),
    409: (_l("Not possible now"), _l("That cannot be done in the state things are in now.")),
    410: (_l("No longer available"), _l("What this link was for has been withdrawn and is no longer available.")),
    413: (_l("File too large"), _l("What you sent is larger than the portal accepts.")),
    429: (_l("Too many requests"), _l("You have tried that too often. Please wait a little and try again.")),
    500: (_l("Something went wrong"), _l("An error on our side stopped this page. It has been logged; please try again later.")),
    503: (_l("Busy"), _l("The portal is busy right now. Please try again in a moment.")),
}


def render_error(code: int, message: str | None = None, title: str | None = None):
    default_title, default_message = ERROR_TEXT.get(code, ERROR_TEXT[400])
    return (
        render_template(
            "errors/error.html",
            code=code,
            title=title or default_title,
            message=message or default_message,
        ),
        code,
    )


def register_error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError):
        return render_error(
            400,
            title=str(_l("Your form expired")),
            message=str(_l("For your security the form could not be accepted. Go back, reload the page and submit it again.")),
        )

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        from portal.extensions import db

        db.session.rollback()
        return render_error(error.status, message=str(error.message))

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(error: RateLimitExceeded):
        from portal.extensions import limiter

        limit = limiter.current_limit
        wait = math.ceil(limit.reset_at - time.time()) if limit is not None else 60
        page, code = ({"error": error.name}, 429) if request.path.startswith("/api/") else render_error(429)
        return page, code, {"Retry-After": str(max(wait, 1))}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 500
        if request.path.startswith("/api/"):
            return {"error": error.name}, code
        return render_error(code if code in ERROR_TEXT else 400 if code < 500 else 500)

    from sqlalchemy.exc import OperationalError

    @app.errorhandler(OperationalError)
    def database_refused(error: OperationalError):
        """A lock not had within the lock timeout (PostgreSQL's lock_timeout, SQLite's busy
        timeout) wherever it happens: the person is asked to try again (503 with Retry-After),
        as the seat lock already does, rather than shown a 500. Anything else the database
        refused stays a logged 500."""
        from portal.extensions import db

        db.session.rollback()
        if not _lock_not_had(error):
            app.logger.exception("database error", exc_info=error)
            return render_error(500)
        app.logger.warning("a lock was not had in time: %s", type(error.orig).__name__)
        page, code = render_error(503)
        return page, code, {"Retry-After": "5"}

    @app.errorhandler(500)
    def server_error(error):
        from portal.extensions import db

        db.session.rollback()
        return render_error(500)


def _lock_not_had(error: Exception) -> bool:
    """PostgreSQL's lock timeout (SQLSTATE 55P03) or SQLite's "database is locked"."""
    original = getattr(error, "orig", None)
    return getattr(original, "sqlstate", None) == "55P03" or "database is locked" in str(original)
