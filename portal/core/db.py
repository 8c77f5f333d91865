"""Engine set-up and the write-transaction discipline that keeps seats and messages exact.

PostgreSQL takes row locks (`SELECT ... FOR UPDATE`, `SKIP LOCKED`) inside the transaction.
SQLite silently drops `FOR UPDATE`, so there a transaction that will write begins with
`BEGIN IMMEDIATE`: it takes the database's single write lock up front, and concurrent writers
queue behind it (retrying in short steps, see `_take_write_lock`) instead of racing. Reads
stay deferred and, under WAL, never wait for a writer.

Also here: `insert_row` and `insert_returning_id`, one-statement inserts for hot paths, and
`delete_by_ids` for the retention purges.
"""
from __future__ import annotations

import logging
import random
import sqlite3
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, delete, event, func, insert, select, text
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from portal.extensions import db

logger = logging.getLogger(__name__)

Row = TypeVar("Row")

#: The largest id a row can have: every id column is an `Integer` (PostgreSQL int4). A larger
#: number in a query is an error on PostgreSQL (NumericValueOutOfRange) and, past 64 bits, on
#: SQLite (OverflowError): ids from addresses and forms are checked against it first.
MAX_ID = 2**31 - 1

_immediate: ContextVar[bool] = ContextVar("portal_sqlite_immediate", default=False)


def want_write_transaction(flag: bool = True) -> None:
    """Ask that the next transaction on this thread/context begin as a writer (SQLite)."""
    _immediate.set(flag)


def become_writer() -> None:
    """The rest of this request writes: on SQLite, end the read-only transaction so the next
    one begins with BEGIN IMMEDIATE (a deferred transaction that has read cannot safely be
    promoted to a writer: it may fail with SQLITE_BUSY instead of waiting). PostgreSQL keeps
    its transaction, and its connection: it takes row locks where they are needed, and a
    second pool checkout would cost a ping and a rollback for nothing.
    """
    _immediate.set(True)
    if is_sqlite(db.session.get_bind()):
        db.session.rollback()


@contextmanager
def writing() -> Iterator[None]:
    """Run the enclosed transaction as a writer (for jobs and CLI commands outside requests)."""
    token = _immediate.set(True)
    try:
        yield
    finally:
        _immediate.reset(token)


def locked(row: Row) -> Row:
    """`row` read afresh under its row lock for the rest of the transaction (PostgreSQL;
    SQLite's writers take turns already). Afresh: SELECT ... FOR UPDATE alone leaves the copy
    the session already holds as it was, so a decision made on it would not see the change
    another transaction committed while this one waited for the lock."""
    model = type(row)
    return db.session.execute(
        select(model).where(model.id == row.id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


@contextmanager
def unique_or(refusal: Exception, column: str) -> Iterator[None]:
    """Flush the enclosed changes in a savepoint; if they break the uniqueness of `column`
    (two organizers saving the same web address at once: each checked it was free before
    either committed), raise `refusal` instead of a 500, with those changes undone."""
    try:
        with db.session.begin_nested():
            yield
            db.session.flush()
    except IntegrityError as error:
        # PostgreSQL names the constraint (uq_event_slug), SQLite the column (event.slug).
        if column not in str(error.orig):
            raise
        raise refusal from error


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


#: Accented letters, and the plain letter searching and sorting treat each as: "émilie"
#: finds "Émilie Ouellet", who sorts among the E's, on both databases (SQLite's lower()
#: folds only A-Z, and a C-collated PostgreSQL sorts É after Z).
_ACCENTED = "àâäáãåÀÂÄÁÃÅéèêëÉÈÊËíìîïÍÌÎÏóòôöõÓÒÔÖÕúùûüÚÙÛÜçÇñÑÿŸ"
_PLAIN = "".join(unicodedata.normalize("NFKD", letter)[0].lower() for letter in _ACCENTED)
_UNACCENT = str.maketrans(_ACCENTED, _PLAIN)


def fold(value: str | None) -> str | None:
    """Text as searches and sorts compare it: lower case, accents off."""
    return None if value is None else value.lower().translate(_UNACCENT)


def folded(column: Any) -> Any:
    """SQL for `fold(column)` on the current database: the same result as `fold`."""
    if is_sqlite(db.engine):
        return func.portal_fold(column)  # registered on every SQLite connection (configure_engine)
    # Accented capitals are in _ACCENTED too, so whatever lower() does to them, they fold.
    return func.translate(func.lower(column), _ACCENTED, _PLAIN)


def configure_engine(engine: Engine) -> None:
    if not is_sqlite(engine):
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record) -> None:  # pragma: no cover - driver glue
        # Let SQLAlchemy, not pysqlite, say when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        dbapi_connection.create_function("portal_fold", 1, fold, deterministic=True)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # A deleted or overwritten value is zeroed, not left in the file's free space
            # (where an erased person's address would survive in every copy of the file).
            cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        if not _immediate.get():
            connection.exec_driver_sql("BEGIN")
        elif not _take_write_lock(connection.connection.dbapi_connection):
            # Still held by someone after all that: wait once more the usual way, which
            # raises SQLAlchemy's OperationalError if it is never freed.
            connection.exec_driver_sql("BEGIN IMMEDIATE")


_SCRUB_KEY = "portal_scrub_after_commit"


def scrub_after_commit() -> None:
    """Personal data was erased or purged in this transaction: once it commits, have SQLite
    write its log back into the database file and empty the log (`wal_checkpoint(TRUNCATE)`),
    since the log keeps the pages as they were before, the erased values included, until
    then. Nothing to do on PostgreSQL, which reuses its own free space."""
    db.session.info[_SCRUB_KEY] = True


@event.listens_for(Session, "after_commit")
def _scrub_committed(session: Session) -> None:
    if not session.info.pop(_SCRUB_KEY, False):
        return
    engine = session.get_bind()
    if not is_sqlite(engine) or engine.url.database in (None, "", ":memory:"):
        return
    # Outside any transaction (a checkpoint cannot run inside one), on a connection of its
    # own. The commit has happened: a checkpoint that cannot finish (a reader in another
    # process holds an older snapshot) must not fail the request; the retention job's next
    # run tries again (`scrub_after_commit` there too).
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        # No waiting: with the usual busy timeout a checkpoint blocked by a reader would hold
        # every writer back for up to 30 seconds (SQLite stops new writers while it waits).
        cursor.execute("PRAGMA busy_timeout=0")
        (blocked, _log_pages, _copied), = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        if blocked:
            logger.warning("the SQLite log still holds erased data (a reader held it); the retention job will retry")
    except sqlite3.Error:
        logger.warning("could not empty the SQLite log after an erasure; the retention job will retry")
    finally:
        try:
            connection.cursor().execute("PRAGMA busy_timeout=30000")
        finally:
            connection.close()


@event.listens_for(Session, "after_rollback")
def _forget_scrub(session: Session) -> None:
    session.info.pop(_SCRUB_KEY, None)


#: How long a writer tries for SQLite's write lock in short steps before waiting the usual way.
WRITE_LOCK_PATIENCE = 30.0


def _take_write_lock(dbapi_connection) -> bool:
    """BEGIN IMMEDIATE, retrying every half millisecond or so while another writer holds the
    lock; False if it was still held after WRITE_LOCK_PATIENCE seconds.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ... up to 100 ms between tries,
    so a writer queued behind a transaction of a few milliseconds often sleeps many times
    longer than the lock was held: measured with bench/register.py, that set the tail latency
    of registrations on SQLite. A failed try costs microseconds; the database stays the only
    lock (no second lock to leak).
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + WRITE_LOCK_PATIENCE
        pause = 0.0005
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return True
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause * (0.5 + random.random()))  # jitter: waiters do not retry in step
            pause = min(pause * 1.5, 0.004)
    finally:
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def delete_by_ids(model: Any, ids: list[int], *guards: Any, chunk: int = 500) -> int:
    """DELETE the rows of `model` with these ids that still match `guards`, a chunk of ids per
    statement (a retention purge may pass thousands); returns how many went. The session's
    copies of the rows are left as they are: callers expire them."""
    count = 0
    for start in range(0, len(ids), chunk):
        count += db.session.execute(
            delete(model).where(model.id.in_(ids[start:start + chunk]), *guards)
            .execution_options(synchronize_session=False)
        ).rowcount or 0
    return count


def insert_row(model: type[Row], values: dict[str, Any], *, unless_taken: tuple[str, ...] = ()) -> Row | None:
    """INSERT one row of `model` with these column values, and return it as a persistent
    object of the session: the unit of work's per-object bookkeeping and any reading back are
    skipped, which matters on hot paths such as registering. Columns left out of `values`
    get their defaults in the database row and load from it if the object is asked for them.

    With `unless_taken` (the columns of a unique constraint), a row that would collide with
    an existing one is not inserted and None is returned (ON CONFLICT DO NOTHING), without
    spoiling the transaction as an IntegrityError would on PostgreSQL.
    """
    new_id = insert_returning_id(model.__table__, values, unless_taken=unless_taken)
    if new_id is None:
        return None
    row = model(id=new_id, **values)
    make_transient_to_detached(row)
    db.session.add(row)
    session = db.session()
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_INSERTED_ROWS, []).append((transaction, row))
    return row


#: The session.info key listing the rows insert_row attached in the current transaction.
_INSERTED_ROWS = "portal_inserted_rows"


@event.listens_for(Session, "after_soft_rollback")
def _forget_inserted_rows(session: Session, previous_transaction) -> None:
    """A rollback forgets the rows insert_row attached, as it forgets rows the session
    inserted itself. Attached as persistent, a rolled-back row would only be expired; SQLite
    hands its id to the next insert, whose row would then collide with it in the session."""
    kept = []
    for transaction, row in session.info.pop(_INSERTED_ROWS, ()):
        if _within(transaction, previous_transaction):
            if row in session:
                session.expunge(row)
        else:  # inserted before the savepoint that was rolled back: the outer one goes on
            kept.append((transaction, row))
    if kept:
        session.info[_INSERTED_ROWS] = kept


def _within(transaction, outer) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _inserted_rows_committed(session: Session) -> None:
    session.info.pop(_INSERTED_ROWS, None)


def insert_returning_id(table: Table, values: dict[str, Any], *, unless_taken: tuple[str, ...] = ()) -> int | None:
    """INSERT one row into `table` on the session's connection and return its id, or None
    when `unless_taken` names a unique constraint the row would collide with."""
    connection = db.session.connection()
    statement = _insert_statement(table, connection.dialect, tuple(values), unless_taken)
    return connection.execute(statement, values).scalar_one_or_none()


@lru_cache(maxsize=64)
def _insert_statement(table: Table, dialect: Dialect, columns: tuple[str, ...], unless_taken: tuple[str, ...]):
    if not unless_taken:
        return insert(table).returning(table.c.id)  # SQLAlchemy caches its compiled form
    # SQLAlchemy's PostgreSQL and SQLite insert constructs opt out of its statement cache
    # (`inherit_cache = False`), so `insert(...).on_conflict_do_nothing()` would be compiled
    # again on every execution. The same SQL, spelled once from the table's own metadata with
    # typed parameters, is compiled once. Both databases accept this syntax.
    quote = dialect.identifier_preparer
    sql = (f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)}) "
           f"VALUES ({', '.join(':' + c for c in columns)}) "
           f"ON CONFLICT ({', '.join(quote.quote(c) for c in unless_taken)}) DO NOTHING "
           f"RETURNING {quote.quote('id')}")
    return text(sql).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns)).columns(table.c.id)
