from __future__ import annotations

import re

import pytest
from sqlalchemy import JSON, String, Text, cast, func, select

from portal.extensions import db


def scan_for(needle: str) -> list[tuple[str, str]]:
    """(table, column) pairs where any row's text or JSON holds `needle` (case-insensitive)."""
    found = []
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, (String, Text, JSON)):
                continue
            text = cast(column, Text) if isinstance(column.type, JSON) else column
            hits = db.session.execute(
                select(func.count()).select_from(table).where(
                    func.lower(text, type_=Text).contains(needle.casefold(), autoescape=True)
                )
            ).scalar_one()
            if hits:
                found.append((table.name, column.name))
    return found


def link_from_outbox(person_id: int) -> str:
    """The my-data path in the newest message queued to the person."""
    from portal.mail.models import OutboxMessage

    body = db.session.execute(
        select(OutboxMessage.body_text)
        .where(OutboxMessage.person_id == person_id, OutboxMessage.purpose == "people.my_data_link")
        .order_by(OutboxMessage.id.desc())
    ).scalars().first()
    assert body, "no my-data message queued"
    return re.search(r"(/my-data/[A-Za-z0-9_-]+)", body).group(1)


@pytest.fixture
def two_people(app, make):
    alice = make.person("alice.zephyrine@example.ca", name="Alice Zephyrine", organization="Sudbury Health",
                        community="Sudbury", job_title="Nurse practitioner")
    bob = make.person("bob.quixotic@example.ca", name="Bob Quixotic", organization="Thunder Bay Police",
                      community="Thunder Bay", job_title="Constable")
    return alice, bob
