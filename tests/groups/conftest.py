"""Fixtures for the groups area: groups, chairs and members built through the services."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import pytest

from sqlalchemy import select

from portal.extensions import db
from tests.factories import AccountInfo


@dataclass
class GroupInfo:
    id: int
    slug: str


class GroupFactories:
    def __init__(self, app) -> None:
        self.app = app

    def group(self, slug: str = "situation-tables", name: str = "Situation Tables", tor_version: str = "1") -> GroupInfo:
        from portal.groups.services import create_group

        with self.app.app_context():
            group = create_group(slug=slug, name_en=name, mandate_en="Share **practice**.",
                                 communities=["Toronto", "Sudbury"], terms_of_reference="Be kind.",
                                 tor_version=tor_version)
            db.session.commit()
            return GroupInfo(group.id, group.slug)

    def chair(self, group: GroupInfo, email: str | None = None, password: str = "chair password 1") -> AccountInfo:
        from portal.groups.models import WorkingGroup
        from portal.groups.services import create_chair_account

        with self.app.app_context():
            address = email or f"chair-{group.slug}@example.ca"
            account = create_chair_account(address, password, db.session.get(WorkingGroup, group.id), name="A Chair")
            db.session.commit()
            return AccountInfo(account.id, account.email, password, False)

    def member(self, group: GroupInfo, email: str, *, name: str = "", role: str = "member",
               term_end: date | None = None, organization: str = "", acknowledged: bool = False,
               show_email: bool = False, show_organization: bool = False) -> int:
        """An active member added by an organizer; returns the membership id."""
        from portal.groups.models import WorkingGroup
        from portal.groups.services import acknowledge_terms, add_member

        with self.app.app_context():
            membership = add_member(db.session.get(WorkingGroup, group.id), email=email, name=name or email,
                                    organization=organization, role=role, term_end=term_end, actor=None)
            membership.show_email = show_email
            membership.show_organization = show_organization
            if acknowledged:
                acknowledge_terms(membership)
            db.session.commit()
            return membership.id

    def member_link(self, membership_id: int) -> str:
        """A fresh members' link path for an active member."""
        from portal.groups.models import Membership
        from portal.groups.services import issue_member_link

        with self.app.app_context():
            path = issue_member_link(db.session.get(Membership, membership_id))
            db.session.commit()
            return path


@pytest.fixture
def groups(app) -> GroupFactories:
    return GroupFactories(app)


def link_in(text: str, fragment: str) -> str:
    """The path of the first link containing `fragment` in a message body."""
    match = re.search(r"https?://[^/\s]+(\S*?" + re.escape(fragment) + r"\S*)", text)
    assert match, f"no link with {fragment!r} in:\n{text}"
    return match.group(1)


def confirmed_application(group, **details):
    """`apply_to_group`, then `confirm_application` from the emailed link as the address's
    owner would (inside an app context): an application the chairs can decide."""
    from portal.groups.services import apply_to_group, confirm_application
    from portal.mail.models import OutboxMessage

    membership = apply_to_group(group, **details)
    body = db.session.execute(
        select(OutboxMessage.body_text).where(OutboxMessage.purpose == "groups.application_confirm",
                                              OutboxMessage.person_id == membership.person_id)
        .order_by(OutboxMessage.id.desc()).limit(1)).scalar_one()
    token = link_in(body, "/groups/applications/").rsplit("/", 1)[1]
    return confirm_application(token, consent=True, consent_wording=details.get("consent_wording", "w"),
                               show_email=details.get("show_email", False),
                               show_organization=details.get("show_organization", False))
