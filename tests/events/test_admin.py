"""Organizer pages: events, questions, status, attendees, exports, check-in, dashboard, messages."""
from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, insert, select

from portal.core.audit import AuditEntry
from portal.events.models import Event, EventQuestion, Registration
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.people.models import Person, Sector
from tests.conftest import counted_statements, csrf_token
from tests.events.conftest import form_data, register


def _audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars())


def _purposes(app) -> list[str]:
    with app.app_context():
        return list(db.session.execute(select(OutboxMessage.purpose).order_by(OutboxMessage.id)).scalars())


EVENT_FORM = {
    "title": "Collaborating for Community Safety", "slug": "cswb-2027", "summary": "A day together",
    "description": "Plans", "starts_at": "2027-05-12T08:30", "ends_at": "2027-05-12T16:30",
    "timezone": "America/Toronto", "venue_name": "Toronto Police College", "venue_address": "70 Birmingham St",
    "venue_accessibility": "Step-free", "capacity": "1", "sector_cap_percent": "", "registration_opens_at": "",
    "registration_closes_at": "", "reminder_days": "2", "retention_days": "365",
}


def test_organizer_creates_edits_publishes_and_raising_capacity_promotes(app, client, auth, organizer):
    auth.login(organizer)
    assert client.get("/admin/events").status_code == 200
    token = csrf_token(client, "/admin/events/new")
    created = client.post("/admin/events/new", data={**EVENT_FORM, "csrf_token": token})
    assert created.status_code == 302, created.get_data(as_text=True)
    with app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        event_id = event.id
        assert event.status == "draft" and event.starts_at.hour == 12  # 08:30 EDT is 12:30 UTC
    assert client.get("/events/cswb-2027").status_code == 404
    client.post(f"/admin/events/{event_id}/status", data={"csrf_token": token, "status": "published"})
    register(client, "cswb-2027", email="one@example.ca")
    register(client, "cswb-2027", email="two@example.ca")
    register(client, "cswb-2027", email="three@example.ca")
    edit = client.post(f"/admin/events/{event_id}/edit", data={**EVENT_FORM, "capacity": "2", "csrf_token": token})
    assert edit.status_code == 302
    with app.app_context():
        statuses = list(db.session.execute(
            select(Registration.status).order_by(Registration.id)).scalars())
    assert statuses == ["confirmed", "confirmed", "waitlisted"]
    assert _purposes(app).count("events.promoted") == 1
    assert "events.event.created" in _audit_actions(app) and "events.event.updated" in _audit_actions(app)


def test_event_form_errors_answer_400(client, auth, organizer):
    auth.login(organizer)
    token = csrf_token(client, "/admin/events/new")
    bad = client.post("/admin/events/new", data={**EVENT_FORM, "csrf_token": token, "slug": "Bad Slug!",
                                                 "capacity": "many", "timezone": "Mars/Olympus",
                                                 "starts_at": "tomorrow"})
    body = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "Use lowercase letters" in body and "America/Toronto" in body
    ends_first = client.post("/admin/events/new", data={**EVENT_FORM, "csrf_token": token,
                                                        "ends_at": "2027-05-11T08:00"})
    body = ends_first.get_data(as_text=True)
    assert ends_first.status_code == 400 and "must end after it starts" in body
    assert 'id="ends_at-error"' in body  # beside the field it is about


def test_questions_are_added_and_removed(app, client, auth, organizer, make_event):
    event_id = make_event()
    auth.login(organizer)
    token = csrf_token(client, f"/admin/events/{event_id}/questions")
    added = client.post(f"/admin/events/{event_id}/questions", data={
        "csrf_token": token, "label": "Workshop", "kind": "single_choice", "choices_text": "A\nB", "required": "y"})
    assert added.status_code == 302
    one_option = client.post(f"/admin/events/{event_id}/questions", data={
        "csrf_token": token, "label": "Broken", "kind": "multiple_choice", "choices_text": "Only"})
    assert one_option.status_code == 400
    twice = client.post(f"/admin/events/{event_id}/questions", data={
        "csrf_token": token, "label": "Twice", "kind": "multiple_choice", "choices_text": "A\na \n\n  \nB"})
    assert twice.status_code == 400 and "Each option must be different." in twice.get_data(as_text=True)
    text = client.post(f"/admin/events/{event_id}/questions", data={
        "csrf_token": token, "label": "Badge name", "kind": "short_text", "choices_text": "Z\nW"})
    assert text.status_code == 302
    form = client.get("/events/symposium-1/register").get_data(as_text=True)
    assert "Workshop" in form and "Twice" not in form
    with app.app_context():  # a text question keeps no options it would never offer
        assert db.session.execute(select(EventQuestion.choices_text).where(
            EventQuestion.label == "Badge name")).scalar_one() == ""
        db.session.execute(db.delete(EventQuestion).where(EventQuestion.label == "Badge name"))
        db.session.commit()
    with app.app_context():
        question_id = db.session.execute(select(EventQuestion.id)).scalar_one()
    edit_page = client.get(f"/admin/events/{event_id}/questions/{question_id}/edit")
    assert edit_page.status_code == 200 and "Workshop" in edit_page.get_data(as_text=True)
    edited = client.post(f"/admin/events/{event_id}/questions/{question_id}/edit", data={
        "csrf_token": token, "label": "Which workshop?", "kind": "single_choice", "choices_text": "A\nB\nC"})
    assert edited.status_code == 302
    assert 'value="C"' in client.get("/events/symposium-1/register").get_data(as_text=True)
    bad_edit = client.post(f"/admin/events/{event_id}/questions/{question_id}/edit", data={
        "csrf_token": token, "label": "Which workshop?", "kind": "single_choice", "choices_text": "A"})
    assert bad_edit.status_code == 400
    client.post(f"/admin/events/{event_id}/questions/{question_id}/delete", data={"csrf_token": token})
    assert "Workshop" not in client.get("/events/symposium-1/register").get_data(as_text=True)


def test_cancelling_an_event_emails_every_registrant(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="a@example.ca")
    register(client, "symposium-1", email="b@example.ca")
    auth.login(organizer)
    token = csrf_token(client, f"/admin/events/{event_id}")
    response = client.post(f"/admin/events/{event_id}/status", data={"csrf_token": token, "status": "cancelled"})
    assert response.status_code == 302
    assert _purposes(app).count("events.event_cancelled") == 2
    with app.app_context():
        assert set(db.session.execute(select(Registration.status)).scalars()) == {"cancelled"}
    again = client.post(f"/admin/events/{event_id}/status", data={"csrf_token": token, "status": "published"})
    assert again.status_code == 409  # a cancelled event stays cancelled
    body = again.get_data(as_text=True)  # said on the dashboard, which offers no status change any more
    assert "This event was cancelled and can no longer be changed." in body and 'name="status"' not in body


def test_cancelling_an_event_takes_it_out_of_seat_holders_calendars(app, client, auth, organizer, make_event):
    """Seat holders got a calendar file; the cancellation carries its CANCEL (same UID, higher
    SEQUENCE, STATUS:CANCELLED). The waitlisted never had one and get none."""
    import icalendar

    from portal.mail.models import OutboxAttachment

    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="seat@example.ca")
    register(client, "symposium-1", email="line@example.ca")
    with app.app_context():
        (published,) = [a for a in db.session.execute(select(OutboxAttachment)).scalars()
                        if a.filename.endswith(".ics")]
        (before,) = icalendar.Calendar.from_ical(published.content).walk("VEVENT")
    auth.login(organizer)
    token = csrf_token(client, f"/admin/events/{event_id}")
    client.post(f"/admin/events/{event_id}/status", data={"csrf_token": token, "status": "cancelled"})
    with app.app_context():
        notices = {m.to_address: m for m in db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "events.event_cancelled")).scalars()}
        (seat,) = [m for address, m in notices.items() if "seat@" in address]
        (line,) = [m for address, m in notices.items() if "line@" in address]
        assert line.attachments == [] and "calendar" not in line.body_text
        assert "The attached calendar file takes the event out of your calendar." in seat.body_text
        (ics,) = seat.attachments
        assert ics.content_type == "text/calendar; charset=utf-8; method=CANCEL"
    calendar = icalendar.Calendar.from_ical(ics.content)
    assert str(calendar["method"]) == "CANCEL"
    (entry,) = calendar.walk("VEVENT")
    assert str(entry["uid"]) == str(before["uid"]) and str(entry["status"]) == "CANCELLED"
    assert int(entry["sequence"]) > int(before.get("sequence", 0))
    assert str(entry["attendee"]) == "mailto:seat@example.ca"
    assert str(entry["organizer"]).startswith("mailto:") and "@" in str(entry["organizer"])
    assert entry.decoded("dtstart") == before.decoded("dtstart")


def _bulk_registrations(app, event_id: int, count: int) -> None:
    """Insert `count` people and registrations in two executemany statements."""
    with app.app_context():
        sectors = list(db.session.execute(select(Sector.id).order_by(Sector.position)).scalars())
        db.session.execute(insert(Person), [
            {"email": f"bulk{n}@example.ca", "name": f"Bulk Person {n}", "organization": f"Org {n % 50}",
             "community": ["Toronto", "Sudbury", "Ottawa"][n % 3], "sector_id": sectors[n % len(sectors)],
             "language": "en", "job_title": ""}
            for n in range(count)
        ])
        ids = list(db.session.execute(select(Person.id).where(Person.email.like("bulk%")).order_by(Person.id)).scalars())
        db.session.execute(insert(Registration), [
            {"event_id": event_id, "person_id": person_id, "sector_id": sectors[n % len(sectors)],
             "status": "confirmed" if n % 4 else "waitlisted", "waitlist_position": None if n % 4 else n,
             "accessibility_needs": "Ramp" if n % 7 == 0 else "", "dietary_needs": "", "answers": {}}
            for n, person_id in enumerate(ids)
        ])
        db.session.commit()


def test_attendee_list_uses_a_fixed_number_of_queries_with_10000_registrations(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=20000)
    _bulk_registrations(app, event_id, 10_000)
    auth.login(organizer)
    client.get(f"/admin/events/{event_id}/attendees")  # the worker reads the sectors once, here
    with counted_statements(app) as statements:
        counts = {}
        for per_page in (10, 200):
            statements.clear()
            response = client.get(f"/admin/events/{event_id}/attendees?per_page={per_page}&sort=name&order=desc")
            assert response.status_code == 200
            assert response.get_data(as_text=True).count("/attendees/") >= per_page
            counts[per_page] = len(statements)
        statements.clear()
        filtered = client.get(f"/admin/events/{event_id}/attendees?status=waitlisted&sector=police"
                              f"&community=Sudbury&q=bulk&per_page=20&page=2")
        assert filtered.status_code == 200 and "Page 2 of" in filtered.get_data(as_text=True)
        filtered_count = len(statements)
    assert counts[10] == counts[200] == filtered_count, (counts, filtered_count)
    assert counts[10] <= 16  # login, event, filters, audit (its own transaction), count, page
    assert "10000 registrations match." in response.get_data(as_text=True)
    assert "events.attendees.viewed" in _audit_actions(app)


def test_attendee_filters_search_and_sort(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=2)
    register(client, "symposium-1", email="zoe@example.ca", name="Zoe Adams", organization="Sudbury Health",
             sector="health-care", community="Sudbury")
    register(client, "symposium-1", email="al@example.ca", name="Al Brown", organization="OPP",
             sector="police", community="Ottawa")
    register(client, "symposium-1", email="mo@example.ca", name="Mo Chen", organization="TDSB",
             sector="education", community="Toronto")
    auth.login(organizer)
    base = f"/admin/events/{event_id}/attendees"

    def names(query: str) -> list[str]:
        body = client.get(base + query).get_data(as_text=True)
        return re.findall(r'/attendees/\d+">([^<]+)</a>', body)

    assert names("?sort=name") == ["Al Brown", "Mo Chen", "Zoe Adams"]
    assert names("?sort=name&order=desc") == ["Zoe Adams", "Mo Chen", "Al Brown"]
    assert names("?status=waitlisted") == ["Mo Chen"]
    assert names("?sector=police") == ["Al Brown"]
    assert names("?community=Sudbury") == ["Zoe Adams"]
    assert names("?q=sudbury") == ["Zoe Adams"]  # organization
    assert names("?q=AL%40EXAMPLE") == ["Al Brown"]  # email, any case
    assert names("?q=%25") == []  # a wildcard is searched for literally
    assert names("?per_page=1&page=2&sort=name") == ["Mo Chen"]


def test_exports_neutralize_formulas_and_the_cli_writes_the_same_csv(app, client, auth, organizer, make_event, runner):
    event_id = make_event(questions=[{"label": "Badge", "kind": "short_text"}])
    register(client, "symposium-1", email="evil@example.ca", name="=HYPERLINK(\"http://x\")",
             organization="+1 Org", community="@home", dietary_needs="-nuts", accessibility_needs="Ramp")
    register(client, "symposium-1", email="zoe@example.ca", name="Zoé Ünicode")
    auth.login(organizer)
    response = client.get(f"/admin/events/{event_id}/attendees.csv")
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"  # personal data: no cache keeps it
    assert response.is_streamed
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, first, second = rows
    assert header[:5] == ["Registration number", "Status", "Waitlist ticket", "Name", "Email"]
    assert first[1] == "Confirmed" and first[6] == "Police"
    assert header[-1].endswith("Badge")
    assert first[3] == "'=HYPERLINK(\"http://x\")" and first[5] == "'+1 Org" and first[7] == "'@home"
    assert first[10] == "'-nuts" and first[9] == "Ramp"
    assert second[3] == "Zoé Ünicode"
    xlsx = client.get(f"/admin/events/{event_id}/attendees.xlsx")
    assert xlsx.status_code == 200
    from openpyxl import load_workbook

    assert xlsx.headers["Cache-Control"] == "no-store"
    sheet = load_workbook(io.BytesIO(xlsx.get_data())).active
    # Typed as text, the cell is never a formula, so it keeps its exact value, quote-free.
    assert sheet["D2"].value == "=HYPERLINK(\"http://x\")" and sheet["D2"].data_type == "s"
    assert sheet["F2"].value == "+1 Org" and sheet["A2"].data_type == "n"
    # Registered at: a real date in the sheet (sortable), the same minute as the CSV's text.
    from datetime import datetime

    registered = sheet.cell(row=2, column=header.index("Registered (Toronto time)") + 1)
    assert isinstance(registered.value, datetime) and registered.number_format == "yyyy-mm-dd hh:mm"
    assert registered.value.strftime("%Y-%m-%d %H:%M") == first[header.index("Registered (Toronto time)")]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", first[header.index("Registered (Toronto time)")])
    result = runner.invoke(args=["export-registrations", "symposium-1"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.decode("utf-8-sig").splitlines()[0].startswith("Registration number,Status,")
    french = runner.invoke(args=["export-registrations", "symposium-1", "--language", "fr"])
    assert french.exit_code == 0, french.output
    assert french.stdout_bytes.decode("utf-8-sig").splitlines()[0].startswith("Numéro d'inscription,Statut,")
    assert runner.invoke(args=["export-registrations", "no-such-event"]).exit_code != 0
    assert _audit_actions(app).count("events.attendees.exported") == 4


def test_check_in_by_search_click_and_scanned_code(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=2)
    register(client, "symposium-1", email="a@example.ca", name="Ann Arrive", sector="police")
    register(client, "symposium-1", email="b@example.ca", name="Bea Badge", sector="housing")
    with app.app_context():
        confirmation = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.to_address.contains("b@example.ca"))).scalar_one()
        code = re.search(r"check-in code: (\S+)|give this code: (\S+)", confirmation.body_text)
        code = code.group(1) or code.group(2)
        ann_id = db.session.execute(select(Registration.id).order_by(Registration.id)).scalars().first()
    auth.login(organizer)
    page = client.get(f"/admin/events/{event_id}/check-in?q=ann").get_data(as_text=True)
    assert "Ann Arrive" in page and "Bea Badge" not in page
    token = csrf_token(client, f"/admin/events/{event_id}/check-in")
    clicked = client.post(f"/admin/events/{event_id}/check-in/{ann_id}?q=ann", data={"csrf_token": token})
    assert clicked.status_code == 302
    scanned = client.post(f"/admin/events/{event_id}/check-in/scan", data={"csrf_token": token, "code": code})
    assert scanned.status_code == 302
    bad = client.post(f"/admin/events/{event_id}/check-in/scan", data={"csrf_token": token, "code": "nonsense"})
    assert bad.status_code == 400 and "not a valid check-in code" in bad.get_data(as_text=True)
    counts = client.get(f"/admin/events/{event_id}/check-in").get_data(as_text=True)
    assert re.search(r"Police</th><td>1</td><td>1</td>", counts)
    assert re.search(r"Housing</th><td>1</td><td>1</td>", counts)
    assert _audit_actions(app).count("events.registration.checked_in") == 2


def test_dashboard_shows_charts_with_tables_and_no_inline_styles(client, auth, organizer, make_event):
    event_id = make_event(capacity=5, sector_cap_percent=40)
    register(client, "symposium-1", email="a@example.ca", sector="police")
    auth.login(organizer)
    body = client.get(f"/admin/events/{event_id}").get_data(as_text=True)
    assert body.count("<svg") == 2 and "style=" not in body
    assert re.search(r"Police</th><td>1</td><td>0</td>", body)
    assert "Seats left:</strong> 4" in body and "40% (2 seats)" in body


def test_the_event_pages_tab_shown_is_marked_current(client, auth, organizer, make_event):
    event_id = make_event()
    auth.login(organizer)
    for path, label in ((f"/admin/events/{event_id}", "Dashboard"), (f"/admin/events/{event_id}/attendees/new", "Attendees"),
                        (f"/admin/events/{event_id}/message", "Email attendees")):
        body = client.get(path).get_data(as_text=True)
        assert re.findall(r'aria-current="page">([^<]+)</a>', body) == [label], path


def test_dashboard_counts_answers_and_check_ins(app, client, auth, organizer, make_event):
    """Organizers plan workshops and meals from the answers: each option's count among seat
    holders and the waitlist, in the reader's language, and how many have checked in."""
    event_id = make_event(capacity=2, questions=[
        {"label": "Which workshop?", "kind": "single_choice", "choices_text": "Privacy\nOutcomes",
         "label_fr": "Quel atelier?", "choices_fr_text": "Vie privée\nRésultats"},
        {"label": "Materials", "kind": "multiple_choice", "choices_text": "Print\nBraille"},
        {"label": "Need parking", "kind": "checkbox"},
        {"label": "Anything else?", "kind": "long_text"}])
    with app.app_context():
        ids = list(db.session.execute(select(EventQuestion.id).order_by(EventQuestion.position)).scalars())
    workshop, materials, parking, anything = (f"q_{i}" for i in ids)
    register(client, "symposium-1", email="a@example.ca", **{workshop: "Privacy", materials: ["Print", "Braille"],
                                                             parking: "y", anything: "Quiet room"})
    register(client, "symposium-1", email="b@example.ca", **{workshop: "Privacy", materials: ["Print"]})
    register(client, "symposium-1", email="c@example.ca", **{workshop: "Outcomes"})  # waitlisted
    with app.app_context():
        db.session.execute(Registration.__table__.update().where(Registration.status == "confirmed")
                           .where(Registration.id == db.session.execute(select(func.min(Registration.id))).scalar())
                           .values(checked_in_at=func.now()))
        db.session.commit()
    auth.login(organizer)
    body = client.get(f"/admin/events/{event_id}").get_data(as_text=True)
    assert "Checked in:</strong> 1 / 2" in body
    assert re.search(r"<caption>Which workshop\?</caption>.*?Privacy</th><td>2</td><td>0</td>.*?"
                     r"Outcomes</th><td>0</td><td>1</td>", body, re.S)
    assert re.search(r"<caption>Materials</caption>.*?Print</th><td>2</td><td>0</td>.*?"
                     r"Braille</th><td>1</td><td>0</td>.*?Answered</th><td>2</td><td>0</td>", body, re.S)
    assert re.search(r"<caption>Need parking</caption>.*?Ticked</th><td>1</td><td>0</td>", body, re.S)
    assert re.search(r"<caption>Anything else\?</caption>.*?Answered</th><td>1</td><td>0</td>", body, re.S)
    assert "Quiet room" not in body  # counts, not what people wrote
    french = client.get(f"/admin/events/{event_id}", headers={"Accept-Language": "fr-CA"}).get_data(as_text=True)
    assert re.search(r"<caption>Quel atelier\?</caption>.*?Vie privée</th><td>2</td>", french, re.S)
    assert "Ont répondu" in french and "Arrivées enregistrées :</strong> 1 / 2" in french


def test_organizer_emails_confirmed_or_waitlisted_attendees(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="a@example.ca")
    register(client, "symposium-1", email="b@example.ca")
    auth.login(organizer)
    token = csrf_token(client, f"/admin/events/{event_id}/message")
    sent = client.post(f"/admin/events/{event_id}/message", data={
        "csrf_token": token, "recipients": ["waitlisted"], "subject": "Parking", "body": "Use lot B.",
        "action": "send", "batch": "a" * 16})
    assert sent.status_code == 302
    with app.app_context():
        (message,) = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "events.message")).scalars().all()
        assert "b@example.ca" in message.to_address and message.subject == "Parking"
        assert "Use lot B." in message.body_text and "/events/manage/" in message.body_text
    nobody = client.post(f"/admin/events/{event_id}/message", data={
        "csrf_token": token, "subject": "x", "body": "y"})
    assert nobody.status_code == 400


def test_the_same_message_form_sent_twice_mails_everyone_once(app, client, auth, organizer, make_event):
    """A resubmitted page or a second click on the form that was sent: each time, a fresh
    batch mailed every attendee again. The form's batch names the message."""
    event_id = make_event(capacity=5)
    register(client, "symposium-1", email="a@example.ca")
    auth.login(organizer)
    path = f"/admin/events/{event_id}/message"
    page = client.get(path).get_data(as_text=True)
    batch = re.search(r'name="batch" type="hidden" value="([0-9a-f]{16})"', page).group(1)
    message = {"csrf_token": csrf_token(client, path), "recipients": ["confirmed"], "subject": "Parking",
               "body": "Use lot B.", "batch": batch}
    assert client.post(path, data={**message, "action": "preview"}).status_code == 200
    assert client.post(path, data={**message, "action": "send"}).status_code == 302
    again = client.post(path, data={**message, "action": "send"})
    assert again.status_code == 409 and "already sent" in again.get_data(as_text=True)
    # Neither of the form's two buttons: nothing is sent.
    assert client.post(path, data={**message, "batch": "f" * 16, "action": "__class__"}).status_code == 400
    # Without its batch (a page from before it existed, a script), each post would be new.
    unnamed = client.post(path, data={**{k: v for k, v in message.items() if k != "batch"}, "action": "send"})
    assert unnamed.status_code == 400 and "This form is out of date" in unnamed.get_data(as_text=True)
    assert _purposes(app).count("events.message") == 1


def test_a_message_goes_to_each_attendee_in_their_language(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=5)
    register(client, "symposium-1", email="en@example.ca")
    client.post("/events/symposium-1/register", headers={"Accept-Language": "fr-CA"},
                data=form_data(client, "symposium-1", email="fr@example.ca"))
    auth.login(organizer)
    path = f"/admin/events/{event_id}/message"
    token = csrf_token(client, path)
    message = {"csrf_token": token, "recipients": ["confirmed"], "subject": "Parking", "body": "Use lot B.",
               "subject_fr": "Stationnement", "body_fr": "Utilisez le stationnement B."}
    half = client.post(path, data={**message, "subject_fr": ""})
    assert half.status_code == 400
    assert re.search(r'id="subject_fr-error"[^>]*>.*Give the French subject too', half.get_data(as_text=True), re.S)
    assert _purposes(app).count("events.message") == 0

    assert client.post(path, data={**message, "action": "send", "batch": "b" * 16}).status_code == 302
    with app.app_context():
        sent = {m.to_address.split("<")[-1].rstrip(">"): m for m in db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "events.message")).scalars()}
    assert sent["en@example.ca"].subject == "Parking" and "Use lot B." in sent["en@example.ca"].body_text
    french = sent["fr@example.ca"]
    assert french.subject == "Stationnement" and "Utilisez le stationnement B." in french.body_text
    assert "Bonjour" in french.body_text and "Use lot B." not in french.body_text

    # Without a French version, French readers get the English one (in the French wrapper).
    client.post(path, data={**message, "subject_fr": "", "body_fr": "", "subject": "Lunch", "body": "At noon.",
                            "action": "send", "batch": "c" * 16})
    with app.app_context():
        (lunch,) = db.session.execute(select(OutboxMessage).where(
            OutboxMessage.subject == "Lunch", OutboxMessage.to_address.contains("fr@"))).scalars()
        assert "At noon." in lunch.body_text and "Bonjour" in lunch.body_text
        # The English words inside the French email are marked English (WCAG 3.1.2).
        assert '<div lang="en"><p class="message">At noon.</p></div>' in lunch.body_html
        assert '<div lang="fr"><p class="message">Utilisez le stationnement B.</p></div>' in french.body_html


def test_previewing_a_message_shows_both_languages_and_queues_nothing(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="en@example.ca")
    client.post("/events/symposium-1/register", headers={"Accept-Language": "fr-CA"},
                data=form_data(client, "symposium-1", email="fr@example.ca"))  # waitlisted
    auth.login(organizer)
    path = f"/admin/events/{event_id}/message"
    page = client.post(path, data={
        "csrf_token": csrf_token(client, path), "recipients": ["confirmed", "waitlisted"], "action": "preview",
        "subject": "Parking", "body": "Use lot B.", "subject_fr": "Stationnement", "body_fr": "Lot B.",
        "batch": "f" * 16})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<title>Preview: Email attendees" in body
    assert "This message would go to 2 people." in body and "In English: 1. In French: 1." in body
    assert "Hello [their name]," in body and "Bonjour [nom de la personne]," in body
    assert "Use lot B." in body and "Lot B." in body and "/events/manage/THEIR-OWN-LINK" in body
    assert 'value="Stationnement"' in body  # the form keeps what was written
    assert _purposes(app).count("events.message") == 0
    assert "events.attendees.messaged" not in _audit_actions(app)


def test_a_message_to_attendees_keeps_its_paragraphs_and_lines_in_html(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=5)
    register(client, "symposium-1", email="a@example.ca")
    auth.login(organizer)
    body = "Dear colleagues,\r\n\r\nParking is in lot B.\r\n\r\n1. Arrive by 8:30\r\n2. Bring <ID>"
    client.post(f"/admin/events/{event_id}/message", data={
        "csrf_token": csrf_token(client, f"/admin/events/{event_id}/message"), "recipients": ["confirmed"],
        "subject": "Practical details", "body": body, "action": "send", "batch": "d" * 16})
    with app.app_context():
        html = db.session.execute(select(OutboxMessage.body_html).where(
            OutboxMessage.purpose == "events.message")).scalar_one()
    assert '<p class="message">Dear colleagues,</p><p class="message">Parking is in lot B.</p>' in html
    assert '<p class="message">1. Arrive by 8:30<br>2. Bring &lt;ID&gt;</p>' in html


def test_organizer_sees_needs_and_edits_them(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=1)
    register(client, "symposium-1", email="a@example.ca", accessibility_needs="ASL interpreter")
    register(client, "symposium-1", email="next@example.ca", name="Nadia Okafor")  # waits
    with app.app_context():
        registration_id = db.session.execute(select(Registration.id).order_by(Registration.id)).scalars().first()
    auth.login(organizer)
    page = client.get(f"/admin/events/{event_id}/attendees/{registration_id}").get_data(as_text=True)
    assert "ASL interpreter" in page
    assert "<title>Ada Lovelace · Registration for Symposium 1 · " in page  # each attendee's page its own title
    assert 'data-confirm="Cancel this registration (Ada Lovelace)?"' in page
    token = csrf_token(client, f"/admin/events/{event_id}/attendees/{registration_id}")
    client.post(f"/admin/events/{event_id}/attendees/{registration_id}",
                data={"csrf_token": token, "accessibility_needs": "CART captioning", "dietary_needs": ""})
    with app.app_context():
        assert db.session.get(Registration, registration_id).accessibility_needs == "CART captioning"
    assert "events.registration.edited" in _audit_actions(app)
    cancelled = client.post(f"/admin/events/{event_id}/attendees/{registration_id}/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 302
    said = client.get(cancelled.headers["Location"]).get_data(as_text=True)
    assert "Registration cancelled. The freed seat went to Nadia Okafor, who was emailed." in said
    with app.app_context():
        assert db.session.get(Registration, registration_id).status == "cancelled"


def test_capacity_never_goes_below_the_confirmed_seats(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=3)
    for n in range(3):
        register(client, "symposium-1", email=f"p{n}@example.ca")
    auth.login(organizer)
    token = csrf_token(client, f"/admin/events/{event_id}/edit")
    refused = client.post(f"/admin/events/{event_id}/edit", data={**EVENT_FORM, "capacity": "2", "csrf_token": token})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert 'id="capacity-error"' in body and "More people already hold a seat" in body
    with app.app_context():
        assert db.session.get(Event, event_id).capacity == 3
    with app.app_context():  # one person leaves: now 2 seats are enough
        from portal.events import services

        first = db.session.execute(select(Registration).order_by(Registration.id)).scalars().first()
        services.cancel_registration(first)
        db.session.commit()
    lowered = client.post(f"/admin/events/{event_id}/edit", data={**EVENT_FORM, "capacity": "2", "csrf_token": token})
    assert lowered.status_code == 302
    with app.app_context():
        assert db.session.get(Event, event_id).capacity == 2


def test_registration_must_close_after_it_opens(client, auth, organizer):
    auth.login(organizer)
    token = csrf_token(client, "/admin/events/new")
    response = client.post("/admin/events/new", data={
        **EVENT_FORM, "csrf_token": token, "registration_opens_at": "2027-05-01T09:00",
        "registration_closes_at": "2027-04-01T09:00"})
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and "Registration must close after it opens" in body
    assert 'id="registration_closes_at-error"' in body


def test_a_chair_sees_no_attendee_or_needs_page(app, client, auth, make, make_event):
    from portal.auth.models import OrganizerAccount, Role

    event_id = make_event()
    register(client, "symposium-1", email="a@example.ca", accessibility_needs="ASL interpreter")
    chair = make.organizer()
    with app.app_context():
        db.session.get(OrganizerAccount, chair.id).role = Role.CHAIR.value
        registration_id = db.session.execute(select(Registration.id)).scalar_one()
        db.session.commit()
    auth.login(chair)
    base = f"/admin/events/{event_id}"
    for path in [base, f"{base}/attendees", f"{base}/attendees/{registration_id}", f"{base}/attendees.csv",
                 f"{base}/attendees.xlsx", f"{base}/check-in?q=a", f"{base}/edit"]:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "ASL interpreter" not in response.get_data(as_text=True)


def test_a_date_beyond_any_real_event_is_a_clear_400_and_creates_nothing(app, client, auth, organizer):
    auth.login(organizer)
    token = csrf_token(client, "/admin/events/new")
    for starts, ends in [("9999-12-31T23:00", "9999-12-31T23:59"), ("0001-01-01T00:00", "0001-01-01T08:00")]:
        response = client.post("/admin/events/new", data={**EVENT_FORM, "csrf_token": token,
                                                          "starts_at": starts, "ends_at": ends})
        body = response.get_data(as_text=True)
        assert response.status_code == 400 and 'id="starts_at-error"' in body
        assert "Enter a date between 1900 and 2100." in body
    with app.app_context():
        assert db.session.execute(select(Event)).first() is None
    assert client.get("/admin/events").status_code == 200


def test_the_attendee_list_says_the_place_in_line_people_were_told_in_their_language(app, client, auth, organizer,
                                                                                    make_event):
    from portal.events import services

    event_id = make_event(capacity=1)
    for n, sector in enumerate(["health-care", "police", "police", "police"]):
        register(client, "symposium-1", email=f"p{n}@example.ca", name=f"Person {n}", sector=sector)
    with app.app_context():  # the first person in line leaves: the others move up, their tickets stay
        second = db.session.execute(select(Registration).where(Registration.waitlist_position == 1)).scalar_one()
        services.cancel_registration(second)
        db.session.commit()
        last_id = db.session.execute(select(Registration.id).where(Registration.waitlist_position == 3)).scalar_one()
    auth.login(organizer)
    rows = client.get(f"/admin/events/{event_id}/attendees?sort=name").get_data(as_text=True)
    assert "Waitlisted (number 1 in line)" in rows and "Waitlisted (number 2 in line)" in rows
    assert "(#3)" not in rows
    detail = client.get(f"/admin/events/{event_id}/attendees/{last_id}").get_data(as_text=True)
    assert "number 2 in line" in detail
    french = {"Accept-Language": "fr-CA"}
    rows = client.get(f"/admin/events/{event_id}/attendees", headers=french).get_data(as_text=True)
    assert "Soins de santé" in rows and "Health care" not in rows
    assert "au rang 2" in rows and "<td>waitlisted" not in rows and "<td>confirmed" not in rows
    check_in = client.get(f"/admin/events/{event_id}/check-in?q=Person", headers=french).get_data(as_text=True)
    assert "Soins de santé" in check_in and "Health care" not in check_in
    dashboard = client.get(f"/admin/events/{event_id}", headers=french).get_data(as_text=True)
    assert "Soins de santé" in dashboard and "Health care" not in dashboard


def test_organizers_give_an_event_its_french_text(app, client, auth, organizer):
    auth.login(organizer)
    token = csrf_token(client, "/admin/events/new")
    created = client.post("/admin/events/new", data={
        **EVENT_FORM, "csrf_token": token, "title_fr": "Collaborer pour la sécurité",
        "summary_fr": "Une journée", "description_fr": "Des plans", "venue_accessibility_fr": "Sans marches"})
    assert created.status_code == 302
    with app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        assert (event.title_fr, event.summary_fr, event.description_fr, event.venue_accessibility_fr) == (
            "Collaborer pour la sécurité", "Une journée", "Des plans", "Sans marches")
        event_id = event.id
    edit = client.get(f"/admin/events/{event_id}/edit").get_data(as_text=True)
    assert 'value="Collaborer pour la sécurité"' in edit and "<legend>In French</legend>" in edit


def test_french_options_must_match_the_english_ones(app, client, auth, organizer, make_event):
    event_id = make_event()
    auth.login(organizer)
    path = f"/admin/events/{event_id}/questions"
    token = csrf_token(client, path)
    mismatch = client.post(path, data={"csrf_token": token, "label": "Workshop", "kind": "single_choice",
                                       "choices_text": "A\nB\nC", "choices_fr_text": "A fr\nB fr"})
    body = mismatch.get_data(as_text=True)
    assert mismatch.status_code == 400 and 'id="choices_fr_text-error"' in body
    assert "Give one French option for each English option" in body
    added = client.post(path, data={"csrf_token": token, "label": "Workshop", "label_fr": "Atelier",
                                    "kind": "single_choice", "choices_text": "A\nB", "choices_fr_text": "A fr\nB fr"})
    assert added.status_code == 302
    with app.app_context():
        question = db.session.execute(select(EventQuestion)).scalar_one()
        assert (question.label_fr, question.choices_fr) == ("Atelier", ["A fr", "B fr"])


@pytest.mark.parametrize("day, local_time, message", [
    ("2027-03-14", "02:30", "The clocks skip this time"),        # springing forward: it would become 03:30
    ("2027-11-07", "01:30", "The clocks show this time twice"),  # falling back: the first would be taken
])
def test_an_event_time_the_clocks_skip_or_show_twice_is_refused(app, client, auth, organizer, day, local_time,
                                                                 message):
    auth.login(organizer)
    response = client.post("/admin/events/new", data={
        **EVENT_FORM, "csrf_token": csrf_token(client, "/admin/events/new"),
        "starts_at": f"{day}T{local_time}", "ends_at": f"{day}T16:30"})
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and 'id="starts_at-error"' in body and message in body
    with app.app_context():
        assert db.session.execute(select(Event)).first() is None


def test_a_save_from_a_page_opened_before_someone_elses_save_is_refused(app, client, auth, organizer, make_event):
    """Two organizers edit one event: each form writes every field back, so the second save
    silently undid the first's changes. It is now refused, saying why, and changes nothing."""
    event_id = make_event()
    auth.login(organizer)
    path = f"/admin/events/{event_id}/edit"

    def form_as_opened() -> dict:
        page = client.get(path).get_data(as_text=True)
        fields = dict(re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', page))
        fields.update(re.findall(r'<textarea[^>]*name="([a-z_]+)"[^>]*>\s*([^<]*)</textarea>', page))
        fields["timezone"] = "America/Toronto"
        return fields

    first, second = form_as_opened(), form_as_opened()
    assert client.post(path, data={**first, "title": "New title"}).status_code == 302
    late = client.post(path, data={**second, "venue_name": "Another hall"})
    body = late.get_data(as_text=True)
    assert late.status_code == 409 and "Someone else saved changes to this event" in body
    with app.app_context():
        event = db.session.get(Event, event_id)
        assert event.title == "New title" and event.venue_name != "Another hall"
    # Opened again, the page shows the first save, and saving from it works.
    assert client.post(path, data={**form_as_opened(), "venue_name": "Another hall"}).status_code == 302


def test_organizers_reading_french_see_questions_and_answers_in_french(app, client, auth, organizer, make_event):
    event_id = make_event(questions=[
        {"label": "Which workshops?", "label_fr": "Quels ateliers?", "kind": "multiple_choice",
         "choices_text": "Privacy\nOutcomes", "choices_fr_text": "Vie privée\nRésultats"},
        {"label": "Anything else?", "label_fr": "", "kind": "short_text"}])
    with app.app_context():
        choice_id, text_id = db.session.execute(select(EventQuestion.id).order_by(EventQuestion.position,
                                                                                  EventQuestion.id)).scalars()
    assert register(client, "symposium-1", **{f"q_{choice_id}": ["Privacy", "Outcomes"],
                                              f"q_{text_id}": "Privacy"}).status_code == 302
    with app.app_context():
        registration_id = db.session.execute(select(Registration.id)).scalar_one()
    auth.login(organizer)
    path = f"/admin/events/{event_id}/attendees/{registration_id}"
    french = client.get(path, headers={"Accept-Language": "fr-CA"}).get_data(as_text=True)
    assert "<dt>Quels ateliers?</dt><dd>Vie privée, Résultats</dd>" in french
    # No French label written: the English one; free text is shown as typed, even when it
    # happens to read like an option of another question.
    assert "<dt><span lang=\"en\">Anything else?</span></dt><dd>Privacy</dd>" in french
    english = client.get(path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "<dt>Which workshops?</dt><dd>Privacy, Outcomes</dd>" in english
    questions = client.get(f"/admin/events/{event_id}/questions", headers={"Accept-Language": "fr-CA"})
    assert "<td>Vie privée, Résultats</td>" in questions.get_data(as_text=True)


def test_an_event_already_over_is_refused_but_an_old_event_can_be_corrected(app, client, auth, organizer,
                                                                          make_event):
    auth.login(organizer)
    token = csrf_token(client, "/admin/events/new")
    over = client.post("/admin/events/new", data={**EVENT_FORM, "csrf_token": token,
                                                  "starts_at": "2019-05-12T08:30", "ends_at": "2019-05-12T16:30"})
    body = over.get_data(as_text=True)
    assert over.status_code == 400 and 'id="ends_at-error"' in body and "already past" in body
    with app.app_context():
        assert db.session.execute(select(Event)).first() is None

    from datetime import timedelta

    event_id = make_event(starts_in=-timedelta(days=10))
    path = f"/admin/events/{event_id}/edit"
    page = client.get(path).get_data(as_text=True)
    old_form = {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', page).group(1)
                for name in ("title", "slug", "starts_at", "ends_at", "timezone", "capacity", "reminder_days",
                             "retention_days")}
    fixed = client.post(path, data={**old_form, "csrf_token": csrf_token(client, path), "title": "Fixed typo"})
    assert fixed.status_code == 302
    moved = client.post(path, data={**old_form, "csrf_token": csrf_token(client, path),
                                    "ends_at": old_form["starts_at"][:11] + "23:00"})
    assert moved.status_code == 400 and "already past" in moved.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Event, event_id).title == "Fixed typo"


def test_organizer_pages_in_french_show_french_names_and_french_numbers(app, client, auth, organizer, make_event):
    event_id = make_event(sector_cap_percent=30, capacity=250, title_fr="Collaborer pour la sécurité")
    auth.login(organizer)
    french = {"Accept-Language": "fr"}
    dashboard = client.get(f"/admin/events/{event_id}", headers=french).get_data(as_text=True)
    assert "<h1>Collaborer pour la sécurité</h1>" in dashboard
    assert "30\xa0% (75 places)" in dashboard and "30%" not in dashboard
    check_in = client.get(f"/admin/events/{event_id}/check-in", headers=french).get_data(as_text=True)
    assert "Collaborer pour la sécurité" in check_in and "Symposium 1" not in check_in
    english = client.get(f"/admin/events/{event_id}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "<h1>Symposium 1</h1>" in english and "30% (75 seats)" in english


def test_accented_names_are_found_filtered_and_sorted_as_a_reader_expects(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=10)
    for email, name, community in (("zoe@example.ca", "Zoé Tremblay", "Sudbury"),
                                   ("emilie@example.ca", "Émilie Ouellet", "Île-Perrot"),
                                   ("elise@example.ca", "élise Côté", "Timmins"),
                                   ("adam@example.ca", "Adam Smith", "Toronto")):
        assert register(client, "symposium-1", email=email, name=name, community=community).status_code == 302
    auth.login(organizer)
    base = f"/admin/events/{event_id}/attendees"

    def names(query: str) -> list[str]:
        page = client.get(base + query).get_data(as_text=True)
        return re.findall(r'<a href="/admin/events/\d+/attendees/\d+">([^<]+)</a>', page)

    assert names("?q=Émilie") == ["Émilie Ouellet"]
    assert names("?q=emilie") == ["Émilie Ouellet"]  # without the accent, as people type
    assert names("?q=ÉLISE") == ["élise Côté"]
    assert names("?q=cote") == ["élise Côté"]
    assert names("?community=Île-Perrot") == ["Émilie Ouellet"]
    assert names("?sort=name") == ["Adam Smith", "élise Côté", "Émilie Ouellet", "Zoé Tremblay"]
    check_in = client.get(f"/admin/events/{event_id}/check-in?q=Émilie").get_data(as_text=True)
    assert "Émilie Ouellet" in check_in and "Zoé" not in check_in
    options = re.findall(r'<option value="([^"]*)"', client.get(base).get_data(as_text=True))
    assert [o for o in options if o in ("Île-Perrot", "Sudbury", "Timmins", "Toronto")] == [
        "Île-Perrot", "Sudbury", "Timmins", "Toronto"]


def test_a_registration_the_organizers_cancel_is_said_to_be_theirs(app, client, auth, organizer, make_event):
    event_id = make_event(capacity=5)
    register(client, "symposium-1", email="chris@example.ca", name="Chris Wong")
    with app.app_context():
        registration_id = db.session.execute(select(Registration.id)).scalar_one()
    auth.login(organizer)
    page = f"/admin/events/{event_id}/attendees/{registration_id}"
    assert client.post(page + "/cancel", data={"csrf_token": csrf_token(client, page)}).status_code == 302
    with app.app_context():
        text = db.session.execute(select(OutboxMessage.body_text).where(
            OutboxMessage.purpose == "events.cancelled")).scalar_one()
    assert "The organizers cancelled your registration" in text and "Thank you for freeing" not in text
    assert app.config["PORTAL_ORG_CONTACT"] in text


def test_answers_to_a_removed_question_stay_in_exports_and_an_unticked_box_reads_no(app, client, auth, organizer,
                                                                                    make_event):
    event_id = make_event(questions=[
        {"label": "Your role at a situation table", "kind": "short_text"},
        {"label": "Photos are fine", "kind": "checkbox"}])
    with app.app_context():
        role_id, photos_id = db.session.execute(
            select(EventQuestion.id).order_by(EventQuestion.position, EventQuestion.id)).scalars()
    register(client, "symposium-1", email="a@example.ca", **{f"q_{role_id}": "Coordonnatrice", f"q_{photos_id}": "y"})
    register(client, "symposium-1", email="b@example.ca", **{f"q_{role_id}": "Chair"})
    auth.login(organizer)
    questions = f"/admin/events/{event_id}/questions"
    removed = client.post(f"{questions}/{role_id}/delete", data={"csrf_token": csrf_token(client, questions)})
    assert removed.status_code == 302
    rows = list(csv.reader(io.StringIO(
        client.get(f"/admin/events/{event_id}/attendees.csv").get_data(as_text=True).removeprefix("\ufeff"))))
    header = rows[0]
    role_column = header.index(f"Removed question (q{role_id})")
    photos_column = header.index("Photos are fine")
    by_email = {row[header.index("Email")]: row for row in rows[1:]}
    assert by_email["a@example.ca"][role_column] == "Coordonnatrice" and by_email["a@example.ca"][photos_column] == "yes"
    assert by_email["b@example.ca"][role_column] == "Chair" and by_email["b@example.ca"][photos_column] == "no"
    with app.app_context():
        registration_id = db.session.execute(select(Registration.id).order_by(Registration.id)).scalars().first()
    page = client.get(f"/admin/events/{event_id}/attendees/{registration_id}").get_data(as_text=True)
    assert f"<dt>Removed question (q{role_id})</dt><dd>Coordonnatrice</dd>" in page


def test_fewer_seats_than_a_sector_holds_is_refused_beside_the_seats(app, client, auth, organizer, make_event):
    from portal.events import services

    event_id = make_event(capacity=20, sector_cap_percent=30)  # 6 seats per sector
    for n in range(6):
        register(client, "symposium-1", email=f"p{n}@example.ca", sector="police")
    with app.app_context():
        event = db.session.get(Event, event_id)
        try:
            services.update_event(event, actor=None, capacity=19)  # 30% of 19 is 5: police hold 6
        except services.SectorOverCap as error:
            refused = error
        else:
            refused = None
        db.session.rollback()
        assert isinstance(refused, services.FewerSeatsThanSectorHolds) and refused.field == "capacity"
        try:
            services.update_event(db.session.get(Event, event_id), actor=None, sector_cap_percent=20)
        except services.SectorOverCap as error:
            assert not isinstance(error, services.FewerSeatsThanSectorHolds)  # the share changed: beside it
        else:
            raise AssertionError("a tighter share was accepted")
        db.session.rollback()
        assert db.session.get(Event, event_id).capacity == 20


def test_moving_an_event_tells_everyone_registered_and_updates_their_calendars(app, client, auth, organizer):
    import icalendar

    from portal.mail.models import OutboxAttachment

    auth.login(organizer)
    token = csrf_token(client, "/admin/events/new")
    client.post("/admin/events/new", data={**EVENT_FORM, "capacity": "1", "csrf_token": token})
    with app.app_context():
        event_id = db.session.execute(select(Event.id)).scalar_one()
    edit = f"/admin/events/{event_id}/edit"
    client.post(f"/admin/events/{event_id}/status", data={"csrf_token": token, "status": "published"})
    register(client, "cswb-2027", email="seat@example.ca")
    register(client, "cswb-2027", email="line@example.ca")
    # Saving the form unchanged, or changing only the title, tells no one.
    assert client.post(edit, data={**EVENT_FORM, "capacity": "1", "csrf_token": token}).status_code == 302
    client.post(edit, data={**EVENT_FORM, "capacity": "1", "title": "A new title", "csrf_token": token})
    assert _purposes(app).count("events.changed") == 0

    moved = client.post(edit, data={**EVENT_FORM, "capacity": "1", "title": "A new title", "csrf_token": token,
                                    "starts_at": "2027-05-19T08:30", "ends_at": "2027-05-19T16:30",
                                    "venue_name": "Ottawa Conference Centre"})
    assert moved.status_code == 302
    said = client.get(f"/admin/events/{event_id}").get_data(as_text=True)
    assert "2 people registered were emailed the new time or place." in said
    with app.app_context():
        changed = {m.to_address: m for m in db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "events.changed")).scalars()}
        assert len(changed) == 2
        (seat,) = [m for address, m in changed.items() if "seat@" in address]
        (line,) = [m for address, m in changed.items() if "line@" in address]
        assert "Ottawa Conference Centre" in seat.body_text and "May 19, 2027" in seat.body_text
        assert "/events/manage/" in line.body_text and line.attachments == []
        (ics,) = db.session.execute(select(OutboxAttachment).where(OutboxAttachment.message_id == seat.id)).scalars()
        (entry,) = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
        assert entry.decoded("dtstart").day == 19 and int(entry["sequence"]) == 1
        assert str(entry["uid"]).startswith(f"event-{event_id}@")  # the same entry, replaced


def test_the_move_notice_arrives_with_a_calendar_file_that_replaces_the_entry(app, client, auth, organizer,
                                                                              smtp_server):
    """As received at a real SMTP server: the notice, and an .ics with the new start, the
    same UID as the confirmation's and a higher SEQUENCE."""
    import icalendar

    from portal.mail.delivery import deliver_due

    auth.login(organizer)
    token = csrf_token(client, "/admin/events/new")
    client.post("/admin/events/new", data={**EVENT_FORM, "capacity": "5", "csrf_token": token})
    with app.app_context():
        event_id = db.session.execute(select(Event.id)).scalar_one()
    client.post(f"/admin/events/{event_id}/status", data={"csrf_token": token, "status": "published"})
    register(client, "cswb-2027", email="seat@example.ca")
    client.post(f"/admin/events/{event_id}/edit", data={**EVENT_FORM, "capacity": "5", "csrf_token": token,
                                                        "starts_at": "2027-05-19T08:30", "ends_at": "2027-05-19T16:30"})
    with app.app_context():
        deliver_due()
    confirmation, notice = smtp_server.to("seat@example.ca")

    def calendar_entry(message):
        (part,) = [p for p in message.iter_attachments() if p.get_filename() == "cswb-2027.ics"]
        assert part.get_content_type() == "text/calendar" and part.get_param("charset") == "utf-8"
        (entry,) = icalendar.Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")
        return entry

    before, after = calendar_entry(confirmation), calendar_entry(notice)
    assert notice["Subject"].startswith("New time or place:")
    assert str(before["uid"]) == str(after["uid"])
    assert int(after.get("sequence", 0)) > int(before.get("sequence", 0))
    assert (before.decoded("dtstart").day, after.decoded("dtstart").day) == (12, 19)


def test_messaging_a_large_event_takes_a_fixed_number_of_statements(app, make_event):
    """Found at scale: an organizer's message to 10,000 attendees ran three statements and a
    full render per person (27,000 statements, over gunicorn's 30 s). It is now a few
    statements whatever the audience, and each message is still the person's own."""
    from portal.auth.models import OrganizerAccount
    from portal.events import services
    from portal.events.models import Event

    event_id = make_event(capacity=1000)
    with app.app_context():
        for n in range(60):
            services.register_for_event(event_id, services.RegistrationDetails(
                email=f"p{n}@example.ca", name=f"Person {n}", organization="Org", sector_slug="police",
                community="Toronto", language="fr" if n % 3 == 0 else "en"))
        actor = OrganizerAccount(email="o@example.ca", name="O", password_hash="x")
        db.session.add(actor)
        db.session.commit()
        with counted_statements(app) as statements:
            sent = services.message_attendees(
                db.session.get(Event, event_id), statuses=["confirmed"], actor=actor, batch="0123456789abcdef",
                message=services.AttendeeMessage("Parking", "Use the east lot.", "Stationnement",
                                                 "Utilisez le stationnement est."))
            db.session.commit()
        assert sent == 60
        assert len(statements) <= 12, len(statements)
        messages = db.session.execute(select(OutboxMessage).where(OutboxMessage.purpose == "events.message")
                                      .order_by(OutboxMessage.id)).scalars().all()
        assert len(messages) == 60 and len({m.body_text for m in messages}) == 60  # own links
        first_fr = next(m for m in messages if m.language == "fr")
        assert first_fr.subject == "Stationnement" and "Utilisez le stationnement est." in first_fr.body_text
        assert "Bonjour Person 0," in first_fr.body_text
        link = re.search(r"(/events/manage/\S+)", first_fr.body_text).group(1)
    client = app.test_client()
    assert client.get(link).status_code == 200  # each link opens that person's registration


def test_a_message_to_many_is_rendered_and_queued_a_chunk_at_a_time(app, make_event):
    """Found by review: the whole audience's rendered messages sat in memory before the first
    insert (about 150 KB each with a long message: 1.5 GB for 10,000). Chunks of people are
    rendered, inserted and let go one after another; every person still gets theirs once."""
    from portal.events import notifications, services
    from portal.events.models import Registration

    event_id = make_event(capacity=10)
    with app.app_context():
        for n in range(5):
            services.register_for_event(event_id, services.RegistrationDetails(
                email=f"p{n}@example.ca", name=f"Person {n}", organization="Org", sector_slug="police",
                community="Toronto"))
        db.session.commit()
        registrations = db.session.execute(select(Registration).order_by(Registration.id)).scalars().all()
        messages = [(r, "Parking", "Use the east lot.", "en") for r in registrations]
        assert notifications.notify_attendee_messages(messages, "batch-1", chunk=2) == 5
        assert notifications.notify_attendee_messages(messages, "batch-1", chunk=2) == 0  # each once
        db.session.commit()
        bodies = db.session.execute(select(OutboxMessage.body_text).where(
            OutboxMessage.purpose == "events.message")).scalars().all()
        assert len(bodies) == 5 and len(set(bodies)) == 5


def test_organizer_pages_have_titles_of_their_own_and_errors_say_which_date(client, auth, organizer):
    """From an accessibility pass: /groups and /admin/groups were both titled "Working groups"
    (WCAG 2.4.2), and an event form without dates listed "Enter a date and time." twice
    (3.3.1: which one?)."""
    def title(path: str) -> str:
        page = client.get(path).get_data(as_text=True)
        return page.split("<title>", 1)[1].split("</title>", 1)[0]

    auth.login(organizer)
    assert title("/admin/groups") != title("/groups") and "Organizers" in title("/admin/groups")
    page = client.post("/admin/events/new", data={"csrf_token": csrf_token(client, "/admin/events/new"),
                                                 "title": "T", "slug": "t", "capacity": "5"}).get_data(as_text=True)
    assert "Enter the date and time it starts." in page and "Enter the date and time it ends." in page


def test_the_name_list_holds_seat_holders_by_name_without_contact_details_or_needs(app, client, auth, organizer,
                                                                                    make_event):
    event_id = make_event(capacity=2, questions=[{"label": "Badge", "kind": "short_text"}])
    register(client, "symposium-1", email="zed@example.ca", name="Zed Zhou", organization="=Org",
             sector="police", accessibility_needs="Ramp please", dietary_needs="No nuts")
    register(client, "symposium-1", email="ann@example.ca", name="Ann Ames", sector="housing")
    register(client, "symposium-1", email="wait@example.ca", name="Wendy Waitlisted")
    auth.login(organizer)
    with app.app_context():
        ann = db.session.execute(select(Registration).join(Person).where(Person.name == "Ann Ames")).scalar_one()
        ann_id = ann.id
    token = csrf_token(client, f"/admin/events/{event_id}/check-in")
    client.post(f"/admin/events/{event_id}/check-in/{ann_id}", data={"csrf_token": token})

    response = client.get(f"/admin/events/{event_id}/name-list.csv")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    raw = response.get_data()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows == [
        ["Name", "Organization", "Sector", "Community", "Job title", "Checked in"],
        ["Ann Ames", "City of Toronto", "Housing", "Toronto", "", "yes"],
        ["Zed Zhou", "'=Org", "Police", "Toronto", "", ""],
    ]
    for private in (b"@example.ca", b"Ramp", b"nuts", b"Wendy"):
        assert private not in raw

    french = client.get(f"/admin/events/{event_id}/name-list.xlsx", headers={"Accept-Language": "fr"})
    assert french.status_code == 200
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(french.get_data())).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][:2] == ["Nom", "Organisation"] and values[1][-1] == "oui"
    assert values[2][1] == "=Org" and sheet["B3"].data_type == "s"  # text, never a formula
    assert _audit_actions(app).count("events.name_list.exported") == 2
    dashboard = client.get(f"/admin/events/{event_id}").get_data(as_text=True)
    assert f"/admin/events/{event_id}/name-list.csv" in dashboard


def test_the_full_export_speaks_the_organizers_language_and_the_events_time(app, client, auth, organizer,
                                                                          make_event):
    """An organizer reading French gets French column names, statuses, sectors, options and
    yes/no (it was English machine names and codes), with times in the event's own zone."""
    event_id = make_event(capacity=1, timezone="America/Winnipeg", questions=[
        {"label": "Which workshop?", "kind": "single_choice", "choices_text": "Privacy\nOutcomes",
         "label_fr": "Quel atelier?", "choices_fr_text": "Vie privée\nRésultats"},
        {"label": "Need parking", "kind": "checkbox"},
        {"label": "Need parking", "kind": "checkbox"}])
    with app.app_context():
        workshop, parking, again = db.session.execute(
            select(EventQuestion.id).order_by(EventQuestion.position, EventQuestion.id)).scalars()
    register(client, "symposium-1", email="a@example.ca", sector="health-care",
             **{f"q_{workshop}": "Privacy", f"q_{parking}": "y"})
    register(client, "symposium-1", email="b@example.ca", **{f"q_{workshop}": "Outcomes"})
    auth.login(organizer)
    response = client.get(f"/admin/events/{event_id}/attendees.csv", headers={"Accept-Language": "fr"})
    assert "-inscriptions-" in response.headers["Content-Disposition"]
    header, seat, waiting = csv.reader(io.StringIO(response.get_data(as_text=True).removeprefix("\ufeff")))
    assert header[:7] == ["Numéro d'inscription", "Statut", "Numéro sur la liste d'attente", "Nom", "Courriel",
                          "Organisation", "Secteur"]
    assert header[11:] == ["Date d'inscription (heure de Winnipeg)", "Arrivée (heure de Winnipeg)", "Quel atelier?",
                           f"Need parking (q{parking})", f"Need parking (q{again})"]
    assert seat[1:2] + seat[6:7] + seat[13:] == ["Confirmé", "Soins de santé", "Vie privée", "oui", "non"]
    assert waiting[1] == "En liste d'attente" and waiting[13:] == ["Résultats", "non", "non"]
    with app.app_context():
        created = db.session.execute(select(Registration.created_at).order_by(Registration.id)).scalars().first()
    from zoneinfo import ZoneInfo

    assert seat[11] == created.astimezone(ZoneInfo("America/Winnipeg")).strftime("%Y-%m-%d %H:%M")
    english = client.get(f"/admin/events/{event_id}/attendees.xlsx")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(english.get_data())).active
    assert sheet.title == "Registrations" and sheet["B1"].value == "Status" and sheet["B2"].value == "Confirmed"
    assert sheet["N2"].value == "Privacy" and sheet["O2"].value == "yes"


def test_an_event_people_registered_for_cannot_go_back_to_draft(app, client, auth, organizer, make_event):
    """Found by a review: it went back silently; its page and every link in the registrants'
    emails then answered 404 while their manage pages still said they had a seat."""
    event_id = make_event()
    register(client, "symposium-1", email="held@example.ca")
    auth.login(organizer)
    token = csrf_token(client, f"/admin/events/{event_id}")
    refused = client.post(f"/admin/events/{event_id}/status", data={"csrf_token": token, "status": "draft"})
    assert refused.status_code == 409
    assert "cannot go back to being a draft" in refused.get_data(as_text=True).replace("&#39;", "'")
    with app.app_context():
        assert db.session.get(Event, event_id).status == "published"
    assert client.get("/events/symposium-1").status_code == 200


def test_the_community_filter_offers_each_community_once_however_typed(app, client, auth, organizer, make_event):
    """Found by a review: 'Sudbury' and 'sudbury' were two options giving the same matches."""
    event_id = make_event()
    register(client, "symposium-1", email="a@example.ca", community="Sudbury")
    register(client, "symposium-1", email="b@example.ca", community="Sudbury")
    register(client, "symposium-1", email="c@example.ca", community="sudbury")
    register(client, "symposium-1", email="d@example.ca", community="Timmins")
    auth.login(organizer)
    page = client.get(f"/admin/events/{event_id}/attendees").get_data(as_text=True)
    options = re.findall(r'<option value="([^"]*)"[^>]*>', page.split('name="community"', 1)[1].split("</select>", 1)[0])
    assert [o for o in options if o] == ["Sudbury", "Timmins"]
    assert "3 registrations" in client.get(f"/admin/events/{event_id}/attendees?community=Sudbury").get_data(
        as_text=True)


def test_registrations_over_time_show_the_quiet_days_and_go_by_week_over_a_long_span(app_context, make_event):
    """Found by a review: with registrations on Nov 20, Dec 3 and Dec 7 the chart showed three
    bars side by side, hiding the gaps."""
    from datetime import UTC, date, datetime, timedelta

    from portal.core import clock
    from portal.events import services

    event = db.session.get(Event, make_event(capacity=50, starts_in=timedelta(days=300)))
    for n, day in enumerate((date(2026, 11, 20), date(2026, 11, 23), date(2026, 11, 23))):
        clock.set_now(datetime(day.year, day.month, day.day, 17, tzinfo=UTC))
        services.register_for_event(event.id, services.RegistrationDetails(
            email=f"r{n}@example.ca", name=f"R {n}", organization="Org", sector_slug="police", community="Sudbury"))
    db.session.commit()
    unit, series = services.registrations_over_time(event)
    assert unit == "day"
    assert series == [(date(2026, 11, 20), 1), (date(2026, 11, 21), 0), (date(2026, 11, 22), 0),
                      (date(2026, 11, 23), 2)]
    clock.set_now(datetime(2027, 3, 1, 17, tzinfo=UTC))  # 101 days later: by week
    services.register_for_event(event.id, services.RegistrationDetails(
        email="late@example.ca", name="Late", organization="Org", sector_slug="police", community="Sudbury"))
    db.session.commit()
    unit, series = services.registrations_over_time(event)
    assert unit == "week" and series[:2] == [(date(2026, 11, 16), 1), (date(2026, 11, 23), 2)]
    assert series[-1] == (date(2027, 3, 1), 1)
    assert len(series) == 16 and sum(count for _week, count in series) == 4
