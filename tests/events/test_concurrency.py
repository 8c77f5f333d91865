"""Seats under real concurrency: gunicorn with several workers, 200 people at once.

One server per backend (start-up is the slow part): in that run, 200 registrations for 50
seats, the same with a sector cap, then parallel cancellations on both events, each link twice
at once, then one address registered by 20 browsers at once, then one address subscribing to
a list from 10 browsers at once.
"""
from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from portal.core.clock import now
from portal.events.models import Event, Registration
from portal.extensions import db
from portal.lists.services import CONFIRMATIONS_PER_ADDRESS_PER_HOUR, save_public_list
from portal.mail.models import OutboxMessage
from portal.people.models import Person, Sector
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SECTORS = ["police", "health-care", "mental-health", "education", "housing", "child-protection"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the POST's own answer is what counts
        return None


class Visitor:
    """One browser: its own cookie jar, so its own session and CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect())

    def token(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=60) as response:
            page = response.read().decode()
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)

    def post(self, path: str, data: dict) -> int:
        body = urllib.parse.urlencode(data, doseq=True).encode()
        try:
            with self.opener.open(self.base + path, data=body, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code


def _start_gunicorn(url: str, tmp_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "concurrency-test-secret-key-0123456789",
           "PORTAL_INSTANCE_PATH": str(tmp_path / "gunicorn-instance"), "PORTAL_ENV": "development",
           "EVENTS_REGISTER_RATE_LIMIT": "100000/minute", "MAIL_SERVER": "",
           "PORTAL_BASE_URL": f"http://127.0.0.1:{port}"}
    log = open(tmp_path / "gunicorn.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "4", "-b", f"127.0.0.1:{port}", "--timeout", "120",
         "--log-level", "warning", "portal:create_app()"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/events", timeout=5) as response:
                if response.status == 200:
                    return server, base
        except OSError:
            # Not listening yet: poll again (start-up takes a moment per worker).
            time.sleep(0.2)
    server.kill()
    raise AssertionError("gunicorn did not start: " + (tmp_path / "gunicorn.log").read_text()[-2000:])


def _in_parallel(count: int, prepare, act) -> list:
    """Run `prepare(i)` for everyone, wait until all are ready, then `act(i, prepared)` at once."""
    barrier = threading.Barrier(count)

    def one(index: int):
        state = prepare(index)
        barrier.wait(timeout=120)
        return act(index, state)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def _register_many(base: str, slug: str, sector_of, count: int = 200, email=lambda i: f"p{i}@example.ca") -> list[int]:
    def prepare(i: int):
        visitor = Visitor(base)
        return visitor, visitor.token(f"/events/{slug}/register")

    def act(i: int, state) -> int:
        visitor, token = state
        return visitor.post(f"/events/{slug}/register", {
            "csrf_token": token, "name": f"Person {i}", "email": email(i),
            "organization": "Org", "sector": sector_of(i), "community": "Toronto", "privacy": "y"})

    return _in_parallel(count, prepare, act)


def _new_event(slug: str, cap: int | None) -> int:
    start = now() + timedelta(days=20)
    event = Event(slug=slug, title=slug, starts_at=start, ends_at=start + timedelta(hours=6), capacity=50,
                  sector_cap_percent=cap, status="published")
    db.session.add(event)
    db.session.commit()
    return event.id


def _manage_links(event_id: int, count: int) -> list[str]:
    """The manage links of the first `count` confirmed people, from their confirmation mail."""
    ids = db.session.execute(
        select(Registration.id).where(Registration.event_id == event_id, Registration.status == "confirmed")
        .order_by(Registration.id).limit(count)).scalars().all()
    bodies = db.session.execute(
        select(OutboxMessage.body_text).where(OutboxMessage.idempotency_key.in_(
            [f"events.confirmation:registration:{i}" for i in ids]))).scalars().all()
    links = [re.search(r"(/events/manage/[A-Za-z0-9_-]+)", body).group(1) for body in bodies]
    assert len(links) == count
    return links


def test_two_hundred_people_fifty_seats_several_workers(app, tmp_path):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with app.app_context():
        plain_id = _new_event("plain", None)
        capped_id = _new_event("capped", 20)  # at most 10 seats per sector
        sector_ids = dict(db.session.execute(select(Sector.slug, Sector.id)).all())
        save_public_list(None, slug="announcements", name_en="Announcements", name_fr="Annonces",
                         description_en="News.")
        db.session.commit()
    server, base = _start_gunicorn(url, tmp_path)
    try:
        statuses = _register_many(base, "plain", lambda i: "police")
        assert Counter(statuses) == {302: 200}, Counter(statuses)  # each sent on to its result page
        capped = _register_many(base, "capped", lambda i: SECTORS[i % len(SECTORS)])
        assert Counter(capped) == {302: 200}

        with app.app_context():
            for event_id in (plain_id, capped_id):
                rows = db.session.execute(select(Registration).where(Registration.event_id == event_id)).scalars().all()
                confirmed = [r for r in rows if r.status == "confirmed"]
                waiting = [r for r in rows if r.status == "waitlisted"]
                assert len(confirmed) == 50 and len(waiting) == 150
                assert sorted(r.waitlist_position for r in waiting) == list(range(1, 151))
                assert len({r.person_id for r in rows}) == 200
            per_sector = Counter(r.sector_id for r in db.session.execute(
                select(Registration).where(Registration.event_id == capped_id,
                                           Registration.status == "confirmed")).scalars())
            assert max(per_sector.values()) <= 10 and set(per_sector) <= {sector_ids[s] for s in SECTORS}
            links = {event_id: _manage_links(event_id, count) for event_id, count in ((plain_id, 20), (capped_id, 10))}

        # 60 cancellations at once: 20 seats of the plain event and 10 of the capped one, every
        # link twice, from two different browsers.
        work = [link for event_id in (plain_id, capped_id) for link in links[event_id] * 2]

        def prepare(i: int):
            visitor = Visitor(base)
            return visitor, visitor.token(work[i])

        def act(i: int, state) -> int:
            visitor, token = state
            return visitor.post(work[i] + "/cancel", {"csrf_token": token})

        results = _in_parallel(len(work), prepare, act)
        assert all(code == 302 for code in results), Counter(results)
        with app.app_context():
            rows = db.session.execute(select(Registration).where(Registration.event_id == plain_id)).scalars().all()
            status = Counter(r.status for r in rows)
            assert status == {"confirmed": 50, "waitlisted": 130, "cancelled": 20}
            promoted = sorted(r.waitlist_position for r in rows if r.promoted_at is not None)
            assert promoted == list(range(1, 21))  # first in line, each once

            rows = db.session.execute(select(Registration).where(Registration.event_id == capped_id)).scalars().all()
            assert Counter(r.status for r in rows) == {"confirmed": 50, "waitlisted": 140, "cancelled": 10}
            per_sector = Counter(r.sector_id for r in rows if r.status == "confirmed")
            assert max(per_sector.values()) <= 10  # promotion kept the cap
            assert len([r for r in rows if r.promoted_at is not None]) == 10

            # Nobody promoted (or emailed) twice: one promotion mail per promoted registration.
            keys = db.session.execute(
                select(OutboxMessage.idempotency_key).where(OutboxMessage.purpose == "events.promoted")).scalars().all()
            promoted_ids = set(db.session.execute(
                select(Registration.id).where(Registration.promoted_at.is_not(None))).scalars())
            assert len(keys) == len(promoted_ids) == 30
            assert {int(key.rsplit(":", 1)[1]) for key in keys} == promoted_ids

        # One address typed by 20 browsers at once: one place, one "manage your registration" mail.
        twins = _register_many(base, "plain", lambda i: "police", count=20, email=lambda i: "twin@example.ca")
        assert Counter(twins) == {302: 20}
        with app.app_context():
            person = db.session.execute(select(Person).where(Person.email == "twin@example.ca")).scalar_one()
            places = db.session.execute(select(Registration).where(Registration.person_id == person.id)).scalars().all()
            assert len(places) == 1 and places[0].status == "waitlisted"
            mail = Counter(db.session.execute(
                select(OutboxMessage.purpose).where(OutboxMessage.person_id == person.id)).scalars())
            assert mail == {"events.waitlisted": 1, "events.manage_link": 1}

        # The same gunicorn, for a list: one address asking to subscribe from 10 browsers at
        # once gets at most the hour's three confirmation emails (unlocked, each request
        # counted the hour's requests before any other had committed, and all 10 went).
        def prepare_subscriber(i: int):
            visitor = Visitor(base)
            return visitor, visitor.token("/lists/announcements/subscribe")

        def subscribe(i: int, state) -> int:
            visitor, token = state
            return visitor.post("/lists/announcements/subscribe", {
                "csrf_token": token, "email": "eager@example.ca", "language": "en", "consent": "y"})

        answers = _in_parallel(10, prepare_subscriber, subscribe)
        assert Counter(answers) == {302: CONFIRMATIONS_PER_ADDRESS_PER_HOUR, 429: 10 - CONFIRMATIONS_PER_ADDRESS_PER_HOUR}
        with app.app_context():
            assert len(db.session.execute(select(OutboxMessage).where(
                OutboxMessage.purpose == "lists.confirmation")).all()) == CONFIRMATIONS_PER_ADDRESS_PER_HOUR
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        errors = (tmp_path / "gunicorn.log").read_text()
        assert "Traceback" not in errors, errors[-4000:]
