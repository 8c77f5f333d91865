"""Who may see organizer pages. Declared once here; every organizer view uses these.

An anonymous visitor is sent to the login page; a signed-in account without the role gets a
403 (and the refusal is logged).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import NoReturn, TypeVar

from flask import abort, current_app, request
from flask_login import current_user

F = TypeVar("F", bound=Callable)


def _require(check: Callable[[object], bool]) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if not check(current_user):
                current_app.logger.warning(
                    "authorization refused: account=%s path=%s", current_user.id, request.path
                )
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_role = check.__name__  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def _is_organizer(account) -> bool:
    return bool(getattr(account, "is_organizer", False))


def _is_admin(account) -> bool:
    return bool(getattr(account, "is_admin", False))


def reads_mail(account) -> bool:
    """Admins only: the outbox holds every person's messages, whatever the event or group,
    with the links that act as them (manage, my data, invitations); an organizer runs only
    their own events and groups."""
    return _is_admin(account)


def refuse_another_ones(what: str, object_id: int) -> NoReturn:
    """An account asked, through the pages of an event or group it may run, for a `what` of
    another one (a registration id of another event, a membership of another group): the
    same 404 as an id that does not exist, so nothing is learnt, and the refusal is logged
    as every refused authorization is (ASVS)."""
    current_app.logger.warning("authorization refused: account=%s path=%s (%s %s belongs elsewhere)",
                               getattr(current_user, "id", None), request.path, what, object_id)
    abort(404)


organizer_required = _require(_is_organizer)
admin_required = _require(_is_admin)
mail_reader_required = _require(reads_mail)
