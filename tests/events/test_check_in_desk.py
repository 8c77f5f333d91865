"""The check-in desk on the day: a second scan is a warning with the first time, a code that
admits no one says whose it was and why, a search shows everyone registered (with their
status) and says when it shows only the first rows, a check-in made by mistake is taken
back, and a registrant at the event can no longer give their seat away."""
from __future__ import annotations

import re
import threading
import time

import pytest
from sqlalchemy import select

from portal.core.audit import AuditEntry
from portal.events.models import Registration
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.people.models import Person
from tests.conftest import BACKENDS, csrf_token
from tests.events.conftest import manage_link, register


def _code_and_id(app, email: str) -> tuple[str, int]:
    with app.app_context():
        confirmation = db.session.execute(select(OutboxMessage).where(
            OutboxMessage.to_address.contains(email), OutboxMessage.purpose == "events.confirmation")).scalar_one()
        code = re.search(r"give this code: (\S+)", confirmation.body_text).group(1)
        registration_id = db.session.execute(
            select(Registration.id).join(Person).where(Person.email == email)).scalar_one()
        return code, registration_id


def test_a_code_scanned_twice_is_a_warning_that_says_when_they_came_in(app, client, auth, organizer, make_event):
    event_id = make_event()
    register(client, "symposium-1", email="nadia@example.ca", name="Nadia Okafor")
    code, _ = _code_and_id(app, "nadia@example.ca")
    auth.login(organizer)
    desk = f"/admin/events/{event_id}/check-in"
    token = csrf_token(client, desk)
    first = client.post(desk + "/scan", data={"csrf_token": token, "code": code})
    page = client.get(first.headers["Location"]).get_data(as_text=True)
    assert 'class="flash flash-success">Nadia Okafor is checked in.' in page
    client.post(desk + "/scan", data={"csrf_token": token, "code": code})
    page = client.get(desk).get_data(as_text=True)
    warning = re.search(r'class="flash flash-warning">([^<]+)<', page)
    assert warning and re.fullmatch(
        r"Nadia Okafor was already checked in, at \d{1,2}:\d\d\W[AP]M: make sure this is them\.", warning.group(1))
    with app.app_context():
        assert db.session.execute(select(AuditEntry.action).where(
            AuditEntry.action == "events.registration.checked_in")).scalars().all() == ["events.registration.checked_in"]


def test_a_cancelled_or_waitlisted_persons_code_says_whose_it_is_and_why(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="elodie@example.ca", name="Élodie Roy")
    code, elodie_id = _code_and_id(app, "elodie@example.ca")
    auth.login(organizer)
    desk = f"/admin/events/{event_id}/check-in"
    token = csrf_token(client, desk)
    client.post(f"/admin/events/{event_id}/attendees/{elodie_id}/cancel", data={"csrf_token": token})
    refused = client.post(desk + "/scan", data={"csrf_token": token, "code": code})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "This code was Élodie Roy&#39;s: their registration was cancelled." in body
    # The box is empty again, its error beside it: the next scan goes where it belongs.
    assert re.search(r'<input[^>]*aria-invalid="true"[^>]*name="code"[^>]*value=""', body) or \
        re.search(r'<input[^>]*name="code"[^>]*value=""[^>]*aria-invalid="true"', body), body
    assert "error-summary" not in body
    nonsense = client.post(desk + "/scan", data={"csrf_token": token, "code": "nonsense"})
    assert "not a valid check-in code for this event" in nonsense.get_data(as_text=True)
    # Searching for her shows her, cancelled, with no button to check her in.
    found = client.get(desk + "?q=elodie").get_data(as_text=True)
    row = re.search(r"<tr>\s*<td><a [^>]*>Élodie Roy</a>.*?</tr>", found, re.S).group(0)
    assert "Cancelled" in row and "<button" not in row


def test_a_search_matching_more_than_the_desk_shows_says_so(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=40)
    for n in range(32):
        register(client, "symposium-1", email=f"lee{n}@example.ca", name=f"Lee Person {n:02d}")
    auth.login(organizer)
    page = client.get(f"/admin/events/{event_id}/check-in?q=lee").get_data(as_text=True)
    assert "The first 30 of 32 people who match: type more of the name." in page
    assert len(re.findall(r"<td><a [^>]*>Lee Person \d\d</a>", page)) == 30
    few = client.get(f"/admin/events/{event_id}/check-in?q=lee+person+31").get_data(as_text=True)
    assert "people who match" not in few and "Lee Person 31" in few


def test_a_check_in_made_by_mistake_is_taken_back(app, client, auth, organizer, make_event):
    event_id = make_event()
    register(client, "symposium-1", email="ann@example.ca", name="Ann Arrive")
    _, ann_id = _code_and_id(app, "ann@example.ca")
    auth.login(organizer)
    attendee = f"/admin/events/{event_id}/attendees/{ann_id}"
    token = csrf_token(client, attendee)
    assert "Undo the check-in" not in client.get(attendee).get_data(as_text=True)
    client.post(f"/admin/events/{event_id}/check-in/{ann_id}", data={"csrf_token": token})
    assert "Undo the check-in" in client.get(attendee).get_data(as_text=True)
    undone = client.post(attendee + "/check-in/undo", data={"csrf_token": token})
    assert undone.status_code == 302
    page = client.get(attendee).get_data(as_text=True)
    assert "The check-in was taken back." in page and "Undo the check-in" not in page
    client.post(attendee + "/check-in/undo", data={"csrf_token": token})
    assert "This person is not checked in." in client.get(attendee).get_data(as_text=True)
    assert client.post(attendee + "/check-in/undo").status_code == 400  # no CSRF token
    with app.app_context():
        assert db.session.get(Registration, ann_id).checked_in_at is None
        actions = db.session.execute(select(AuditEntry.action).where(
            AuditEntry.action.like("events.registration.check%"))).scalars().all()
        assert sorted(actions) == ["events.registration.check_in_undone", "events.registration.checked_in"]


def test_a_registrant_at_the_event_cannot_give_their_seat_away(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="here@example.ca")
    register(client, "symposium-1", email="waiting@example.ca")
    _, here_id = _code_and_id(app, "here@example.ca")
    with app.app_context():
        body = db.session.execute(select(OutboxMessage.body_text).where(
            OutboxMessage.to_address.contains("here@example.ca"))).scalar_one()
    manage = manage_link(body)
    auth.login(organizer)
    client.post(f"/admin/events/{event_id}/check-in/{here_id}",
                data={"csrf_token": csrf_token(client, f"/admin/events/{event_id}/check-in")})
    auth.logout()
    page = client.get(manage).get_data(as_text=True)
    assert "You are checked in at the event." in page and "Cancel my registration" not in page
    refused = client.post(manage + "/cancel", data={"csrf_token": csrf_token(client, manage)})
    assert refused.status_code == 302
    assert "speak to the organizers" in client.get(refused.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        statuses = dict(db.session.execute(
            select(Person.email, Registration.status).join(Registration.person)).tuples().all())
        assert statuses == {"here@example.ca": "confirmed", "waiting@example.ca": "waitlisted"}


# PostgreSQL only: SQLite has no row locks; its writers queue for the database's write lock.
@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_check_in_racing_the_registrants_own_cancellation_never_lands_on_the_cancelled_row(app, make_event):
    """Found by review: the cancellation held the registration's row, saw no check-in and
    cancelled; the desk's check-in waited for the row and then wrote checked_in_at onto the
    cancelled registration, telling the desk 'checked in' while the seat had gone to the next
    in line. The check-in now reads the row under its lock and is refused."""
    from portal.auth.models import OrganizerAccount
    from portal.events import services
    from portal.events.services import NotCheckable

    event_id = make_event(capacity=1)
    with app.app_context():
        for n in (1, 2):
            services.register_for_event(event_id, services.RegistrationDetails(
                email=f"r{n}@example.ca", name=f"R {n}", organization="Org", sector_slug="police",
                community="Toronto"))
        desk = OrganizerAccount(email="desk@example.ca", name="Desk", password_hash="x")
        db.session.add(desk)
        db.session.commit()
        desk_id = db.session.execute(select(OrganizerAccount.id)).scalar_one()
        seat_id = db.session.execute(select(Registration.id).order_by(Registration.id)).scalars().first()

    cancelling = threading.Event()
    outcome: dict[str, object] = {}

    def registrant_cancels() -> None:
        with app.app_context():
            services.cancel_registration(db.session.get(Registration, seat_id), by="registrant")
            cancelling.set()
            time.sleep(1.0)  # still holding the rows when the desk scans
            db.session.commit()

    def desk_checks_in() -> None:
        cancelling.wait(5)
        with app.app_context():
            try:
                outcome["checked_in"] = services.check_in(db.session.get(Registration, seat_id),
                                                          actor=db.session.get(OrganizerAccount, desk_id))
                db.session.commit()
            except NotCheckable:
                db.session.rollback()
                outcome["refused"] = True

    threads = [threading.Thread(target=registrant_cancels), threading.Thread(target=desk_checks_in)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert outcome == {"refused": True}
    with app.app_context():
        rows = db.session.execute(select(Registration.status, Registration.checked_in_at)
                                  .order_by(Registration.id)).all()
    assert [tuple(row) for row in rows] == [("cancelled", None), ("confirmed", None)]


def test_a_seat_holder_who_lost_the_confirmation_gets_it_again_once_an_hour(app, client, auth, organizer,
                                                                            make_event):
    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="lost@example.ca", name="Lou Lost")
    register(client, "symposium-1", email="wait@example.ca")
    with app.app_context():
        bodies = dict(db.session.execute(select(OutboxMessage.to_address, OutboxMessage.body_text)).tuples().all())
    manage = manage_link(next(body for to, body in bodies.items() if "lost@" in to))
    page = client.get(manage).get_data(as_text=True)
    assert "Lost your confirmation?" in page
    token = csrf_token(client, manage)
    again = client.post(manage + "/confirmation", data={"csrf_token": token})
    assert again.status_code == 302
    assert "Your confirmation is on its way" in client.get(manage).get_data(as_text=True)
    client.post(manage + "/confirmation", data={"csrf_token": token})
    assert "less than an hour ago" in client.get(manage).get_data(as_text=True)
    with app.app_context():
        copies = db.session.execute(select(OutboxMessage).where(
            OutboxMessage.purpose == "events.confirmation", OutboxMessage.to_address.contains("lost@"))
            .order_by(OutboxMessage.id)).scalars().all()
        assert len(copies) == 2 and copies[1].attachments and copies[1].body_text != copies[0].body_text
        new_code = re.search(r"give this code: (\S+)", copies[1].body_text).group(1)
    # The new code works at the door.
    auth.login(organizer)
    desk = f"/admin/events/{event_id}/check-in"
    scanned = client.post(desk + "/scan", data={"csrf_token": csrf_token(client, desk), "code": new_code})
    assert "Lou Lost is checked in." in client.get(scanned.headers["Location"]).get_data(as_text=True)
    auth.logout()
    # Someone on the waitlist has no confirmation to ask for.
    waiting = manage_link(next(body for to, body in bodies.items() if "wait@" in to))
    assert "Lost your confirmation?" not in client.get(waiting).get_data(as_text=True)
    refused = client.post(waiting + "/confirmation", data={"csrf_token": csrf_token(client, waiting)})
    assert "Only a confirmed seat has a confirmation to send." in client.get(refused.headers["Location"]).get_data(
        as_text=True)
    assert client.post(manage + "/confirmation", data={}).status_code == 400  # no CSRF token


def test_the_desk_keeps_working_after_a_bad_scan_or_a_click_on_someone_cancelled(app, client, auth, organizer,
                                                                                 make_event):
    """Found by a review: after a bad scan the page stood at .../check-in/scan, so the name
    search the error points to went there too (405); and clicking Check in on someone
    cancelled since (a list left open) led to a dead-end 409 page."""
    event_id = make_event(capacity=2)
    register(client, "symposium-1", email="amira@example.ca", name="Amira Haddad")
    register(client, "symposium-1", email="dan@example.ca", name="Dan Gone")
    _, dan_id = _code_and_id(app, "dan@example.ca")
    auth.login(organizer)
    desk = f"/admin/events/{event_id}/check-in"
    token = csrf_token(client, desk)
    bad = client.post(f"{desk}/scan", data={"csrf_token": token, "code": "not-a-real-code"})
    form = re.search(r'<form method="get"[^>]*role="search"[^>]*>', bad.get_data(as_text=True)).group(0)
    assert f'action="{desk}"' in form
    assert "Amira Haddad" in client.get(f"{desk}?q=Amira").get_data(as_text=True)

    with app.app_context():
        from portal.events.services import cancel_registration

        cancel_registration(db.session.get(Registration, dan_id), by="organizer")
        db.session.commit()
    clicked = client.post(f"{desk}/{dan_id}?q=Dan", data={"csrf_token": token})
    assert clicked.status_code == 302 and clicked.location == f"{desk}?q=Dan"
    assert "Dan Gone: Only confirmed attendees can be checked in." in client.get(clicked.location).get_data(
        as_text=True)


def test_needs_saved_after_a_refused_correction_go_to_the_needs(app, client, auth, organizer, make_event):
    """Found by a review: after a refused 'Correct their details' the page stood at
    .../details, and the needs form posted there too: its save was refused with four
    unrelated errors."""
    event_id = make_event()
    register(client, "symposium-1", email="ann@example.ca", name="Ann Arrive")
    _, ann_id = _code_and_id(app, "ann@example.ca")
    auth.login(organizer)
    attendee = f"/admin/events/{event_id}/attendees/{ann_id}"
    refused = client.post(f"{attendee}/details", data={"csrf_token": csrf_token(client, attendee),
                                                        "details-name": ""})
    assert refused.status_code == 400
    forms = re.findall(r'<form method="post"[^>]*>', refused.get_data(as_text=True))
    assert f'<form method="post" action="{attendee}" novalidate>' in forms


# PostgreSQL only: its row locks time out; SQLite's writers queue for the one write lock.
@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
@pytest.mark.app_config(DATABASE_LOCK_TIMEOUT_MS=300)
def test_a_lock_not_had_in_time_asks_to_try_again_rather_than_failing(app, client, auth, organizer, make_event):
    """A concurrency review: an organizer's cancel waiting on a registration's row (held by
    the reminder job) failed with a 500 at the lock timeout. Any lock not had in time is now
    'busy, try again' (503), and nothing changes."""
    from sqlalchemy import create_engine, text

    event_id = make_event()
    register(client, "symposium-1", email="held@example.ca")
    _, registration_id = _code_and_id(app, "held@example.ca")
    auth.login(organizer)
    attendee = f"/admin/events/{event_id}/attendees/{registration_id}"
    token = csrf_token(client, attendee)
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with other.connect() as holder:
            holder.execute(text("SELECT id FROM registration WHERE id = :id FOR UPDATE"), {"id": registration_id})
            answer = client.post(f"{attendee}/cancel", data={"csrf_token": token})
            holder.rollback()
    finally:
        other.dispose()
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "Please try again in a moment" in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Registration, registration_id).status == "confirmed"


def test_the_desk_tells_check_in_times_in_the_events_own_zone(app, client, auth, organizer, make_event):
    """A code review: at a Winnipeg event, a check-in at 10:05 local time showed at the desk
    as 'Checked in at 11:05 AM' (Toronto's)."""
    from datetime import UTC, datetime

    from portal.core import clock

    clock.set_now(datetime(2026, 12, 20, 16, 5, tzinfo=UTC))  # 10:05 in Winnipeg, 11:05 in Toronto
    event_id = make_event(timezone="America/Winnipeg")
    register(client, "symposium-1", email="ann@example.ca", name="Ann Arrive")
    _, ann_id = _code_and_id(app, "ann@example.ca")
    auth.login(organizer)
    desk = f"/admin/events/{event_id}/check-in"
    token = csrf_token(client, desk)
    client.post(f"{desk}/{ann_id}", data={"csrf_token": token})
    again = client.post(f"{desk}/{ann_id}", data={"csrf_token": token}, follow_redirects=True)
    page = again.get_data(as_text=True).replace("\u202f", " ")
    assert "already checked in, at 10:05 AM" in page and "11:05" not in page
    assert "Checked in at 10:05 AM" in client.get(f"{desk}?q=Ann").get_data(as_text=True).replace("\u202f", " ")
