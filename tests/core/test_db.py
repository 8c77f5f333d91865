"""SQLite's write lock: writers queue for it and get it, and the connection keeps its settings."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from config import TestingConfig
from portal import create_app
from portal.core.db import writing
from portal.extensions import db
from portal.people.models import Sector


@pytest.fixture
def sqlite_app(tmp_path):
    """The portal on its own SQLite file: only SQLite has a database-wide write lock
    (PostgreSQL's row locks are covered by the registration concurrency tests)."""
    application = create_app({
        **{k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()},
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'locks.sqlite3'}",
        "PORTAL_INSTANCE_PATH": str(tmp_path), "MAIL_SERVER": "",
    })
    with application.app_context():
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_writer_waits_for_the_write_lock_then_gets_it(sqlite_app):
    app = sqlite_app
    holding = threading.Event()
    release = threading.Event()

    def hold_the_lock() -> None:
        with app.app_context(), writing():
            db.session.add(Sector(slug="held", name_en="Held", name_fr="Tenu", position=98))
            db.session.flush()  # BEGIN IMMEDIATE: this thread now holds the write lock
            holding.set()
            release.wait(10)
            db.session.commit()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert holding.wait(10)
    threading.Timer(0.2, release.set).start()
    with app.app_context(), writing():
        # Blocks until the holder commits (instead of failing at once), then writes.
        db.session.add(Sector(slug="waited", name_en="Waited", name_fr="Attendu", position=99))
        db.session.flush()
        assert release.is_set()
        # The short-step wait leaves SQLite's own busy timeout as it was, for later statements.
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar_one() == 30000
        db.session.commit()
    holder.join(10)
    with app.app_context():
        slugs = set(db.session.execute(text("SELECT slug FROM sector")).scalars())
    assert {"held", "waited"} <= slugs


def _new_person(address: str):
    from portal.people.services import insert_person

    return insert_person(address, name="Rolled Back", organization="Org", sector_id=None,
                         community="Toronto", job_title="", language="en")


def test_a_rolled_back_insert_leaves_nothing_behind_in_the_session(app_context):
    from portal.people.models import Person

    gone = _new_person("gone@example.ca")
    db.session.rollback()
    assert gone not in db.session

    # SQLite gives the next row the rolled-back row's id: it must not collide with a leftover.
    kept = _new_person("kept@example.ca")
    db.session.commit()
    assert db.session.get(Person, kept.id).email == "kept@example.ca"
    assert db.session.scalar(text("SELECT count(*) FROM person")) == 1


def test_a_rolled_back_savepoint_forgets_only_its_own_inserts(app_context):
    from portal.people.models import Person

    outer = _new_person("outer@example.ca")
    savepoint = db.session.begin_nested()
    inner = _new_person("inner@example.ca")
    savepoint.rollback()
    assert outer in db.session and inner not in db.session
    db.session.commit()
    assert [p.email for p in db.session.query(Person).order_by(Person.id)] == ["outer@example.ca"]


def test_a_web_address_taken_at_the_last_moment_is_a_refusal_not_a_500(app_context):
    """Two organizers saving one web address at once both find it free; the second's flush
    meets the unique constraint. `unique_or` turns that into the service's refusal, undoes
    only the refused changes, and leaves the transaction usable."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from portal.core.clock import now
    from portal.core.db import unique_or
    from portal.events.models import Event
    from portal.events.services import SlugTaken

    start = now() + timedelta(days=9)

    def event(title: str) -> Event:
        return Event(slug="symposium", title=title, starts_at=start, ends_at=start + timedelta(hours=2), capacity=10)

    db.session.add(event("First"))
    db.session.commit()
    with pytest.raises(SlugTaken):
        with unique_or(SlugTaken(), "slug"):
            db.session.add(event("Second"))
    assert db.session.execute(select(func.count()).select_from(Event)).scalar_one() == 1
    # Any other broken constraint is not dressed up as a taken address.
    with pytest.raises(IntegrityError):
        with unique_or(SlugTaken(), "no-such-column"):
            db.session.add(event("Third"))
