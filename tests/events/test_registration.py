"""Registering, the waitlist, the sector cap, duplicates, consent and the manage link."""
from __future__ import annotations

import re

import pytest

from sqlalchemy import select

from portal.core.tokens import AccessToken, hash_token
from portal.events.models import Event, Registration
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.people.models import ConsentRecord, Person
from tests.conftest import BACKENDS, csrf_token
from tests.events.conftest import form_data, manage_link, register
from tests.qr import read_qr_code


def _outbox(app, purpose: str | None = None) -> list[OutboxMessage]:
    with app.app_context():
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if purpose:
            query = query.where(OutboxMessage.purpose == purpose)
        messages = db.session.execute(query).scalars().all()
        for message in messages:
            message.attachments  # load before the session closes
        db.session.expunge_all()
        return messages


def _registrations(app, event_id: int) -> list[Registration]:
    with app.app_context():
        rows = db.session.execute(
            select(Registration).where(Registration.event_id == event_id).order_by(Registration.id)
        ).scalars().all()
        db.session.expunge_all()
        return rows


def test_event_list_and_page_show_times_venue_and_seats(client, make_event):
    make_event(capacity=3, title="Collaborating for Safety")
    make_event(status="draft", title="Secret draft")
    listing = client.get("/events").get_data(as_text=True)
    assert "Collaborating for Safety" in listing and "Secret draft" not in listing
    page = client.get("/events/symposium-1")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "3 seats left." in body and "Toronto Police College" in body
    assert "<strong>Bold</strong>" in body and "Step-free entrance." in body
    assert client.get("/events/symposium-2").status_code == 404  # drafts are not public


def test_registration_confirms_a_seat_and_queues_the_confirmation(app, client, make_event):
    event_id = make_event(capacity=2)
    response = register(client, "symposium-1", accessibility_needs="Wheelchair access")
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "You are registered" in page
    assert "Wheelchair access" not in page  # needs never appear on public pages
    (registration,) = _registrations(app, event_id)
    assert registration.status == "confirmed" and registration.accessibility_needs == "Wheelchair access"
    (message,) = _outbox(app, "events.confirmation")
    assert "ada@example.ca" in message.to_address
    assert {a.filename for a in message.attachments} == {"symposium-1.ics", "check-in-code.svg"}
    assert "/events/manage/" in message.body_text
    assert "BEGIN:VCALENDAR" in message.attachments[0].content.decode() or "BEGIN:VCALENDAR" in message.attachments[1].content.decode()
    assert "2 seats left." not in client.get("/events/symposium-1").get_data(as_text=True)


def test_the_qr_code_reads_back_as_this_registrations_check_in_token(app, client, make_event):
    event_id = make_event(capacity=5)
    register(client, "symposium-1", email="ada@example.ca")
    (message,) = _outbox(app, "events.confirmation")
    (svg,) = [a.file for a in message.attachments if a.filename == "check-in-code.svg"]
    code = read_qr_code(svg)
    (registration,) = _registrations(app, event_id)
    with app.app_context():
        token = db.session.execute(
            select(AccessToken).where(AccessToken.token_hash == hash_token(code))
        ).scalar_one()
        assert token.purpose == "events.check_in" and token.subject_id == registration.id
    assert code in message.body_text  # the same code is printed for anyone who cannot scan


def test_the_calendar_file_is_the_events_and_holds_nothing_personal(app, client, make_event):
    make_event(capacity=5)
    register(client, "symposium-1", email="ada@example.ca")
    register(client, "symposium-1", email="grace@example.ca", name="Grace Hopper")
    calendars = [next(a.content for a in m.attachments if a.filename.endswith(".ics"))
                 for m in _outbox(app, "events.confirmation")]
    # One file, one UID (updates replace it), but for the moment each copy was made (DTSTAMP).
    unstamped = [re.sub(rb"DTSTAMP:\d{8}T\d{6}Z\r\n", b"", calendar) for calendar in calendars]
    assert len(calendars) == 2 and unstamped[0] == unstamped[1] and all(b"DTSTAMP:" in c for c in calendars)
    text = calendars[0].decode()
    assert "/events/manage/" not in text and "ada@" not in text and "Grace" not in text
    assert "UID:event-" in text


def test_full_event_puts_people_on_the_waitlist_in_order(app, client, make_event):
    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="first@example.ca")
    second = register(client, "symposium-1", email="second@example.ca")
    assert "number 1 on the waitlist" in client.get(second.location).get_data(as_text=True)
    third = register(client, "symposium-1", email="third@example.ca")
    assert "number 2 on the waitlist" in client.get(third.location).get_data(as_text=True)
    rows = _registrations(app, event_id)
    assert [r.status for r in rows] == ["confirmed", "waitlisted", "waitlisted"]
    assert [r.waitlist_position for r in rows] == [None, 1, 2]
    assert len(_outbox(app, "events.waitlisted")) == 2
    assert "waitlist is open" in client.get("/events/symposium-1").get_data(as_text=True)


def test_same_email_never_takes_a_second_seat_and_gets_a_fresh_link(app, client, make_event):
    event_id = make_event(capacity=5)
    register(client, "symposium-1", email="Ada@Example.ca", name="Ada Lovelace")
    again = register(client, "symposium-1", email="ada@example.ca", name="Mallory Impostor")
    assert again.status_code == 302
    page = client.get(again.location).get_data(as_text=True)
    assert "If you are already registered, we" in page and "emailed you a link to manage your registration" in page
    assert len(_registrations(app, event_id)) == 1
    register(client, "symposium-1", email="ada@example.ca")  # a third try within the hour
    (link,) = _outbox(app, "events.manage_link")  # one message, not a flood
    assert "/events/manage/" in link.body_text
    with app.app_context():
        assert db.session.execute(select(Person.name)).scalar_one() == "Ada Lovelace"  # a stranger changes nothing


def test_sector_cap_sends_the_over_cap_sector_to_the_waitlist(app, client, make_event):
    event_id = make_event(capacity=10, sector_cap_percent=20)  # 2 seats per sector
    for n in range(3):
        register(client, "symposium-1", email=f"police{n}@example.ca", sector="police")
    register(client, "symposium-1", email="nurse@example.ca", sector="health-care")
    statuses = [(r.status, r.waitlist_position) for r in _registrations(app, event_id)]
    assert statuses == [("confirmed", None), ("confirmed", None), ("waitlisted", 1), ("confirmed", None)]


def test_someone_waitlisted_by_the_sector_cap_is_told_why_not_that_the_room_is_full(app, client, make_event):
    make_event(capacity=10, sector_cap_percent=20)  # 2 seats per sector
    page = client.get("/events/symposium-1").get_data(as_text=True)
    assert "no sector holds more than 2 seats" in page  # said before anyone registers
    for n in range(2):
        register(client, "symposium-1", email=f"police{n}@example.ca", sector="police")
    third = register(client, "symposium-1", email="police2@example.ca", sector="police")
    told = client.get(third.location).get_data(as_text=True)
    assert "You are number 1 on the waitlist" in told and "Seats are left, but" in told
    (waitlisted,) = _outbox(app, "events.waitlisted")
    assert "no sector holds more than 2 seats" in waitlisted.body_text
    assert "All seats are taken" not in waitlisted.body_text
    # When the room itself is full, the message says so, as before.
    make_event(capacity=1, slug="small")
    register(client, "small", email="first@example.ca", sector="housing")
    full = register(client, "small", email="second@example.ca", sector="education")
    assert "Seats are left" not in client.get(full.location).get_data(as_text=True)
    assert "All seats are taken" in _outbox(app, "events.waitlisted")[-1].body_text


def test_the_event_page_says_when_registration_opens_and_when_it_closed(app, client, make_event):
    from datetime import timedelta

    from portal.core.clock import now

    make_event(registration_opens_at=now() + timedelta(days=3))
    make_event(slug="past-window", registration_opens_at=now() - timedelta(days=9),
               registration_closes_at=now() - timedelta(days=2))
    opens = client.get("/events/symposium-1").get_data(as_text=True)
    assert re.search(r"Registration opens \w+day, \w+ \d+, \d{4}, \d+:\d\d\W[AP]M \(Toronto time\)\.", opens), opens
    closed = client.get("/events/past-window").get_data(as_text=True)
    assert re.search(r"Registration closed \w+day, \w+ \d+, \d{4}, \d+:\d\d\W[AP]M \(Toronto time\)\.", closed)


def test_the_french_form_lists_the_sectors_in_french(client, make_event):
    make_event()
    page = client.get("/events/symposium-1/register", headers={"Accept-Language": "fr-CA"}).get_data(as_text=True)
    assert '<option value="health-care">Soins de santé</option>' in page
    assert '<option value="child-protection">Protection de l&#39;enfance</option>' in page


def test_optin_is_unticked_and_asks_the_address_to_confirm_before_anything_is_recorded(app, client, make_event):
    """Registering proves nothing about the address: the opt-in puts it on the announcements
    list only once its owner confirms by email (found by a security pass: anyone could put
    someone else's address on the list, recorded as their express consent)."""
    from portal.lists.models import Subscription
    from portal.lists.services import save_public_list
    from portal.mail.models import OutboxMessage

    make_event()
    with app.app_context():
        save_public_list(None, slug="symposium-announcements", name_en="Symposium announcements")
        db.session.commit()
    form = client.get("/events/symposium-1/register").get_data(as_text=True)
    box = re.search(r'<input[^>]*id="announcements"[^>]*>', form).group(0)
    assert "checked" not in box
    register(client, "symposium-1", email="quiet@example.ca")
    register(client, "symposium-1", email="keen@example.ca", announcements="y")
    page = client.get("/events/symposium-1/registered").get_data(as_text=True)
    assert "confirm that you want the announcements" in page
    with app.app_context():
        assert db.session.execute(select(ConsentRecord)).first() is None
        (subscription,) = db.session.execute(select(Subscription)).scalars()
        assert subscription.status == "pending" and subscription.source == "events.registration:symposium-1"
        assert subscription.person.email == "keen@example.ca"
        purposes = sorted((m.to_address.split("<")[-1].rstrip(">"), m.purpose)
                          for m in db.session.execute(select(OutboxMessage)).scalars())
        assert purposes == [("keen@example.ca", "events.confirmation"), ("keen@example.ca", "lists.confirmation"),
                            ("quiet@example.ca", "events.confirmation")]
        confirmation = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "lists.confirmation")).scalar_one()
    link = re.search(r"https?://[^/\s]+(/lists/confirm/\S+)", confirmation.body_text).group(1)
    confirmed = client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(Subscription.status)).scalar_one() == "active"
        (record,) = db.session.execute(select(ConsentRecord)).scalars()
        assert record.purpose == "list:symposium-announcements" and record.kind == "express"
        assert record.method == "double opt-in" and record.source == "events.registration:symposium-1"
        assert "announcements of future symposiums" in record.wording and record.wording_version
        assert record.ip == "127.0.0.1" and db.session.get(Person, record.person_id).email == "keen@example.ca"


def test_form_errors_are_tied_to_fields_and_answer_400(client, make_event):
    make_event(questions=[{"label": "Workshop", "kind": "single_choice", "required": True,
                           "choices_text": "A\nB"}])
    response = register(client, "symposium-1", privacy=None, email="not-an-email", name="")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "There is a problem" in body
    assert 'aria-describedby="name-error"' in body
    assert "You must agree to the privacy notice" in body
    assert "Choose an answer to “Workshop”." in body  # which question, in the summary too
    # The summary lists the errors in the page's order: the question comes before the privacy box.
    summary = body[body.index("There is a problem"):body.index("</ul>", body.index("There is a problem"))]
    assert re.search(r'href="#q_\d+-0">Choose an answer to “Workshop”.', summary)  # to the first radio: it can take focus
    assert summary.index("Enter your full name") < summary.index("Choose an answer to") \
        < summary.index("You must agree to the privacy notice")


def test_event_questions_are_asked_and_answers_stored(app, client, make_event):
    event_id = make_event(questions=[
        {"label": "Workshop", "kind": "single_choice", "required": True, "choices_text": "Privacy\nOutcomes"},
        {"label": "Topics", "kind": "multiple_choice", "choices_text": "Youth\nHousing\nHealth"},
        {"label": "Situation table?", "kind": "checkbox"},
        {"label": "Panel questions", "kind": "long_text"},
        {"label": "Badge name", "kind": "short_text"},
    ])
    with app.app_context():
        from portal.events.models import Event

        ids = [q.id for q in db.session.get(Event, event_id).questions]
    response = register(client, "symposium-1", **{
        f"q_{ids[0]}": "Outcomes", f"q_{ids[1]}": ["Youth", "Health"], f"q_{ids[2]}": "y",
        f"q_{ids[3]}": "How to start?", f"q_{ids[4]}": "Ada"})
    assert response.status_code == 302
    (registration,) = _registrations(app, event_id)
    assert registration.answers == {str(ids[0]): "Outcomes", str(ids[1]): ["Youth", "Health"],
                                    str(ids[2]): True, str(ids[3]): "How to start?", str(ids[4]): "Ada"}
    bad = register(client, "symposium-1", email="b@example.ca", **{f"q_{ids[0]}": "Not an option"})
    assert bad.status_code == 400


def test_closed_window_refuses_registration(client, make_event):
    from datetime import timedelta

    from portal.core.clock import now

    make_event(registration_closes_at=now() - timedelta(hours=1))
    assert "Registration closed " in client.get("/events/symposium-1").get_data(as_text=True)
    from tests.conftest import csrf_token

    response = client.post("/events/symposium-1/register",
                           data={"name": "x", "csrf_token": csrf_token(client, "/")})
    assert response.status_code == 409


def test_once_the_event_is_over_no_one_registers_or_cancels(app, client, make_event):
    """Found by a review: an event whose registration closed after its end took
    registrations (with confirmations) after it ended, and registrants could still cancel,
    promoting someone to a seat at an event already over."""
    from datetime import timedelta

    from portal.core import clock
    from portal.core.clock import now
    from tests.conftest import csrf_token

    start = now()
    clock.set_now(start)
    make_event(capacity=1, starts_in=timedelta(minutes=2), registration_closes_at=start + timedelta(days=2))
    with app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        event.ends_at = start + timedelta(minutes=3)  # as an organizer's old event may still be
        db.session.commit()
    register(client, "symposium-1", email="first@example.ca")
    register(client, "symposium-1", email="second@example.ca")
    link = manage_link(_outbox(app, "events.confirmation")[0].body_text)

    clock.set_now(start + timedelta(minutes=4))
    assert "This event is over." in client.get("/events/symposium-1").get_data(as_text=True)
    late = register(client, "symposium-1", email="late@example.ca")
    assert late.status_code == 409 and "has taken place; registration is closed." in late.get_data(as_text=True)
    assert "This event is over." in client.get("/events/symposium-1/register").get_data(as_text=True)
    page = client.get(link).get_data(as_text=True)
    assert "This event is over." in page and "You had a seat." in page
    for gone in ("Cancel my registration", "Email me my confirmation again", "Save my needs", "you have a seat"):
        assert gone not in page, gone
    cancel = client.post(f"{link}/cancel", data={"csrf_token": csrf_token(client, link)})
    assert cancel.status_code == 302
    assert "nothing left to cancel" in client.get(link).get_data(as_text=True)
    again = client.post(f"{link}/confirmation", data={"csrf_token": csrf_token(client, link)})
    assert again.status_code == 302  # refused: new codes for a door that has closed
    assert _outbox(app, "events.confirmation")[-1].idempotency_key.count(":") == 2  # no new copy
    with app.app_context():
        statuses = sorted(db.session.execute(select(Registration.status)).scalars())
    assert statuses == ["confirmed", "waitlisted"]
    assert _outbox(app, "events.promoted") == []


def test_registration_cannot_be_set_to_close_after_the_event_ends(app, client, auth, organizer):
    from tests.conftest import csrf_token
    from tests.events.test_admin import EVENT_FORM

    auth.login(organizer)
    token = csrf_token(client, "/admin/events/new")
    response = client.post("/admin/events/new", data={**EVENT_FORM, "registration_closes_at": "2027-05-13T09:00",
                                                       "csrf_token": token})
    assert response.status_code == 400
    assert "Registration must close by the time the event ends." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(Event)).first() is None


def test_registration_cannot_be_set_to_open_after_the_event_ends(app, client, auth, organizer):
    from tests.events.test_admin import EVENT_FORM

    auth.login(organizer)
    token = csrf_token(client, "/admin/events/new")
    for opens in ("2027-05-12T16:30", "2027-05-13T09:00"):  # at the end, after it; no closing time
        response = client.post("/admin/events/new", data={**EVENT_FORM, "registration_opens_at": opens,
                                                           "csrf_token": token})
        assert response.status_code == 400, opens
        error = re.search(r'id="registration_opens_at-error">(.*?)</p>', response.get_data(as_text=True), re.S)
        assert error and "Registration must open before the event ends." in error.group(1), opens
    with app.app_context():
        assert db.session.execute(select(Event)).first() is None
    response = client.post("/admin/events/new", data={**EVENT_FORM, "registration_opens_at": "2027-05-12T16:29",
                                                       "csrf_token": token})
    assert response.status_code == 302


def test_manage_link_updates_needs_and_cancel_promotes_the_next_person(app, client, make_event):
    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="first@example.ca")
    register(client, "symposium-1", email="second@example.ca")
    (confirmation,) = _outbox(app, "events.confirmation")
    link = manage_link(confirmation.body_text)
    page = client.get(link)
    assert page.status_code == 200 and "Confirmed: you have a seat." in page.get_data(as_text=True)
    from tests.conftest import csrf_token

    token = csrf_token(client, link)
    saved = client.post(link, data={"csrf_token": token, "accessibility_needs": "Large print",
                                    "dietary_needs": "Vegan"})
    assert saved.status_code == 302
    assert _registrations(app, event_id)[0].dietary_needs == "Vegan"
    cancelled = client.post(link + "/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 302
    assert "Cancelled." in client.get(link).get_data(as_text=True)
    first, second = _registrations(app, event_id)
    assert first.status == "cancelled" and second.status == "confirmed" and second.promoted_at
    (promotion,) = _outbox(app, "events.promoted")
    assert "second@example.ca" in promotion.to_address
    assert any(a.filename.endswith(".ics") for a in promotion.attachments)
    again = client.post(link + "/cancel", data={"csrf_token": token})
    assert again.status_code == 302  # cancelling twice is harmless and promotes nobody more
    assert len(_outbox(app, "events.promoted")) == 1


def test_cancelling_a_seat_sends_the_calendar_cancellation_through_smtp(app, client, make_event, smtp_server):
    """As received: the cancellation notice carries a CANCEL of the confirmation's entry
    (same UID, STATUS:CANCELLED), in the registrant's language."""
    import icalendar

    from portal.mail.delivery import deliver_due
    from tests.conftest import csrf_token

    make_event(capacity=1)
    register(client, "symposium-1", email="first@example.ca")
    with app.app_context():
        deliver_due()
    (confirmation,) = smtp_server.to("first@example.ca")
    link = manage_link(confirmation.get_body(("plain",)).get_content())
    client.post(link + "/cancel", data={"csrf_token": csrf_token(client, link)})
    with app.app_context():
        deliver_due()
    _, notice = smtp_server.to("first@example.ca")

    def calendar(message):
        (part,) = [p for p in message.iter_attachments() if p.get_filename().endswith(".ics")]
        return part, icalendar.Calendar.from_ical(part.get_payload(decode=True))

    _, published = calendar(confirmation)
    part, cancelled = calendar(notice)
    assert part.get_content_type() == "text/calendar" and part.get_param("method") == "CANCEL"
    (before,), (after,) = published.walk("VEVENT"), cancelled.walk("VEVENT")
    assert str(cancelled["method"]) == "CANCEL" and str(after["status"]) == "CANCELLED"
    assert str(after["uid"]) == str(before["uid"])
    assert int(after.get("sequence", 0)) >= int(before.get("sequence", 0))
    assert "takes the event out of your calendar" in notice.get_body(("plain",)).get_content()


def test_unknown_manage_tokens_are_the_same_404(client, make_event):
    make_event()
    for token in ["x", "A" * 43, "é" * 10, "A" * 500]:
        assert client.get(f"/events/manage/{token}").status_code == 404
    assert client.post("/events/manage/nope/cancel", data={}).status_code in (400, 404)


def test_registrations_from_one_address_are_rate_limited(app, client, make_event):
    make_event(capacity=10)
    app.config["EVENTS_REGISTER_RATE_LIMIT"] = "2/minute"
    assert register(client, "symposium-1", email="one@example.ca").status_code == 302
    assert register(client, "symposium-1", email="two@example.ca").status_code == 302
    refused = register(client, "symposium-1", email="three@example.ca")
    assert refused.status_code == 429 and "Too many requests" in refused.get_data(as_text=True)


def test_optin_without_an_announcements_list_records_nothing(app, client, make_event):
    make_event()
    register(client, "symposium-1", email="keen@example.ca", announcements="y")
    with app.app_context():
        assert db.session.execute(select(ConsentRecord)).first() is None


def test_a_closed_registration_still_moves_its_waitlist(app, client, make_event):
    from portal.events import services
    from portal.events.models import Event

    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="first@example.ca")
    register(client, "symposium-1", email="second@example.ca")
    with app.app_context():
        db.session.get(Event, event_id).status = "closed"
        first = db.session.execute(select(Registration).order_by(Registration.id)).scalars().first()
        promoted = services.cancel_registration(first)
        db.session.commit()
        assert [p.person.email for p in promoted] == ["second@example.ca"]


def test_event_page_says_when_registration_opens(client, make_event):
    from datetime import timedelta

    from portal.core.clock import now

    make_event(registration_opens_at=now() + timedelta(days=3))
    assert "Registration opens" in client.get("/events/symposium-1").get_data(as_text=True)
    assert client.get("/events/symposium-1/register").status_code == 200  # says it is not open yet


def test_optional_questions_may_be_left_blank(app, client, make_event):
    event_id = make_event(questions=[
        {"label": "Workshop", "kind": "single_choice", "choices_text": "Privacy\nOutcomes"},
        {"label": "Topics", "kind": "multiple_choice", "choices_text": "Youth\nHousing"},
        {"label": "Situation table?", "kind": "checkbox"},
        {"label": "Panel questions", "kind": "long_text"},
    ])
    response = register(client, "symposium-1")
    assert response.status_code == 302, response.get_data(as_text=True)
    (registration,) = _registrations(app, event_id)
    assert registration.answers == {}


def test_a_small_sector_share_of_a_small_room_still_lets_each_sector_in(app, client, make_event):
    event_id = make_event(capacity=5, sector_cap_percent=10)  # 10% of 5 seats: still one per sector
    register(client, "symposium-1", email="p1@example.ca", sector="police")
    register(client, "symposium-1", email="p2@example.ca", sector="police")
    register(client, "symposium-1", email="h1@example.ca", sector="health-care")
    assert [r.status for r in _registrations(app, event_id)] == ["confirmed", "waitlisted", "confirmed"]


def test_registering_someone_elses_address_does_not_rename_them(app, client, make_event):
    """The duplicate page reveals nothing, and the attendee list keeps the real person's name."""
    make_event()
    register(client, "symposium-1", email="ada@example.ca", name="Ada Lovelace",
             organization="City of Toronto")
    again = register(client, "symposium-1", email="ada@example.ca", name="Not Ada",
                     organization="Somewhere Else")
    assert again.status_code == 302
    with app.app_context():
        person = db.session.execute(select(Person).where(Person.email == "ada@example.ca")).scalar_one()
        assert (person.name, person.organization) == ("Ada Lovelace", "City of Toronto")
        assert len(db.session.execute(select(Registration)).scalars().all()) == 1


# PostgreSQL only: SQLite has no row locks; its writers queue for the database's write lock
# (tests/core/test_db.py).
@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
@pytest.mark.app_config(DATABASE_LOCK_TIMEOUT_MS=300)
def test_a_registration_that_cannot_get_the_seat_lock_in_time_is_told_to_retry_and_writes_nothing(
        app, client, make_event):
    event_id = make_event(capacity=5)
    data = form_data(client, "symposium-1", email="waiting@example.ca")
    with app.app_context():
        holder = db.engine.connect()  # an organizer's edit, say, holding the event's row
        holder.execute(select(Event.id).where(Event.id == event_id).with_for_update())
        try:
            response = client.post("/events/symposium-1/register", data=data)
        finally:
            holder.rollback()
            holder.close()
    assert response.status_code == 503
    assert "busy" in response.get_data(as_text=True)
    assert _registrations(app, event_id) == [] and _outbox(app) == []
    with app.app_context():
        assert db.session.execute(select(Person).where(Person.email == "waiting@example.ca")).first() is None
    assert register(client, "symposium-1", email="waiting@example.ca").status_code == 302  # lock free again


def test_the_manage_link_speaks_the_language_the_person_registered_in(app, client, make_event):
    make_event()
    french = app.test_client()
    form = form_data(french, "symposium-1", email="francois@example.ca", name="François")
    assert french.post("/events/symposium-1/register", data=form,
                       headers={"Accept-Language": "fr-CA"}).status_code == 302
    (confirmation,) = _outbox(app, "events.confirmation")
    link = manage_link(confirmation.body_text)
    page = client.get(link, headers={"Accept-Language": "en-CA"}).get_data(as_text=True)
    assert '<html lang="fr">' in page  # as the email was, whatever this browser prefers
    from tests.conftest import csrf_token

    client.post("/language", data={"language": "en", "next": link, "csrf_token": csrf_token(client, "/")})
    page = client.get(link).get_data(as_text=True)
    assert '<html lang="en">' in page  # until someone picks a language with the switch


def test_an_event_speaks_french_to_french_readers_and_english_where_it_has_no_french(app, client, make_event):
    make_event(title="Community Safety Symposium", title_fr="Symposium sur la sécurité communautaire",
               summary_fr="Une journée ensemble.", description_fr="Des **plans**.",
               venue_accessibility_fr="Entrée sans marches.")
    make_event(slug="english-only", title="English Only Day")
    french = {"Accept-Language": "fr-CA"}
    page = client.get("/events/symposium-1", headers=french).get_data(as_text=True)
    assert "<h1>Symposium sur la sécurité communautaire</h1>" in page
    assert "Une journée ensemble." in page and "<strong>plans</strong>" in page and "Entrée sans marches." in page
    assert "Community Safety Symposium" not in page and "A day together." not in page
    listing = client.get("/events", headers=french).get_data(as_text=True)
    assert "Symposium sur la sécurité communautaire" in listing and "English Only Day" in listing  # no French: English
    english = client.get("/events/symposium-1", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "<h1>Community Safety Symposium</h1>" in english and "Step-free entrance." in english

    form = form_data(client, "symposium-1", email="francois@example.ca")
    client.post("/events/symposium-1/register", data=form, headers=french)
    form = form_data(client, "symposium-1", email="ada@example.ca")
    client.post("/events/symposium-1/register", data=form, headers={"Accept-Language": "en"})
    subjects = {m.to_address.split("<")[-1].rstrip(">"): m.subject for m in _outbox(app, "events.confirmation")}
    assert subjects["francois@example.ca"].endswith("Symposium sur la sécurité communautaire")
    assert subjects["ada@example.ca"].endswith("Community Safety Symposium")
    import icalendar

    summaries = {m.to_address.split("<")[-1].rstrip(">"): str(icalendar.Calendar.from_ical(next(
        a.content for a in m.attachments if a.filename.endswith(".ics"))).walk("VEVENT")[0]["SUMMARY"])
        for m in _outbox(app, "events.confirmation")}
    assert summaries == {"francois@example.ca": "Symposium sur la sécurité communautaire",
                         "ada@example.ca": "Community Safety Symposium"}


def test_questions_are_asked_in_french_and_answers_kept_as_the_english_option(app, client, make_event):
    make_event(questions=[{"label": "Which workshop?", "label_fr": "Quel atelier?", "kind": "single_choice",
                           "required": True, "choices_text": "Privacy\nOutcomes",
                           "choices_fr_text": "Vie privée\nRésultats", "hint": "Pick one.", "hint_fr": ""}])
    with app.app_context():
        from portal.events.models import EventQuestion

        question_id = db.session.execute(select(EventQuestion.id)).scalar_one()
    french = {"Accept-Language": "fr-CA"}
    page = client.get("/events/symposium-1/register", headers=french).get_data(as_text=True)
    assert "Quel atelier?" in page and "Vie privée" in page and "Résultats" in page and "Pick one." in page
    assert 'value="Privacy"' in page and "Which workshop?" not in page
    english = client.get("/events/symposium-1/register", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Which workshop?" in english and "Vie privée" not in english
    response = client.post("/events/symposium-1/register", headers=french, data=form_data(
        client, "symposium-1", **{f"q_{question_id}": "Outcomes"}))
    assert response.status_code == 302
    with app.app_context():
        assert db.session.execute(select(Registration)).scalar_one().answers == {str(question_id): "Outcomes"}


def test_english_a_french_reader_gets_for_want_of_french_is_marked_english(app, client, make_event):
    """A review found the English summary, description, venue access and questions of an
    event with no French unmarked on French pages (WCAG 3.1.2): a screen reader read them
    with French pronunciation."""
    make_event(slug="english-only", title="English Only Day", questions=[
        {"label": "Which workshop?", "kind": "single_choice", "choices_text": "Privacy\nOutcomes",
         "hint": "Pick one.", "required": True},
        {"label": "Quel repas?", "label_fr": "Quel repas?", "kind": "short_text", "hint": "Any.", "hint_fr": "Tout."}])
    french = {"Accept-Language": "fr-CA"}
    listing = client.get("/events", headers=french).get_data(as_text=True)
    assert '<p><span lang="en">A day together.</span></p>' in listing
    page = client.get("/events/english-only", headers=french).get_data(as_text=True)
    assert '<p class="lead"><span lang="en">A day together.</span></p>' in page
    assert '<div class="event-description" lang="en"><p><strong>Bold</strong> plans.</p>' in page
    assert '<div lang="en"><p>Step-free entrance.</p>' in page
    form = client.get("/events/english-only/register", headers=french).get_data(as_text=True)
    assert '<span lang="en">Which workshop?</span>' in form and '<span lang="en">Pick one.</span>' in form
    assert '<span lang="en">Privacy</span>' in form and 'value="Privacy"' in form
    assert '<span lang="en">Quel repas?</span>' not in form and "Tout." in form  # written in French: unmarked
    english = client.get("/events/english-only/register", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'lang="en">Which workshop?' not in english  # the page's own language needs no marking
    # A missed required choice quotes the label as plain text in the error.
    response = client.post("/events/english-only/register", headers=french, data=form_data(client, "english-only"))
    assert response.status_code == 400 and "« Which workshop? »" in response.get_data(as_text=True)
    # ... and so does a required text question's ("“X” is required"), never showing the markup.
    make_event(slug="english-text", title="English Text Day", questions=[
        {"label": "Your role", "kind": "short_text", "required": True}])
    response = client.post("/events/english-text/register", headers=french, data=form_data(client, "english-text"))
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and "« Your role » est obligatoire" in body and "&lt;span" not in body


def test_my_data_shows_answers_by_question_not_by_id(app, client, make_event):
    import json

    from portal.events.models import EventQuestion
    from portal.people.privacy import export_csv, export_json

    make_event(questions=[{"label": "Which workshop?", "kind": "single_choice", "choices_text": "Privacy\nOutcomes"}])
    with app.app_context():
        question_id = db.session.execute(select(EventQuestion.id)).scalar_one()
    register(client, "symposium-1", email="ada@example.ca", **{f"q_{question_id}": "Outcomes"})
    with app.app_context():
        person = db.session.execute(select(Person).where(Person.email == "ada@example.ca")).scalar_one()
        (row,) = json.loads(export_json(person))["tables"]["registration"]["rows"]
        assert row["answers"] == {"Which workshop?": "Outcomes"}
        assert "Which workshop?" in export_csv(person)


def test_an_address_that_folds_to_someone_elses_is_refused_not_rewritten(app, client, make_event):
    """Casefolding turns "straße" into "strasse": that person's confirmation, manage link and
    check-in code must not go to another mailbox."""
    make_event()
    response = register(client, "symposium-1", email="straße@example.ca")
    assert response.status_code == 400 and "only unaccented letters" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(OutboxMessage)).first() is None
        assert db.session.execute(select(Person).where(Person.email == "strasse@example.ca")).first() is None


def test_an_event_elsewhere_is_shown_in_its_own_time(app, client, make_event):
    """Found by a review: a Kenora forum (America/Winnipeg) typed as 09:00-16:00 showed
    everywhere as '10:00 AM - 5:00 PM (Toronto time)'; only its calendar file was right."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    make_event(timezone="America/Winnipeg")
    winnipeg = ZoneInfo("America/Winnipeg")
    with app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        event.starts_at = datetime(2027, 2, 10, 9, 0, tzinfo=winnipeg)
        event.ends_at = datetime(2027, 2, 10, 16, 0, tzinfo=winnipeg)
        db.session.commit()
    page = client.get("/events/symposium-1").get_data(as_text=True)
    assert "Wednesday, February 10, 2027, 9:00\u202fAM – 4:00\u202fPM" in page or \
        "Wednesday, February 10, 2027, 9:00 AM – 4:00 PM" in page
    assert "(Winnipeg time)" in page and "Toronto time" not in page
    french = client.get("/events/symposium-1", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "9 h 00 – 16 h 00" in french and "(heure de Winnipeg)" in french
    register(client, "symposium-1", email="kenora@example.ca")
    with app.app_context():
        body = db.session.execute(select(OutboxMessage.body_text).where(
            OutboxMessage.purpose == "events.confirmation")).scalar_one()
    assert "4:00" in body and "(Winnipeg time)" in body and "5:00" not in body
    listed = client.get("/events").get_data(as_text=True)
    assert "(Winnipeg time)" in listed  # the list mixes zones: each says its own


def test_the_form_says_before_it_is_filled_in_that_the_event_is_full(client, make_event):
    """Found by a review: only the event page said so; someone arriving by a direct link
    filled in the whole form without knowing they would wait."""
    make_event(capacity=1)
    assert "registering puts you on the waitlist" not in client.get("/events/symposium-1/register").get_data(
        as_text=True)
    register(client, "symposium-1", email="first@example.ca")
    assert "registering puts you on the waitlist" in client.get("/events/symposium-1/register").get_data(
        as_text=True)


@pytest.mark.parametrize("letter", ["é", "漢", "𠀋"])
def test_a_200_letter_accented_or_cjk_name_registers_and_its_confirmation_is_queued_intact(app, client, make_event, letter):
    """Found by a deployment review: the To: value is RFC 2047-encoded ("=?utf-8?b?...?="),
    so a 200-letter name of é or CJK letters made it longer than the outbox column's 320
    characters, and PostgreSQL answered the form with a 500."""
    from email.policy import default as email_policy

    make_event(capacity=5)
    name = letter * 200  # the longest name the form takes
    response = register(client, "symposium-1", name=name)
    assert response.status_code == 302
    (message,) = _outbox(app, "events.confirmation")
    (recipient,) = email_policy.header_factory("To", message.to_address).addresses
    assert (recipient.display_name, recipient.addr_spec) == (name, "ada@example.ca")


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_needs_saved_as_the_registration_is_cancelled_are_refused(app, client, make_event):
    """PostgreSQL only (SQLite's writers never overlap). A race pass: needs sent from the
    manage page while the same registration was being cancelled were saved on the cancelled
    registration, and the page said 'updated'."""
    from sqlalchemy import update

    from portal.events.services import RegistrationNotActive, update_needs

    event_id = make_event(capacity=5)
    register(client, "symposium-1", email="needs@example.ca")
    with app.app_context():
        as_the_page_loaded_it = db.session.execute(select(Registration)).scalar_one()
        with db.engine.begin() as cancellation:
            cancellation.execute(update(Registration).where(Registration.id == as_the_page_loaded_it.id)
                                 .values(status="cancelled"))
        with pytest.raises(RegistrationNotActive):
            update_needs(as_the_page_loaded_it, accessibility_needs="Ramp", dietary_needs="")
        db.session.rollback()
    assert _registrations(app, event_id)[0].accessibility_needs == ""
