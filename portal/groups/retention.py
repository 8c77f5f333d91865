"""Retention for working groups: what former applicants wrote about themselves goes.

Called by the privacy area's purge job (`portal.people.jobs.purge_expired_personal_data`),
which runs every area's `purge_due` in its own transaction.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.groups.models import Membership, MembershipStatus, WorkingGroup

RULES = (
    "The application text of people who left a working group, or whose application was "
    "declined, is erased after the group's retention period (24 months unless set otherwise). "
    "The membership record itself stays, so the group's history stays true.",
)


def purge_due(moment: datetime) -> int:
    """Blank the application text of memberships that ended longer ago than their group's
    `retention_months`. The row stays (it says someone was a member, and when).
    Idempotent: rows already blanked are not selected again. Flushes; the caller commits.
    Returns how many memberships were cleared.
    """
    candidates = db.session.execute(
        select(Membership, WorkingGroup.retention_months)
        .join(WorkingGroup, WorkingGroup.id == Membership.group_id)
        .where(
            Membership.status.in_([MembershipStatus.LEFT.value, MembershipStatus.DECLINED.value]),
            Membership.why != "",
        )
        .with_for_update(of=Membership, skip_locked=True)
    ).all()
    count = 0
    for membership, months in candidates:
        ended = membership.left_at or membership.decided_at
        if ended is None or ended > moment - timedelta(days=30 * months):
            continue
        membership.why = ""
        count += 1
    db.session.flush()
    return count


def forecast(moment: datetime) -> list:
    """What the rule clears now and over the next 90 days, by day. Changes nothing."""
    from flask_babel import lazy_gettext as _l

    from portal.people.retention import Forecast, _by_day

    rows = db.session.execute(
        select(Membership.left_at, Membership.decided_at, WorkingGroup.retention_months)
        .join(WorkingGroup, WorkingGroup.id == Membership.group_id)
        .where(
            Membership.status.in_([MembershipStatus.LEFT.value, MembershipStatus.DECLINED.value]),
            Membership.why != "",
        )
    ).all()
    moments = [(left_at or decided_at) + timedelta(days=30 * months)
               for left_at, decided_at, months in rows if (left_at or decided_at) is not None]
    due, upcoming = _by_day(moments, moment)
    return [Forecast(
        "groups.application_text",
        _l("What former members and declined applicants wrote in their application is erased; "
           "the membership record stays."),
        _l("The group's retention period after they left or were declined (24 months unless set otherwise)"),
        due, upcoming,
    )]
