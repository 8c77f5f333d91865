"""Fixtures for the app, the databases, a real SMTP server, a live server and the browser.

Every database test runs on SQLite and, when PORTAL_TEST_DATABASE_URL is set, on PostgreSQL
too: the `database_url` fixture is parametrized over the backends. The PostgreSQL server
outlives the run, so the suite creates its own database there and drops it at the end.
"""
from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy import event as sa_event
from sqlalchemy.engine import make_url

from config import TestingConfig, database_url as normalize_url
from portal import create_app
from portal.core import clock
from portal.extensions import db, limiter

from tests.factories import Factories
from tests.smtp import SMTPServer

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("PORTAL_TEST_DATABASE_URL") else [])
_schema_ready: set[str] = set()


@contextmanager
def counted_statements(app) -> Iterator[list[str]]:
    """The SQL statements the block runs on the app's database, in order (tests that pin a
    page's or a job's statement count as the data grows)."""
    seen: list[str] = []

    def count(_connection, _cursor, statement, *_args) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """A fresh, empty database for this run on one backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "portal-test.sqlite3"
        yield f"sqlite:///{path}"
        return
    server_url = make_url(normalize_url(os.environ["PORTAL_TEST_DATABASE_URL"]))
    name = f"portal_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        # A throwaway database: a crash may lose its last commits, so don't wait on the disk.
        connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def backend(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


def _empty_all_tables() -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        # TRUNCATE of every table waits on the disk for each one (new files, fsync) and made
        # the PostgreSQL run several times slower than SQLite. Most tests touch a handful of
        # tables: find those in one query, DELETE their rows and restart their id sequences.
        probe = " UNION ALL ".join(
            f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")" for t in tables)
        used = {name for (name,) in db.session.execute(text(probe))}
        for table in tables:
            if table.name in used:
                db.session.execute(table.delete())
        for table in tables:
            if table.name in used and "id" in table.c:
                db.session.execute(text("SELECT setval(pg_get_serial_sequence(:t, 'id'), 1, false)"),
                                   {"t": table.name})
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def app(database_url: str, tmp_path: Path, request):
    """The portal on an emptied database with the sectors seeded; the clock is real.
    `@pytest.mark.app_config(NAME=value)` sets configuration the app reads when created."""
    instance = tmp_path / "instance"
    instance.mkdir()
    marker = request.node.get_closest_marker("app_config")
    application = create_app(
        {
            **{k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()},
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PORTAL_INSTANCE_PATH": str(instance),
            "MAIL_SERVER": "",
            **(marker.kwargs if marker else {}),
        }
    )
    application.instance_path = str(instance)
    with application.app_context():
        if database_url not in _schema_ready:
            db.drop_all()
            db.create_all()  # tests only; the migrations are checked against this schema
            _schema_ready.add(database_url)
        _empty_all_tables()
        from portal.people.services import seed_sectors

        seed_sectors()
        db.session.commit()
    limiter.reset()
    yield application
    with application.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    clock.reset()


@pytest.fixture
def app_context(app):
    """For tests that call services directly."""
    with app.app_context():
        yield
        db.session.rollback()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make(app) -> Factories:
    """Factories for people, organizers and, as features arrive, their models."""
    return Factories(app)


@pytest.fixture
def organizer(make):
    return make.organizer()


@pytest.fixture
def admin(make):
    return make.organizer(admin=True)


class Auth:
    """Log in and out through the real login form, as a person would."""

    def __init__(self, client) -> None:
        self.client = client

    def login(self, account) -> None:
        response = self.client.post(
            "/login",
            data={
                "email": account.email,
                "password": account.password,
                "csrf_token": csrf_token(self.client, "/login"),
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)

    def logout(self) -> None:
        self.client.post("/logout", data={"csrf_token": csrf_token(self.client, "/")})


@pytest.fixture
def auth(client) -> Auth:
    return Auth(client)


def forecast_day(moment) -> str:
    """A day as the retention page's forecast writes it in English: "Feb 9, 2026"."""
    from babel.dates import format_date

    return format_date(moment.date() if hasattr(moment, "date") else moment, "medium", locale="en")


def csrf_token(client, path: str) -> str:
    """Read the CSRF token a real page hands the browser."""
    import re

    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def without_csrf_tokens(page: str) -> str:
    """A page with its CSRF token inputs removed: the token is signed with a timestamp, so two
    renders a second apart differ there and nowhere else when they really are the same."""
    import re

    return re.sub(r'<input[^>]*name="csrf_token"[^>]*>', "", page)


@pytest.fixture
def smtp_server(app) -> Iterator[SMTPServer]:
    """A real SMTP server (aiosmtpd) on a free loopback port; the app sends to it."""
    server = SMTPServer(port=free_port())
    server.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port)
    try:
        yield server
    finally:
        server.stop()


def _closing_responses(app):
    """Close every response once sent. Werkzeug's development server skips the close when the
    browser drops the connection while it drains the request (a page left mid-load), and the
    file behind a static response is then left to the garbage collector, whose
    ResourceWarning fails whichever test runs next."""
    def serve(environ, start_response):
        response = app(environ, start_response)
        try:
            yield from response
        finally:
            if hasattr(response, "close"):
                response.close()

    return serve


class LiveServer:
    def __init__(self, app, port: int) -> None:
        from werkzeug.serving import make_server

        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server = make_server("127.0.0.1", port, _closing_responses(app), threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def live_server(app) -> Iterator[LiveServer]:
    """The app served over HTTP on a free port, for the browser."""
    port = free_port()
    app.config.update(PORTAL_BASE_URL=f"http://127.0.0.1:{port}", WTF_CSRF_SSL_STRICT=False)
    server = LiveServer(app, port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
