"""One person per address; sectors seeded; consent that lapses by itself."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.core import clock
from portal.extensions import db
from portal.people.models import ConsentKind, Person, Sector
from portal.people.services import (
    SECTORS,
    InvalidEmail,
    get_or_create_person,
    has_consent,
    list_sectors,
    normalize_email,
    record_consent,
    seed_sectors,
)


@pytest.mark.parametrize(
    "raw, expected",
    [("  Jane.Doe@Example.CA ", "jane.doe@example.ca"), ("OFFICER@Police.ON.CA", "officer@police.on.ca"),
     # An internationalized domain typed as ASCII stays ASCII (not turned into "exämple").
     ("User@XN--exmple-cua.org", "user@xn--exmple-cua.org")],
)
def test_addresses_are_trimmed_and_case_folded(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "no-at-sign", "a@", "@b.ca", "x" * 330 + "@b.ca", None,
                                 "a" * 65 + "@example.ca"])  # SMTP allows 64 characters before the @
def test_invalid_addresses_are_refused(raw):
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


def test_the_same_address_is_one_person(app_context):
    first = get_or_create_person("Sam@Example.ca", name="Sam")
    second = get_or_create_person(" sam@example.CA ", organization="Sudbury Police")
    db.session.flush()
    assert first.id == second.id
    assert second.name == "Sam" and second.organization == "Sudbury Police"
    assert db.session.execute(select(func.count(Person.id))).scalar_one() == 1


def test_an_empty_detail_never_overwrites_a_known_one(app_context):
    get_or_create_person("pat@example.ca", name="Pat", community="Peel")
    person = get_or_create_person("pat@example.ca", name="", community=None)
    assert person.name == "Pat" and person.community == "Peel"


def test_a_public_form_never_rewrites_what_a_known_person_told_us(app_context):
    """Anyone can type an address into a public form: a known person's details stay theirs."""
    get_or_create_person("pat@example.ca", name="Pat Lee", organization="Peel Police", language="fr")
    person = get_or_create_person("pat@example.ca", name="Someone Else", organization="Elsewhere",
                                  language="en", community="Peel")
    assert (person.name, person.organization, person.language) == ("Pat Lee", "Peel Police", "fr")
    assert person.community == "Peel"  # a blank is still filled in


def test_sectors_are_seeded_in_order(app_context):
    sectors = list_sectors()
    assert [s.slug for s in sectors] == [slug for slug, _, _ in SECTORS]
    assert sectors[0].name("fr") == "Soins de santé"
    assert {s.slug for s in sectors} >= {"police", "housing", "child-protection", "other"}


def test_implied_consent_lapses_by_itself(app_context):
    start = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)
    clock.set_now(start)
    person = get_or_create_person("lee@example.ca")
    db.session.flush()
    record_consent(person, purpose="list:symposium-announcements", kind=ConsentKind.IMPLIED,
                   implied_from="inquiry", source="test")
    db.session.flush()
    assert has_consent(person.id, "list:symposium-announcements")
    clock.set_now(start + timedelta(days=184))
    assert not has_consent(person.id, "list:symposium-announcements")


def test_express_consent_lasts_until_withdrawn(app_context):
    clock.set_now(datetime(2026, 1, 10, tzinfo=UTC))
    person = get_or_create_person("kim@example.ca")
    db.session.flush()
    record_consent(person, purpose="list:x", kind=ConsentKind.EXPRESS, wording="Send me news",
                   wording_version="v1")
    db.session.flush()
    clock.advance(timedelta(days=3650))
    assert has_consent(person.id, "list:x")
    record_consent(person, purpose="list:x", kind=ConsentKind.WITHDRAWN, method="one-click unsubscribe")
    db.session.flush()
    assert not has_consent(person.id, "list:x")


def test_a_worker_reads_the_sectors_once_and_seeding_refreshes_them(app_context):
    from sqlalchemy import event as sa_event

    statements = []
    record = lambda *args: statements.append(args[2])  # noqa: E731  (statement text)
    sa_event.listen(db.engine, "before_cursor_execute", record)
    try:
        first, second = list_sectors(), list_sectors()
        assert first == second and len([s for s in statements if "FROM sector" in s]) == 1
        db.session.add(Sector(slug="faith-communities", name_en="Faith communities",
                              name_fr="Communautés de foi", position=50))
        seed_sectors()  # a seeding in this process is seen at once
        assert "faith-communities" in {s.slug for s in list_sectors()}
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", record)
