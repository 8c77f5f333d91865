"""Login sessions end on the server: after SESSION_IDLE_MINUTES without a request and
SESSION_MAX_HOURS after sign-in (OWASP ASVS 3.3.1, 3.3.2). Time is moved on the portal's
clock, never slept."""
from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import select

from portal.auth.models import LoginSession
from portal.core import clock
from portal.core.audit import AuditEntry
from portal.extensions import db
from tests.conftest import Auth, csrf_token


@pytest.fixture
def frozen(app):
    """The portal's clock stopped now; tests move it with clock.advance."""
    clock.set_now(clock.now())
    return clock


def _login_session(app) -> LoginSession:
    with app.app_context():
        row = db.session.execute(select(LoginSession)).scalar_one()
        db.session.expunge(row)
        return row


def _audit_actions(app) -> list[tuple[str, dict]]:
    with app.app_context():
        return [(e.action, e.detail) for e in db.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]


def test_an_active_session_stays_open(app, client, auth, organizer, frozen):
    auth.login(organizer)
    for _ in range(6):  # three hours of a request every 29 minutes
        frozen.advance(timedelta(minutes=29))
        assert client.get("/admin/").status_code == 200


def test_idle_session_is_ended_and_the_person_is_sent_to_sign_in_again(app, client, auth, organizer, frozen):
    auth.login(organizer)
    assert client.get("/admin/").status_code == 200
    frozen.advance(timedelta(minutes=31))

    response = client.get("/admin/events?page=2")
    assert response.status_code == 302
    assert response.location == "/login?next=" + quote("/admin/events?page=2", safe="")
    page = client.get(response.location).get_data(as_text=True)
    assert "You were signed out after 30 minutes without activity; sign in again." in page
    assert 'value="/admin/events?page=2"' in page  # ?next= kept in the form

    row = _login_session(app)
    assert row.ended_at == clock.now()
    assert ("auth.session.expired", {"reason": "idle"}) in _audit_actions(app)

    # Signing in again goes back where they were.
    response = client.post("/login", data={"email": organizer.email, "password": organizer.password,
                                           "next": "/admin/events?page=2",
                                           "csrf_token": csrf_token(client, "/login")})
    assert response.location == "/admin/events?page=2"


def test_session_ends_after_its_absolute_lifetime_however_active(app, client, auth, organizer, frozen):
    auth.login(organizer)
    for _ in range(12 * 4):  # a request every quarter hour for twelve hours
        frozen.advance(timedelta(minutes=15))
        assert client.get("/admin/").status_code == 200
    frozen.advance(timedelta(minutes=1))
    response = client.get("/admin/")
    assert response.status_code == 302 and response.location.startswith("/login?next=")
    page = client.get(response.location).get_data(as_text=True)
    assert "You were signed out after 12 hours; sign in again." in page
    assert ("auth.session.expired", {"reason": "lifetime"}) in _audit_actions(app)


@pytest.mark.app_config(SESSION_IDLE_MINUTES=5, SESSION_MAX_HOURS=1)
def test_the_limits_come_from_the_configuration(app, client, auth, organizer, frozen):
    auth.login(organizer)
    frozen.advance(timedelta(minutes=4))
    assert client.get("/admin/").status_code == 200
    frozen.advance(timedelta(minutes=6))
    client.get("/admin/")
    assert "after 5 minutes without activity" in client.get("/login").get_data(as_text=True)

    auth.login(organizer)
    for _ in range(15):  # an hour of a request every 4 minutes
        frozen.advance(timedelta(minutes=4))
        assert client.get("/admin/").status_code == 200
    frozen.advance(timedelta(seconds=1))
    assert client.get("/admin/").status_code == 302
    assert "after 1 hour; sign in again" in client.get("/login").get_data(as_text=True)


def test_an_expired_session_on_a_public_page_signs_out_there(app, client, auth, organizer, frozen):
    auth.login(organizer)
    frozen.advance(timedelta(hours=1))
    response = client.get("/privacy")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "You were signed out after 30 minutes without activity" in page
    assert "Organizer sign in" in page and "Sign out" not in page


def test_a_copied_cookie_of_an_idle_session_does_not_work(app, organizer, frozen):
    client = app.test_client()
    Auth(client).login(organizer)
    copied = client.get_cookie("session").value
    frozen.advance(timedelta(minutes=45))
    # The copy is presented before the session's own browser comes back: refused all the same.
    replay = app.test_client()
    replay.set_cookie("session", copied)
    assert replay.get("/admin/").status_code == 302
    assert client.get("/admin/").status_code == 302
    assert _login_session(app).ended_at is not None


def test_last_seen_is_written_at_most_once_a_minute(app, client, auth, organizer, frozen):
    auth.login(organizer)
    signed_in_at = _login_session(app).last_seen_at
    for _ in range(5):
        frozen.advance(timedelta(seconds=10))
        assert client.get("/admin/").status_code == 200
    assert _login_session(app).last_seen_at == signed_in_at  # 50 s: not yet
    frozen.advance(timedelta(seconds=15))
    client.get("/admin/")
    assert _login_session(app).last_seen_at == clock.now()


def test_pages_that_only_read_do_not_write_between_touches(app, client, auth, organizer, frozen):
    from sqlalchemy import event

    auth.login(organizer)
    frozen.advance(timedelta(minutes=2))
    client.get("/privacy")  # the one write of this minute
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(3):
            client.get("/privacy")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert not [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))]


def test_logout_after_the_session_expired_says_signed_out_once(app, client, auth, organizer, frozen):
    auth.login(organizer)
    token = csrf_token(client, "/")
    frozen.advance(timedelta(hours=2))
    client.post("/logout", data={"csrf_token": token})
    page = client.get("/").get_data(as_text=True)
    assert page.count("You are signed out.") == 1
    assert "without activity" not in page


def test_many_signed_in_readers_update_their_sessions_without_errors(app, make, frozen):
    """On SQLite the once-a-minute write happens in a short writer transaction: a burst of
    GETs all due for it at once gets no 'database is locked'."""
    clients = []
    for _ in range(6):
        client = app.test_client()
        Auth(client).login(make.organizer())
        clients.append(client)
    frozen.advance(timedelta(minutes=5))
    statuses: list[int] = []
    lock = threading.Lock()

    def browse(client) -> None:
        for path in ("/admin/", "/privacy", "/admin/", "/"):
            status = client.get(path).status_code
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=browse, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 24
    with app.app_context():
        seen = db.session.execute(select(LoginSession.last_seen_at)).scalars().all()
    assert seen == [clock.now()] * 6


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_signed_in_post_holds_the_write_lock_from_its_start_on_sqlite(app, client, auth, organizer, monkeypatch):
    """Found by review: the login-session check read before the request was marked a writer,
    so on SQLite a signed-in POST began as a reader, another connection could write in
    between, and the POST's own first write then failed at once ("database is locked", 500).
    The request must begin as a writer: the other connection's write waits (here, with no
    patience, it is refused) and the check-in goes through."""
    import sqlite3

    from portal.events import services
    from tests.events.conftest import EventFactory, register

    event_id = EventFactory(app)()
    register(client, "symposium-1", email="ann@example.ca")
    with app.app_context():
        from portal.events.models import Registration

        registration_id = db.session.execute(select(Registration.id)).scalar_one()
    auth.login(organizer)
    token = csrf_token(client, f"/admin/events/{event_id}/check-in")
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    others: list[str] = []
    check_in = services.check_in

    def someone_else_writes_first(*args, **kwargs):
        other = sqlite3.connect(path, timeout=0)
        try:
            other.execute("UPDATE event SET capacity = capacity WHERE id = ?", (event_id,))
            other.commit()
            others.append("wrote")
        except sqlite3.OperationalError as error:
            others.append(str(error))
        finally:
            other.close()
        return check_in(*args, **kwargs)

    monkeypatch.setattr(services, "check_in", someone_else_writes_first)
    response = client.post(f"/admin/events/{event_id}/check-in/{registration_id}", data={"csrf_token": token})
    assert response.status_code == 302
    assert others == ["database is locked"]
