"""Retention for mailing lists: a former subscriber's subscription goes after the list's
retention period.

Called by the privacy area's purge job (`portal.people.jobs.purge_expired_personal_data`),
which runs every area's `purge_due` in its own transaction; `forecast` feeds the organizers'
"what is purged, and when" page. Unconfirmed subscriptions are the people area's rule (30
days). Once the subscription is gone, the consent ledger keeps the withdrawal, and the
people area erases someone with no record left 24 months after their last consent ended.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.core.db import delete_by_ids
from portal.extensions import db
from portal.lists.models import ListKind, MailingList, Subscription, SubscriptionStatus

#: A list's `retention_months` counts months of 30 days, as the groups area does.
MONTH = timedelta(days=30)
#: The unsubscribe link of the last message keeps working at least this long (CASL: 60
#: days); it needs the subscription row, so no retention period deletes it sooner.
UNSUBSCRIBE_LINK_KEPT = timedelta(days=60)


def _ended_subscriptions() -> list[tuple[int, datetime]]:
    """(subscription id, moment it falls due) for every unsubscribed subscription of a public
    list. A working group's list follows the groups area's rule (groups.retention: with the
    membership, and not before the same 60 days)."""
    rows = db.session.execute(
        select(Subscription.id, Subscription.unsubscribed_at, MailingList.retention_months)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.status == SubscriptionStatus.UNSUBSCRIBED.value,
               Subscription.unsubscribed_at.is_not(None),
               MailingList.kind == ListKind.PUBLIC.value)
    ).all()
    return [(sid, ended + max(MONTH * months, UNSUBSCRIBE_LINK_KEPT)) for sid, ended, months in rows]


def purge_due(moment: datetime) -> int:
    """Delete the subscriptions of people who unsubscribed longer ago than their list's
    `retention_months` (with the address they asked from, their browser, the wording they
    saw). Idempotent: a deleted row is not found again. Flushes; the caller commits.
    Returns how many subscriptions were deleted."""
    due = [sid for sid, due_at in _ended_subscriptions() if due_at <= moment]
    count = delete_by_ids(Subscription, due, Subscription.status == SubscriptionStatus.UNSUBSCRIBED.value)
    db.session.flush()
    return count


def forecast(moment: datetime) -> list:
    """What the rule purges now and over the next 90 days, by day. Changes nothing."""
    from portal.people.retention import Forecast, _by_day

    due, upcoming = _by_day([due_at for _sid, due_at in _ended_subscriptions()], moment)
    return [Forecast(
        "lists.unsubscribed",
        _l("The subscription of someone who unsubscribed (how and when they had asked) is deleted; "
           "the consent ledger keeps the withdrawal."),
        _l("The list's retention period after they unsubscribed (24 months unless set otherwise)"),
        due, upcoming,
    )]
