"""The scheduler: fixed jobs, one active process, standby takeover, exactly-once releases."""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy import func, select

from portal.core.clock import now
from portal.extensions import db
from portal.guidelines.models import Guideline, GuidelineStatus
from portal.mail.models import OutboxMessage
from portal.scheduler import runner
from tests.guidelines.conftest import add_people, confirmed_requests, create_guideline, subscribe


def _notice_counts(app, guideline_id: int) -> tuple[int, int, str]:
    with app.app_context():
        rows = db.session.execute(
            select(func.count(), func.count(func.distinct(OutboxMessage.person_id))).where(
                OutboxMessage.idempotency_key.like(f"guidelines.release:{guideline_id}:%"))
        ).one()
        status = db.session.get(Guideline, guideline_id).status
        db.session.rollback()
        return rows[0], rows[1], status


def _wait_released(app, guideline_id: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _notice_counts(app, guideline_id)[2] == GuidelineStatus.RELEASED:
            return
        time.sleep(0.1)
    raise AssertionError("the guideline was not released in time")


def _release_with_recipients(app, release_at, count: int = 1000, prefix: str = "r") -> int:
    with app.app_context():
        guideline = create_guideline(release_at=release_at)
        people = add_people(count, prefix)
        half = count // 2
        confirmed_requests(guideline.id, people[: half + 100])  # 100 both requested and subscribe
        subscribe(people[half:])
        db.session.commit()
        return guideline.id


def test_jobs_are_set_on_purpose_and_missing_ones_are_skipped(app, caplog, monkeypatch):
    monkeypatch.setattr(runner, "JOBS", runner.JOBS + (("not-yet", "portal.nowhere.jobs.run", 10),))
    with caplog.at_level(logging.WARNING, logger="portal.scheduler"):
        jobs = runner.resolve_jobs(app)
    assert "not-yet" not in {j.name for j in jobs}
    assert "release-guidelines" in {j.name for j in jobs}
    assert "portal.nowhere.jobs.run is not available" in caplog.text
    scheduler = runner.build_scheduler(app, jobs)
    for job in scheduler.get_jobs():
        assert job.misfire_grace_time == runner.MISFIRE_GRACE_SECONDS == 300
        assert job.coalesce is True and job.max_instances == 1
        assert job.next_run_time is not None  # first run at start: late work happens at once
    release = next(j for j in jobs if j.name == "release-guidelines")
    assert release.interval <= 30  # released within 60 s of its time


def test_web_app_never_starts_a_scheduler(app, client):
    client.get("/guidelines/")
    names = {thread.name for thread in threading.enumerate()}
    assert not any("APScheduler" in name or "portal-scheduler" in name for name in names)


def test_only_one_holder_of_the_scheduler_lock(app):
    first, second = runner.lock_for(app), runner.lock_for(app)
    assert first.try_acquire()
    try:
        assert not second.try_acquire()
        assert first.still_held()
    finally:
        first.release()
    assert second.try_acquire()
    second.release()


def test_in_process_scheduler_for_the_dev_server_releases(app):
    gid = _release_with_recipients(app, now() - timedelta(seconds=1), count=3, prefix="dev")
    scheduler = runner.start_in_process_scheduler(app)
    try:
        _wait_released(app, gid, timeout=20)
    finally:
        deadline = time.monotonic() + 10
        while not scheduler.running and time.monotonic() < deadline:
            time.sleep(0.05)
        scheduler.shutdown(wait=True)
    assert _notice_counts(app, gid)[:2] == (3, 3)
    lock = runner.lock_for(app)
    assert lock.try_acquire()  # shutting down handed the lock back
    lock.release()


def test_two_schedulers_one_release_standby_takes_over(app, start_scheduler):
    """Two processes against a 1,000-recipient release: 1,000 notices; when the active one is
    killed the standby takes over and runs the next release."""
    gid = _release_with_recipients(app, now() + timedelta(seconds=4))
    first = start_scheduler("first")
    first.wait_for_log("scheduler active")
    second = start_scheduler("second")
    second.wait_for_log("scheduler standby")
    # It names the active one, not itself, so an operator looks at the right process.
    assert (f"scheduler standby (pid {second.process.pid}): another scheduler is active "
            f"(pid {first.process.pid})") in second.log()

    _wait_released(app, gid)
    assert _notice_counts(app, gid) == (1000, 1000, GuidelineStatus.RELEASED)
    assert "releasing guideline" not in second.log()

    first.kill()
    second.wait_for_log("scheduler active", timeout=20)
    gid2 = _release_with_recipients(app, now() - timedelta(seconds=1), count=50, prefix="later")
    _wait_released(app, gid2, timeout=30)
    # Its 50 new requesters and the 500 earlier list subscribers, once each.
    assert _notice_counts(app, gid2)[:2] == (550, 550)
    assert _notice_counts(app, gid) == (1000, 1000, GuidelineStatus.RELEASED)


def test_killed_mid_release_then_restarted_late_every_recipient_once(app, backend, start_scheduler):
    """The release fell due while no scheduler ran; the first one is SIGKILLed while queueing;
    the restarted one releases it (late), with exactly one notice per recipient."""
    from sqlalchemy import text

    gid = _release_with_recipients(app, now() - timedelta(hours=1))
    blocker = None
    if backend == "postgresql":
        # Hold the scheduler mid-release: an uncommitted release-notice row for one recipient
        # makes its INSERT ... ON CONFLICT wait, after the claim, inside its transaction.
        with app.app_context():
            person_id = db.session.execute(text(
                "SELECT min(person_id) FROM copy_request WHERE guideline_id = :g"), {"g": gid}).scalar()
            blocker = db.engine.connect()
        blocker.begin()
        blocker.execute(text("INSERT INTO release_notice (guideline_id, person_id, reason, created_at) "
                             "VALUES (:g, :p, 'request', now())"), {"g": gid, "p": person_id})
    victim = start_scheduler("victim")
    victim.wait_for_log("releasing guideline")
    if blocker is not None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with app.app_context():
                waiting = db.session.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar()
                db.session.rollback()
            if waiting:
                break
            time.sleep(0.05)
        assert waiting, "the scheduler never reached the notices"
    victim.kill()
    if blocker is not None:
        blocker.rollback()
        blocker.close()
        # Killed mid-transaction: nothing of the release was committed.
        assert _notice_counts(app, gid) == (0, 0, GuidelineStatus.SCHEDULED)
    else:
        # SQLite: the kill lands within a few ms of the log line; whatever the moment, the
        # release is one transaction: all of it or none of it.
        assert _notice_counts(app, gid) in ((0, 0, GuidelineStatus.SCHEDULED),
                                            (1000, 1000, GuidelineStatus.RELEASED))

    restarted = start_scheduler("restarted")
    restarted.wait_for_log("scheduler active")
    _wait_released(app, gid)
    assert _notice_counts(app, gid) == (1000, 1000, GuidelineStatus.RELEASED)
    # Due an hour before any scheduler ran: the first one started on it at once.
    assert "late by 1:" in victim.log()
    with app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM release_notice WHERE guideline_id = :g"),
                                  {"g": gid}).scalar() == 1000
