"""Scheduled work of the groups area."""
from __future__ import annotations

from sqlalchemy import select

from portal.core.clock import local_today
from portal.core.db import writing
from portal.extensions import db
from portal.groups.models import Membership, MembershipStatus
from portal.groups.notifications import notify_term_ending
from portal.groups.services import TERM_REMINDER_BEFORE, application_reviewers


def send_term_end_reminders() -> int:
    """Email the chairs of each group about members whose term ends within 30 days.

    Once per membership and term end: the membership row remembers the term end it was
    reminded for (claimed under a row lock), and the outbox key names membership, term end
    and chair, so running twice, late, or in two processes sends nothing more. A late run
    still reminds as long as the term has not ended. Returns the memberships reminded.
    """
    today = local_today()
    horizon = today + TERM_REMINDER_BEFORE
    with writing():
        due = list(
            db.session.execute(
                select(Membership)
                .where(
                    Membership.status == MembershipStatus.ACTIVE.value,
                    Membership.term_end.is_not(None),
                    Membership.term_end >= today,
                    Membership.term_end <= horizon,
                )
                .order_by(Membership.id)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        count = 0
        for membership in due:
            if membership.term_reminder_sent_for == membership.term_end:
                continue
            membership.term_reminder_sent_for = membership.term_end
            # Those who can sign in and act on it (the email links to the organizers' pages).
            for chair in application_reviewers(membership.group):
                notify_term_ending(membership, chair)
            count += 1
        db.session.commit()
    return count
