"""Domain errors. A view turns one into a message for the person, never into a 500."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l


class DomainError(Exception):
    """A rule of the portal refused the action; `message` is shown to the person."""

    message = _l("That could not be done.")
    status = 400
    #: The form field the message belongs beside, when the refusal is about one.
    field: str | None = None

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(str(self.message))


class NotFound(DomainError):
    message = _l("We could not find that.")
    status = 404


class Forbidden(DomainError):
    message = _l("You do not have permission to do that.")
    status = 403


class Busy(DomainError):
    """A lock could not be had in time; the person should simply try again."""

    message = _l("The portal is busy right now. Please try again in a moment.")
    status = 503


class RateLimited(DomainError):
    """One address asked for mail too often: a public form must not flood anyone's inbox."""

    message = _l("You have asked too often. Please wait an hour and try again.")
    status = 429


class InvalidToken(DomainError):
    """Unknown, expired, revoked or used: deliberately one error so nothing is revealed."""

    message = _l("This link is not valid. It may have expired or already been used.")
    status = 404
