"""Delivery: claim due outbox rows, send them, and record each outcome.

The guarantees, and how they are kept:

* **Never lost.** A row leaves the due set only by being claimed (state `sending` with a
  lease), and leaves `sending` only through an outcome written after the fact. A sender that
  dies leaves its rows `sending`; when the lease expires any sender claims them again.
* **Never doubled.** Claims are exclusive: PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite one
  writer at a time (`BEGIN IMMEDIATE`). A row is marked sent, in its own commit, right after
  the server's 250 for that row and before the next message goes out, and only if the claim
  is still ours (`WHERE id = ? AND claimed_by = me`). However slow the server, a claim never
  runs out while its sender is still going: before each message nearly the whole lease is
  left (the sender renews it on the rows still its own every RENEW_EVERY), and a lease is at
  least twenty SMTP timeouts, while one message's exchange is cut off after twelve however
  the server dribbles its replies (`EXCHANGE_TIMEOUTS`, `sending_lease`).
  So a crash can re-send at most the one message in flight on each connection.
* **A lost database is not a crash.** When the sender's database connections are lost (a
  restart, a failover, a killed backend), each step is tried again on new connections for
  about 15 s (DATABASE_RETRY_DELAYS): the outcome the SMTP server already gave is recorded
  and the rest of the claim goes on being sent. Only if the database stays away that long
  does the pass end, giving back what it never attempted if it still can; the rows it could
  not give back wait for their lease, and a message accepted but never marked goes twice
  (logged as an error).
* **Retried sensibly.** Connection refused, timeouts, disconnects during DATA and 4xx
  replies are temporary: the row waits with exponential backoff and jitter, up to
  MAIL_MAX_ATTEMPTS (24: about four days of "try later"). A server that cannot be reached,
  hangs, drops the connection or says 421 ends the pass after that one row, so a dead relay
  costs one attempt per pass, not one per message. 5xx replies are permanent: failed, with
  the server's reply kept.
* **Consent re-checked.** List mail whose recipient is no longer an active subscriber of
  that list is withheld, checked right before each group of messages goes out.

Transport: smtplib directly rather than Flask-Mail's `mail.connect()`. Flask-Mail's
Connection only sends its own `flask_mail.Message` objects through `sendmail()`, which hides
which SMTP stage failed; we need the MAIL/RCPT/DATA stages apart (a connection that drops
before DATA can be retried at once without risk of a duplicate; one that drops during DATA
cannot) and the exact reply code and text. The settings are still Flask-Mail's
(MAIL_SERVER, MAIL_PORT, MAIL_USE_TLS, MAIL_USE_SSL, MAIL_USERNAME, MAIL_PASSWORD).
With no MAIL_SERVER the same claim/mark cycle writes .eml files to instance/mailbox/.
"""
from __future__ import annotations

import logging
import os
import random
import smtplib
import socket
import ssl
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import and_, bindparam, case, exc, or_, select, text, true, tuple_, update
from sqlalchemy.engine import Connection

from portal.core import clock
from portal.core.db import writing
from portal.extensions import db
from portal.mail.attachments import attachment_file
from portal.mail.models import OutboxAttachment, OutboxMessage, OutboxState
from portal.mail.wire import WireAttachment, WireMessage, render_wire

log = logging.getLogger(__name__)

#: First retry waits about this long; each further attempt doubles it, up to RETRY_CAP.
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)
#: Consent is re-checked for this many list messages at a time, right before they go out.
CONSENT_CHUNK = 50
#: When the database connections are lost (a restart, a failover, pg_terminate_backend), a
#: sender tries the same step again on new connections after each of these pauses (about
#: 15 s in all, a database restart) before it gives up on the pass.
DATABASE_RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0)

_outbox = OutboxMessage.__table__
_attachments = OutboxAttachment.__table__
#: Writes from this process's own sender threads queue here rather than in SQLite's
#: busy-wait (which sleeps in steps of milliseconds); other processes still use busy_timeout.
_sqlite_writer = threading.Lock()


class TemporaryFailure(Exception):
    """Try again later: connection refused, timeout, dropped connection, 4xx."""


class PermanentFailure(Exception):
    """The server refused the message for good (5xx); the text is its reply."""


class TransportUnavailable(TemporaryFailure):
    """No connection could be opened at all: stop this pass instead of failing every row."""


class ServerUnwell(TemporaryFailure):
    """The connection timed out or dropped mid-message, or the server said 421 (closing):
    this row is retried later, and the pass stops rather than spend a timeout and an
    attempt on every other row while the server is like this."""


@dataclass
class DeliveryReport:
    """What one drain did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    withheld: int = 0
    released: int = 0
    #: The server could not be reached; the pass stopped early.
    unreachable: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def processed(self) -> int:
        return self.sent + self.retried + self.failed + self.withheld

    def add(self, outcome: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + count)


def sender_identity() -> str:
    """host:pid:random, stored on each claimed row so a mark only touches our own claims."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with jitter: ~1, 2, 4 ... minutes, capped at 6 hours.

    The jitter (±20 %) spreads a burst of failures so they do not all come back at once.
    """
    base = min(RETRY_CAP, RETRY_BASE * (2 ** max(0, attempts - 1)))
    return base * random.uniform(0.8, 1.2)


# --------------------------------------------------------------------------- transports


class SmtpTransport:
    """One reused SMTP connection: reconnects every N messages and when it drops."""

    def __init__(self, config: Any) -> None:
        self.host = config["MAIL_SERVER"]
        self.port = int(config.get("MAIL_PORT") or 25)
        self.use_ssl = bool(config.get("MAIL_USE_SSL"))
        self.use_tls = bool(config.get("MAIL_USE_TLS"))
        self.ca_file = config.get("MAIL_TLS_CA_FILE") or None
        self.username = config.get("MAIL_USERNAME")
        self.password = config.get("MAIL_PASSWORD")
        self.timeout = float(config.get("MAIL_TIMEOUT_SECONDS") or 30)
        self.reconnect_every = max(1, int(config.get("MAIL_RECONNECT_EVERY") or 1000))
        #: The longest one message's exchange may take, reconnecting included (`send`).
        self.exchange_limit = EXCHANGE_TIMEOUTS * self.timeout
        self._connection: smtplib.SMTP | None = None
        #: A connection being opened, which the watchdog may have to cut off too.
        self._connecting: smtplib.SMTP | None = None
        self._sent_on_connection = 0
        # The watchdog's view of the exchange under way, changed only under this lock, so it
        # never cuts an exchange that has already ended (or the next one, on a stale deadline).
        self._watch_lock = threading.Lock()
        self._deadline: float | None = None
        self._cut_off = False
        self._closed = threading.Event()
        self._watchdog: threading.Thread | None = None

    def _watch(self) -> None:
        """Cut off an exchange that outlives its deadline. smtplib's timeout bounds each read,
        not the exchange: a server that dribbles its reply a byte at a time never trips it,
        and would keep the message past its claim's lease, when another sender may take and
        send it too (a review reproduced exactly that). Shutting the socket down makes the
        blocked read fail at once."""
        while not self._closed.wait(min(0.5, self.timeout / 2)):
            with self._watch_lock:
                if self._deadline is None or time.monotonic() < self._deadline:
                    continue
                # Past the deadline, every look cuts whatever socket there is: one still being
                # opened at the first look (a slow connect or handshake) has none to cut yet.
                self._cut_off = True
                for connection in (self._connection, self._connecting):
                    sock = getattr(connection, "sock", None)
                    if sock is not None:
                        try:
                            sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass

    def _arm(self) -> None:
        """Start the clock on one exchange (the watchdog thread starts with the first)."""
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="smtp-watchdog", daemon=True)
            self._watchdog.start()
        with self._watch_lock:
            self._cut_off = False
            self._deadline = time.monotonic() + self.exchange_limit

    def _disarm(self) -> bool:
        """Stop the clock; True if the watchdog cut the exchange off."""
        with self._watch_lock:
            self._deadline = None
            return self._cut_off

    def _connect(self) -> smtplib.SMTP:
        try:
            # Made first and connected after, so the watchdog can cut off a slow greeting too.
            # smtplib's own TLS checks no certificate: this context checks it and the server's name.
            tls = ssl.create_default_context(cafile=self.ca_file) if self.use_ssl or self.use_tls else None
            connection: smtplib.SMTP = (smtplib.SMTP_SSL(timeout=self.timeout, context=tls) if self.use_ssl
                                        else smtplib.SMTP(timeout=self.timeout))
            # The server's name for TLS (SNI), which smtplib takes only from the constructor's
            # host: connecting later leaves it empty, and STARTTLS and SSL refuse to start.
            connection._host = self.host
            self._connecting = connection
            code, greeting = connection.connect(self.host, self.port)
            if self._cut_off:
                connection.close()
                raise TransportUnavailable("the connection took longer than the exchange may")
            if code != 220:
                connection.close()
                raise smtplib.SMTPConnectError(code, greeting)
            connection.ehlo_or_helo_if_needed()
            if self.use_tls and not self.use_ssl:
                connection.starttls(context=tls)
                connection.ehlo()
            if self.username:
                connection.login(self.username, self.password or "")
        except smtplib.SMTPResponseException as error:
            reply = _reply(error.smtp_code, error.smtp_error)
            if 400 <= error.smtp_code < 500:
                raise TransportUnavailable(reply) from error
            raise TransportUnavailable(f"connect: {reply}") from error
        except (OSError, smtplib.SMTPException, ValueError) as error:  # ssl.SSLError is an OSError
            raise TransportUnavailable(f"cannot connect to {self.host}:{self.port}: {error}") from error
        finally:
            self._connecting = None
        self._sent_on_connection = 0
        return connection

    def close(self) -> None:
        """Say goodbye (within the exchange limit: a server dribbling its answer to QUIT
        must not hold a sender that is stopping), then stop the watchdog."""
        if self._connection is None:
            self._closed.set()
            return
        self._arm()
        try:
            self.quit_connection()
        finally:
            self._disarm()
            self._closed.set()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def send(self, message: WireMessage, data: bytes) -> str:
        """Send one message; return the server's 250 reply or raise a failure. The whole
        exchange, a reconnection (and the QUIT before it) included, ends within
        `exchange_limit` (well inside the claim's lease, `sending_lease`): past it the
        connection is cut and the message is retried later, as after a timeout (the server
        may or may not have it)."""
        self._arm()
        try:
            if self._connection is not None and self._sent_on_connection >= self.reconnect_every:
                self.quit_connection()
            reply = self._send_once(message, data)
        except Exception as error:
            # Cut off, a read may fail any way (a TLS socket shut down mid-read raises
            # ValueError): it is the cut that says what happened.
            if not self._disarm():
                raise
            self._drop()
            raise ServerUnwell(f"no answer within {self.exchange_limit:g} s for one message: "
                               f"connection cut ({error})") from error
        if self._disarm():
            # A reply cut short reads to smtplib as a whole one ("250 xx" then end of file):
            # whether the server took the message is unknown, as after a timeout.
            self._drop()
            raise ServerUnwell(f"no answer within {self.exchange_limit:g} s for one message: connection cut")
        return reply

    def _send_once(self, message: WireMessage, data: bytes) -> str:
        for fresh in (False, True):
            if self._cut_off:
                raise ServerUnwell("the exchange ran out of time")
            if self._connection is None:
                self._connection = self._connect()
                fresh = True
            try:
                return self._transaction(self._connection, message, data)
            except _DroppedBeforeData as error:
                # Nothing was handed over yet, so one immediate retry on a new connection
                # cannot duplicate the message (servers close idle connections routinely).
                self._drop()
                if fresh:
                    raise ServerUnwell(str(error)) from error
        raise TemporaryFailure("connection dropped")  # pragma: no cover - loop always returns

    def quit_connection(self) -> None:
        """Say goodbye to the server on this connection (to open a new one); the transport
        stays usable."""
        if self._connection is not None:
            try:
                self._connection.quit()
            except (OSError, smtplib.SMTPException):
                self._connection.close()
            self._connection = None

    def _transaction(self, connection: smtplib.SMTP, message: WireMessage, data: bytes) -> str:
        sender, recipient = message.envelope_from, message.envelope_to
        options: list[str] = []
        if not (sender.isascii() and recipient.isascii()):
            if not connection.has_extn("smtputf8"):
                raise PermanentFailure("the address is not ASCII and the server lacks SMTPUTF8")
            options.append("SMTPUTF8")
        try:
            code, reply = connection.mail(sender, options)
            if code == 250:
                code, reply = connection.rcpt(recipient)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            raise _DroppedBeforeData(f"connection dropped: {error}") from error
        if code == 421:
            # The server is closing this connection (idle too long, or its limit of messages
            # per connection): nothing was handed over, so it is a drop before DATA; only a
            # fresh connection answering 421 says the server itself is unwell.
            raise _DroppedBeforeData(_reply(code, reply))
        if code not in (250, 251):
            self._reset(connection)
            raise _failure(code, reply)
        try:
            code, reply = connection.data(data)
        except smtplib.SMTPResponseException as error:  # the DATA command itself refused
            self._reset(connection)
            raise _failure(error.smtp_code, error.smtp_error) from error
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            # The server may or may not have the message: it stays in flight, retried later.
            self._drop()
            raise ServerUnwell(f"connection dropped during DATA: {error}") from error
        if code != 250:
            self._reset(connection)
            raise _failure(code, reply)
        self._sent_on_connection += 1
        return _reply(code, reply)

    def _reset(self, connection: smtplib.SMTP) -> None:
        try:
            connection.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()


class _DroppedBeforeData(Exception):
    pass


def _reply(code: int, reply: bytes | str) -> str:
    text_reply = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text_reply.split())}"[:1000]


def _failure(code: int, reply: bytes | str) -> Exception:
    message = _reply(code, reply)
    if code == 421:  # "service not available, closing": about the server, not this message
        return ServerUnwell(message)
    return PermanentFailure(message) if code >= 500 else TemporaryFailure(message)


class MailboxTransport:
    """The embedded default: each message becomes `<instance>/mailbox/<row id>.eml`.

    The file is named after the row, so a re-delivery after a crash rewrites the same file
    instead of adding a second copy; it is written to a temporary name first so a reader
    never sees half a message.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def send(self, message: WireMessage, data: bytes, *, row_id: int) -> str:
        target = self.directory / f"{row_id:010d}.eml"
        partial = target.with_suffix(f".tmp{os.getpid()}")
        partial.write_bytes(data)
        os.replace(partial, target)
        return f"250 written to {target.name}"

    def close(self) -> None:
        pass


def mailbox_directory(app: Flask | None = None) -> Path:
    return Path((app or current_app).instance_path) / "mailbox"


def forget_mailbox_copies(row_ids: list[int]) -> int:
    """Delete the local mailbox's copies of these messages (when they were emptied or their
    person erased, the .eml must not keep what the row no longer holds). Returns how many
    files went. Not undone by a rollback: the copy is only the local mailbox's."""
    directory = mailbox_directory()
    if not directory.is_dir():
        return 0
    gone = 0
    for row_id in row_ids:
        try:
            (directory / f"{row_id:010d}.eml").unlink()
            gone += 1
        except FileNotFoundError:
            pass
    return gone


# --------------------------------------------------------------------------- rate limit


class RateLimiter:
    """Messages per second across all of this sender's connections (0 = unlimited)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second and per_second > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            current = time.monotonic()
            slot = max(current, self._next)
            self._next = slot + self.interval
        if slot > current:
            time.sleep(slot - current)


# --------------------------------------------------------------------------- database


#: Spelled exactly as the partial index ix_outbox_message_due says it: SQLite uses a partial
#: index only when the query repeats its condition literally (not as bound parameters).
_IN_DUE_INDEX = text("outbox_message.state IN ('queued', 'retry', 'sending')")


def _due_condition(moment: datetime):
    """Due: queued or retry whose time has come, or sending whose lease has run out.

    Every claimed row was due when claimed, so `next_attempt_at <= now` holds for all of them
    and lets the claim walk the due index in order and stop at LIMIT, whatever the outbox size.
    """
    return and_(
        _IN_DUE_INDEX,
        _outbox.c.next_attempt_at <= moment,
        or_(
            _outbox.c.state.in_([OutboxState.QUEUED.value, OutboxState.RETRY.value]),
            _outbox.c.lease_until <= moment,
        ),
    )


_SQLITE_DUE = text(
    "SELECT id FROM outbox_message INDEXED BY ix_outbox_message_due"
    " WHERE outbox_message.state IN ('queued', 'retry', 'sending') AND next_attempt_at <= :now"
    " AND (state IN ('queued', 'retry') OR lease_until <= :now)"
    " ORDER BY next_attempt_at, id LIMIT :size"
).bindparams(bindparam("now", type_=_outbox.c.next_attempt_at.type), bindparam("size"))

_CLAIMED_COLUMNS = (
    _outbox.c.id, _outbox.c.person_id, _outbox.c.list_id, _outbox.c.to_address,
    _outbox.c.from_address, _outbox.c.reply_to, _outbox.c.subject, _outbox.c.body_text,
    _outbox.c.body_html, _outbox.c.message_id, _outbox.c.headers, _outbox.c.attempts,
)


_mark_statements: dict[tuple[str, ...], Any] = {}


def _mark_statement(columns: tuple[str, ...]):
    """UPDATE of one claimed row, built once per set of columns (it runs once per message)."""
    statement = _mark_statements.get(columns)
    if statement is None:
        statement = (
            update(_outbox)
            .where(
                _outbox.c.id == bindparam("row_id"),
                _outbox.c.claimed_by == bindparam("sender"),
                _outbox.c.state == OutboxState.SENDING.value,
            )
            .values(lease_until=None,
                    **{name: bindparam(f"new_{name}", type_=_outbox.c[name].type) for name in columns})
        )
        _mark_statements[columns] = statement
    return statement


@dataclass
class ClaimedRow:
    id: int
    person_id: int | None
    list_id: int | None
    attempts: int
    message: WireMessage


class OutboxStore:
    """The sender's own database connection: claims and outcomes, each in a short commit.

    Every step survives the loss of the database connections, as long as the database comes
    back within DATABASE_RETRY_DELAYS: it is tried again on new connections. Nothing
    killed the sender, so nothing it holds should wait for its lease: an outcome the SMTP
    server already gave is recorded, and the rows not yet attempted are still sent (or given
    back) now. A failed step is harmless to repeat: outcomes and releases touch only rows
    still claimed by this sender, and a claim that may have been committed unheard is given
    back before claiming again.
    """

    def __init__(self, connection: Connection, sender: str, lease: timedelta, max_attempts: int) -> None:
        self.engine = connection.engine
        self.connection = connection
        self.sender = sender
        self.lease = lease
        self.max_attempts = max_attempts
        self.sqlite = connection.dialect.name == "sqlite"
        self._statements: dict[tuple[str, ...], Any] = {}
        self._marker: Any = None
        self._open_marker()
        #: The connections were lost: the next step opens new ones first.
        self._broken = False
        #: The row whose outcome could not be recorded (the database stayed away): still ours
        #: until its lease runs out, so it is not given back with the rest.
        self.unrecorded: int | None = None

    def _open_marker(self) -> None:
        """A second, autocommit driver connection for the per-message UPDATE (see `_mark`):
        one statement is one transaction, so marking a row costs a single round trip."""
        marker = self.engine.raw_connection()
        raw = marker.driver_connection
        if not self.sqlite:
            try:
                raw.rollback()
                raw.autocommit = True
                # A commit lost only in a PostgreSQL *server* crash leaves the row `sending`,
                # so it is re-sent after its lease: a rare duplicate, never a loss. That trade
                # makes each per-message commit ~10x cheaper, which is what lets every row be
                # marked the moment its 250 arrives.
                raw.execute("SET synchronous_commit TO off")
            except BaseException:
                marker.invalidate()
                raise
        self._marker, self.raw = marker, raw

    def close(self) -> None:
        marker, self._marker = self._marker, None
        if marker is not None:
            try:
                if not self.sqlite:
                    self.raw.execute("RESET synchronous_commit")
                    self.raw.autocommit = False
                marker.close()
            except Exception:  # a broken connection is discarded by the pool anyway
                marker.invalidate()
        try:
            self.connection.close()
        except Exception:  # already lost; the pool replaces it
            log.debug("closing a lost database connection failed", exc_info=True)

    def lost_database(self, error: BaseException) -> bool:
        """Whether `error` says the database could not be reached or dropped the connection
        (the DB-API's OperationalError and InterfaceError, raw or wrapped by SQLAlchemy)."""
        dbapi = self.engine.dialect.loaded_dbapi
        return isinstance(error, (exc.OperationalError, exc.InterfaceError,
                                  dbapi.OperationalError, dbapi.InterfaceError))

    def _reconnect(self) -> None:
        """Drop both connections (the pool must not hand them out again) and open new ones."""
        for drop in (self.connection.invalidate, self.connection.close):
            try:
                drop()
            except Exception:
                pass
        if self._marker is not None:
            try:
                self._marker.invalidate()
            except Exception:
                pass
            self._marker = None
        self.connection = self.engine.connect()  # pool_pre_ping: a connection that answers
        self._open_marker()

    def _retrying(self, work: Callable[[bool], Any], what: str,
                  delays: Sequence[float] = DATABASE_RETRY_DELAYS) -> Any:
        """Run `work(again)`; if the database connection is lost, run it again on new
        connections after each of `delays`, then give up by raising the last error. `again`
        is true on the repeats, when the lost attempt may or may not have been committed."""
        pauses = iter(delays)
        again = False
        while True:
            try:
                if self._broken:
                    self._reconnect()
                    self._broken = False
                return work(again)
            except Exception as error:
                if not self.lost_database(error):
                    raise
                self._broken = True
                pause = next(pauses, None)
                if pause is None:
                    raise
                log.warning("mail sender %s lost its database connection while %s (%s);"
                            " trying again on a new one in %g s", self.sender, what,
                            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
                            pause)
                time.sleep(pause)
                again = True

    def _write(self, work: Callable[[], Any]) -> Any:
        """Run `work` as one committed write transaction (SQLite: as the single writer)."""
        if self.sqlite:
            with _sqlite_writer, writing():
                try:
                    result = work()
                    self.connection.commit()
                    return result
                except BaseException:
                    self.connection.rollback()
                    raise
        try:
            result = work()
            self.connection.commit()
            return result
        except BaseException:
            self.connection.rollback()
            raise

    def claim(self, size: int) -> tuple[list[ClaimedRow], datetime]:
        """Claim up to `size` due rows for this sender; returns them and the lease's end."""

        def work(again: bool) -> tuple[list[ClaimedRow], datetime]:
            if again:
                # The lost claim may have been committed: give back whatever this sender holds
                # (when it claims it holds nothing else) so those rows do not wait for a lease.
                self._release_held()
            return self._claim(size)

        return self._retrying(work, "claiming outbox rows")

    def _claim(self, size: int) -> tuple[list[ClaimedRow], datetime]:
        moment = clock.now()
        lease_until = moment + self.lease
        due = (
            select(_outbox.c.id)
            .where(_due_condition(moment))
            .order_by(_outbox.c.next_attempt_at, _outbox.c.id)
            .limit(size)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite is already the only writer
        )

        def work() -> list[Any]:
            if self.sqlite:
                # SQLite's planner, without statistics, prefers the state index and then
                # sorts every queued row on each claim: quadratic in the outbox's size.
                # INDEXED BY pins the due index (and fails loudly if it ever cannot be used).
                ids = list(self.connection.execute(_SQLITE_DUE, {"now": moment, "size": size}).scalars())
                if not ids:
                    return []
                chosen: Any = _outbox.c.id.in_(ids)
            else:
                chosen = _outbox.c.id.in_(due.scalar_subquery())
            return list(
                self.connection.execute(
                    update(_outbox)
                    .where(chosen)
                    .values(state=OutboxState.SENDING.value, lease_until=lease_until,
                            claimed_by=self.sender)
                    .returning(*_CLAIMED_COLUMNS)
                )
            )

        rows = self._write(work)
        if not rows:
            return [], lease_until
        files: dict[int, list[WireAttachment]] = {}
        ids = [row.id for row in rows]
        for attachment in self.connection.execute(
            select(_attachments.c.message_id, _attachments.c.filename,
                   _attachments.c.content_type, _attachments.c.content, _attachments.c.generated)
            .where(_attachments.c.message_id.in_(ids))
            .order_by(_attachments.c.id)
        ):
            files.setdefault(attachment.message_id, []).append(
                WireAttachment(attachment.filename, attachment.content_type,
                               attachment_file(attachment.generated, attachment.content))
            )
        self.connection.rollback()  # end the read transaction
        claimed = [
            ClaimedRow(
                id=row.id,
                person_id=row.person_id,
                list_id=row.list_id,
                attempts=row.attempts or 0,
                message=WireMessage(
                    from_address=row.from_address,
                    to_address=row.to_address,
                    reply_to=row.reply_to or "",
                    subject=row.subject,
                    body_text=row.body_text,
                    body_html=row.body_html or "",
                    message_id=row.message_id,
                    headers=row.headers or {},
                    date=moment,
                    attachments=files.get(row.id, []),
                ),
            )
            for row in sorted(rows, key=lambda r: r.id)
        ]
        return claimed, lease_until

    def still_subscribed(self, rows: Sequence[ClaimedRow]) -> set[int]:
        """Ids of the list rows whose recipient is still an active subscriber of that list."""
        from portal.lists.models import Subscription, SubscriptionStatus

        pairs = {(r.list_id, r.person_id) for r in rows if r.list_id is not None and r.person_id is not None}
        if not pairs:
            return set()
        subscriptions = Subscription.__table__

        def work(again: bool) -> set[tuple[int, int]]:
            active = {
                (found.list_id, found.person_id)
                for found in self.connection.execute(
                    select(subscriptions.c.list_id, subscriptions.c.person_id).where(
                        tuple_(subscriptions.c.list_id, subscriptions.c.person_id).in_(list(pairs)),
                        subscriptions.c.status == SubscriptionStatus.ACTIVE.value,
                    )
                )
            }
            self.connection.rollback()
            return active

        active = self._retrying(work, "checking list consent")
        return {r.id for r in rows if (r.list_id, r.person_id) in active}

    def _mark(self, row_id: int, **values: Any) -> bool:
        """Record one row's outcome in its own commit, if the claim is still ours.

        This runs once per message, thousands of times a second, so it goes to the driver
        with a statement compiled once (SQLAlchemy's per-execute work cost more than the
        UPDATE itself); the values still pass through the columns' own type processing.
        """
        sql, positions, processors, defaults = self._compiled(tuple(sorted(values)))
        params = dict(defaults)
        params.update({f"new_{name}": value for name, value in values.items()},
                      row_id=row_id, sender=self.sender)
        for name, process in processors.items():
            params[name] = process(params[name])
        arguments: Any = [params[name] for name in positions] if positions else params

        def work(again: bool) -> bool:
            # Autocommit: the single UPDATE is atomic on its own (SQLite takes its write lock
            # for the statement and waits out other writers with busy_timeout, as BEGIN
            # IMMEDIATE would).
            cursor = self.raw.cursor()
            try:
                if self.sqlite:
                    with _sqlite_writer:
                        cursor.execute(sql, arguments)
                else:
                    cursor.execute(sql, arguments)
                if cursor.rowcount > 0:
                    return True
            finally:
                cursor.close()
            # Nothing matched: the claim passed to another sender, or the UPDATE lost with the
            # connection had in fact been committed (the row is then ours and no longer sending).
            return again and self._still_ours(row_id)

        try:
            return self._retrying(work, f"recording the outcome of outbox row {row_id}")
        except Exception as error:
            if self.lost_database(error):
                self.unrecorded = row_id
            raise

    def _still_ours(self, row_id: int) -> bool:
        claimed_by = self.connection.execute(
            select(_outbox.c.claimed_by).where(_outbox.c.id == row_id)).scalar()
        self.connection.rollback()
        return claimed_by == self.sender

    def _compiled(self, columns: tuple[str, ...]):
        found = self._statements.get(columns)
        if found is None:
            dialect = self.connection.dialect
            compiled = _mark_statement(columns).compile(dialect=dialect)
            processors = {}
            for name in columns:
                process = _outbox.c[name].type.bind_processor(dialect)
                if process is not None:
                    processors[f"new_{name}"] = process
            placeholders = {"row_id": 0, "sender": "", **{f"new_{name}": None for name in columns}}
            defaults = {key: value for key, value in compiled.construct_params(placeholders).items()
                        if key not in ("row_id", "sender") and not key.startswith("new_")}
            found = (compiled.string, list(compiled.positiontup or []), processors, defaults)
            self._statements[columns] = found
        return found

    def mark_sent(self, row: ClaimedRow) -> bool:
        try:
            return self._mark(row.id, state=OutboxState.SENT.value, sent_at=clock.now(),
                              attempts=row.attempts + 1, last_error="")
        except Exception as error:
            if self.lost_database(error):
                log.error("outbox row %s was accepted by the mail server, but the database stayed"
                          " unreachable, so it is not marked sent: it stays claimed by %s until its"
                          " lease runs out and will then be delivered a second time",
                          row.id, self.sender)
            raise

    def mark_temporary(self, row: ClaimedRow, reason: str) -> str:
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            self._mark(row.id, state=OutboxState.FAILED.value, attempts=attempts,
                       last_error=f"gave up after {attempts} attempts: {reason}"[:2000])
            return "failed"
        self._mark(row.id, state=OutboxState.RETRY.value, attempts=attempts,
                   next_attempt_at=clock.now() + retry_delay(attempts), last_error=reason[:2000])
        return "retried"

    def mark_failed(self, row: ClaimedRow, reply: str) -> None:
        self._mark(row.id, state=OutboxState.FAILED.value, attempts=row.attempts + 1,
                   last_error=reply[:2000])

    def mark_withheld(self, row: ClaimedRow, reason: str) -> None:
        self._mark(row.id, state=OutboxState.WITHHELD.value, last_error=reason)

    def extend(self, rows: Sequence[ClaimedRow]) -> tuple[list[ClaimedRow], datetime]:
        """Renew the lease on these rows, as far as they are still ours (guarded by
        `claimed_by`); returns the rows kept and the new end. A row another sender took over
        after our lease ran out is dropped here, so it is never sent by both."""
        lease_until = clock.now() + self.lease
        ids = [r.id for r in rows]

        def work(again: bool) -> set[int]:
            kept: set[int] = set()
            for start in range(0, len(ids), 500):
                kept.update(self.connection.execute(
                    update(_outbox)
                    .where(_outbox.c.id.in_(ids[start:start + 500]), _outbox.c.claimed_by == self.sender,
                           _outbox.c.state == OutboxState.SENDING.value)
                    .values(lease_until=lease_until)
                    .returning(_outbox.c.id)
                ).scalars())
            return kept

        kept = self._retrying(lambda again: self._write(lambda: work(again)),
                              "renewing the claim") if ids else set()
        return [r for r in rows if r.id in kept], lease_until

    def release(self, rows: Sequence[ClaimedRow]) -> int:
        """Give unattempted claims back, due at once, for this or another sender."""
        if not rows:
            return 0
        ids = [r.id for r in rows]
        return int(self._retrying(lambda again: self._write(lambda: self._give_back(_outbox.c.id.in_(ids))),
                                  "giving back claimed rows"))

    def release_held(self, delays: Sequence[float] = DATABASE_RETRY_DELAYS) -> int:
        """Give back every row this sender still holds but the one whose outcome could not be
        recorded: each attempted row is recorded right after its attempt, so the rest were
        never attempted."""
        return int(self._retrying(lambda again: self._release_held(), "giving back claimed rows", delays))

    def _release_held(self) -> int:
        which = true() if self.unrecorded is None else _outbox.c.id != self.unrecorded
        return self._write(lambda: self._give_back(which))

    def _give_back(self, which: Any) -> int:
        return self.connection.execute(
            update(_outbox)
            .where(which, _outbox.c.claimed_by == self.sender,
                   _outbox.c.state == OutboxState.SENDING.value)
            .values(
                state=case((_outbox.c.attempts > 0, OutboxState.RETRY.value),
                           else_=OutboxState.QUEUED.value),
                lease_until=None,
                claimed_by="",
            )
        ).rowcount


# --------------------------------------------------------------------------- the drain


@dataclass
class _Shared:
    """What the sender threads of one drain share."""

    app: Flask
    report: DeliveryReport
    rate: RateLimiter
    limit: int | None
    #: Set by this drain (e.g. the server is unreachable) to end every thread's loop.
    halt: threading.Event
    #: The caller's stop (SIGTERM in `--watch`, the dev thread's stop()).
    outer: threading.Event | None = None
    _taken: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stopping(self) -> bool:
        return self.halt.is_set() or (self.outer is not None and self.outer.is_set())

    def take(self, wanted: int) -> int:
        """Reserve up to `wanted` messages of the drain's limit."""
        with self._lock:
            if self.limit is None:
                return wanted
            allowed = max(0, min(wanted, self.limit - self._taken))
            self._taken += allowed
            return allowed

    def give_back(self, count: int) -> None:
        with self._lock:
            if self.limit is not None:
                self._taken -= count


#: One message's whole exchange may take at most this many MAIL_TIMEOUT_SECONDS (a dropped
#: connection, then connect, greeting, EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA, the end
#: of data: about a dozen reads, each bounded by the timeout); the transport cuts it off
#: after that (`SmtpTransport.send`), so it always ends inside the lease (`sending_lease`).
EXCHANGE_TIMEOUTS = 12

#: A sender renews its claim before the next message once this long has passed since it
#: was made or last renewed: never for a fast server (a batch takes well under this), and
#: at most one UPDATE per this long for a slow one.
RENEW_EVERY = timedelta(seconds=10)


def sending_lease(config: Any) -> timedelta:
    """How long a claim lasts: MAIL_LEASE_SECONDS, but never under twenty SMTP timeouts plus
    RENEW_EVERY. One message's exchange is cut off after EXCHANGE_TIMEOUTS (twelve) timeouts
    however the server answers, so a message always ends, sent or not, within the lease
    left before it."""
    configured = timedelta(seconds=int(config.get("MAIL_LEASE_SECONDS") or 300))
    timeout = timedelta(seconds=float(config.get("MAIL_TIMEOUT_SECONDS") or 30))
    return max(configured, 20 * timeout + RENEW_EVERY)


def _batch_size(config: Any) -> int:
    size = max(1, int(config.get("MAIL_BATCH_SIZE") or 200))
    rate = float(config.get("MAIL_RATE_PER_SECOND") or 0)
    if rate > 0:
        # A batch must go out well within its lease, or another sender would claim it too.
        size = min(size, max(1, int(rate * sending_lease(config).total_seconds() / 2)))
    return size


def _run_sender(shared: _Shared) -> None:
    """One connection's loop: claim a batch, send it row by row, until nothing is due."""
    config = shared.app.config
    if config.get("MAIL_SERVER"):
        transport: Any = SmtpTransport(config)
        to_mailbox = False
    else:
        transport = MailboxTransport(mailbox_directory(shared.app))
        to_mailbox = True
    lease = sending_lease(config)
    store = OutboxStore(db.engine.connect(), sender_identity(), lease,
                        max(1, int(config.get("MAIL_MAX_ATTEMPTS") or 24)))
    # Before each message nearly the whole lease is left: it is renewed once RENEW_EVERY has
    # passed since the claim or the last renewal. One message takes at most about a dozen
    # SMTP timeouts (a reconnect with TLS and AUTH included), and sending_lease is twenty:
    # so no row's lease runs out while we send it, and no other sender can take it then.
    renew_when_left = lease - RENEW_EVERY
    batch_size = _batch_size(config)
    report = shared.report
    try:
        while not shared.stopping():
            wanted = shared.take(batch_size)
            if wanted == 0:
                break
            rows, lease_until = store.claim(wanted)
            shared.give_back(wanted - len(rows))
            if not rows:
                break
            pending = list(rows)
            lost: set[int] = set()  # rows whose claim passed to another sender
            while pending:
                if shared.stopping():
                    break
                chunk, pending = pending[:CONSENT_CHUNK], pending[CONSENT_CHUNK:]
                allowed = store.still_subscribed(chunk)
                for index, row in enumerate(chunk):
                    if shared.stopping():
                        pending = chunk[index:] + pending
                        break
                    if clock.now() >= lease_until - renew_when_left:
                        # A slow server: keep the claim on what is left, or learn it is gone.
                        left = chunk[index:] + pending
                        kept, lease_until = store.extend(left)
                        ours = {r.id for r in kept}
                        lost.update(r.id for r in left if r.id not in ours)
                        pending = [r for r in pending if r.id in ours]
                    if row.id in lost:
                        log.warning("outbox row %s passed to another sender before it went out", row.id)
                        continue
                    if row.person_id is None or (row.list_id is not None and row.id not in allowed):
                        store.mark_withheld(row, "The recipient is no longer subscribed to this list."
                                            if row.person_id is not None else "The recipient was erased.")
                        report.add("withheld")
                        continue
                    shared.rate.wait()
                    data = render_wire(row.message)
                    try:
                        if to_mailbox:
                            transport.send(row.message, data, row_id=row.id)
                        else:
                            transport.send(row.message, data)
                    except (TransportUnavailable, ServerUnwell) as error:
                        report.add(store.mark_temporary(row, str(error)))
                        report.add("released", store.release(chunk[index + 1:] + pending))
                        report.unreachable = True
                        shared.halt.set()  # the server is down or hanging: end this pass for all threads
                        return
                    except TemporaryFailure as error:
                        report.add(store.mark_temporary(row, str(error)))
                        continue
                    except PermanentFailure as error:
                        store.mark_failed(row, str(error))
                        report.add("failed")
                        continue
                    if store.mark_sent(row):
                        report.add("sent")
                    else:
                        log.warning("outbox row %s was sent but its claim had passed to another sender", row.id)
                        report.add("sent")
            if pending:
                report.add("released", store.release(pending))
    except Exception as error:
        if not store.lost_database(error):
            raise
        # Every step was already tried again through DATABASE_RETRY_DELAYS: one last try to
        # give back what was never attempted, then the pass ends (`watch` starts the next).
        try:
            report.add("released", store.release_held(delays=()))
        except Exception:
            log.error("mail sender %s: the database stayed unreachable; the outbox rows it holds"
                      " stay `sending` until their lease (%s) runs out, then any sender takes them",
                      store.sender, lease)
        raise
    finally:
        transport.close()
        store.close()


def drain(limit: int | None = None, *, stop: threading.Event | None = None) -> DeliveryReport:
    """Deliver due messages until none are left (or `limit` were taken); return what happened.

    Runs MAIL_CONNECTIONS senders (threads, each with its own SMTP and database connection)
    at MAIL_RATE_PER_SECOND in total. Needs an app context; never commits the caller's session.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    connections = max(1, int(config.get("MAIL_CONNECTIONS") or 1))
    if not config.get("MAIL_SERVER"):
        connections = 1  # the local mailbox gains nothing from parallel writers
    shared = _Shared(
        app=app,
        report=DeliveryReport(),
        rate=RateLimiter(float(config.get("MAIL_RATE_PER_SECOND") or 0)),
        limit=limit,
        halt=threading.Event(),
        outer=stop,
    )
    if connections == 1:
        _run_sender(shared)
        return shared.report
    errors: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                _run_sender(shared)
            except BaseException as error:  # re-raised in the calling thread below
                errors.append(error)
                shared.halt.set()

    threads = [threading.Thread(target=run, name=f"mail-sender-{n}") for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return shared.report


def deliver_due(limit: int | None = None) -> int:
    """Deliver every due message once (at most `limit`); return how many were processed.

    Processed means sent, rescheduled for retry, failed or withheld. Safe to run from any
    number of processes at once.
    """
    return drain(limit).processed


def watch(interval: float = 2.0, *, stop: threading.Event,
          on_pass: Callable[[DeliveryReport], None] | None = None) -> None:
    """Keep draining until `stop` is set; waits `interval` seconds when nothing is due.

    While the server is unreachable the wait grows (up to a minute) so a dead server is not
    hammered; it returns to `interval` as soon as a pass gets through.
    """
    pause = interval
    while not stop.is_set():
        try:
            report = drain(stop=stop)
        except Exception:  # a database hiccup must not end the sender; it is logged
            log.exception("mail delivery pass failed")
            report = DeliveryReport(unreachable=True)
        finally:
            db.session.remove()
        if on_pass is not None:
            on_pass(report)
        if report.unreachable:
            pause = min(60.0, max(interval, pause * 2))
        else:
            pause = interval
        if report.processed and not report.unreachable:
            continue  # more may have become due while we were busy
        stop.wait(pause)


class DeliveryThread(threading.Thread):
    """A daemon thread that keeps the outbox drained inside the web process (`make run`)."""

    def __init__(self, app: Flask, interval: float) -> None:
        super().__init__(name="mail-delivery", daemon=True)
        self.app = app
        self.interval = interval
        self.stop_event = threading.Event()

    def run(self) -> None:
        with self.app.app_context():
            watch(self.interval, stop=self.stop_event)

    def stop(self, timeout: float | None = 10.0) -> None:
        self.stop_event.set()
        self.join(timeout)


def start_background_delivery(app: Flask, interval: float = 2.0) -> threading.Thread:
    """Start delivering in this process, every `interval` seconds; returns the daemon thread.

    For development (`make run`). Production runs `flask send-mail --watch` or the scheduler.
    Call `.stop()` on the returned thread to end it.
    """
    thread = DeliveryThread(app, interval)
    thread.start()
    return thread
