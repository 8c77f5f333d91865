"""An organizer moves an attendee to another event: a seat there or the end of its line, the
seat here to the next person waiting, both emailed, and nothing for what cannot be moved."""
from __future__ import annotations

from datetime import timedelta

import icalendar
from sqlalchemy import select

from portal.core.audit import AuditEntry
from portal.events.models import Registration
from portal.extensions import db
from portal.mail.models import OutboxMessage
from tests.conftest import csrf_token
from tests.events.conftest import manage_link, register


def _registration(app, email: str, slug: str) -> Registration:
    from portal.events.models import Event
    from portal.people.models import Person

    with app.app_context():
        registration = db.session.execute(
            select(Registration).join(Person, Person.id == Registration.person_id)
            .join(Event, Event.id == Registration.event_id)
            .where(Person.email == email, Event.slug == slug).order_by(Registration.id.desc())).scalars().first()
        db.session.expunge_all()
        return registration


def _mail(app, purpose: str) -> list[OutboxMessage]:
    with app.app_context():
        messages = db.session.execute(select(OutboxMessage).where(OutboxMessage.purpose == purpose)
                                      .order_by(OutboxMessage.id)).scalars().all()
        for message in messages:
            message.attachments  # load before the session closes
        db.session.expunge_all()
        return messages


def _move(client, event_id: int, registration_id: int, target) -> object:
    page = f"/admin/events/{event_id}/attendees/{registration_id}"
    return client.post(f"{page}/move", data={"csrf_token": csrf_token(client, page), "event": str(target)})


def test_an_attendee_moves_to_another_event_and_their_seat_goes_to_the_next_in_line(app, client, auth, organizer,
                                                                                  make_event):
    thursday = make_event(capacity=1, title="Thursday forum", questions=[{"label": "Badge", "kind": "short_text"}])
    friday = make_event(capacity=5, title="Friday forum", starts_in=timedelta(days=31))
    register(client, "symposium-1", email="ada@example.ca", name="Ada Lovelace", dietary_needs="Halal")
    register(client, "symposium-1", email="next@example.ca", name="Nadia Next")  # waits
    ada = _registration(app, "ada@example.ca", "symposium-1")
    auth.login(organizer)
    page = client.get(f"/admin/events/{thursday}/attendees/{ada.id}").get_data(as_text=True)
    assert "Move to another event" in page and f'<option value="{friday}">Friday forum · ' in page
    assert f'<option value="{thursday}">' not in page  # not to the event they are at

    response = _move(client, thursday, ada.id, friday)
    moved = _registration(app, "ada@example.ca", "symposium-2")
    assert response.status_code == 302
    assert response.location == f"/admin/events/{friday}/attendees/{moved.id}"
    assert (moved.status, moved.dietary_needs, moved.answers) == ("confirmed", "Halal", {})
    with app.app_context():
        old = db.session.get(Registration, ada.id)
        assert (old.status, old.cancelled_by) == ("cancelled", "moved")
    assert _registration(app, "next@example.ca", "symposium-1").status == "confirmed"  # the freed seat
    said = client.get(response.location).get_data(as_text=True)
    assert "Moved to Friday forum, where they have a seat." in said and "Nadia Next" in said
    assert "the new event&#39;s questions are unanswered" not in said  # Friday asks none
    old_page = client.get(f"/admin/events/{thursday}/attendees/{ada.id}").get_data(as_text=True)
    assert f'Cancelled: moved to <a href="/admin/events/{friday}/attendees/{moved.id}">Friday forum</a>' in old_page
    french = client.get(f"/admin/events/{thursday}/attendees/{ada.id}", headers={"Accept-Language": "fr"})
    assert "Annulée : déplacée vers <a href=" in french.get_data(as_text=True)  # one sentence, French spacing
    # Moved already (a second click on a page still open): refused, and the page says why.
    again = client.post(f"/admin/events/{thursday}/attendees/{ada.id}/move",
                        data={"csrf_token": csrf_token(client, "/admin/events"), "event": str(friday)})
    assert again.status_code == 409 and "already been cancelled" in again.get_data(as_text=True)

    # Ada hears of both: Thursday's entry leaves her calendar; Friday's confirmation comes.
    [cancelled] = [m for m in _mail(app, "events.cancelled") if "ada@example.ca" in m.to_address]
    assert cancelled.subject == "Registration moved: Thursday forum"
    assert "moved your registration from Thursday forum to Friday forum" in cancelled.body_text
    calendar = icalendar.Calendar.from_ical(next(a.content for a in cancelled.attachments if a.filename.endswith(".ics")))
    assert str(calendar["METHOD"]) == "CANCEL"
    assert any("Friday forum" in m.subject and "ada@example.ca" in m.to_address
               for m in _mail(app, "events.confirmation"))
    assert any("next@example.ca" in m.to_address for m in _mail(app, "events.promoted"))
    # Her old confirmation's manage link says where she went (a smoke pass found only "Cancelled.").
    [first] = [m for m in _mail(app, "events.confirmation") if "Thursday forum" in m.subject]
    old_manage = client.get(manage_link(first.body_text)).get_data(as_text=True)
    assert "The organizers moved your registration to Friday forum." in old_manage
    with app.app_context():
        entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "events.registration.moved")).scalar_one()
        assert entry.subject == f"registration:{ada.id}" and entry.detail["to"] == f"registration:{moved.id}"


def test_moved_to_a_full_event_they_join_the_end_of_its_line(app, client, auth, organizer, make_event):
    here = make_event(capacity=5)
    full = make_event(capacity=1, title="Full forum")
    register(client, "symposium-2", email="first@example.ca")
    register(client, "symposium-2", email="waiting@example.ca")
    register(client, "symposium-1", email="ada@example.ca")
    ada = _registration(app, "ada@example.ca", "symposium-1")
    auth.login(organizer)
    response = _move(client, here, ada.id, full)
    assert response.status_code == 302
    moved = _registration(app, "ada@example.ca", "symposium-2")
    assert moved.status == "waitlisted" and moved.waitlist_position == 2
    assert "where they are number 2 on the waitlist" in client.get(response.location).get_data(as_text=True)
    assert any("ada@example.ca" in m.to_address for m in _mail(app, "events.waitlisted"))


def test_what_cannot_be_moved_is_refused_beside_the_choice_and_nothing_changes(app, client, auth, organizer, make,
                                                                             make_event):
    here = make_event(capacity=5)
    taken = make_event(capacity=5)
    draft = make_event(status="draft")
    theirs = make_event(run_by_organizers=False, title="Someone else's forum")
    register(client, "symposium-1", email="ada@example.ca")
    register(client, "symposium-2", email="ada@example.ca")  # already registered there
    ada = _registration(app, "ada@example.ca", "symposium-1")
    auth.login(organizer)
    page = client.get(f"/admin/events/{here}/attendees/{ada.id}").get_data(as_text=True)
    assert f'<option value="{draft}">' not in page and f'<option value="{theirs}">' not in page
    for target, said in ((taken, "already holds a registration for this event"), (draft, "Not a valid choice"),
                         (theirs, "Not a valid choice"), (here, "Not a valid choice"), ("", "Choose the event"),
                         ("999999999999", "Not a valid choice"), ("x\x00", "Not a valid choice")):
        response = _move(client, here, ada.id, target)
        body = response.get_data(as_text=True)
        assert response.status_code in (400, 409), target
        assert said in body and 'aria-invalid="true"' in body, target
    # Checked in here: they are at this event.
    with app.app_context():
        from portal.core.clock import now

        db.session.get(Registration, ada.id).checked_in_at = now()
        db.session.commit()
    assert "Move to another event" not in client.get(f"/admin/events/{here}/attendees/{ada.id}").get_data(as_text=True)
    # Checked in while the page was open: the refusal says why (a review found a bare 409).
    refused = _move(client, here, ada.id, taken)
    assert refused.status_code == 409 and "They are checked in at this event" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Registration, ada.id).status == "confirmed"
        assert db.session.execute(select(Registration).where(Registration.event_id == taken)).scalar_one() is not None
        assert db.session.execute(select(AuditEntry).where(AuditEntry.action == "events.registration.moved")).first() is None
    assert _mail(app, "events.cancelled") == []


def test_the_service_refuses_a_move_the_page_would_not_offer(app, client, make_event):
    """The rules hold in the service itself, not only in the form's choices."""
    import pytest

    from portal.events import services
    from portal.events.models import Event

    here = make_event(capacity=5)
    cancelled = make_event(status="cancelled")
    register(client, "symposium-1", email="ada@example.ca")
    ada = _registration(app, "ada@example.ca", "symposium-1")
    with app.app_context():
        for target, refusal in ((here, services.CannotMoveThere), (cancelled, services.CannotMoveThere)):
            with pytest.raises(refusal):
                services.move_registration(db.session.get(Registration, ada.id), target, actor=None)
            db.session.rollback()
        over = db.session.get(Event, here)
        over.starts_at, over.ends_at = over.starts_at - timedelta(days=60), over.ends_at - timedelta(days=60)
        db.session.commit()
        other = make_event(capacity=5)
        with pytest.raises(services.EventIsOver):
            services.move_registration(db.session.get(Registration, ada.id), other, actor=None)
        db.session.rollback()
