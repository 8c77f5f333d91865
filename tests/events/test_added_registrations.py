"""Organizers add someone who registers by phone or a speaker: the seat rules hold, the person
is emailed as on the public form, in their language, and the addition is audited."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.core.audit import AuditEntry
from portal.core.clock import now
from portal.events.models import Registration
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.people.models import ConsentRecord, Person
from tests.conftest import csrf_token
from tests.events.conftest import register

PERSON = {"name": "Émilie Tremblay", "email": "emilie@example.ca", "organization": "CISSS de l'Outaouais",
          "sector": "health-care", "community": "Gatineau", "language": "fr", "privacy": "y",
          "dietary_needs": "Sans gluten"}


def _add(client, event_id: int, **overrides):
    path = f"/admin/events/{event_id}/attendees/new"
    return client.post(path, data={**PERSON, "csrf_token": csrf_token(client, path), **overrides})


def test_an_organizer_adds_someone_after_registration_closed(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=5, registration_closes_at=now() - timedelta(hours=1))
    auth.login(organizer)
    attendees = client.get(f"/admin/events/{event_id}/attendees").get_data(as_text=True)
    assert f'href="/admin/events/{event_id}/attendees/new"' in attendees
    form = client.get(f"/admin/events/{event_id}/attendees/new").get_data(as_text=True)
    assert 'autocomplete="email"' not in form and 'autocomplete="name"' not in form  # not the organizer's own
    added = _add(client, event_id)
    assert added.status_code == 302
    page = client.get(added.headers["Location"]).get_data(as_text=True)
    assert "Émilie Tremblay is registered and was emailed a confirmation." in page and "Sans gluten" in page
    with app.app_context():
        registration = db.session.execute(select(Registration)).scalar_one()
        assert registration.status == "confirmed" and registration.person.language == "fr"
        (confirmation,) = db.session.execute(select(OutboxMessage)).scalars()
        assert confirmation.purpose == "events.confirmation" and "emilie@example.ca" in confirmation.to_address
        assert confirmation.language == "fr" and "Bonjour" in confirmation.body_text
        assert any(a.filename.endswith(".ics") for a in confirmation.attachments)
        (entry,) = db.session.execute(select(AuditEntry).where(AuditEntry.action == "events.registration.added")).scalars()
        assert entry.subject == f"registration:{registration.id}"
        # No announcements opt-in on this form: express consent is the person's own to give.
        assert db.session.execute(select(ConsentRecord)).first() is None


def test_the_seat_rules_hold_for_someone_added(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="first@example.ca")
    auth.login(organizer)
    added = _add(client, event_id)
    assert added.status_code == 302
    page = client.get(added.headers["Location"]).get_data(as_text=True)
    assert "Émilie Tremblay is on the waitlist, number 1 in line, and was emailed so." in page
    with app.app_context():
        statuses = list(db.session.execute(select(Registration.status).order_by(Registration.id)).scalars())
    assert statuses == ["confirmed", "waitlisted"]


def test_adding_an_address_already_registered_changes_nothing(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=5)
    register(client, "symposium-1", email="emilie@example.ca", name="Émilie T.")
    auth.login(organizer)
    refused = _add(client, event_id)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert 'id="email-error"' in body and "already holds a registration for this event" in body
    unticked = _add(client, event_id, email="other@example.ca", privacy="")
    assert unticked.status_code == 400 and 'id="privacy-error"' in unticked.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(Person.name).where(Person.email == "emilie@example.ca")).scalar() == "Émilie T."
        assert len(db.session.execute(select(Registration)).all()) == 1
        # Only the public registration's confirmation: no manage link sent, nothing for "other".
        assert [m.purpose for m in db.session.execute(select(OutboxMessage)).scalars()] == ["events.confirmation"]


def test_no_one_is_added_to_a_draft_or_finished_event(app, client, auth, organizer, make_event):
    draft = make_event(status="draft")
    over = make_event(starts_in=timedelta(days=-2))
    auth.login(organizer)
    for event_id in (draft, over):
        refused = _add(client, event_id)
        assert refused.status_code == 409
        body = refused.get_data(as_text=True)
        assert "only to a published or closed event that has not ended" in body
        assert 'id="email-error"' not in body  # about the event, in the summary, not beside a field
    with app.app_context():
        assert db.session.execute(select(Registration)).first() is None


def test_an_organizer_gives_a_seat_held_back_by_the_sector_cap(app, client, auth, organizer, make_event):
    """Seats stay free while everyone waiting belongs to a sector at its share: an organizer
    may give one of them a seat beyond it, never beyond capacity."""
    event_id = make_event(capacity=4, sector_cap_percent=25)  # one seat per sector
    register(client, "symposium-1", email="p1@example.ca", sector="police")
    register(client, "symposium-1", email="p2@example.ca", sector="police")  # capped: waits
    with app.app_context():
        waiting = db.session.execute(select(Registration).where(Registration.status == "waitlisted")).scalar_one()
        waiting_id = waiting.id
    auth.login(organizer)
    path = f"/admin/events/{event_id}/attendees/{waiting_id}"
    page = client.get(path).get_data(as_text=True)
    assert "3 seats are free but held back by the sector cap" in page and "Give them a seat" in page
    token = csrf_token(client, path)
    given = client.post(path + "/seat", data={"csrf_token": token})
    assert given.status_code == 302
    assert "They have a seat now and were emailed their confirmation." in client.get(path).get_data(as_text=True)
    with app.app_context():
        registration = db.session.get(Registration, waiting_id)
        assert registration.status == "confirmed" and registration.promoted_at is not None
        (promotion,) = db.session.execute(select(OutboxMessage).where(OutboxMessage.purpose == "events.promoted")).scalars()
        assert "p2@example.ca" in promotion.to_address
        (entry,) = db.session.execute(select(AuditEntry).where(AuditEntry.action == "events.registration.given_seat")).scalars()
        assert entry.detail.get("beyond_sector_share") is True
    again = client.post(path + "/seat", data={"csrf_token": token})
    assert again.status_code == 302 and "not on the waitlist" in client.get(path).get_data(as_text=True)


def test_no_seat_is_given_by_hand_beyond_capacity(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="seat@example.ca")
    register(client, "symposium-1", email="line@example.ca")
    with app.app_context():
        waiting_id = db.session.execute(select(Registration.id).where(Registration.status == "waitlisted")).scalar_one()
    auth.login(organizer)
    path = f"/admin/events/{event_id}/attendees/{waiting_id}"
    page = client.get(path).get_data(as_text=True)
    assert "Every seat is taken." in page and "Give them a seat" not in page
    client.post(path + "/seat", data={"csrf_token": csrf_token(client, path)})
    assert "Every seat is taken: free one first" in client.get(path).get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Registration, waiting_id).status == "waitlisted"


def test_adding_someone_the_portal_knows_keeps_their_saved_details_and_says_so(app, client, auth, organizer,
                                                                              make_event):
    make_event(slug="earlier")
    event_id = make_event(capacity=5)
    register(client, "earlier", email="emilie@example.ca", name="Émilie Tremblay")  # saved in English
    auth.login(organizer)
    form = client.get(f"/admin/events/{event_id}/attendees/new").get_data(as_text=True)
    assert "Enter their" not in form and "Community they work in" in form and "Choose their sector" in form
    missing = _add(client, event_id, name="")
    assert "Enter their full name." in missing.get_data(as_text=True)
    added = _add(client, event_id, name="E. Tremblay", language="fr")
    page = client.get(added.headers["Location"]).get_data(as_text=True)
    assert "Émilie Tremblay is registered" in page
    assert ("already knew this address: where what you typed differs, the name, details and email language "
            "saved for it were kept.") in page
    with app.app_context():
        person = db.session.execute(select(Person).where(Person.email == "emilie@example.ca")).scalar_one()
        assert (person.name, person.language) == ("Émilie Tremblay", "en")


def test_adding_someone_known_only_by_address_fills_in_their_details_without_claiming_otherwise(
        app, client, auth, organizer, make_event):
    from portal.people.services import get_or_create_person

    event_id = make_event(capacity=5)
    with app.app_context():
        get_or_create_person("emilie@example.ca")  # e.g. a list subscriber who gave no name
        db.session.commit()
    auth.login(organizer)
    added = _add(client, event_id, language="en")
    page = client.get(added.headers["Location"]).get_data(as_text=True)
    assert "Émilie Tremblay is registered" in page and "already knew this address" not in page
    with app.app_context():
        person = db.session.execute(select(Person).where(Person.email == "emilie@example.ca")).scalar_one()
        assert (person.name, person.community) == ("Émilie Tremblay", "Gatineau")
