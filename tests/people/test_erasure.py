"""Erasure: the person is gone from every table, while counts and sector statistics stay."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from portal.core.audit import AuditEntry
from portal.extensions import db
from portal.people.models import ConsentRecord, Person
from portal.people.privacy import AlreadyErased, erase_person, person_links

from tests.people.activity import person_tables, seed_everything
from tests.people.conftest import scan_for


def _counts(person_id: int) -> dict[str, int]:
    counts = {}
    for link in person_links():
        if link.via is not None:
            continue
        counts[f"{link.table.name}.{link.column.name}"] = db.session.execute(
            select(func.count()).select_from(link.table).where(link.column == person_id)
        ).scalar_one()
    return counts


def test_erasure_leaves_no_trace_and_keeps_counts(app, two_people):
    alice, bob = two_people
    with app.app_context():
        db.session.get(Person, alice.id).sector_id = 3
        db.session.commit()
    seeder = seed_everything(app, [alice, bob])
    assert not seeder.skipped, f"tables the generic seeding could not fill: {seeder.skipped}"

    with app.app_context():
        before_alice = _counts(alice.id)
        before_bob = _counts(bob.id)
        # Every table that references a person got rows for both people.
        for table in person_tables():
            assert any(v for k, v in before_alice.items() if k.startswith(table.name + ".")), table.name
        assert scan_for(alice.email) and scan_for(alice.name)
        bob_places = scan_for(bob.email) + scan_for(bob.name)
        sectors_before = db.session.execute(
            select(Person.sector_id, func.count()).group_by(Person.sector_id).order_by(Person.sector_id)
        ).all()

        erase_person(db.session.get(Person, alice.id), actor=None, reason="test")
        db.session.commit()

        assert scan_for(alice.email) == []
        assert scan_for(alice.name) == []
        assert scan_for("Zephyrine") == []
        # Bob is untouched, everywhere he was.
        assert scan_for(bob.email) + scan_for(bob.name) == bob_places
        assert _counts(bob.id) == before_bob
        # Alice's rows are still counted; only her links and attachments are gone.
        after = _counts(alice.id)
        assert after.pop("access_token.person_id") == 0
        before_alice.pop("access_token.person_id")
        assert after == before_alice
        sectors_after = db.session.execute(
            select(Person.sector_id, func.count()).group_by(Person.sector_id).order_by(Person.sector_id)
        ).all()
        assert sectors_after == sectors_before

        person = db.session.get(Person, alice.id)
        assert person.email == f"erased-{alice.id}@erased.invalid"
        assert (person.name, person.organization, person.community, person.job_title) == ("", "", "", "")
        assert person.sector_id == 3 and person.erased_at is not None
        # Consent ledger: only the fact and date.
        for record in db.session.execute(select(ConsentRecord).where(ConsentRecord.person_id == alice.id)).scalars():
            assert record.purpose and record.kind and record.created_at
            assert (record.wording, record.ip, record.user_agent, record.source) == ("", "", "", "")
        bob_consent = db.session.execute(
            select(ConsentRecord).where(ConsentRecord.person_id == bob.id, ConsentRecord.purpose == "list:overlap")
        ).scalar_one()
        assert bob_consent.wording == f"Yes, email {bob.email}" and bob_consent.ip == "10.0.0.2"
        # Personal columns of Alice's rows are blank in every table; Bob's are not.
        for link in person_links():
            for column in link.table.columns:
                if not column.info.get("personal") or link.via is not None:
                    continue
                for owner, expect_blank in ((alice.id, True), (bob.id, False)):
                    values = db.session.execute(
                        select(column).where(link.column == owner)
                    ).scalars().all()
                    assert values, (link.table.name, column.name)
                    for value in values:
                        assert (value in (None, "", {})) == expect_blank, (link.table.name, column.name, value)
        # One entry says the erasure happened, without saying who it was.
        entry = db.session.execute(
            select(AuditEntry).where(AuditEntry.action == "people.person.erased")
        ).scalar_one()
        assert entry.subject == f"person:{alice.id}"


def test_erasure_scrubs_the_outbox_and_withholds_unsent_mail(app, two_people):
    from portal.mail.models import OutboxAttachment, OutboxMessage

    alice, bob = two_people
    seed_everything(app, [alice, bob])
    with app.app_context():
        erase_person(db.session.get(Person, alice.id), actor=None)
        db.session.commit()
        message = db.session.execute(select(OutboxMessage).where(OutboxMessage.person_id == alice.id)).scalar_one()
        assert message.to_address == f"erased-{alice.id}@erased.invalid"
        assert (message.subject, message.body_text, message.body_html) == ("", "", "")
        assert message.state == "withheld"
        assert message.attachments == []
        bob_message = db.session.execute(select(OutboxMessage).where(OutboxMessage.person_id == bob.id)).scalar_one()
        assert bob_message.state == "queued" and bob_message.subject
        assert db.session.execute(select(func.count(OutboxAttachment.id))).scalar_one() == 1


def test_erasing_twice_is_refused(app_context, make):
    person = make.person()
    row = db.session.get(Person, person.id)
    erase_person(row, actor=None)
    db.session.commit()
    with pytest.raises(AlreadyErased):
        erase_person(db.session.get(Person, person.id), actor=None)


def test_erasing_a_registrant_keeps_event_counts_and_sector_statistics(app, make):
    """Through the events area's own registration service: the seat stays, anonymous."""
    from datetime import timedelta

    from portal.core.clock import now
    from portal.events.models import Event, EventStatus, Registration
    from portal.events.services import RegistrationDetails, confirmed_by_sector, register_for_event, seat_counts

    with app.app_context():
        event = Event(slug="fall-symposium", title="Fall symposium", starts_at=now() + timedelta(days=30),
                      ends_at=now() + timedelta(days=31), capacity=50, status=EventStatus.PUBLISHED.value)
        db.session.add(event)
        db.session.commit()
        for email, name, sector in (("carla.vantongeren@example.ca", "Carla Vantongeren", "police"),
                                    ("dev.okonkwo@example.ca", "Dev Okonkwo", "housing")):
            register_for_event(event.id, RegistrationDetails(
                email=email, name=name, organization=f"{name}'s agency", sector_slug=sector,
                community="Timmins", accessibility_needs=f"{name} needs step-free access",
                dietary_needs="vegan", answers={"why": f"I am {name}"}, announcements=True,
                ip="192.0.2.7", user_agent="Firefox"))
        db.session.commit()
        counts_before = seat_counts(event)
        sectors_before = confirmed_by_sector(event.id)
        carla = db.session.execute(select(Person).where(Person.email == "carla.vantongeren@example.ca")).scalar_one()
        assert scan_for("Vantongeren")

        erase_person(carla, actor=None, reason="test")
        db.session.commit()

        assert scan_for("Vantongeren") == [] and scan_for("carla.vantongeren") == []
        assert seat_counts(event) == counts_before
        assert confirmed_by_sector(event.id) == sectors_before
        seat = db.session.execute(select(Registration).where(Registration.person_id == carla.id)).scalar_one()
        assert (seat.accessibility_needs, seat.dietary_needs, seat.answers) == ("", "", {})
        other = db.session.execute(select(Registration).where(Registration.person_id != carla.id)).scalar_one()
        assert other.accessibility_needs == "Dev Okonkwo needs step-free access"
        assert scan_for("Okonkwo")


def test_an_erased_person_is_in_no_group_and_on_no_list(app):
    """Through the groups and lists areas' own services: nobody sees, counts or exports the
    placeholder as a member or a subscriber, and the chair's other members stay."""
    from portal.groups.models import Membership, WorkingGroup
    from portal.lists.models import Subscription
    from portal.lists.imports import import_subscribers
    from portal.lists.services import recipients, save_public_list
    from portal.people.services import get_or_create_person
    from tests.groups.conftest import GroupFactories

    factories = GroupFactories(app)
    info = factories.group()
    factories.member(info, "alice.member@example.ca", name="Alice Member")
    factories.member(info, "bob.member@example.ca", name="Bob Member")
    with app.app_context():
        news = save_public_list(None, slug="news", name_en="News")
        # Subscribed with consent evidence, as an import of a sign-up sheet does.
        report = import_subscribers(news, "email,name,consent_date,consent_source\n"
                                          "alice.member@example.ca,Alice Member,2026-01-05,sign-up sheet\n")
        assert len(report.imported) == 1, report
        alice = db.session.execute(select(Person).where(Person.email == "alice.member@example.ca")).scalar_one()
        applicant = get_or_create_person("alice.applicant@example.ca", name="Alice Applicant")
        db.session.flush()
        db.session.add(Membership(group_id=info.id, person_id=applicant.id, status="applied"))
        db.session.commit()

        erase_person(alice, actor=None, reason="asked")
        erase_person(db.session.get(Person, applicant.id), actor=None, reason="asked")
        db.session.commit()

        group = db.session.get(WorkingGroup, info.id)
        statuses = {m.person_id: m.status for m in db.session.execute(select(Membership)).scalars()}
        assert statuses[alice.id] == "left" and statuses[applicant.id] == "left"
        group_list = db.session.get(type(news), group.mailing_list_id)
        assert [s.person.email for s in recipients(group_list)] == ["bob.member@example.ca"]
        assert [s.status for s in db.session.execute(
            select(Subscription).where(Subscription.person_id == alice.id)).scalars()] == ["unsubscribed"] * 2
        assert recipients(db.session.get(type(news), news.id)) == []
        assert scan_for("alice.member") == [] and scan_for("Alice Member") == []


def test_erasure_removes_where_the_person_came_from_and_keeps_organizers_origins(app, make):
    """A privacy pass found the person's IP address left beside the erased placeholder on the
    audit entries of what they did themselves and on a login attempt typed with their
    address. An organizer's own origin on entries about them stays (accountability)."""
    from portal.auth.models import OrganizerAccount
    from portal.auth.services import LoginFailed, authenticate
    from portal.core.audit import record_audit
    from portal.lists.services import request_subscription, save_public_list

    organizer = make.organizer()
    person_id = make.person("ip.owner@example.ca", name="Ip Owner").id
    with app.app_context():
        news = save_public_list(None, slug="news", name_en="News")
        db.session.commit()
        request_subscription(news, "ip.owner@example.ca", "Ip Owner", "en", "Yes", "v1", "198.51.100.23", "Agent")
        try:
            authenticate("ip.owner@example.ca", "not their password", origin="198.51.100.23")
        except LoginFailed:
            pass
        record_audit("people.request.viewed", actor=db.session.get(OrganizerAccount, organizer.id),
                     subject=f"person:{person_id}", origin="203.0.113.5")
        db.session.commit()
        assert scan_for("198.51.100.23")
        erase_person(db.session.get(Person, person_id), actor=None, reason="asked")
        db.session.commit()
        assert scan_for("198.51.100.23") == []
        assert db.session.execute(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.origin == "203.0.113.5")).scalar_one() == 1


def _file_sqlite_app(tmp_path, name: str):
    """The portal on its own SQLite file (whatever backend this run uses), schema and
    sectors made: for tests about the database file itself."""
    from config import TestingConfig
    from portal import create_app
    from portal.people.services import seed_sectors

    app = create_app({**{k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()},
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / name}", "PORTAL_INSTANCE_PATH": str(tmp_path),
                      "MAIL_SERVER": ""})
    with app.app_context():
        db.create_all()
        seed_sectors()
        db.session.commit()
    return app


def test_erased_details_do_not_linger_in_the_sqlite_files(tmp_path):
    """SQLite keeps a deleted or overwritten value in the file's free space, and a WAL keeps
    every page written since the last checkpoint: an erased address must be in neither
    (a copy of the database file, a backup, would otherwise still hold it)."""
    from portal.mail.services import queue_email

    app = _file_sqlite_app(tmp_path, "erasure.sqlite3")
    address = "quillon.vantreight@example.ca"

    def files_holding(needle: str) -> list[str]:
        return [path.name for path in tmp_path.glob("erasure.sqlite3*")
                if needle.encode() in path.read_bytes()]

    with app.app_context():
        # Neighbours on the same pages: a blanked row's old bytes stay beside theirs.
        db.session.add(Person(email="before@example.ca", name="Before", language="en"))
        db.session.flush()
        person = Person(email=address, name="Quillon Vantreight", organization="Kenora Housing",
                        community="Kenora", job_title="", language="en")
        db.session.add(person)
        db.session.flush()
        db.session.add(Person(email="after@example.ca", name="After", language="en"))
        db.session.flush()
        # A long message to them: blanked, its row shrinks and frees the space it held.
        queue_email(key="test:erasure-files", to=person, template="people/my_data_link",
                    purpose="people.my_data_link", context={"link": "https://portal.test/x"})
        db.session.commit()
        assert files_holding(address), "the test must see the address in the files first"

        erase_person(db.session.get(Person, person.id), actor=None, reason="test")
        db.session.commit()

        assert files_holding(address) == []
        assert files_holding("Vantreight") == []
        # Some SQLite builds (Debian's) zero freed space by default, others do not: the
        # portal asks for it on every connection.
        assert db.session.execute(text("PRAGMA secure_delete")).scalar_one() == 1
        db.session.remove()
        db.engine.dispose()


def test_a_reader_holding_the_sqlite_log_delays_nothing_and_is_reported(tmp_path, caplog):
    """A code review found the checkpoint after an erasure waited up to the 30-second busy
    timeout for a reader (a streamed export in another worker), holding every writer back,
    and its failure went unreported. It now gives up at once and says so; the next
    retention run empties the log."""
    import logging
    import sqlite3
    import time

    from portal.people.jobs import purge_expired_personal_data

    database = tmp_path / "reader.sqlite3"
    app = _file_sqlite_app(tmp_path, "reader.sqlite3")
    with app.app_context():
        person = Person(email="held.reader@example.ca", name="Held Reader", language="en")
        db.session.add(person)
        db.session.commit()
        reader = sqlite3.connect(database, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM person").fetchall()  # holds its snapshot of the log
        with caplog.at_level(logging.WARNING, logger="portal.core.db"):
            erase_person(db.session.get(Person, person.id), actor=None, reason="test")
            started = time.monotonic()
            db.session.commit()
        # Not a speed figure: the busy timeout is 30 s, so a commit that waited for the
        # reader takes 30 s; one that did not, milliseconds.
        assert time.monotonic() - started < 10
        assert "still holds erased data" in caplog.text
        reader.close()
        purge_expired_personal_data()  # the next run empties it
        assert not any(b"held.reader@example.ca" in path.read_bytes() for path in tmp_path.glob("reader.sqlite3*"))
        db.session.remove()
        db.engine.dispose()
