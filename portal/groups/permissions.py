"""Who may manage which working group. Every groups admin view asks here, nowhere else.

- Organizers and admins manage every group.
- A chair account (role "chair") manages only the groups it is linked to by `GroupChair`.
- Anyone else (or a chair on another group's pages) is refused with a 403, and the refusal
  is logged; an anonymous visitor is sent to the login page.

Pages only organizers use (creating groups, adding or inviting members, chairs' accounts)
use `portal.core.permissions.organizer_required` instead.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, request
from flask_login import current_user

from portal.auth.models import Role
from portal.groups.models import WorkingGroup

F = TypeVar("F", bound=Callable)


def can_manage_group(account: Any, group: WorkingGroup) -> bool:
    """Organizers/admins: every group; chairs: only their own; everyone else: none."""
    if account is None or not getattr(account, "is_authenticated", False):
        return False
    if getattr(account, "is_organizer", False):
        return True
    if getattr(account, "role", None) != Role.CHAIR:
        return False
    from portal.groups.services import chaired_group_ids

    return group.id in chaired_group_ids(account)


def can_manage_any_group(account: Any) -> bool:
    """For the groups admin list: organizers, and chairs linked to at least one group."""
    if account is None or not getattr(account, "is_authenticated", False):
        return False
    if getattr(account, "is_organizer", False):
        return True
    from portal.groups.services import chaired_group_ids

    return getattr(account, "role", None) == Role.CHAIR and bool(chaired_group_ids(account))


def _refuse() -> None:
    current_app.logger.warning("authorization refused: account=%s path=%s", current_user.id, request.path)
    abort(403)


def group_manager_required(view: F) -> F:
    """For /admin/groups/<slug>/... pages chairs may use: loads the group by `slug` (404 if
    unknown), checks the account may manage it, and passes it to the view as `group`."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        from sqlalchemy import select

        from portal.extensions import db

        slug = kwargs.pop("slug")
        if not can_manage_any_group(current_user):
            _refuse()
        group = db.first_or_404(select(WorkingGroup).where(WorkingGroup.slug == slug))
        if not can_manage_group(current_user, group):
            _refuse()
        return view(*args, group=group, **kwargs)

    wrapped.required_role = "_is_group_manager"  # type: ignore[attr-defined]
    return wrapped  # type: ignore[return-value]


def any_group_manager_required(view: F) -> F:
    """For the groups admin list: organizers and chairs of at least one group."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        if not can_manage_any_group(current_user):
            _refuse()
        return view(*args, **kwargs)

    wrapped.required_role = "_is_group_manager"  # type: ignore[attr-defined]
    return wrapped  # type: ignore[return-value]
