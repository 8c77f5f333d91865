"""Working groups: applications, decisions, invitations, roles and terms, members' access.

Every change of membership goes through here, and every change that makes someone an active
member or stops them being one also changes the group's mailing list in the same
transaction (`_subscribe` / `_unsubscribe`), so "the list's subscribers are exactly the
active members" cannot drift.

How members reach the members-only pages: members are people, not accounts, so they get a
link with a long-lived token (purpose "groups.member", 180 days, subject = membership). The
link is emailed on approval (or when added / on accepting an invitation) and can be asked
for again by email. Following it stores the person's id for that group in the signed session
and redirects to a URL without the token, so the token does not linger in history or
Referer headers. Every members-only page re-checks that the membership is still active.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager

from portal.auth.models import OrganizerAccount, Role
from portal.auth.services import hash_password
from portal.core.audit import record_audit
from portal.core.clock import local_today, now
from portal.core.db import folded, locked, unique_or
from portal.core.errors import DomainError, InvalidToken
from portal.core.tokens import AccessToken, hash_token, issue_token, resolve_token, revoke_tokens
from portal.extensions import db
from portal.groups import notifications
from portal.groups.models import (
    GroupChair,
    GroupDocument,
    Membership,
    MembershipStatus,
    MemberRole,
    WorkingGroup,
)
from portal.lists.models import MailingList
from portal.mail.services import already_queued, queued_under
from portal.people.models import ConsentKind, Person, Sector
from portal.people.services import get_or_create_person, normalize_email, record_consent

MEMBER_TOKEN_PURPOSE = "groups.member"
INVITE_TOKEN_PURPOSE = "groups.invite"
APPLICATION_TOKEN_PURPOSE = "groups.application"
#: How long the link that confirms an application works.
APPLICATION_CONFIRM_VALID_FOR = timedelta(days=7)
#: How long a members' link works; a member can ask for a new one at any time.
MEMBER_LINK_VALID_FOR = timedelta(days=180)
#: How long an invitation can be accepted.
INVITATION_VALID_FOR = timedelta(days=30)
#: Chairs are reminded this long before a member's term ends.
TERM_REMINDER_BEFORE = timedelta(days=30)
#: Version of the consent wording for a group's member mail (change it when the text changes).
MEMBER_MAIL_CONSENT_VERSION = "groups-member-mail-1"

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
#: A group's list is named after the group: this, then the group's web address.
GROUP_LIST_SLUG_PREFIX = "group-"
#: The longest web address a group can have: its list's slug (prefix and address) must fit
#: the list's column, which is no longer than the group's own.
SLUG_MAX_LENGTH = min(WorkingGroup.__table__.c.slug.type.length,
                      MailingList.__table__.c.slug.type.length - len(GROUP_LIST_SLUG_PREFIX))
#: Words taken by the groups area's own URLs (/groups/invitations/..., /admin/groups/new).
RESERVED_SLUGS = {"new", "invitations", "applications"}


class SlugTaken(DomainError):
    message = _l("Another working group already uses that web address.")
    status = 409


class NotPending(DomainError):
    message = _l("This application has already been decided.")
    status = 409


class AlreadyMember(DomainError):
    message = _l("This person is already an active member of the group.")
    status = 409


class InvitedJustNow(DomainError):
    message = _l("They were invited a few minutes ago: that invitation is on its way. Invite them again later "
                 "if it does not arrive.")
    status = 409


class NotAMember(DomainError):
    message = _l("This person is not an active member of the group.")
    status = 409


class ConsentRequired(DomainError):
    message = _l("Tick the box to agree to receive the group's mail: members take part through it.")
    status = 400


class InvalidRole(DomainError):
    message = _l("Choose one of the listed roles.")
    field = "role"


class InvalidTerm(DomainError):
    message = _l("The term cannot end before it starts.")
    field = "term_end"


# --- the group's mailing list (built by the lists area) ------------------------------------


def _lists_services() -> Any | None:
    """The lists area's services if they are there (built in parallel with this area)."""
    try:
        from portal.lists import services
    except ImportError as error:
        if error.name != "portal.lists.services":
            raise
        return None
    needed = ("ensure_group_list", "add_group_subscriber", "remove_group_subscriber")
    return services if all(hasattr(services, name) for name in needed) else None


def group_list_slug(group: WorkingGroup) -> str:
    """The slug of a group's list: prefixed so it never collides with a public list."""
    return f"{GROUP_LIST_SLUG_PREFIX}{group.slug}"


def consent_purpose(group: WorkingGroup) -> str:
    """The consent-ledger purpose for a group's member mail (the list's purpose)."""
    return f"list:{group_list_slug(group)}"


def ensure_list(group: WorkingGroup):
    """Create (or find) the group's list and remember it; None while lists are unavailable."""
    services = _lists_services()
    if services is None:
        return None
    mailing_list = services.ensure_group_list(group_list_slug(group), group.name_en, group.name_fr or group.name_en)
    if group.mailing_list_id != mailing_list.id:
        group.mailing_list_id = mailing_list.id
        db.session.flush()
    return mailing_list


def _subscribe(membership: Membership) -> None:
    """Put an active member on the group's list; the list's mail rests on the consent the way
    into the group recorded (add_group_subscriber)."""
    mailing_list = ensure_list(membership.group)
    if mailing_list is not None:
        _lists_services().add_group_subscriber(mailing_list, membership.person)


def _unsubscribe(membership: Membership, reason: str) -> None:
    mailing_list = ensure_list(membership.group)
    if mailing_list is not None:
        _lists_services().remove_group_subscriber(mailing_list, membership.person, reason=reason)


def sync_group_list(group: WorkingGroup) -> int:
    """Make the list's subscribers exactly the active members; returns members subscribed.

    Normally unnecessary (every change syncs itself); used by the demo data and after the
    lists area arrives on a database that already has members.
    """
    mailing_list = ensure_list(group)
    if mailing_list is None:
        return 0
    services = _lists_services()
    count = 0
    for membership in db.session.execute(select(Membership).where(Membership.group_id == group.id)).scalars():
        if membership.is_active:
            services.add_group_subscriber(mailing_list, membership.person)
            count += 1
        elif membership.status in (MembershipStatus.LEFT, MembershipStatus.DECLINED):
            services.remove_group_subscriber(mailing_list, membership.person)
    return count


# --- groups ------------------------------------------------------------------------------


def _sectors(sector_ids: list[int]) -> list[Sector]:
    if not sector_ids:
        return []
    return list(db.session.execute(select(Sector).where(Sector.id.in_(sector_ids)).order_by(Sector.position)).scalars())


def _clean_communities(communities: list[str]) -> list[str]:
    seen: list[str] = []
    for community in communities:
        name = " ".join(community.split())[:120]
        if name and name not in seen:
            seen.append(name)
    return seen


def create_group(
    *,
    slug: str,
    name_en: str,
    name_fr: str = "",
    mandate_en: str = "",
    mandate_fr: str = "",
    communities: list[str] | None = None,
    sector_ids: list[int] | None = None,
    terms_of_reference: str = "",
    terms_of_reference_fr: str = "",
    tor_version: str = "1",
    retention_months: int = 24,
    actor: OrganizerAccount | None = None,
    origin: str = "",
) -> WorkingGroup:
    """Create a working group and its mailing list. Raises `SlugTaken`."""
    if not SLUG_PATTERN.match(slug or "") or len(slug) > SLUG_MAX_LENGTH:
        raise DomainError(_l("Use lowercase letters, digits and dashes for the web address."))
    exists = db.session.execute(select(WorkingGroup.id).where(WorkingGroup.slug == slug)).scalar_one_or_none()
    if exists is not None or slug in RESERVED_SLUGS:
        raise SlugTaken()
    group = WorkingGroup(
        slug=slug,
        name_en=name_en,
        name_fr=name_fr,
        mandate_en=mandate_en,
        mandate_fr=mandate_fr,
        communities=_clean_communities(communities or []),
        terms_of_reference=terms_of_reference,
        terms_of_reference_fr=terms_of_reference_fr,
        tor_version=tor_version or "1",
        retention_months=retention_months,
    )
    group.sectors = _sectors(sector_ids or [])
    with unique_or(SlugTaken(), "slug"):
        db.session.add(group)
        ensure_list(group)
    record_audit("groups.group.created", actor=actor, subject=f"group:{group.id}", origin=origin, slug=slug)
    return group


def update_group(
    group: WorkingGroup,
    *,
    actor: OrganizerAccount | None = None,
    origin: str = "",
    sector_ids: list[int] | None = None,
    communities: list[str] | None = None,
    **fields: Any,
) -> WorkingGroup:
    """Change a group's description, communities, sectors or terms of reference.

    A new `tor_version` means every member acknowledges the terms again before the
    members' pages open for them.
    """
    allowed = {"name_en", "name_fr", "mandate_en", "mandate_fr", "terms_of_reference", "terms_of_reference_fr",
               "tor_version", "retention_months"}
    changed = []
    for name, value in fields.items():
        if name not in allowed:
            raise TypeError(name)
        if getattr(group, name) != value:
            setattr(group, name, value)
            changed.append(name)
    if communities is not None:
        group.communities = _clean_communities(communities)
        changed.append("communities")
    if sector_ids is not None:
        group.sectors = _sectors(sector_ids)
        changed.append("sectors")
    if {"name_en", "name_fr"} & set(changed):
        ensure_list(group)  # the list carries the group's names (its archive, List-Id description)
    db.session.flush()
    record_audit("groups.group.updated", actor=actor, subject=f"group:{group.id}", origin=origin, changed=changed)
    return group


def list_groups() -> list[WorkingGroup]:
    return list(db.session.execute(select(WorkingGroup).order_by(WorkingGroup.name_en)).scalars())


def active_members(group: WorkingGroup) -> list[Membership]:
    """The group's members, each with their person loaded in the same query (the members'
    page lists hundreds: one query, not one per member)."""
    return list(
        db.session.execute(
            select(Membership)
            .join(Person)
            .options(contains_eager(Membership.person))
            .where(Membership.group_id == group.id, Membership.status == MembershipStatus.ACTIVE.value)
            .order_by(Membership.role, folded(Person.name), Person.name)  # Élise among the Es, not last
        ).scalars()
    )


def memberships_in(group: WorkingGroup, status: MembershipStatus) -> list[Membership]:
    return list(
        db.session.execute(
            select(Membership)
            .where(Membership.group_id == group.id, Membership.status == status.value)
            .order_by(Membership.applied_at, Membership.id)
        ).scalars()
    )


# --- links --------------------------------------------------------------------------------


def members_access_path(group: WorkingGroup, raw_token: str) -> str:
    return f"/groups/{quote(group.slug)}/members/access/{quote(raw_token)}"


def invitation_path(raw_token: str) -> str:
    return f"/groups/invitations/{quote(raw_token)}"


def issue_member_link(membership: Membership) -> str:
    """A new members' link (path with its token) for an active member."""
    raw = issue_token(
        MEMBER_TOKEN_PURPOSE,
        person_id=membership.person_id,
        subject_id=membership.id,
        valid_for=MEMBER_LINK_VALID_FOR,
    )
    return members_access_path(membership.group, raw)


# --- joining ------------------------------------------------------------------------------


def member_mail_consent_wording(group: WorkingGroup, org_name: str, org_contact: str, language: str = "en") -> str:
    """The exact sentence shown next to the consent box (and kept in the consent ledger)."""
    from flask_babel import force_locale, gettext

    with force_locale(language):
        return gettext(
            "Yes, send me the messages of the %(group)s mailing list as a member. They are sent by "
            "%(org)s (%(contact)s). I can withdraw at any time with the unsubscribe link in every "
            "message or by leaving the group.",
            group=group.name(language), org=org_name, contact=org_contact,
        )


def _membership_for(group: WorkingGroup, person: Person) -> Membership:
    """The person's membership row in the group, locked, created (status applied) if new.

    Two simultaneous first applications meet the unique (group, person) constraint; the
    loser re-reads the winner's row instead of failing.
    """
    query = (select(Membership).where(Membership.group_id == group.id, Membership.person_id == person.id)
             .with_for_update().execution_options(populate_existing=True))
    membership = db.session.execute(query).scalar_one_or_none()
    if membership is None:
        try:
            with db.session.begin_nested():
                membership = Membership(group=group, person=person, status=MembershipStatus.APPLIED.value)
                db.session.add(membership)
                db.session.flush()
        except IntegrityError:
            membership = db.session.execute(query).scalar_one()
    return membership


def apply_to_group(
    group: WorkingGroup,
    *,
    email: str,
    name: str,
    organization: str = "",
    sector_id: int | None = None,
    community: str = "",
    why: str = "",
    show_email: bool = False,
    show_organization: bool = False,
    consent: bool,
    consent_wording: str,
    ip: str = "",
    user_agent: str = "",
    language: str = "en",
) -> Membership:
    """Record an application and email the address a link to confirm it (`confirm_application`:
    only then do the chairs see it, and only then is consent to member mail recorded).

    Gives the same outcome to the applicant whatever their standing, so the form reveals
    nothing: an active member who applies again is sent a fresh members' link (at most one
    per 10 minutes); an earlier declined or left application is reopened. The form proves
    nothing about who fills it in, so it never changes what is already under way for the
    address: an invitation waiting for them stands (and its link keeps working), and an
    application waiting for the chairs stands as its applicant wrote it (its reasons and what
    the directory will show). The form's consent box is required, but the consent recorded
    is the one given on the confirmation page. Raises `ConsentRequired`.
    """
    if not consent:
        raise ConsentRequired()
    person = get_or_create_person(
        email, name=name, organization=organization, sector_id=sector_id, community=community, language=language
    )
    membership = _membership_for(group, person)
    if membership.is_active:
        _send_member_link_if_none_lately(membership)
        return membership
    # A row just made is "applied" with no time yet; one with a time was waiting already.
    waiting = membership.status == MembershipStatus.APPLIED and membership.applied_at is not None
    if membership.status == MembershipStatus.INVITED or waiting:
        return membership
    # Not yet the chairs' to see: the address confirms it first, from an emailed link, so an
    # application (and the consent to the group's mail) is the address owner's own.
    if membership.status == MembershipStatus.UNCONFIRMED and _link_sent_lately(membership):
        # One link per 10 minutes, and nothing changed meanwhile: the page its owner may have
        # open shows what they will confirm.
        return membership
    membership.status = MembershipStatus.UNCONFIRMED.value
    membership.why = why
    membership.show_email = show_email
    membership.show_organization = show_organization
    membership.applied_at = None
    # decided_at and left_at stay: an unconfirmed application is purged on the same clock as
    # the membership it reopened (groups.retention), which a stranger's form cannot restart.
    db.session.flush()
    revoke_tokens(APPLICATION_TOKEN_PURPOSE, subject_id=membership.id)
    raw = issue_token(APPLICATION_TOKEN_PURPOSE, person_id=person.id, subject_id=membership.id,
                      valid_for=APPLICATION_CONFIRM_VALID_FOR)
    notifications.notify_application_to_confirm(membership, f"/groups/applications/{quote(raw)}",
                                                key=f"groups.application_confirm:{membership.id}:{hash_token(raw)[:16]}")
    return membership


def _link_sent_lately(membership: Membership) -> bool:
    """A confirmation link went to this application within the past 10 minutes."""
    return db.session.execute(
        select(AccessToken.id).where(AccessToken.purpose == APPLICATION_TOKEN_PURPOSE,
                                     AccessToken.subject_id == membership.id,
                                     AccessToken.created_at > now() - RESEND_GUARD).limit(1)
    ).first() is not None


def application_for(raw_token: str | None, *, lock: bool = False) -> Membership:
    """The application an emailed confirmation link stands for, while it waits for that
    confirmation (`lock`: read afresh under its row lock, as a decision is). Raises
    `InvalidToken`."""
    return _membership_behind(APPLICATION_TOKEN_PURPOSE, raw_token, MembershipStatus.UNCONFIRMED, lock=lock)


def _membership_behind(purpose: str, raw_token: str | None, status: MembershipStatus, *,
                       lock: bool = False) -> Membership:
    """The membership an emailed link (of `purpose`) stands for, while it is in `status`;
    `lock` reads it afresh under its row lock. Raises `InvalidToken`."""
    token = resolve_token(purpose, raw_token)
    if not token.subject_id:
        raise InvalidToken()
    query = select(Membership).where(Membership.id == token.subject_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    membership = db.session.execute(query).scalar_one_or_none()
    if membership is None or membership.status != status:
        raise InvalidToken()
    return membership


def _consent_to_member_mail(membership: Membership, *, wording: str, source: str, method: str, ip: str,
                            user_agent: str, language: str) -> None:
    """The express consent to the group's mail given when joining (the ledger keeps the
    sentence shown, its version, where and how it was given)."""
    record_consent(
        membership.person, purpose=consent_purpose(membership.group), kind=ConsentKind.EXPRESS,
        wording=wording, wording_version=MEMBER_MAIL_CONSENT_VERSION, source=source, method=method,
        ip=ip, user_agent=user_agent, language=language,
    )


def confirm_application(
    raw_token: str | None,
    *,
    consent: bool,
    consent_wording: str,
    show_email: bool,
    show_organization: bool,
    ip: str = "",
    user_agent: str = "",
    language: str = "en",
) -> Membership:
    """The applicant confirmed from the emailed link: the application goes to the chairs,
    with the consent to member mail given on that page (double opt-in) and the directory
    choices made there. Raises `InvalidToken`, `ConsentRequired`."""
    membership = application_for(raw_token, lock=True)
    if not consent:
        raise ConsentRequired()
    group, person = membership.group, membership.person
    _consent_to_member_mail(membership, wording=consent_wording, source=f"groups.apply:{group.slug}",
                            method="double opt-in", ip=ip, user_agent=user_agent, language=language)
    membership.status = MembershipStatus.APPLIED.value
    membership.show_email = show_email
    membership.show_organization = show_organization
    membership.applied_at = now()
    membership.decided_at = None
    db.session.flush()
    revoke_tokens(APPLICATION_TOKEN_PURPOSE, subject_id=membership.id)
    record_audit("groups.membership.applied", actor_label=person.email, subject=f"membership:{membership.id}",
                 origin=ip, group=group.slug)
    count = len(memberships_in(group, MembershipStatus.APPLIED))
    for reviewer in application_reviewers(group):
        notifications.notify_applications_waiting(group, reviewer, count)
    return membership


def _activate(membership: Membership, *, term_start: date | None = None) -> str:
    """Make the membership active, subscribe to the list; returns a new members' link."""
    today = local_today()
    rejoining = membership.left_at is not None
    membership.status = MembershipStatus.ACTIVE.value
    membership.decided_at = now()
    membership.left_at = None
    if rejoining or membership.term_start is None:
        # Someone coming back starts a new term; an old, finished term says nothing now.
        membership.term_start = term_start or today
        if membership.term_end is not None and membership.term_end < membership.term_start:
            membership.term_end = None
    db.session.flush()
    _subscribe(membership)
    return issue_member_link(membership)


def decide_application(
    membership: Membership, *, approve: bool, actor: OrganizerAccount | None, origin: str = ""
) -> Membership:
    """Approve or decline an application and email the applicant either way.

    Approval subscribes them to the group's list and mails their members' link.
    Raises `NotPending` when someone already decided.
    """
    db.session.execute(select(Membership.id).where(Membership.id == membership.id).with_for_update())
    db.session.refresh(membership)
    if membership.status != MembershipStatus.APPLIED:
        raise NotPending()
    if approve:
        link = _activate(membership)
        record_audit("groups.membership.approved", actor=actor, subject=f"membership:{membership.id}",
                     origin=origin, group=membership.group.slug)
        notifications.notify_application_approved(membership, link)
    else:
        membership.status = MembershipStatus.DECLINED.value
        membership.decided_at = now()
        db.session.flush()
        _unsubscribe(membership, "application declined")
        record_audit("groups.membership.declined", actor=actor, subject=f"membership:{membership.id}",
                     origin=origin, group=membership.group.slug)
        notifications.notify_application_declined(membership)
    return membership


def _check_role(role: str) -> str:
    if role not in {r.value for r in MemberRole}:
        raise InvalidRole()
    return role


def _check_term(term_start: date | None, term_end: date | None) -> None:
    if term_start and term_end and term_end < term_start:
        raise InvalidTerm()


def add_member(
    group: WorkingGroup,
    *,
    email: str,
    name: str = "",
    organization: str = "",
    role: str = MemberRole.MEMBER.value,
    term_start: date | None = None,
    term_end: date | None = None,
    language: str = "en",
    actor: OrganizerAccount | None,
    origin: str = "",
) -> Membership:
    """An organizer adds someone directly as an active member and we tell them, with their link.
    `language`, for someone new to the portal, is that of their emails (a known address keeps
    the one saved for it: an organizer's typing never changes someone's saved details).

    Membership of a voluntary organization is an existing non-business relationship under
    CASL, so the group's mail to them rests on implied consent (2 years), recorded here.
    Raises `AlreadyMember`.
    """
    _check_role(role)
    _check_term(term_start, term_end)
    person = get_or_create_person(email, name=name, organization=organization,
                                  language=language if language in ("en", "fr") else "en")
    membership = _membership_for(group, person)
    if membership.is_active:
        raise AlreadyMember()
    membership.applied_at = membership.applied_at or now()
    membership.role = role
    membership.term_start = term_start
    membership.term_end = term_end
    record_consent(
        person, purpose=consent_purpose(group), kind=ConsentKind.IMPLIED, implied_from="transaction",
        source=f"groups.admin.add:{group.slug}", method="added by organizer", ip=origin,
        wording="Membership of the working group (existing non-business relationship).",
    )
    link = _activate(membership, term_start=term_start)
    record_audit("groups.membership.added", actor=actor, subject=f"membership:{membership.id}", origin=origin,
                 group=group.slug, role=role)
    notifications.notify_member_added(membership, link)
    return membership


def invite_member(
    group: WorkingGroup,
    *,
    email: str,
    name: str = "",
    role: str = MemberRole.MEMBER.value,
    language: str = "en",
    actor: OrganizerAccount | None,
    origin: str = "",
) -> Membership:
    """Email an invitation with a link to accept (valid 30 days), in `language` for someone
    new to the portal (a known address keeps its own). Raises `AlreadyMember`."""
    _check_role(role)
    person = get_or_create_person(email, name=name, language=language if language in ("en", "fr") else "en")
    membership = _membership_for(group, person)
    if membership.is_active:
        raise AlreadyMember()
    if (membership.status == MembershipStatus.INVITED and membership.applied_at is not None
            and membership.applied_at > now() - RESEND_GUARD):
        # A form sent twice (a double click, a resubmission) would revoke the invitation
        # just emailed and send another: the first email's link would be dead.
        raise InvitedJustNow()
    membership.status = MembershipStatus.INVITED.value
    membership.role = role
    membership.applied_at = now()
    db.session.flush()
    revoke_tokens(INVITE_TOKEN_PURPOSE, subject_id=membership.id)
    raw = issue_token(INVITE_TOKEN_PURPOSE, person_id=person.id, subject_id=membership.id,
                      valid_for=INVITATION_VALID_FOR)
    record_audit("groups.membership.invited", actor=actor, subject=f"membership:{membership.id}", origin=origin,
                 group=group.slug, role=role)
    notifications.notify_invitation(membership, invitation_path(raw), actor_name=getattr(actor, "name", "") or "")
    return membership


def invitation_for(raw_token: str | None, *, lock: bool = False) -> Membership:
    """The invited membership behind an invitation link (`lock`: read afresh under its row
    lock). Raises `InvalidToken`."""
    return _membership_behind(INVITE_TOKEN_PURPOSE, raw_token, MembershipStatus.INVITED, lock=lock)


def accept_invitation(
    raw_token: str | None,
    *,
    consent: bool,
    consent_wording: str,
    show_email: bool = False,
    show_organization: bool = False,
    ip: str = "",
    user_agent: str = "",
    language: str = "en",
) -> tuple[Membership, str]:
    """Accept an invitation: the person becomes an active member (one use per link).

    `language` is the page's, in which they accepted: the link proves the address is theirs,
    so it becomes the language of their emails (the page opens in their saved language; a
    different one is their choice with the language switch).
    Returns the membership and a members' link path. Raises `InvalidToken`, `ConsentRequired`.
    """
    if not consent:
        raise ConsentRequired()
    # Under the membership's lock: the same link sent twice at once (a double click, two
    # tabs) waits here, then finds the invitation accepted (one consent, one welcome).
    membership = invitation_for(raw_token, lock=True)
    resolve_token(INVITE_TOKEN_PURPOSE, raw_token, consume=True)
    if language in ("en", "fr"):
        membership.person.language = language
    _consent_to_member_mail(membership, wording=consent_wording, source=f"groups.invitation:{membership.group.slug}",
                            method="web form", ip=ip, user_agent=user_agent, language=language)
    membership.show_email = show_email
    membership.show_organization = show_organization
    link = _activate(membership)
    record_audit("groups.membership.invitation_accepted", actor_label=membership.person.email,
                 subject=f"membership:{membership.id}", origin=ip, group=membership.group.slug)
    notifications.notify_member_added(membership, link)
    return membership, link


# --- roles, terms, leaving -------------------------------------------------------------------


def set_role(
    membership: Membership,
    *,
    role: str,
    term_start: date | None,
    term_end: date | None,
    actor: OrganizerAccount | None,
    origin: str = "",
) -> Membership:
    """Change a member's role and term; each change is in the audit log.

    A new term end gets its own reminder (reminders are keyed by the term end).
    """
    _check_role(role)
    _check_term(term_start, term_end)
    membership = locked(membership)
    if membership.status in (MembershipStatus.LEFT, MembershipStatus.DECLINED):
        raise NotAMember()  # ended meanwhile (removed by another chair, left): nothing to change
    subject = f"membership:{membership.id}"
    if membership.role != role:
        record_audit("groups.membership.role_changed", actor=actor, subject=subject, origin=origin,
                     group=membership.group.slug, old=membership.role, new=role)
        membership.role = role
    if (membership.term_start, membership.term_end) != (term_start, term_end):
        record_audit(
            "groups.membership.term_changed", actor=actor, subject=subject, origin=origin,
            group=membership.group.slug,
            old=[d.isoformat() if d else None for d in (membership.term_start, membership.term_end)],
            new=[d.isoformat() if d else None for d in (term_start, term_end)],
        )
        membership.term_start, membership.term_end = term_start, term_end
    db.session.flush()
    return membership


def remove_member(membership: Membership, *, actor: OrganizerAccount | None, origin: str = "",
                  by_member: bool = False) -> Membership:
    """End an active membership (removed by a manager, or left by the member).

    Unsubscribes from the group's list and revokes members' links at once.
    """
    membership = locked(membership)  # a member leaving as a chair removes them: one ending
    if not membership.is_active:
        raise NotAMember()
    membership.status = MembershipStatus.LEFT.value
    membership.left_at = now()
    db.session.flush()
    _unsubscribe(membership, "left the group" if by_member else "removed from the group")
    revoke_tokens(MEMBER_TOKEN_PURPOSE, subject_id=membership.id)
    record_audit(
        "groups.membership.left" if by_member else "groups.membership.removed",
        actor=actor, actor_label=membership.person.email if by_member else None,
        subject=f"membership:{membership.id}", origin=origin, group=membership.group.slug,
    )
    return membership


def end_memberships_of(person: Person) -> int:
    """Before `person` is erased: each of their applications, invitations and memberships
    ends (LEFT), they leave each group's list and their members' links stop working. An
    erased placeholder must not stay a member whom chairs list and other members see.
    Returns how many ended."""
    memberships = db.session.execute(
        select(Membership).where(
            Membership.person_id == person.id,
            Membership.status.in_([MembershipStatus.UNCONFIRMED.value, MembershipStatus.APPLIED.value,
                                   MembershipStatus.INVITED.value,
                                   MembershipStatus.ACTIVE.value]),
        ).with_for_update().execution_options(populate_existing=True)
    ).scalars().all()
    for membership in memberships:
        membership.status = MembershipStatus.LEFT.value
        membership.left_at = now()
        db.session.flush()
        _unsubscribe(membership, "erased at their request")
        revoke_tokens(MEMBER_TOKEN_PURPOSE, subject_id=membership.id)
        revoke_tokens(APPLICATION_TOKEN_PURPOSE, subject_id=membership.id)
    return len(memberships)


def leave_by_unsubscribing(mailing_list: Any, person: Person, *, origin: str = "") -> Membership | None:
    """End the active membership of someone who unsubscribed from the group's list.

    Called by the lists area (the subscription is already off, so the list is not touched
    again). Members' links are revoked as for any leaving. None if they were not an active
    member of the group whose list this is.
    """
    membership = db.session.execute(
        select(Membership).join(WorkingGroup, Membership.group_id == WorkingGroup.id)
        .where(WorkingGroup.mailing_list_id == mailing_list.id, Membership.person_id == person.id)
    ).scalar_one_or_none()
    if membership is None or not membership.is_active:
        return None
    membership.status = MembershipStatus.LEFT.value
    membership.left_at = now()
    db.session.flush()
    revoke_tokens(MEMBER_TOKEN_PURPOSE, subject_id=membership.id)
    record_audit("groups.membership.left", actor_label=person.email, subject=f"membership:{membership.id}",
                 origin=origin, group=membership.group.slug, method="unsubscribed from the group's list")
    return membership


# --- members' access -----------------------------------------------------------------------


def membership_from_link(group: WorkingGroup, raw_token: str | None) -> Membership:
    """The active membership a members' link stands for. Raises `InvalidToken`."""
    token = resolve_token(MEMBER_TOKEN_PURPOSE, raw_token)
    membership = db.session.get(Membership, token.subject_id) if token.subject_id else None
    if membership is None or membership.group_id != group.id or not membership.is_active:
        raise InvalidToken()
    return membership


def current_membership(group: WorkingGroup, person_id: int | None) -> Membership | None:
    """The active membership of this person in this group, or None."""
    if not isinstance(person_id, int):
        return None
    membership = db.session.execute(
        select(Membership).where(Membership.group_id == group.id, Membership.person_id == person_id)
    ).scalar_one_or_none()
    return membership if membership is not None and membership.is_active else None


def request_member_link(group: WorkingGroup, email: str) -> None:
    """Email a fresh members' link if `email` belongs to an active member; otherwise nothing.

    The caller shows the same answer either way. At most one link per member per
    10 minutes (the idempotency key carries the window), so the form cannot flood a mailbox.
    """
    try:
        address = normalize_email(email)
    except DomainError:
        return
    membership = db.session.execute(
        select(Membership).join(Person).where(Membership.group_id == group.id, Person.email == address)
    ).scalar_one_or_none()
    if membership is None or not membership.is_active:
        return
    _send_member_link_if_none_lately(membership)


def _send_member_link_if_none_lately(membership: Membership) -> None:
    """A fresh members' link, at most one per member per 10 minutes: a public form cannot
    flood a member's mailbox, and no link is made that would not be sent."""
    # The last one mailed counts, wherever the clock's windows fall (two a minute apart across
    # a window's edge were possible); the window in the key stops two requests at once.
    prefix = f"groups.member_link:{membership.id}:"
    key = f"{prefix}{int(now().timestamp() // 600)}"
    if already_queued(key) or queued_under(prefix, within=RESEND_GUARD):
        return
    notifications.notify_member_link(membership, issue_member_link(membership), key=key)


def acknowledge_terms(membership: Membership, *, origin: str = "") -> Membership:
    """Record that the member read the current terms of reference (version and time)."""
    if not membership.is_active:
        raise NotAMember()
    membership.tor_acknowledged_version = membership.group.tor_version
    membership.tor_acknowledged_at = now()
    db.session.flush()
    record_audit("groups.membership.terms_acknowledged", actor_label=membership.person.email,
                 subject=f"membership:{membership.id}", origin=origin, version=membership.group.tor_version)
    return membership


def update_directory_entry(membership: Membership, *, show_email: bool, show_organization: bool) -> Membership:
    """What the member agrees to show other members besides their name and role."""
    membership.show_email = show_email
    membership.show_organization = show_organization
    db.session.flush()
    return membership


@dataclass(frozen=True)
class DirectoryEntry:
    name: str
    role: str
    email: str | None
    organization: str | None


def directory(group: WorkingGroup) -> list[DirectoryEntry]:
    """The member directory: name and role, plus only the details each member agreed to show."""
    return [
        DirectoryEntry(
            name=m.person.name or "—",
            role=m.role,
            email=m.person.email if m.show_email else None,
            organization=(m.person.organization or None) if m.show_organization else None,
        )
        for m in active_members(group)
    ]


def group_posts(group: WorkingGroup) -> list[Any]:
    """The group's sent list posts, newest first: its members-only archive."""
    services = _lists_services()
    if group.mailing_list_id is None or services is None or not hasattr(services, "list_posts"):
        return []
    mailing_list = db.session.get(MailingList, group.mailing_list_id)
    return services.list_posts(mailing_list) if mailing_list is not None else []


def can_post(group: WorkingGroup) -> bool:
    """Whether list posting is available (the lists area provides it)."""
    services = _lists_services()
    return services is not None and all(hasattr(services, n) for n in ("save_post", "send_post_now", "send_post_test"))


def post_recipient_count(group: WorkingGroup) -> int:
    """How many a post to the group's list would reach now (its active members with live
    consent), for the chair to see before sending. Reads only (a page shows it)."""
    services = _lists_services()
    if services is None or group.mailing_list_id is None:
        return 0
    mailing_list = db.session.get(MailingList, group.mailing_list_id)
    return len(services.recipients(mailing_list)) if mailing_list is not None else 0


def save_group_post(group: WorkingGroup, *, subject: str, body: str, author: Any, draft_id: int | None = None,
                    language: str = "en"):
    """Save a message to the group's list as a draft (reusing the draft being edited).

    Goes through the lists area's posting services, so a chair's post is fanned out,
    archived and unsubscribable exactly like an organizer's.
    """
    services = _lists_services()
    mailing_list = ensure_list(group)
    if mailing_list is None or not can_post(group):
        raise DomainError(_l("Writing to the list is not available yet."))
    from portal.lists.models import ListPost

    draft = db.session.get(ListPost, draft_id) if draft_id else None
    if draft is not None and draft.list_id != mailing_list.id:
        draft = None
    if draft is not None and draft.status != "draft":
        if draft.subject == subject.strip()[:200] and draft.body == body:
            # The form was sent again (a double click, a reload, the back button) after this
            # very message went out: a second copy to every member is never what was meant.
            raise services.PostNotEditable()
        draft = None  # back to a sent message's form and written anew: a new message
    if draft is None:
        # Two sends of one form at once (a double click) must see each other: the second
        # waits for the first's commit on the list's row lock (PostgreSQL; SQLite's writers
        # take turns already), then finds the message sent.
        db.session.execute(select(type(mailing_list).id).where(type(mailing_list).id == mailing_list.id)
                           .with_for_update())
        if _just_sent(mailing_list, subject, body):
            raise SentAMomentAgo()
    return services.save_post(mailing_list, draft, subject=subject, body=body, author=author, language=language)


class SentAMomentAgo(DomainError):
    message = _l("This message was sent to the group a moment ago; it was not sent again.")
    status = 409


#: How long after a message went out the same message, sent again without its draft, is
#: taken for a resubmitted form rather than a new message.
RESEND_GUARD = timedelta(minutes=10)


def _just_sent(mailing_list: Any, subject: str, body: str) -> bool:
    from portal.lists.models import ListPost, PostStatus

    return db.session.execute(
        select(ListPost.id).where(
            ListPost.list_id == mailing_list.id, ListPost.subject == subject.strip()[:200], ListPost.body == body,
            ListPost.status.in_([PostStatus.SENDING.value, PostStatus.SENT.value, PostStatus.SCHEDULED.value]),
            # Sent, or scheduled to go now (a large list): not one scheduled for next week.
            or_(ListPost.sent_at >= now() - RESEND_GUARD, ListPost.send_at.between(now() - RESEND_GUARD, now())),
        ).limit(1)
    ).first() is not None


def send_group_post_test(post: Any, account: Any, language: str = "en") -> None:
    """Send the draft to the writer's own address, as a recipient would see it, in the
    language they read the portal in."""
    _lists_services().send_post_test(post, account, language)


def send_group_post(group: WorkingGroup, post: Any, *, actor: Any, origin: str = "") -> int:
    """Send the post to every active member now; returns how many it was queued for."""
    count = _lists_services().send_post_now(post, actor=actor)
    record_audit("groups.post.sent", actor=actor, subject=f"group:{group.id}", origin=origin,
                 post=post.id, recipients=count)
    return count


# --- documents -----------------------------------------------------------------------------


def add_document(group: WorkingGroup, *, title: str, url: str = "", note: str = "",
                 actor: OrganizerAccount | None, origin: str = "") -> GroupDocument:
    """Share a document (title, link, note) with the group's members."""
    if url and not url.startswith(("https://", "http://")):
        raise DomainError(_l("The link must start with https://."))
    document = GroupDocument(group_id=group.id, title=title, url=url, note=note)
    db.session.add(document)
    db.session.flush()
    record_audit("groups.document.added", actor=actor, subject=f"group:{group.id}", origin=origin, title=title)
    return document


def delete_document(document: GroupDocument, *, actor: OrganizerAccount | None, origin: str = "") -> None:
    record_audit("groups.document.deleted", actor=actor, subject=f"group:{document.group_id}", origin=origin,
                 title=document.title)
    db.session.delete(document)
    db.session.flush()


def documents(group: WorkingGroup) -> list[GroupDocument]:
    return list(db.session.execute(
        select(GroupDocument).where(GroupDocument.group_id == group.id).order_by(GroupDocument.title)
    ).scalars())


# --- chairs' accounts ------------------------------------------------------------------------


def create_chair_account(
    email: str, password: str, group: WorkingGroup, *, name: str = "",
    actor: OrganizerAccount | None = None, origin: str = "",
) -> OrganizerAccount:
    """Give someone a sign-in account that manages `group` (and only the groups it chairs).

    An existing account only gets the group added: its password and role stay as they are
    (otherwise this form would let an organizer take over an admin's account). Idempotent.
    """
    address = normalize_email(email)
    account = db.session.execute(
        select(OrganizerAccount).where(OrganizerAccount.email == address)
    ).scalar_one_or_none()
    if account is None:
        account = OrganizerAccount(email=address, name=name, role=Role.CHAIR.value,
                                   password_hash=hash_password(password, email=address, name=name))
        db.session.add(account)
        db.session.flush()
    link = db.session.execute(
        select(GroupChair).where(GroupChair.account_id == account.id, GroupChair.group_id == group.id)
    ).scalar_one_or_none()
    if link is None:
        db.session.add(GroupChair(account_id=account.id, group_id=group.id))
        db.session.flush()
    record_audit("groups.chair_account.granted", actor=actor, subject=f"group:{group.id}", origin=origin,
                 account=address)
    return account


def revoke_chair_account(group: WorkingGroup, account_id: int, *, actor: OrganizerAccount | None,
                         origin: str = "") -> None:
    """Stop an account managing `group` (its other groups, if any, stay). Raises `NotFound`."""
    from portal.core.errors import NotFound

    link = db.session.execute(
        select(GroupChair).where(GroupChair.account_id == account_id, GroupChair.group_id == group.id)
    ).scalar_one_or_none()
    if link is None:
        raise NotFound()
    account = db.session.get(OrganizerAccount, account_id)
    db.session.delete(link)
    db.session.flush()
    record_audit("groups.chair_account.revoked", actor=actor, subject=f"group:{group.id}", origin=origin,
                 account=account.email if account else str(account_id))


def chaired_group_ids(account: Any) -> set[int]:
    """Ids of the groups a (chair) account manages."""
    account_id = getattr(account, "id", None)
    if account_id is None:
        return set()
    return set(db.session.execute(select(GroupChair.group_id).where(GroupChair.account_id == account_id)).scalars())


def chair_accounts(group: WorkingGroup) -> list[OrganizerAccount]:
    return list(db.session.execute(
        select(OrganizerAccount).join(GroupChair, GroupChair.account_id == OrganizerAccount.id)
        .where(GroupChair.group_id == group.id).order_by(OrganizerAccount.email)
    ).scalars())


def application_reviewers(group: WorkingGroup) -> list[Person]:
    """Who is told that applications wait: people who can sign in and decide them. The
    group's chair accounts, or else the portal's organizers; a chair who is only a member
    (no account) cannot open the page the email links to, so is not sent it."""
    accounts = [account for account in chair_accounts(group) if account.active]
    if not accounts:
        accounts = list(db.session.execute(
            select(OrganizerAccount).where(OrganizerAccount.active.is_(True),
                                           OrganizerAccount.role.in_([Role.ADMIN.value, Role.ORGANIZER.value]))
            .order_by(OrganizerAccount.email)
        ).scalars())
    return [get_or_create_person(account.email, name=account.name) for account in accounts]



