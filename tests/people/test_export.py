"""Export: every record of the person, and nobody else's."""
from __future__ import annotations

import re

import csv
import io
import json

from sqlalchemy import select

from portal.extensions import db
from portal.people.models import Person
from portal.people.privacy import export_csv, export_json, person_links

from tests.people.activity import seed_everything


def test_export_holds_every_record_of_the_person_and_nobody_elses(app, two_people):
    alice, bob = two_people
    seed_everything(app, [alice, bob])
    with app.app_context():
        person = db.session.get(Person, alice.id)
        document = json.loads(export_json(person))
        tables = document["tables"]
        assert tables["person"]["rows"][0]["email"] == alice.email
        assert tables["person"]["rows"][0]["name"] == alice.name
        for link in person_links():
            pk = list(link.table.primary_key.columns)[0]
            if link.via is None:
                expected = set(db.session.execute(select(pk).where(link.column == alice.id)).scalars())
            else:
                parent_pk = list(link.via.table.primary_key.columns)[0]
                owned = select(parent_pk).where(link.via.column == alice.id)
                expected = set(db.session.execute(select(pk).where(link.column.in_(owned))).scalars())
            assert expected, f"seeding left {link.table.name} empty"
            exported = {row[pk.name] for row in tables[link.table.name]["rows"]}
            assert exported == expected, link.table.name
        text = json.dumps(document)
        assert bob.email not in text and bob.name not in text
        # Secrets are never in an export, not even hashed.
        assert "token_hash" not in text and "unsubscribe_token_hash" not in text
        # What each message said is there, its links and codes masked (no run of token characters).
        assert "body_text" in text and not re.search(r"[A-Za-z0-9_-]{32,}", text.replace("token_hash", ""))
        # Messages show what was sent (subject, state), and the list/event the row is about is named.
        message = tables["outbox_message"]["rows"][0]
        assert message["subject"] and message["state"] == "queued"

        exported = export_csv(person)
        assert exported.startswith("\ufeff")  # a spreadsheet reads the accents as UTF-8
        rows = list(csv.reader(io.StringIO(exported.removeprefix("\ufeff"))))
        assert rows[0] == ["table", "label", "row", "column", "value"]
        # What a row is about (the event, group, list or guideline), as in the JSON.
        referring = {table for table, section in tables.items() if any("refers_to" in r for r in section["rows"])}
        assert referring and {r[0] for r in rows if r[3] == "refers_to"} == referring
        assert ["person", "Your details", "1", "email", alice.email] in rows
        assert {r[0] for r in rows[1:]} == set(tables)
        flat = "\n".join(",".join(r) for r in rows)
        assert bob.email not in flat and bob.name not in flat


def test_csv_cells_cannot_run_as_formulas(app, make):
    person = make.person(name="=HYPERLINK(\"http://evil\")")
    with app.app_context():
        rows = list(csv.reader(io.StringIO(export_csv(db.session.get(Person, person.id)).removeprefix("\ufeff"))))
        names = [r[4] for r in rows if r[3] == "name"]
        assert names == ["'=HYPERLINK(\"http://evil\")"]
