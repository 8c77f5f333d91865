"""Retention for working groups: a former member or declined applicant is forgotten by the
group after the group's retention period.

Called by the privacy area's purge job (`portal.people.jobs.purge_expired_personal_data`),
which runs every area's `purge_due` in its own transaction; `forecast` feeds the organizers'
"what is purged, and when" page.

Rules (a month counts 30 days, as the lists area does):
- `retention_months` (24 unless set otherwise) after someone left the group, was removed, or
  had their application declined, their membership row is deleted: role, term, application
  text, directory choices, acknowledgement of the terms, and the links (members' link,
  invitation) that were issued for it. Nothing the portal shows counts former members, so
  nothing is kept for counts; the audit log keeps what was decided, and when. Someone who
  applies again later starts a new row. If the end was never recorded, the clock runs from
  when the row was created.
- The group's list subscribers are exactly its active members, so a former member is no
  longer subscribed (the list withdrawal is in the consent ledger). Their unsubscribed row on
  the group's list is deleted with the membership, but never before 60 days after they were
  taken off, so the unsubscribe link in the last messages they received keeps working (CASL);
  a row still inside those 60 days is deleted by a later run. A consent to member mail that
  the ledger still shows as given (a declined applicant's) is closed with a withdrawal row
  saying the membership ended. Once nothing else is left, the people area erases the person
  24 months after their last consent ended.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, delete, exists, select

from portal.core.db import delete_by_ids
from portal.extensions import db
from portal.groups.models import Membership, MembershipStatus, WorkingGroup

#: A group's `retention_months` counts months of 30 days.
MONTH = timedelta(days=30)
#: An unsubscribe link keeps working at least this long after the last message (CASL: 60 days).
UNSUBSCRIBE_LINK_KEPT = timedelta(days=60)
#: Links issued for a membership, deleted with it.
MEMBERSHIP_TOKEN_PURPOSES = ("groups.member", "groups.invite", "groups.application")

#: Rows purged when their group's period has passed: former members, declined applicants,
#: and applications never confirmed (from when the row was made, or ended before it was
#: reopened: a stranger's form cannot restart the clock).
ENDED = (MembershipStatus.LEFT.value, MembershipStatus.DECLINED.value, MembershipStatus.UNCONFIRMED.value)


def _ended_at(left_at: datetime | None, decided_at: datetime | None, created_at: datetime) -> datetime:
    """When the membership ended: the latest of leaving and the last decision (someone who
    left, applied again and was declined ended at the decline), else when the row was made."""
    moments = [m for m in (left_at, decided_at) if m is not None]
    return max(moments) if moments else created_at


def _ended_memberships(*, lock: bool = False) -> list[tuple[int, int, int, int | None, datetime]]:
    """(membership id, group id, person id, group's list id, moment it falls due) for every
    former member and declined applicant."""
    query = (
        select(Membership.id, Membership.group_id, Membership.person_id, WorkingGroup.mailing_list_id,
               Membership.left_at, Membership.decided_at, Membership.created_at, WorkingGroup.retention_months)
        .join(WorkingGroup, WorkingGroup.id == Membership.group_id)
        .where(Membership.status.in_(ENDED))
        .order_by(Membership.id)
    )
    if lock:
        query = query.with_for_update(of=Membership, skip_locked=True)
    return [
        (mid, gid, pid, list_id, _ended_at(left_at, decided_at, created_at) + MONTH * months)
        for mid, gid, pid, list_id, left_at, decided_at, created_at, months in db.session.execute(query).all()
    ]


def _ended_moments(membership_ids: list[int]) -> dict[int, datetime]:
    """When each of these memberships ended (see _ended_at)."""
    ended: dict[int, datetime] = {}
    for start in range(0, len(membership_ids), 500):
        for mid, left_at, decided_at, created_at in db.session.execute(
            select(Membership.id, Membership.left_at, Membership.decided_at, Membership.created_at)
            .where(Membership.id.in_(membership_ids[start:start + 500]))
        ).all():
            ended[mid] = _ended_at(left_at, decided_at, created_at)
    return ended


def _close_consent(group_id: int, person_id: int, *, at: datetime | None = None) -> None:
    """The consent to member mail an applicant gave ends with the membership: if the ledger's
    latest row for it is not a withdrawal (a declined applicant was never subscribed, so
    nothing wrote one), append one saying why. Without it the people area would take the
    consent for live and keep the person forever."""
    from portal.groups.services import consent_purpose
    from portal.people.models import ConsentKind, ConsentRecord, Person
    from portal.people.services import record_consent

    group = db.session.get(WorkingGroup, group_id)
    person = db.session.get(Person, person_id)
    if group is None or person is None:
        return
    purpose = consent_purpose(group)
    latest = db.session.execute(
        select(ConsentRecord.kind)
        .where(ConsentRecord.person_id == person_id, ConsentRecord.purpose == purpose)
        .order_by(ConsentRecord.created_at.desc(), ConsentRecord.id.desc()).limit(1)
    ).scalar_one_or_none()
    if latest is None or latest == ConsentKind.WITHDRAWN:
        return
    # Dated when the membership ended, not when its record is purged: the person's own
    # retention (24 months after their consent ends) counts from the decline or the leaving.
    record_consent(
        person, purpose=purpose, kind=ConsentKind.WITHDRAWN, source="groups.retention",
        method="membership ended", language=person.language or "en",
        wording="The membership ended; no member mail is sent.", at=at,
    )


def _lists():
    try:
        from portal.lists.models import Subscription, SubscriptionStatus
    except ImportError:  # the lists area is optional
        return None
    return Subscription, SubscriptionStatus


def _orphan_subscriptions() -> list[tuple[int, datetime]]:
    """(subscription id, moment it falls due) for unsubscribed rows on a group's list whose
    person has no membership row in that group any more."""
    lists = _lists()
    if lists is None:
        return []
    Subscription, SubscriptionStatus = lists
    rows = db.session.execute(
        select(Subscription.id, Subscription.unsubscribed_at, Subscription.created_at)
        .join(WorkingGroup, WorkingGroup.mailing_list_id == Subscription.list_id)
        .where(
            Subscription.status == SubscriptionStatus.UNSUBSCRIBED.value,
            ~exists().where(and_(Membership.group_id == WorkingGroup.id,
                                 Membership.person_id == Subscription.person_id)),
        )
        .order_by(Subscription.id)
    ).all()
    return [(sid, (ended or created) + UNSUBSCRIBE_LINK_KEPT) for sid, ended, created in rows]


def _take_off_list(list_id: int, person_id: int) -> None:
    """A former member must not be on the group's list; take them off if they still are
    (should not happen: leaving unsubscribes), writing the withdrawal to the ledger."""
    lists = _lists()
    if lists is None:
        return
    Subscription, SubscriptionStatus = lists
    subscription = db.session.execute(
        select(Subscription).where(Subscription.list_id == list_id, Subscription.person_id == person_id)
    ).scalar_one_or_none()
    if subscription is None or subscription.status == SubscriptionStatus.UNSUBSCRIBED:
        return
    from portal.lists.services import remove_group_subscriber

    remove_group_subscriber(subscription.mailing_list, subscription.person)


def purge_due(moment: datetime) -> int:
    """Delete the memberships of people who left or were declined longer ago than their
    group's `retention_months`, with the links issued for them; then delete the unsubscribed
    rows such people leave on the group's list (at least 60 days after unsubscribing).

    Idempotent: what is deleted is not found again. Flushes; the caller commits. Returns how
    many memberships and subscriptions were deleted.
    """
    from portal.core.tokens import AccessToken

    due = [row for row in _ended_memberships(lock=True) if row[4] <= moment]
    ended = _ended_moments([row[0] for row in due])
    for membership_id, group_id, person_id, list_id, _due_at in due:
        if list_id is not None:
            _take_off_list(list_id, person_id)
        _close_consent(group_id, person_id, at=ended.get(membership_id))
    count = 0
    ids = [row[0] for row in due]
    for start in range(0, len(ids), 500):
        batch = ids[start:start + 500]
        db.session.execute(
            delete(AccessToken)
            .where(AccessToken.purpose.in_(MEMBERSHIP_TOKEN_PURPOSES), AccessToken.subject_id.in_(batch))
            .execution_options(synchronize_session=False)
        )
        count += db.session.execute(
            delete(Membership)
            .where(Membership.id.in_(batch), Membership.status.in_(ENDED))
            .execution_options(synchronize_session=False)
        ).rowcount or 0
    db.session.flush()

    lists = _lists()
    if lists is not None:
        Subscription, SubscriptionStatus = lists
        orphans = [sid for sid, due_at in _orphan_subscriptions() if due_at <= moment]
        count += delete_by_ids(Subscription, orphans, Subscription.status == SubscriptionStatus.UNSUBSCRIBED.value)
    db.session.flush()
    db.session.expire_all()  # bulk deletes: no stale objects for the rest of the transaction
    return count


def _subscription_moments() -> list[datetime]:
    """When each former member's unsubscribed row on a group's list falls due under this
    area's rule: 60 days after unsubscribing, and not before their membership goes."""
    lists = _lists()
    if lists is None:
        return []
    Subscription, SubscriptionStatus = lists
    memberships = {(gid, pid): due_at for _mid, gid, pid, _lid, due_at in _ended_memberships()}
    rows = db.session.execute(
        select(WorkingGroup.id, Subscription.person_id, Subscription.unsubscribed_at, Subscription.created_at)
        .join(WorkingGroup, WorkingGroup.mailing_list_id == Subscription.list_id)
        .join(Membership, and_(Membership.group_id == WorkingGroup.id,
                               Membership.person_id == Subscription.person_id))
        .where(Subscription.status == SubscriptionStatus.UNSUBSCRIBED.value, Membership.status.in_(ENDED))
    ).all()
    moments = [max(memberships[(gid, pid)], (ended or created) + UNSUBSCRIBE_LINK_KEPT)
               for gid, pid, ended, created in rows if (gid, pid) in memberships]
    return moments + [due_at for _sid, due_at in _orphan_subscriptions()]


def forecast(moment: datetime) -> list:
    """What the rules purge now and over the next 90 days, by day. Changes nothing."""
    from portal.people.retention import Forecast, _by_day

    due, upcoming = _by_day([row[4] for row in _ended_memberships()], moment)
    sub_due, sub_upcoming = _by_day(_subscription_moments(), moment)
    return [
        Forecast(
            "groups.former_members",
            _l("The membership of someone who left a working group, was removed, or whose application "
               "was declined is deleted: role, term, application text, directory choices and the links "
               "issued for it. The audit log keeps what was decided, and when."),
            _l("The group's retention period after they left or were declined (24 months unless set otherwise)"),
            due, upcoming,
        ),
        Forecast(
            "groups.list_subscriptions",
            _l("A former member's (unsubscribed) row on the group's mailing list is deleted with their "
               "membership; the consent ledger keeps the withdrawal."),
            _l("With the membership, but at least 60 days after they were taken off the list"),
            sub_due, sub_upcoming,
        ),
    ]
