"""Working groups, their memberships, chairs' accounts and shared documents.

Who is a chair, twice over:
- `Membership.role == "chair"` (or "co-chair") says what a *person* is in the group: it is
  shown in the directory and decides who receives term-end reminders.
- `GroupChair` links an *organizer account* (role "chair") to the groups it may manage in
  /admin/groups. Accounts and people are separate things in the portal (people never log
  in), so the link is an explicit row rather than an email match that would silently break
  when someone changes address. `services.create_chair_account` creates both sides.
"""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Column, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models import Timestamped
from portal.extensions import db
from portal.people.models import Person, Sector


class MemberRole(StrEnum):
    CHAIR = "chair"
    CO_CHAIR = "co-chair"
    MEMBER = "member"
    SECRETARIAT = "secretariat"
    OBSERVER = "observer"


#: Each role as people read it (forms, member lists, emails).
ROLE_WORDS = {
    MemberRole.CHAIR.value: _l("Chair"),
    MemberRole.CO_CHAIR.value: _l("Co-chair"),
    MemberRole.MEMBER.value: _l("Member"),
    MemberRole.SECRETARIAT.value: _l("Secretariat"),
    MemberRole.OBSERVER.value: _l("Observer"),
}

#: Roles whose holders receive the reminders meant for "the chair(s)".
CHAIR_ROLES = (MemberRole.CHAIR.value, MemberRole.CO_CHAIR.value)


class MembershipStatus(StrEnum):
    UNCONFIRMED = "unconfirmed"  # applied on the public form; the address has not confirmed it yet
    APPLIED = "applied"    # asked to join (and confirmed from the emailed link); waiting for a chair
    INVITED = "invited"    # an organizer sent an invitation that is not yet accepted
    ACTIVE = "active"      # a member: on the group's list, sees the members' pages
    DECLINED = "declined"  # the application was declined
    LEFT = "left"          # left the group, or was removed


group_sector = Table(
    "working_group_sector",
    db.metadata,
    Column("group_id", ForeignKey("working_group.id", ondelete="CASCADE"), primary_key=True),
    Column("sector_id", ForeignKey("sector.id", ondelete="CASCADE"), primary_key=True),
)


class WorkingGroup(Timestamped, db.Model):
    """A working group of member communities and sectors, with its public page."""

    __tablename__ = "working_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Used in the group's web addresses.
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    #: Name in English.
    name_en: Mapped[str] = mapped_column(String(200))
    #: Name in French (falls back to English when empty).
    name_fr: Mapped[str] = mapped_column(String(200), default="")
    #: What the group is for, in English (markdown).
    mandate_en: Mapped[str] = mapped_column(Text, default="")
    #: What the group is for, in French (markdown).
    mandate_fr: Mapped[str] = mapped_column(Text, default="")
    #: Member communities, e.g. ["Toronto", "Sudbury"], in the order shown.
    communities: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Terms of reference every member acknowledges before seeing the members' pages (markdown).
    terms_of_reference: Mapped[str] = mapped_column(Text, default="")
    #: The same terms in French (French readers see the English where this is empty).
    terms_of_reference_fr: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: Version label of the terms of reference; a new version asks members to acknowledge again.
    tor_version: Mapped[str] = mapped_column(String(40), default="1")
    #: The group's mailing list (its subscribers are exactly the active members).
    mailing_list_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_list.id", ondelete="SET NULL"), index=True
    )
    #: Months to keep a former member's application text and details after they leave.
    retention_months: Mapped[int] = mapped_column(default=24)

    sectors: Mapped[list[Sector]] = relationship(secondary=group_sector, order_by=Sector.position)

    def name(self, language: str = "en") -> str:
        return (self.name_fr or self.name_en) if language == "fr" else self.name_en

    def mandate(self, language: str = "en") -> str:
        return (self.mandate_fr or self.mandate_en) if language == "fr" else self.mandate_en

    def terms(self, language: str = "en") -> str:
        return (self.terms_of_reference_fr or self.terms_of_reference) if language == "fr" else self.terms_of_reference


class Membership(Timestamped, db.Model):
    """A person's place in a working group: from application to leaving."""

    __tablename__ = "group_membership"
    # One row per person and group: re-applying after leaving reuses it, so history of
    # decisions lives in the audit log and the row always says where the person stands now.
    __table_args__ = (UniqueConstraint("group_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("working_group.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    #: chair, co-chair, member, secretariat or observer.
    role: Mapped[str] = mapped_column(String(20), default=MemberRole.MEMBER.value)
    #: applied, invited, active, declined or left.
    status: Mapped[str] = mapped_column(String(12), default=MembershipStatus.APPLIED.value, index=True)
    #: First day of the member's current term.
    term_start: Mapped[date | None]
    #: Last day of the member's current term; the chairs are reminded 30 days before.
    term_end: Mapped[date | None] = mapped_column(index=True)
    #: The term end a reminder was already sent for (one reminder per term).
    term_reminder_sent_for: Mapped[date | None]
    #: Why they want to join, in their words (application text).
    why: Mapped[str] = mapped_column(Text, default="", info={"personal": True})
    #: The member agreed to show their email address to other members.
    show_email: Mapped[bool] = mapped_column(default=False)
    #: The member agreed to show their organization to other members.
    show_organization: Mapped[bool] = mapped_column(default=False)
    #: Version of the terms of reference the member acknowledged.
    tor_acknowledged_version: Mapped[str | None] = mapped_column(String(40))
    #: When they acknowledged it.
    tor_acknowledged_at: Mapped[datetime | None]
    #: When they applied (or were invited).
    applied_at: Mapped[datetime | None]
    #: When a chair or organizer approved or declined, or the invitation was accepted.
    decided_at: Mapped[datetime | None]
    #: When they left or were removed.
    left_at: Mapped[datetime | None]

    group: Mapped[WorkingGroup] = relationship()
    person: Mapped[Person] = relationship()

    @property
    def is_active(self) -> bool:
        return self.status == MembershipStatus.ACTIVE

    def has_acknowledged(self, group: WorkingGroup) -> bool:
        return self.tor_acknowledged_version == group.tor_version


class GroupChair(Timestamped, db.Model):
    """An account that may manage one group's members, documents and list posts."""

    __tablename__ = "group_chair"
    __table_args__ = (UniqueConstraint("account_id", "group_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The chair's sign-in account (role "chair").
    account_id: Mapped[int] = mapped_column(ForeignKey("organizer_account.id", ondelete="CASCADE"), index=True)
    #: The group it manages.
    group_id: Mapped[int] = mapped_column(ForeignKey("working_group.id", ondelete="CASCADE"), index=True)

    group: Mapped[WorkingGroup] = relationship()


class GroupDocument(Timestamped, db.Model):
    """A document the group shares with its members: a title, a link and a short note.

    Deliberately no file upload: documents live where the group already keeps them
    (a shared drive, the guidelines area) and the portal links to them.
    """

    __tablename__ = "group_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("working_group.id", ondelete="CASCADE"), index=True)
    #: Title shown to members.
    title: Mapped[str] = mapped_column(String(200))
    #: Where the document is (https link).
    url: Mapped[str] = mapped_column(String(500), default="")
    #: A short note about it (markdown).
    note: Mapped[str] = mapped_column(Text, default="")
