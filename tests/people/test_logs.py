"""No log line, the web server's request lines included, ever holds a token or a password."""
from __future__ import annotations

import http.cookiejar
import logging
import re
import urllib.error
import urllib.parse
import urllib.request

from portal.core.tokens import hash_token
from portal.extensions import db

from tests.people.conftest import link_from_outbox


class Browser:
    """A cookie-keeping HTTP client talking to the live server over a real socket."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path) as response:
            return response.read().decode()

    def post(self, path: str, data: dict[str, str]) -> str:
        page = self.get(path)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({**data, "csrf_token": token}).encode()
        with self.opener.open(self.base + path, data=body) as response:
            return response.read().decode()


def test_tokens_and_passwords_never_reach_the_logs(app, live_server, make, caplog):
    caplog.set_level(logging.DEBUG)
    person = make.person("logged@example.ca", name="Lou Logged")
    organizer = make.organizer(password="a secret passphrase 42")
    browser = Browser(live_server.url)

    browser.post("/my-data", {"email": "logged@example.ca"})
    with app.app_context():
        path = link_from_outbox(person.id)
    raw = path.rsplit("/", 1)[1]
    assert "Lou Logged" in browser.get(path)
    browser.get(path + "/export.json")
    browser.get(path + "/export.csv")
    try:
        browser.post("/login", {"email": organizer.email, "password": "wrong passphrase 41"})
    except urllib.error.HTTPError as error:
        assert error.code == 400
    login_page = browser.post("/login", {"email": organizer.email, "password": organizer.password})
    assert "Organizer dashboard" in login_page
    app.logger.info("followed a link to %s", path)  # as careless code might

    records = caplog.records
    request_lines = [r.getMessage() for r in records if r.name == "werkzeug"]
    assert any("/my-data/" in line for line in request_lines), "the server's request lines were not captured"
    assert any("POST /login" in line for line in request_lines)
    text = "\n".join(r.getMessage() for r in records) + caplog.text
    assert raw not in text
    assert raw[8:30] not in text
    assert hash_token(raw) not in text
    assert organizer.password not in text
    assert "passphrase" not in text
    with app.app_context():
        attempts = db.metadata.tables["login_attempt"]
        assert db.session.execute(db.select(db.func.count()).select_from(attempts)).scalar_one() == 2


def test_record_masking_covers_loggers_and_handlers_added_later(app, caplog):
    """`install_record_masking` (to be called from create_app) masks records of any logger,
    e.g. gunicorn's access log, which the handler filters set up at start-up never see."""
    from portal.core.logging import install_record_masking

    raw = "Zx9_" + "q" * 39
    original = logging.getLogRecordFactory()
    try:
        install_record_masking()
        install_record_masking()  # idempotent
        caplog.set_level(logging.DEBUG)
        logging.getLogger("gunicorn.access").info('"GET /my-data/%s HTTP/1.1" 200', raw)
        logging.getLogger("portal.some.job").warning("retrying with password=%s", "hunter2-secret")
        # What organizers search for names people (found by a privacy pass in access logs).
        logging.getLogger("gunicorn.access").info(
            '"GET /admin/events/1/attendees?status=confirmed&q=yorick.plumtree%%40uniqmail.example HTTP/1.1" 200')
        logging.getLogger("gunicorn.access").info('"GET /admin/audit?actor=Zelda+Quimby&page=2 HTTP/1.1" 200')
    finally:
        logging.setLogRecordFactory(original)  # leave other tests' logging as they expect it
    text = caplog.text
    assert "/my-data/Zx9_…" in text
    assert raw not in text and "hunter2-secret" not in text
    assert "yorick" not in text and "Zelda" not in text
    assert "?status=confirmed&q=***" in text and "?actor=***&page=2" in text


def test_a_failed_statement_logs_neither_its_values_nor_a_token_in_its_traceback(app, caplog):
    """A review found a failed release notice's INSERT logged, traceback and all, with the
    recipients' names and addresses, the bodies and live unsubscribe links: the traceback was
    never masked, and SQLAlchemy put the statement's values in its error."""
    from sqlalchemy import text

    from portal.core.logging import install_record_masking

    raw = "Qm7_" + "k" * 39
    original = logging.getLogRecordFactory()
    try:
        install_record_masking()
        caplog.set_level(logging.DEBUG)
        with app.app_context():
            try:
                db.session.execute(text("INSERT INTO no_such_table (address, body) VALUES (:address, :body)"),
                                   {"address": "Amélie Tremblay <amelie@example.ca>",
                                    "body": f"Unsubscribe: https://portal.example/lists/unsubscribe/{raw}"})
            except Exception:
                logging.getLogger("portal.guidelines.jobs").exception("releasing guideline 7 failed")
            db.session.rollback()
            try:
                raise RuntimeError(f"could not send https://portal.example/events/manage/{raw}")
            except RuntimeError:
                logging.getLogger("portal.mail").exception("sending failed")
    finally:
        logging.setLogRecordFactory(original)
    text_logged = caplog.text
    assert "no_such_table" in text_logged and "Traceback" in text_logged  # the error itself is there
    assert raw not in text_logged and "amelie@example.ca" not in text_logged and "Amélie" not in text_logged
    assert "/events/manage/Qm7_…" in text_logged


def test_a_traceback_keeps_the_codes_own_names_and_drops_the_databases_detail_line():
    """From a code review: masking a traceback like a message turned long function and
    constraint names into 'subs…'; and PostgreSQL's DETAIL line quotes the refused values."""
    from portal.core.logging import mask_traceback

    trace = ('File "portal/lists/services.py", line 9, in subscription_for_unsubscribe_token\n'
             'psycopg.errors.UniqueViolation: duplicate key value violates unique constraint '
             '"uq_person_email_lowercase_for_everyone"\n'
             'DETAIL:  Key (email)=(alice@example.ca) already exists.\n'
             "GET /lists/unsubscribe/Zx9_" + "q" * 39 + " failed\n"
             "KeyError: 'Ab3_Rr8sKq2LmN5pQ7tUvW9xYz1aBcDeFgHiJkL0mn'")
    masked = mask_traceback(trace)
    assert "Rr8sKq2" not in masked and "KeyError: 'Ab3_…'" in masked  # a quoted token too
    assert "subscription_for_unsubscribe_token" in masked and "uq_person_email_lowercase_for_everyone" in masked
    assert "alice@example.ca" not in masked and "DETAIL: (values not logged)" in masked
    assert "/lists/unsubscribe/Zx9_…" in masked
