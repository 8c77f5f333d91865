"""Mail the groups area queues: each function writes one outbox row in the caller's transaction.

All of these are transactional messages (facts about the person's own membership), so they
need no consent and carry no List-* headers.
"""
from __future__ import annotations

from portal.groups.models import ROLE_WORDS, Membership
from portal.mail.models import MessageCategory
from portal.mail.services import hourly_key, queue_email
from portal.people.models import Person


def _group_context(membership: Membership) -> dict:
    group = membership.group
    return {
        "group_name": group.name(membership.person.language or "en"),
        "group_path": f"/groups/{group.slug}",
    }


def notify_application_to_confirm(membership: Membership, confirm_path: str, *, key: str) -> None:
    """Ask the address to confirm the application made with it on the public form (double
    opt-in: the chairs see nothing until then). Transactional: it answers a request."""
    queue_email(
        key=key,
        to=membership.person,
        template="groups/confirm_application",
        purpose="groups.application_confirm",
        context={**_group_context(membership), "confirm_path": confirm_path},
        category=MessageCategory.TRANSACTIONAL,
    )


def notify_applications_waiting(group, chair: Person, waiting: int) -> None:
    """Tell a chair applications wait for a decision: at most once an hour per chair and
    group, whatever the number of applications (the form is public: anyone could send many),
    and nothing an applicant typed (names and reasons are read after sign-in)."""
    queue_email(
        key=hourly_key(f"groups.applications_waiting:{group.id}:{chair.id}"),
        to=chair,
        template="groups/applications_waiting",
        purpose="groups.applications_waiting",
        context={
            "group_name": group.name(chair.language or "en"),
            "waiting": waiting,
            "review_path": f"/admin/groups/{group.slug}",
        },
        category=MessageCategory.TRANSACTIONAL,
    )


def notify_application_approved(membership: Membership, members_path: str) -> None:
    """Welcome an approved applicant with their members' link."""
    queue_email(
        key=f"groups.application_approved:{membership.id}:{membership.decided_at.isoformat()}",
        to=membership.person,
        template="groups/application_approved",
        purpose="groups.application_approved",
        context={**_group_context(membership), "members_path": members_path},
        category=MessageCategory.TRANSACTIONAL,
    )


def notify_application_declined(membership: Membership) -> None:
    """Tell an applicant, kindly, that the application was declined."""
    queue_email(
        key=f"groups.application_declined:{membership.id}:{membership.decided_at.isoformat()}",
        to=membership.person,
        template="groups/application_declined",
        purpose="groups.application_declined",
        context=_group_context(membership),
        category=MessageCategory.TRANSACTIONAL,
    )


def notify_member_added(membership: Membership, members_path: str) -> None:
    """Tell someone added by an organizer (or who accepted an invitation) they are a member."""
    queue_email(
        key=f"groups.member_added:{membership.id}:{membership.decided_at.isoformat()}",
        to=membership.person,
        template="groups/member_added",
        purpose="groups.member_added",
        context={**_group_context(membership), "members_path": members_path},
        category=MessageCategory.TRANSACTIONAL,
    )


def notify_invitation(membership: Membership, invitation_path: str, *, actor_name: str = "") -> None:
    """Invite someone to join, with a link to accept."""
    queue_email(
        key=f"groups.invitation:{membership.id}:{membership.applied_at.isoformat()}",
        to=membership.person,
        template="groups/invitation",
        purpose="groups.invitation",
        context={**_group_context(membership), "invitation_path": invitation_path, "inviter": actor_name},
        category=MessageCategory.TRANSACTIONAL,
    )


def notify_member_link(membership: Membership, members_path: str, *, key: str | None = None) -> None:
    """Send an active member a fresh link to the members' pages (asked for, or re-applied)."""
    from portal.core.clock import now

    queue_email(
        key=key or f"groups.member_link:{membership.id}:{now().isoformat()}",
        to=membership.person,
        template="groups/member_link",
        purpose="groups.member_link",
        context={**_group_context(membership), "members_path": members_path},
        category=MessageCategory.TRANSACTIONAL,
    )


def notify_term_ending(membership: Membership, chair: Person) -> None:
    """Remind a chair that a member's term ends soon. Once per membership, term and chair."""
    queue_email(
        key=f"groups.term_end_reminder:{membership.id}:{membership.term_end.isoformat()}:{chair.id}",
        to=chair,
        template="groups/term_end_reminder",
        purpose="groups.term_end_reminder",
        context={
            "group_name": membership.group.name(chair.language or "en"),
            "member_name": membership.person.name or membership.person.email,
            # Words and date in the chair's language when the email is rendered.
            "member_role": ROLE_WORDS.get(membership.role, membership.role),
            "term_end": membership.term_end,
            "manage_path": f"/admin/groups/{membership.group.slug}/memberships/{membership.id}",
        },
        category=MessageCategory.TRANSACTIONAL,
    )
