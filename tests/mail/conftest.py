"""Mail fixtures: queue real outbox rows through queue_email, lists with subscribers."""
from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from portal.core.db import writing
from portal.extensions import db
from portal.lists.models import MailingList, Subscription, SubscriptionStatus
from portal.mail.models import MessageCategory, OutboxMessage
from portal.mail.services import ListContext, queue_email
from portal.people.services import get_or_create_person

ROOT = Path(__file__).resolve().parents[2]
_numbers = itertools.count(1)


class Outbox:
    """Queue messages the way the features do, and read the outbox back."""

    def __init__(self, app) -> None:
        self.app = app

    def queue(self, email: str | None = None, *, count: int = 1, key_prefix: str = "test.notice",
              mailing_list: int | None = None, **extra) -> list[int]:
        """Queue `count` transactional notices (or list mail when `mailing_list` is an id)."""
        ids = []
        # As a writer from its first statement, like the portal's own jobs: on SQLite a
        # transaction that read first and then writes fails at once (no waiting) if a sender
        # process holds the write lock at that moment.
        with self.app.app_context(), writing():
            for _ in range(count):
                n = next(_numbers)
                person = get_or_create_person(email or f"reader{n}@example.ca", name=f"Reader {n}")
                db.session.flush()
                list_context = None
                if mailing_list is not None:
                    list_context = self._subscribe(mailing_list, person)
                message_id = queue_email(
                    key=f"{key_prefix}:{n}:{person.id}",
                    to=person,
                    template="mail/notice",
                    purpose="mail.test_notice",
                    context={"title": extra.get("title", f"Notice {n}"),
                             "paragraphs": extra.get("paragraphs", ["The symposium programme is out."])},
                    category=MessageCategory.LIST if list_context else MessageCategory.TRANSACTIONAL,
                    list_context=list_context,
                    attachments=extra.get("attachments"),
                )
                ids.append(message_id)
            db.session.commit()
        return ids

    def make_list(self, slug: str = "guideline-releases") -> int:
        with self.app.app_context(), writing():
            mailing_list = MailingList(slug=slug, name_en="Guideline releases", announce_only=True)
            db.session.add(mailing_list)
            db.session.commit()
            return mailing_list.id

    def _subscribe(self, list_id: int, person) -> ListContext:
        raw = secrets.token_urlsafe(32)
        db.session.add(Subscription(
            list_id=list_id, person_id=person.id, status=SubscriptionStatus.ACTIVE.value,
            unsubscribe_token_hash=hashlib.sha256(raw.encode()).hexdigest(),
        ))
        db.session.flush()
        return ListContext(
            list_id=list_id,
            list_id_header="Guideline releases <guideline-releases.owg.example.ca>",
            unsubscribe_url=f"https://portal.test/lists/unsubscribe/{raw}",
            unsubscribe_mailto="unsubscribe@owg.example.ca",
            announce_only=True,
        )

    def rows(self) -> list[OutboxMessage]:
        from sqlalchemy import select

        with self.app.app_context():
            rows = list(db.session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())
            for row in rows:
                db.session.expunge(row)
            return rows

    def row(self, message_id: int) -> OutboxMessage:
        with self.app.app_context():
            row = db.session.get(OutboxMessage, message_id)
            db.session.expunge(row)
            return row

    def states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows():
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts


@pytest.fixture
def outbox(app) -> Outbox:
    return Outbox(app)


class Sender:
    """`flask --app portal send-mail` as a separate process on the test's database."""

    def __init__(self, app, tmp_path: Path) -> None:
        self.app = app
        self.instance = tmp_path / "sender-instance"
        self.instance.mkdir(exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "PORTAL_"))}
        env.update(
            DATABASE_URL=self.app.config["SQLALCHEMY_DATABASE_URI"],
            SECRET_KEY="sender-process-secret-key-for-tests-only",
            PORTAL_INSTANCE_PATH=str(self.instance),
            MAIL_SERVER=self.app.config.get("MAIL_SERVER") or "",
            MAIL_PORT=str(self.app.config.get("MAIL_PORT") or 25),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def start(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "portal", "send-mail", *args],
            cwd=ROOT, env=self.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def run(self, *args: str, **env: str) -> str:
        process = self.start(*args, **env)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        return out


@pytest.fixture
def sender(app, tmp_path) -> Sender:
    return Sender(app, tmp_path)
