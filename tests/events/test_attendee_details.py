"""Organizers correct what a registrant typed (a misspelt name for the badge, the wrong sector):
the person's record is corrected and audited, bad input changes nothing, and a seat holder's
new sector moves the waitlist under the sector cap."""
from __future__ import annotations

from sqlalchemy import select

from portal.core.audit import AuditEntry
from portal.events.models import Registration
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.people.models import Person, Sector
from tests.conftest import csrf_token
from tests.events.conftest import register

CORRECTED = {"details-name": "Ada King, Countess of Lovelace", "details-organization": "Analytical Engines Ltd",
             "details-sector": "police", "details-community": "Sudbury", "details-job_title": "Analyst"}


def _registration_id(app, email: str) -> int:
    with app.app_context():
        return db.session.execute(
            select(Registration.id).join(Person).where(Person.email == email)).scalar_one()


def _correct(client, event_id: int, registration_id: int, **changes):
    path = f"/admin/events/{event_id}/attendees/{registration_id}"
    return client.post(path + "/details", data={**CORRECTED, "csrf_token": csrf_token(client, path), **changes})


def test_an_organizer_corrects_a_registrants_details(app, client, auth, organizer, make_event):
    event_id = make_event()
    register(client, "symposium-1", name="Ada Lovelce", job_title="")
    registration_id = _registration_id(app, "ada@example.ca")
    auth.login(organizer)
    path = f"/admin/events/{event_id}/attendees/{registration_id}"
    page = client.get(path).get_data(as_text=True)
    assert "Correct their details" in page and 'value="Ada Lovelce"' in page
    assert '<option selected value="police">' in page  # the registration's sector, chosen

    corrected = _correct(client, event_id, registration_id)
    assert corrected.status_code == 302
    page = client.get(path).get_data(as_text=True)
    assert "Their details were corrected." in page and "Ada King, Countess of Lovelace" in page
    with app.app_context():
        person = db.session.execute(select(Person).where(Person.email == "ada@example.ca")).scalar_one()
        assert (person.name, person.organization, person.community, person.job_title) == (
            "Ada King, Countess of Lovelace", "Analytical Engines Ltd", "Sudbury", "Analyst")
        (entry,) = db.session.execute(
            select(AuditEntry).where(AuditEntry.action == "people.details.corrected")).scalars()
        assert entry.actor_label == organizer.email and entry.subject == f"person:{person.id}"
        assert set(entry.detail["fields"]) == {"name", "organization", "community", "job_title"}
        # Nothing about seats changed, so no registration entry and no mail beyond the confirmation.
        assert db.session.execute(
            select(AuditEntry).where(AuditEntry.action == "events.registration.edited")).first() is None
        assert [m.purpose for m in db.session.execute(select(OutboxMessage)).scalars()] == ["events.confirmation"]

    again = _correct(client, event_id, registration_id)
    assert again.status_code == 302 and "Nothing changed." in client.get(path).get_data(as_text=True)


def test_a_bad_correction_is_refused_beside_its_field_and_changes_nothing(app, client, auth, organizer,
                                                                         make_event):
    event_id = make_event()
    other_event = make_event()
    register(client, "symposium-1")
    registration_id = _registration_id(app, "ada@example.ca")
    auth.login(organizer)
    blank = _correct(client, event_id, registration_id, **{"details-name": "  "})
    body = blank.get_data(as_text=True)
    assert blank.status_code == 400 and 'id="details-name-error"' in body and "Enter their full name." in body
    assert "<details class=\"correction\" open>" in body  # the errors are where they can be seen
    unknown = _correct(client, event_id, registration_id, **{"details-sector": "astronauts"})
    assert unknown.status_code == 400 and 'id="details-sector-error"' in unknown.get_data(as_text=True)
    too_long = _correct(client, event_id, registration_id, **{"details-community": "x" * 121})
    assert too_long.status_code == 400 and 'id="details-community-error"' in too_long.get_data(as_text=True)
    # A registration of one event is not reached through another event's address.
    assert _correct(client, other_event, registration_id).status_code == 404
    path = f"/admin/events/{event_id}/attendees/{registration_id}/details"
    assert client.post(path, data=CORRECTED).status_code == 400  # no CSRF token
    with app.app_context():
        person = db.session.execute(select(Person).where(Person.email == "ada@example.ca")).scalar_one()
        assert (person.name, person.community) == ("Ada Lovelace", "Toronto")
    auth.logout()
    assert client.post(path, data=CORRECTED).status_code in (302, 400)
    with app.app_context():
        assert db.session.execute(select(Person.name).where(Person.email == "ada@example.ca")).scalar() == "Ada Lovelace"


def test_moving_a_seat_holder_out_of_a_capped_sector_seats_the_next_in_line(app, client, auth, organizer,
                                                                           make_event):
    event_id = make_event(capacity=4, sector_cap_percent=25)  # one seat per sector
    register(client, "symposium-1", email="p1@example.ca", sector="police")
    register(client, "symposium-1", email="p2@example.ca", sector="police")  # police is full: waits
    seat_holder = _registration_id(app, "p1@example.ca")
    auth.login(organizer)
    moved = _correct(client, event_id, seat_holder, **{"details-sector": "health-care",
                                                        "details-name": "P One"})
    assert moved.status_code == 302
    page = client.get(moved.headers["Location"]).get_data(as_text=True)
    assert "Their details were corrected. The freed seat went to Ada Lovelace, who was emailed." in page
    with app.app_context():
        by_email = dict(db.session.execute(
            select(Person.email, Registration).join(Registration.person)).tuples().all())
        health = db.session.execute(select(Sector.id).where(Sector.slug == "health-care")).scalar_one()
        assert by_email["p1@example.ca"].sector_id == health and by_email["p1@example.ca"].status == "confirmed"
        assert by_email["p1@example.ca"].person.sector_id == health
        assert by_email["p2@example.ca"].status == "confirmed"
        (promotion,) = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "events.promoted")).scalars()
        assert "p2@example.ca" in promotion.to_address
        (entry,) = db.session.execute(
            select(AuditEntry).where(AuditEntry.action == "events.registration.edited")).scalars()
        assert entry.detail == {"sector_changed": True, "beyond_sector_share": False}


def test_a_seat_holder_moved_into_a_full_sector_keeps_their_seat_and_the_organizer_is_told(
        app, client, auth, organizer, make_event):
    event_id = make_event(capacity=4, sector_cap_percent=25)
    register(client, "symposium-1", email="p1@example.ca", sector="police")
    register(client, "symposium-1", email="h1@example.ca", sector="health-care")
    health_holder = _registration_id(app, "h1@example.ca")
    auth.login(organizer)
    moved = _correct(client, event_id, health_holder)  # CORRECTED says police
    page = client.get(moved.headers["Location"]).get_data(as_text=True)
    assert "now holds more than its share of seats; they keep their seat." in page
    with app.app_context():
        statuses = dict(db.session.execute(
            select(Person.email, Registration.status).join(Registration.person)).tuples().all())
        assert statuses == {"p1@example.ca": "confirmed", "h1@example.ca": "confirmed"}
        (entry,) = db.session.execute(
            select(AuditEntry).where(AuditEntry.action == "events.registration.edited")).scalars()
        assert entry.detail["beyond_sector_share"] is True


def test_an_anonymized_registration_has_no_details_to_correct(app, client, auth, organizer, make_event):
    event_id = make_event()
    register(client, "symposium-1")
    registration_id = _registration_id(app, "ada@example.ca")
    with app.app_context():  # as erasure leaves it: the registration stays, the person is gone
        db.session.get(Registration, registration_id).person_id = None
        db.session.commit()
    auth.login(organizer)
    path = f"/admin/events/{event_id}/attendees/{registration_id}"
    assert "Correct their details" not in client.get(path).get_data(as_text=True)
    refused = _correct(client, event_id, registration_id)
    assert refused.status_code == 409 and "anonymized" in refused.get_data(as_text=True)
