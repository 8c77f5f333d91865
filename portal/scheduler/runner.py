"""The scheduler: APScheduler 3.x as a clock for fixed jobs; the database holds what is due.

Every job is a no-argument function in `portal/<area>/jobs.py` that polls for due rows,
claims them atomically and commits its own work, so a run that is late, repeated or
interrupted is harmless. The scheduler only decides *when* to poll.

Only one scheduler may be active (APScheduler processes cannot share a job store, and one
clock is enough). It is elected by a lock that dies with its holder:
  - PostgreSQL: a session-level `pg_advisory_lock` held on a dedicated connection; if the
    process dies, its connection closes and the server releases the lock;
  - SQLite: an exclusive `flock` on `<instance>/scheduler.lock`; the kernel releases it when
    the process dies.
A second scheduler started meanwhile waits as a standby, trying the lock every few seconds,
and takes over when the active one dies. Web workers never start a scheduler.
"""
from __future__ import annotations

import hashlib
import importlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

log = logging.getLogger("portal.scheduler")

#: The fixed jobs: name, dotted path, default interval in seconds.
JOBS: tuple[tuple[str, str, float], ...] = (
    # Within 60 s of the release time: polled every 15 s.
    ("release-guidelines", "portal.guidelines.jobs.release_due_guidelines", 15),
    ("deliver-outbox", "portal.mail.jobs.deliver_outbox", 10),
    ("event-reminders", "portal.events.jobs.send_due_reminders", 60),
    ("list-posts", "portal.lists.jobs.send_due_posts", 15),
    ("list-imports", "portal.lists.jobs.process_pending_imports", 30),
    ("term-end-reminders", "portal.groups.jobs.send_term_end_reminders", 3600),
    ("purge-personal-data", "portal.people.jobs.purge_expired_personal_data", 3600),
)

#: APScheduler 3.x's default misfire_grace_time is 1 second: a run that starts later than
#: that (a busy pool, a paused process, a slow previous run) is silently dropped. The jobs
#: are harmless when late, so allow five minutes.
MISFIRE_GRACE_SECONDS = 300

#: A constant key for pg_advisory_lock, the same in every scheduler process.
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"portal.scheduler").digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Job:
    name: str
    path: str
    function: Callable[[], int | None]
    interval: float


def _setting(app: Flask, name: str, default: float) -> float:
    """A number from the environment (tests shorten intervals) or the app config."""
    raw = os.environ.get(name) or app.config.get(name)
    try:
        return float(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        log.warning("%s=%r is not a number; using %s", name, raw, default)
        return default


def resolve_jobs(app: Flask) -> list[Job]:
    """Import every job by its dotted path; log and skip those not importable."""
    interval_override = _setting(app, "SCHEDULER_INTERVAL_SECONDS", 0)
    only = os.environ.get("SCHEDULER_JOBS") or app.config.get("SCHEDULER_JOBS") or ""
    wanted = {name.strip() for name in only.split(",") if name.strip()}
    jobs: list[Job] = []
    for name, path, interval in JOBS:
        if wanted and name not in wanted:
            continue
        module_name, _, function_name = path.rpartition(".")
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as error:
            log.warning("job %s skipped: %s is not available (%s)", name, path, error)
            continue
        jobs.append(Job(name, path, function, interval_override or interval))
    return jobs


def run_job(app: Flask, job: Job) -> None:
    """Run one job in its own app context; its transactions are its own. Never raises."""
    from portal.extensions import db

    with app.app_context():
        try:
            result = job.function()
            if result:
                log.info("job %s processed %s", job.name, result)
        except Exception:
            log.exception("job %s failed; it runs again at its next interval", job.name)
            db.session.rollback()
        finally:
            db.session.remove()


def build_scheduler(app: Flask, jobs: list[Job]) -> BackgroundScheduler:
    """A BackgroundScheduler with the fixed jobs, each first run at once.

    Running at once on start is the late policy: a release (or anything) that fell due while
    no scheduler was active happens as soon as one starts.
    """
    scheduler = BackgroundScheduler(timezone=UTC)
    for job in jobs:
        scheduler.add_job(
            run_job,
            "interval",
            seconds=job.interval,
            args=(app, job),
            id=job.name,
            name=job.name,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            # Runs that piled up (after a pause) collapse into one: the job catches up anyway.
            coalesce=True,
            # Never two runs of a job at once in this process; across processes, the lock.
            max_instances=1,
            replace_existing=True,
        )
    return scheduler


class SchedulerLock:
    """The election: at most one holder among all scheduler processes."""

    def try_acquire(self) -> bool:
        raise NotImplementedError

    def still_held(self) -> bool:
        return True

    def holder(self) -> str:
        """Who holds the lock, for the standby's log line ("pid 21566"); "" if unknown."""
        return ""

    def release(self) -> None:
        raise NotImplementedError


class PostgresAdvisoryLock(SchedulerLock):
    """A session-level advisory lock on a dedicated connection (not from the app's pool)."""

    def __init__(self, url) -> None:
        # The session's name says which process holds the lock (pg_stat_activity), for standbys.
        self.engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                                    connect_args={"application_name": f"portal scheduler pid {os.getpid()}"})
        self.connection = None

    def try_acquire(self) -> bool:
        try:
            connection = self.engine.connect()
        except Exception as error:
            log.warning("cannot reach the database for the scheduler lock: %s", error)
            return False
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}).scalar()
        if got:
            self.connection = connection
            return True
        connection.close()
        return False

    def still_held(self) -> bool:
        # If the connection broke, the server has already released the lock and a standby
        # may have taken over: this process must stop its jobs.
        try:
            self.connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def holder(self) -> str:
        # pg_locks shows a bigint advisory key as its high and low 32 bits (classid, objid).
        high, low = (ADVISORY_LOCK_KEY >> 32) & 0xFFFFFFFF, ADVISORY_LOCK_KEY & 0xFFFFFFFF
        try:
            with self.engine.connect() as connection:
                name = connection.execute(text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                    " AND l.classid::bigint = :high AND l.objid::bigint = :low"
                    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    " LIMIT 1"), {"high": high, "low": low}).scalar()
        except Exception:
            return ""
        return (name or "").removeprefix("portal scheduler ")

    def release(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()  # closing the session releases the lock
            except Exception:
                pass
            self.connection = None


class FileLock(SchedulerLock):
    """An exclusive flock on a file; the kernel drops it when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def holder(self) -> str:
        try:
            written = self.path.read_text().strip()
        except OSError:
            return ""
        return f"pid {written}" if written.isdigit() else ""

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def lock_for(app: Flask) -> SchedulerLock:
    from portal.extensions import db

    with app.app_context():
        url = db.engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresAdvisoryLock(url)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    return FileLock(Path(app.instance_path) / "scheduler.lock")


def run_scheduler(app: Flask, stop: threading.Event | None = None) -> None:
    """Run as the scheduler process until `stop` is set: standby until elected, then active.

    Returns only when stopped (SIGTERM/SIGINT in the CLI); jobs running at that moment are
    allowed to finish.
    """
    stop = stop or threading.Event()
    poll = _setting(app, "SCHEDULER_STANDBY_POLL_SECONDS", 5.0)
    jobs = resolve_jobs(app)
    lock = lock_for(app)
    said_standby = False
    while not stop.is_set():
        if not lock.try_acquire():
            if not said_standby:
                log.info("scheduler standby (pid %s): another scheduler is active (%s); waiting to take over",
                         os.getpid(), lock.holder() or "holder unknown")
                said_standby = True
            stop.wait(poll)
            continue
        said_standby = False
        log.info("scheduler active (pid %s): jobs %s", os.getpid(), ", ".join(j.name for j in jobs) or "none")
        scheduler = build_scheduler(app, jobs)
        scheduler.start()
        try:
            while not stop.wait(poll):
                if not lock.still_held():
                    log.error("scheduler lost its lock (database connection broke); stopping jobs")
                    break
        finally:
            scheduler.shutdown(wait=True)
            lock.release()
    log.info("scheduler stopped (pid %s)", os.getpid())


def start_in_process_scheduler(app: Flask) -> BackgroundScheduler:
    """For the development server only: the same jobs on a background thread.

    It takes the same lock first (on a daemon thread, so serving is not delayed), so a
    `flask scheduler` process running beside the dev server is never a second clock.
    """
    jobs = resolve_jobs(app)
    scheduler = build_scheduler(app, jobs)
    lock = lock_for(app)
    poll = _setting(app, "SCHEDULER_STANDBY_POLL_SECONDS", 5.0)
    # Shutting the scheduler down hands the lock back (a `flask scheduler` may take over).
    scheduler.add_listener(lambda _event: lock.release(), EVENT_SCHEDULER_SHUTDOWN)

    def elect_then_start() -> None:
        said = False
        while not lock.try_acquire():
            if not said:
                log.info("another scheduler is active; the dev server's scheduler waits as standby")
                said = True
            threading.Event().wait(poll)
        log.info("in-process scheduler active: jobs %s", ", ".join(j.name for j in jobs) or "none")
        scheduler.start()

    threading.Thread(target=elect_then_start, name="portal-scheduler-election", daemon=True).start()
    return scheduler
