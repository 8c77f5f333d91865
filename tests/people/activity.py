"""Seed a person's activity in EVERY table that references person.id, generically.

Rows are built from the SQLAlchemy metadata alone, so a table added by any area is covered
without changing this file: required columns get plausible values, required foreign keys get
a parent row (shared between people, so their activity overlaps: same event, same list), and
every column marked `info={"personal": True}` gets text that names the person. The real
services make the rows whose content matters (consent ledger, links, outbox, audit, login
attempts).
"""
from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, LargeBinary, Numeric, String, Table, Text
from sqlalchemy.exc import IntegrityError

from portal.core.clock import now
from portal.extensions import db

_counter = itertools.count(1)


def _value(column, text: str) -> Any:
    kind = column.type
    n = next(_counter)
    if isinstance(kind, JSON):
        return {"note": text} if column.info.get("personal") else {}
    if isinstance(kind, (String, Text)):
        value = text if column.info.get("personal") else f"v{n}-{column.name}"
        length = getattr(kind, "length", None)
        return value[:length] if length else value
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):
        return n
    if isinstance(kind, (Float, Numeric)):
        return 1
    if isinstance(kind, LargeBinary):
        return b"x"
    if isinstance(kind, Date):
        return date.today()
    python_type = getattr(kind, "impl", kind)
    if isinstance(python_type, DateTime) or isinstance(kind, DateTime):
        return now() + timedelta(days=30)
    raise TypeError(f"no generic value for {column.table.name}.{column.name} ({kind})")


class ActivitySeeder:
    """Builds rows table by table; parents are shared between everyone seeded."""

    def __init__(self) -> None:
        self.parents: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}

    def parent_id(self, table: Table) -> Any:
        if table.name not in self.parents:
            self.parents[table.name] = self.insert(table, person_id=None, text="shared parent")
        return self.parents[table.name]

    def insert(self, table: Table, *, person_id: int | None, text: str) -> Any:
        values: dict[str, Any] = {}
        for column in table.columns:
            if column.primary_key and isinstance(column.type, Integer) and not column.foreign_keys:
                continue
            targets = [fk.column for fk in column.foreign_keys]
            if targets:
                target = targets[0]
                if target.table.name == "person":
                    if person_id is not None:
                        values[column.name] = person_id
                    elif not column.nullable:
                        raise ValueError("a shared parent cannot require a person")
                    continue
                if column.nullable:
                    continue
                if target.table.name == "sector":
                    values[column.name] = db.session.execute(target.table.select().limit(1)).first().id
                    continue
                values[column.name] = self.parent_id(target.table)
                continue
            if column.info.get("personal"):
                values[column.name] = _value(column, text)
                continue
            if column.nullable or column.default is not None or column.server_default is not None:
                continue
            values[column.name] = _value(column, text)
        result = db.session.execute(table.insert().values(**values))
        return result.inserted_primary_key[0]

    def seed(self, tables: list[Table], person_id: int, text: str) -> None:
        for table in tables:
            try:
                with db.session.begin_nested():
                    self.insert(table, person_id=person_id, text=text)
            except (IntegrityError, TypeError, ValueError) as error:
                self.skipped[table.name] = str(error)[:200]


def person_tables() -> list[Table]:
    """Tables with a foreign key to person.id (the privacy code's own definition)."""
    return [
        t for t in db.metadata.sorted_tables
        if t.name != "person" and any(fk.column.table.name == "person" for fk in t.foreign_keys)
    ]


def seed_everything(app, people: list, *, organizer=None) -> ActivitySeeder:
    """Give each person (committed Person rows) activity in every table, through the real
    services where they exist and generically elsewhere. Commits."""
    from portal.core.audit import record_audit
    from portal.core.tokens import issue_token
    from portal.mail.services import Attachment, queue_email
    from portal.people.models import ConsentKind, Person
    from portal.people.services import record_consent

    seeder = ActivitySeeder()
    with app.app_context():
        specific = {"consent_record", "access_token", "outbox_message", "outbox_attachment"}
        generic = [t for t in person_tables() if t.name not in specific]
        for index, detached in enumerate(people):
            person = db.session.get(Person, detached.id)
            text = f"{person.name} <{person.email}> uses a wheelchair"
            record_consent(person, purpose="list:overlap", kind=ConsentKind.EXPRESS,
                           wording=f"Yes, email {person.email}", source="test form",
                           ip=f"10.0.0.{index + 1}", user_agent="Test browser")
            record_consent(person, purpose="events.promotion", kind=ConsentKind.IMPLIED,
                           implied_from="transaction", source="registration")
            issue_token("events.manage", person_id=person.id, valid_for=timedelta(days=5))
            queue_email(
                key=f"test.notice:{person.id}", to=person, template="people/erasure_received",
                purpose="test.notice", context={"due_at": now()},
                attachments=[Attachment("note.txt", "text/plain", person.email.encode())],
            )
            record_audit("events.attendees.exported", actor_label="organizer@owg.example.ca",
                         subject=f"person:{person.id}", note=f"exported {person.name} {person.email}")
            from portal.auth.models import LoginAttempt

            db.session.add(LoginAttempt(email=person.email, succeeded=False, at=now(), origin="10.0.0.9"))
            seeder.seed(generic, person.id, text)
        db.session.commit()
    return seeder
