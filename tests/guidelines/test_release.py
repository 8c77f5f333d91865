"""Releases: exactly one notice per recipient, at the right time, whatever happens."""
from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from portal.core import clock
from portal.core.clock import now
from portal.extensions import db
from portal.guidelines import services
from portal.guidelines.jobs import release_due_guidelines
from portal.guidelines.models import CopyRequest, Guideline, GuidelineStatus, ReleaseNotice
from portal.mail.models import OutboxMessage
from portal.people.models import Person
from tests.guidelines.conftest import add_people, confirmed_requests, create_guideline, subscribe


def _notices(guideline_id: int) -> list[OutboxMessage]:
    return list(db.session.execute(
        select(OutboxMessage).where(OutboxMessage.idempotency_key.like(f"guidelines.release:{guideline_id}:%"))
    ).scalars())


def test_release_queues_one_notice_per_requester_and_subscriber(app_context):
    start = now()
    clock.set_now(start)
    guideline = create_guideline(release_at=start + timedelta(minutes=10))
    requesters = add_people(3, "req")
    confirmed_requests(guideline.id, requesters)
    both = requesters[0]
    subscribe(both)  # requested AND subscribed: still one notice
    only_list = add_people(2, "sub", language="fr")
    subscribe(only_list)
    pending = add_people(1, "pending")
    db.session.add(CopyRequest(guideline_id=guideline.id, person_id=pending[0], status="pending"))
    unsubscribed = add_people(1, "gone")
    subscribe(unsubscribed[0], status="unsubscribed")
    db.session.commit()
    gid = guideline.id

    assert release_due_guidelines() == 0  # not yet due
    clock.set_now(start + timedelta(minutes=10))
    assert release_due_guidelines() == 1
    assert release_due_guidelines() == 0  # running again is harmless

    notices = _notices(gid)
    assert sorted(n.person_id for n in notices) == sorted(requesters + only_list)
    assert db.session.get(Guideline, gid).status == GuidelineStatus.RELEASED
    assert db.session.get(Guideline, gid).released_at == start + timedelta(minutes=10)
    french = [n for n in notices if n.person_id in only_list]
    assert all(n.language == "fr" and "(FR)" in n.subject for n in french)
    # Subscribers only: list mail with a one-click unsubscribe; requesters: transactional.
    assert all(n.category == "list" and "List-Unsubscribe" in n.headers for n in french)
    assert all(n.category == "transactional" and "List-Unsubscribe" not in n.headers
               for n in notices if n.person_id in requesters)
    assert all("/guidelines/link/" in n.body_text for n in notices)
    assert all(n.purpose == "guidelines.release_notice" for n in notices)
    assert db.session.execute(
        select(func.count()).select_from(CopyRequest).where(CopyRequest.notified_at.is_not(None))
    ).scalar() == 3
    assert services.release_progress(db.session.get(Guideline, gid))["queued"] == 5


def test_rescheduled_or_withdrawn_guideline_does_nothing_at_the_old_time(app_context):
    start = now()
    clock.set_now(start)
    moved = create_guideline(release_at=start + timedelta(minutes=5), title="Moved")
    withdrawn = create_guideline(release_at=start + timedelta(minutes=5), title="Withdrawn")
    people = add_people(2, "p")
    confirmed_requests(moved.id, people)
    confirmed_requests(withdrawn.id, people)
    db.session.commit()
    services.schedule_release(moved, start + timedelta(hours=2))
    services.withdraw_guideline(withdrawn)
    db.session.commit()

    clock.set_now(start + timedelta(minutes=6))
    assert release_due_guidelines() == 0
    assert _notices(moved.id) == [] and _notices(withdrawn.id) == []
    assert db.session.get(Guideline, moved.id).status == GuidelineStatus.SCHEDULED

    clock.set_now(start + timedelta(hours=2, seconds=1))
    assert release_due_guidelines() == 1
    assert len(_notices(moved.id)) == 2
    assert db.session.get(Guideline, withdrawn.id).status == GuidelineStatus.WITHDRAWN


def test_the_claim_checks_the_release_time_it_read(app_context):
    start = now()
    guideline = create_guideline(release_at=start - timedelta(minutes=1))
    db.session.commit()
    read_at = guideline.release_at
    guideline.release_at = start + timedelta(hours=1)  # rescheduled after the job read it
    db.session.commit()
    assert services.claim_release(guideline.id, read_at, start) is None
    db.session.rollback()
    assert db.session.get(Guideline, guideline.id).status == GuidelineStatus.SCHEDULED


def test_a_late_release_happens_when_the_job_runs_again(app_context):
    start = now()
    clock.set_now(start)
    guideline = create_guideline(release_at=start + timedelta(minutes=1))
    confirmed_requests(guideline.id, add_people(2, "late"))
    db.session.commit()
    clock.set_now(start + timedelta(days=3))  # the scheduler was down for three days
    assert release_due_guidelines() == 1
    assert db.session.get(Guideline, guideline.id).released_at == start + timedelta(days=3)
    assert len(_notices(guideline.id)) == 2


def test_a_revision_notifies_who_asked_for_an_earlier_version_and_the_list_as_it_is_now(app_context):
    start = now()
    clock.set_now(start)
    first = create_guideline(release_at=start + timedelta(minutes=1), title="Guide", version="1.0")
    early = add_people(3, "early")
    confirmed_requests(first.id, early)
    listed = add_people(2, "listed")  # told of 1.0 only as subscribers of "Guideline releases"
    subscribe(listed)
    db.session.commit()
    clock.set_now(start + timedelta(minutes=2))
    assert release_due_guidelines() == 1
    from portal.lists.models import Subscription

    # One of them leaves the list (one-click unsubscribe) before 2.0 comes out: no notice.
    db.session.execute(Subscription.__table__.update().where(Subscription.person_id == listed[0])
                       .values(status="unsubscribed"))

    second = create_guideline(release_at=start + timedelta(days=10), title="Guide", version="2.0",
                              revision_of_id=first.id)
    newcomer = add_people(1, "newcomer")
    confirmed_requests(second.id, newcomer + early[:1])  # one early reader also asked again
    db.session.commit()
    clock.set_now(start + timedelta(days=10, seconds=5))
    assert release_due_guidelines() == 1
    notices = _notices(second.id)
    assert sorted(n.person_id for n in notices) == sorted(early + newcomer + listed[1:])
    reasons = dict(db.session.execute(
        select(ReleaseNotice.person_id, ReleaseNotice.reason).where(ReleaseNotice.guideline_id == second.id)
    ).all())
    assert reasons[early[1]] == "revision" and reasons[early[0]] == "request" and reasons[listed[1]] == "list"
    assert next(n for n in notices if n.person_id == listed[1]).category == "list"  # with its unsubscribe
    assert "new version (2.0)" in next(n for n in notices if n.person_id == early[1]).body_text


def test_a_thousand_recipients_two_concurrent_runs_exactly_one_notice_each(app, backend):
    with app.app_context():
        guideline = create_guideline(release_at=now() - timedelta(seconds=1))
        people = add_people(1000, "crowd")
        confirmed_requests(guideline.id, people[:600])
        subscribe(people[400:])
        db.session.commit()
        gid = guideline.id

    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                results.append(release_due_guidelines())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sorted(results) == [0, 1]
    with app.app_context():
        notices = _notices(gid)
        assert len(notices) == 1000
        assert len({n.person_id for n in notices}) == 1000
        assert db.session.execute(
            select(func.count()).select_from(ReleaseNotice).where(ReleaseNotice.guideline_id == gid)
        ).scalar() == 1000


def test_bulk_release_rows_match_what_queue_email_writes(app_context):
    """The fast path of a release writes the same outbox rows as the one-by-one path."""
    import re

    from portal.guidelines import notifications
    from portal.lists.models import Subscription
    from portal.people.models import Person

    first = create_guideline(status=GuidelineStatus.RELEASED, release_at=now(), title="Same")
    second = create_guideline(status=GuidelineStatus.RELEASED, release_at=now(), title="Same")
    (pid,) = add_people(1, "O'Brien <&>", language="fr")
    subscribe(pid)
    person = db.session.get(Person, pid)
    subscription = db.session.execute(select(Subscription).where(Subscription.person_id == pid)).scalar_one()
    link = notifications.path_for("guidelines.download_link", token="TOKEN")
    for reason in ("list", "request", "revision"):
        db.session.execute(OutboxMessage.__table__.delete())
        db.session.expire_all()
        notifications.notify_release(first, person, reason, link, subscription=subscription)
        notifications.queue_release_notices_bulk(
            second, [notifications.NoticeRecipient(person, reason, subscription)], link)
        one, bulk = (db.session.execute(select(OutboxMessage).where(
            OutboxMessage.idempotency_key == f"guidelines.release:{g.id}:{pid}")).scalar_one() for g in (first, second))

        def normal(text: str) -> str:
            return re.sub(r"/guidelines/link/[\w-]+", "/guidelines/link/T", text)

        for column in ("subject", "category", "language", "list_id", "purpose", "state", "from_address",
                       "to_address", "reply_to", "headers", "attempts", "person_id"):
            assert getattr(one, column) == getattr(bulk, column), (reason, column)
        assert normal(one.body_text) == normal(bulk.body_text), reason
        assert normal(one.body_html) == normal(bulk.body_html), reason
        assert "O&#39;Brien &lt;&amp;&gt;" in bulk.body_html or "O&#x27;Brien" in bulk.body_html
    assert (bulk.category, "List-Unsubscribe" in bulk.headers) == ("transactional", False)


def test_withdrawing_after_release_holds_back_notices_not_yet_sent(app_context):
    """Withdrawn after its release: notices still in the outbox are withheld, the one already
    sent stays sent, and the sender sends nothing more for it."""
    from portal.core.audit import AuditEntry
    from portal.mail.delivery import drain
    from portal.mail.models import OutboxState

    start = now()
    clock.set_now(start)
    guideline = create_guideline(release_at=start + timedelta(minutes=1), title="Recalled")
    confirmed_requests(guideline.id, add_people(4, "recall"))
    db.session.commit()
    gid = guideline.id
    clock.set_now(start + timedelta(minutes=2))
    assert release_due_guidelines() == 1

    assert drain(limit=1).sent == 1  # one notice went out before the withdrawal
    db.session.rollback()
    services.withdraw_guideline(db.session.get(Guideline, gid))
    db.session.commit()

    expected = [OutboxState.SENT, OutboxState.WITHHELD, OutboxState.WITHHELD, OutboxState.WITHHELD]
    assert sorted(n.state for n in _notices(gid)) == expected
    assert drain().sent == 0
    db.session.rollback()
    assert sorted(n.state for n in _notices(gid)) == expected
    assert services.release_progress(db.session.get(Guideline, gid)) == {
        "queued": 0, "sent": 1, "failed": 0, "withheld": 3, "total": 4}
    entry = db.session.execute(
        select(AuditEntry).where(AuditEntry.action == "guidelines.guideline.withdrawn")).scalar_one()
    assert entry.detail["notices_withheld"] == 3


def test_someone_who_gave_no_name_is_greeted_by_their_address_not_an_empty_hello(app_context):
    start = now()
    clock.set_now(start)
    guideline = create_guideline(release_at=start + timedelta(minutes=1))
    (nameless,) = add_people(1, "nameless")
    (french,) = add_people(1, "sansnom", language="fr")
    db.session.execute(Person.__table__.update().where(Person.id.in_([nameless, french])).values(name=""))
    confirmed_requests(guideline.id, [nameless])
    subscribe(french)
    db.session.commit()
    clock.set_now(start + timedelta(minutes=2))
    release_due_guidelines()
    notices = {n.person_id: n for n in _notices(guideline.id)}
    assert "Hello nameless0@example.ca," in notices[nameless].body_text
    assert "Bonjour sansnom0@example.ca," in notices[french].body_text
    assert "Hello ," not in notices[nameless].body_html and "Bonjour ," not in notices[french].body_html


def test_a_subscriber_told_of_the_release_who_then_asks_for_a_copy_gets_it(app_context):
    """Found by a review: the page said the link was on its way and the organizer's table
    showed a notice time, but nothing was sent (the person's list notice already existed)."""
    from portal.core.tokens import issue_token
    from portal.guidelines.notifications import CONFIRM_PURPOSE

    start = now()
    clock.set_now(start)
    guideline = create_guideline(release_at=start + timedelta(minutes=10))
    [subscriber] = add_people(1, "jordan")
    subscribe(subscriber)
    db.session.commit()
    gid = guideline.id
    clock.set_now(start + timedelta(minutes=10))
    assert release_due_guidelines() == 1
    request = CopyRequest(guideline_id=gid, person_id=subscriber, status="pending")
    db.session.add(request)
    db.session.flush()
    raw = issue_token(CONFIRM_PURPOSE, person_id=subscriber, subject_id=request.id, valid_for=timedelta(days=1))
    db.session.commit()

    for _ in range(2):  # confirming twice still sends one copy
        services.confirm_copy_request(raw)
        db.session.commit()
    messages = db.session.execute(select(OutboxMessage).where(
        OutboxMessage.person_id == subscriber, OutboxMessage.purpose == "guidelines.release_notice")
        .order_by(OutboxMessage.id)).scalars().all()
    assert [m.category for m in messages] == ["list", "transactional"]
    assert "/guidelines/link/" in messages[1].body_text
    # They asked: a revision reaches them as someone who asked, and the copy is one of this
    # release's messages (counted in its progress, held back by a withdrawal).
    assert db.session.execute(select(ReleaseNotice.reason).where(ReleaseNotice.person_id == subscriber)).scalar_one() \
        == "request"
    assert services.release_progress(db.session.get(Guideline, gid))["total"] == 2
    services.withdraw_guideline(db.session.get(Guideline, gid), actor=None)
    db.session.commit()
    assert db.session.get(OutboxMessage, messages[1].id).state == "withheld"
