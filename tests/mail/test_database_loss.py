"""Senders that lose their database connections mid-drain, with nothing dying.

Every backend is killed (PostgreSQL's pg_terminate_backend, as a database restart or an
operator would) right after the SMTP server has taken a message but before its 250 reaches
the sender: the sender must still record that message as sent, and give back or go on with
the rest of its claim at once, not leave it `sending` until the lease runs out (when the
message already taken would go out a second time).
"""
from __future__ import annotations

import collections
import signal
import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import BACKENDS

MESSAGES = 240
#: After the server has taken these many messages, every backend but the test's own is killed.
KILL_AFTER = (40, 150)


class Database:
    """One connection of the test's own, outside the app's pool: it survives the kills
    (pg_terminate_backend spares the backend asking) and reads the outbox between them."""

    def __init__(self, url: str, outage: float) -> None:
        self.engine = create_engine(url, isolation_level="AUTOCOMMIT")
        self.connection = self.engine.connect()
        self.name = make_url(url).database
        # A database's own connections cannot shut its door: that is done from another one.
        self.server = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        self.outage = outage
        self.lock = threading.Lock()  # the SMTP server's thread kills, the test's thread reads
        self.killed: list[int] = []
        self.reopening: list[threading.Timer] = []

    def kill_every_other_backend(self) -> None:
        """Kill every backend but ours; with an outage, refuse new connections for that long
        too (as while the database restarts), on a timer: the SMTP server goes on meanwhile."""
        with self.lock:
            if self.outage:
                self._allow_connections(False)
                timer = threading.Timer(self.outage, self.reopen)
                self.reopening.append(timer)
                timer.start()
            # pg_terminate_backend in the select list: it runs only for the rows the WHERE
            # kept (in the WHERE itself, nothing says it is evaluated after `pid <> ...`).
            killed = self.connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalars().all()
            self.killed.append(sum(killed))

    def reopen(self) -> None:
        with self.lock:
            self._allow_connections(True)

    def _allow_connections(self, allowed: bool) -> None:
        with self.server.connect() as connection:
            connection.execute(text(
                f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}'))

    def states(self) -> dict[str, int]:
        with self.lock:
            return dict(self.connection.execute(text(
                "SELECT state, count(*) FROM outbox_message GROUP BY state")).all())

    def message_ids(self) -> set[str]:
        with self.lock:
            return set(self.connection.execute(text("SELECT message_id FROM outbox_message")).scalars())

    def close(self) -> None:
        for timer in self.reopening:
            timer.cancel()
        if self.outage:
            self.reopen()
        self.connection.close()
        self.engine.dispose()
        self.server.dispose()


def kill_backends_after(smtp_server, counts: tuple[int, ...], database: Database) -> None:
    """Make the SMTP server kill every backend once it holds each of `counts` messages,
    before it answers 250: the sender learns of the message's acceptance with its database
    connections already gone."""
    handler = smtp_server.handler
    accept = handler.handle_DATA
    due = list(counts)

    async def handle_DATA(server, session, envelope) -> str:
        reply = await accept(server, session, envelope)
        with handler.lock:
            hit = bool(due) and len(handler.messages) >= due[0]
            if hit:
                due.pop(0)
        if hit:
            database.kill_every_other_backend()
        return reply

    handler.handle_DATA = handle_DATA  # read by each new SMTP session


# PostgreSQL only: SQLite has no server whose connections could be killed.
@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
# 0: the connections are killed and new ones work at once; 1.5: for that long after each kill
# the database refuses connections, so the senders try again several times, backing off.
@pytest.mark.parametrize("outage", [0, 1.5])
def test_senders_whose_database_connections_are_killed_mid_drain_send_every_message_once(
        app, smtp_server, outbox, sender, outage):
    database = Database(app.config["SQLALCHEMY_DATABASE_URI"], outage)
    kill_backends_after(smtp_server, KILL_AFTER, database)
    senders = [sender.start("--watch", "--interval", "0.05", MAIL_CONNECTIONS="2",
                            MAIL_BATCH_SIZE="20") for _ in range(2)]
    try:
        for process in senders:
            assert process.stdout.readline().startswith("watching the outbox")
        outbox.queue(count=MESSAGES)
        expected = database.message_ids()
        # Far sooner than any lease (610 s): the claims held at each kill are not waited out.
        deadline = time.monotonic() + 15
        while database.states() != {"sent": MESSAGES}:
            assert time.monotonic() < deadline, f"rows left unsent: {database.states()}"
            time.sleep(0.05)
    finally:
        for process in senders:
            process.send_signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=30) for process in senders]
        database.close()

    assert len(database.killed) == len(KILL_AFTER) and all(database.killed), \
        "the backends were never killed while the senders were delivering"
    for process, (out, err) in zip(senders, outputs):
        assert process.returncode == 0, err
        assert out.rstrip().endswith("stopped")
    logs = "".join(err for _, err in outputs)
    assert "lost its database connection" in logs, "no sender noticed its connections were killed"
    received = collections.Counter(m["Message-ID"] for m in smtp_server.messages)
    assert set(received) == expected, "a message was lost"
    assert [mid for mid, n in received.items() if n > 1] == [], "a message was delivered twice"
    assert len(smtp_server.messages) == MESSAGES
