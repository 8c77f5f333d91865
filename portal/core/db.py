"""Engine set-up and the write-transaction discipline that keeps seats and messages exact.

PostgreSQL takes row locks (`SELECT ... FOR UPDATE`, `SKIP LOCKED`) inside the transaction.
SQLite silently drops `FOR UPDATE`, so there a transaction that will write begins with
`BEGIN IMMEDIATE`: it takes the database's single write lock up front, and concurrent writers
queue behind it (busy_timeout) instead of racing. Reads stay deferred and, under WAL, never
wait for a writer.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event
from sqlalchemy.engine import Engine

_immediate: ContextVar[bool] = ContextVar("portal_sqlite_immediate", default=False)


def want_write_transaction(flag: bool = True) -> None:
    """Ask that the next transaction on this thread/context begin as a writer (SQLite)."""
    _immediate.set(flag)


@contextmanager
def writing() -> Iterator[None]:
    """Run the enclosed transaction as a writer (for jobs and CLI commands outside requests)."""
    token = _immediate.set(True)
    try:
        yield
    finally:
        _immediate.reset(token)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def configure_engine(engine: Engine) -> None:
    if not is_sqlite(engine):
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record) -> None:  # pragma: no cover - driver glue
        # Let SQLAlchemy, not pysqlite, say when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _immediate.get() else "BEGIN")
