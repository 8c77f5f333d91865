"""Junk in every field and URL of events: a clear message and a 4xx, never a 500."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.events.models import EventQuestion, Registration
from portal.extensions import db
from tests.conftest import csrf_token
from tests.events.conftest import form_data, register

LONG = "x" * 5000
UNICODE = "ünïcødé ✓ 名前 \u202e"


@pytest.fixture
def setup(app, client, make_event):
    event_id = make_event(capacity=1, questions=[
        {"label": "Workshop", "kind": "single_choice", "required": True, "choices_text": "A\nB"},
        {"label": "Topics", "kind": "multiple_choice", "choices_text": "X\nY"}])
    other_id = make_event(slug="other")
    with app.app_context():
        questions = [q.id for q in db.session.execute(select(EventQuestion).order_by(EventQuestion.id)).scalars()]
    register(client, "symposium-1", email="a@example.ca", **{f"q_{questions[0]}": "A"})
    with app.app_context():
        registration_id = db.session.execute(select(Registration.id)).scalar_one()
    return event_id, other_id, questions, registration_id


def test_public_urls_and_registration_form_refuse_junk(app, client, setup):
    _event_id, _other, questions, _registration_id = setup
    for path in ["/events/" + LONG, "/events/" + UNICODE, "/events/nope", "/events/nope/register",
                 "/events/nope/registered", "/events/manage/" + LONG, "/events/manage/" + UNICODE,
                 "/events/manage/%00", "/events/a%00b", "/events/a%00b/register", "/events/manage/a%00b"]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Page not found" in response.get_data(as_text=True) or "not valid" in response.get_data(as_text=True)
    stranger = app.test_client()
    assert stranger.get("/events/symposium-1/registered").status_code == 302  # nothing to show: back to the event

    q = f"q_{questions[0]}"
    cases = [
        ({"name": LONG}, "Field cannot be longer"),
        ({"email": "not an email"}, "Enter a valid email address"),
        ({"email": LONG + "@example.ca"}, "Field cannot be longer"),
        ({"email": "zoé@exämple.ca"}, "unaccented"),
        ({"sector": "not-a-sector"}, "Not a valid choice"),
        ({"sector": None, "organization": None, "community": None}, "Enter your organization"),
        ({"privacy": None}, "You must agree"),
        ({q: "C"}, "Not a valid choice"),
        ({q: LONG}, "Not a valid choice"),
        ({f"q_{questions[1]}": ["X", "Z"]}, "not a valid choice"),
        ({"accessibility_needs": LONG}, "Field cannot be longer"),
        ({"community": UNICODE * 30}, "Field cannot be longer"),
        # Nobody types control characters; PostgreSQL would refuse a NUL with a 500.
        ({"name": "Bo\x00b"}, "invisible control characters"),
        ({"dietary_needs": "x\x00y"}, "invisible control characters"),
        ({"organization": "Org\x1b[31m"}, "invisible control characters"),
        ({"community": "\x07"}, "invisible control characters"),
        ({"name": "\u200b\u200b"}, "Enter visible text in this field."),  # looks blank, is not empty
        # A forged line break would put lines of the sender's choosing into the confirmation.
        ({"name": 'Eve "x\r\nBcc: injected@evil.example'}, "Write this on one line."),
        ({"organization": "Org\nSee https://evil.example"}, "Write this on one line."),
    ]
    for overrides, message in cases:
        data = form_data(client, "symposium-1", **{q: "A", "email": "b@example.ca", **overrides})
        response = client.post("/events/symposium-1/register", data=data)
        body = response.get_data(as_text=True)
        assert response.status_code == 400, (overrides, response.status_code)
        assert message.lower() in body.lower(), (overrides, message)
    with app.app_context():  # none of that registered anyone
        assert db.session.execute(select(Registration.id)).scalars().all() == [_registration_id]
    assert client.post("/events/symposium-1/register", data={"name": "x"}).status_code == 400  # no CSRF
    assert client.post("/events/nope/register", data=form_data(client, "symposium-1")).status_code == 404


def test_manage_forms_refuse_junk(app, client, setup):
    with app.app_context():
        from portal.events.notifications import manage_path

        link = manage_path(db.session.get(Registration, setup[3]))
        db.session.commit()
    token = csrf_token(client, link)
    response = client.post(link, data={"csrf_token": token, "accessibility_needs": LONG, "dietary_needs": UNICODE})
    assert response.status_code == 400 and "Field cannot be longer" in response.get_data(as_text=True)
    assert client.post(link + "/cancel", data={}).status_code == 400
    assert client.post("/events/manage/" + "A" * 43 + "/cancel", data={"csrf_token": token}).status_code == 404


def test_a_choice_sent_several_times_is_kept_once(app, client, auth, organizer, setup):
    """A browser sends a ticked box once; a forged post repeated it, and the answer was stored
    as ["X", "X", "X"] and counted three times on the dashboard."""
    event_id, _other, questions, _registration_id = setup
    workshop, topics = (f"q_{question}" for question in questions)
    public = register(client, "symposium-1", email="b@example.ca", **{workshop: "A", topics: ["X", "X", "Y", "X"]})
    assert public.status_code == 302
    auth.login(organizer)
    path = f"/admin/events/{event_id}/attendees/new"
    added = client.post(path, data={
        "csrf_token": csrf_token(client, path), "name": "Bo", "email": "c@example.ca", "organization": "Org",
        "sector": "police", "community": "Ottawa", "language": "en", "privacy": "y",
        workshop: "B", topics: ["X", "X", "X"]})
    assert added.status_code == 302
    with app.app_context():
        stored = dict(db.session.execute(select(Registration.id, Registration.answers)).all())
    assert sorted(answers.get(str(questions[1])) or [] for answers in stored.values()) == [[], ["X"], ["X", "Y"]]
    dashboard = client.get(f"/admin/events/{event_id}").get_data(as_text=True)
    # One confirmed (capacity 1, no topics), two waitlisted: X ticked by both of them, Y by one.
    assert re.search(r'<th scope="row">X</th><td>0</td><td>2</td>', dashboard), dashboard
    assert re.search(r'<th scope="row">Y</th><td>0</td><td>1</td>', dashboard), dashboard


def test_french_options_must_differ_as_the_english_ones_do(app, client, auth, organizer, setup):
    event_id = setup[0]
    auth.login(organizer)
    path = f"/admin/events/{event_id}/questions"
    token = csrf_token(client, path)
    for english, french, beside in (("A\na", "", "choices_text"), ("A\nB", "x\nX ", "choices_fr_text")):
        response = client.post(path, data={"csrf_token": token, "label": "Meal", "kind": "single_choice",
                                           "choices_text": english, "choices_fr_text": french})
        assert response.status_code == 400, french
        error = re.search(f'id="{beside}-error">(.*?)</p>', response.get_data(as_text=True), re.S)
        assert error and "Each option must be different." in error.group(1), (english, french)
    with app.app_context():
        assert db.session.execute(select(EventQuestion.id).where(EventQuestion.label == "Meal")).first() is None


def test_page_links_carry_only_the_filters_not_whatever_else_the_address_held(client, auth, organizer, setup):
    event_id, _other, questions, _registration_id = setup
    register(client, "symposium-1", email="b@example.ca", **{f"q_{questions[0]}": "B"})  # two rows, two pages
    auth.login(organizer)
    base = f"/admin/events/{event_id}/attendees?per_page=1&sort=name"
    # Each of these is also an argument of url_for itself: passed on, they were a 500 or a link elsewhere.
    for extra in ["event_id=2", "endpoint=x", "_method=POST", "_anchor=x", "_external=1", "_scheme=gopher",
                  "page=1&event_id=2"]:
        response = client.get(f"{base}&{extra}")
        body = response.get_data(as_text=True)
        assert response.status_code == 200, (extra, response.status_code)
        assert f'href="/admin/events/{event_id}/attendees?page=2&amp;sort=name&amp;per_page=1"' in body, extra


def test_organizer_urls_and_forms_refuse_junk(client, auth, organizer, setup):
    event_id, other_id, questions, registration_id = setup
    auth.login(organizer)
    for path in ["/admin/events/abc", "/admin/events/999999", "/admin/events/99999999999999999999",
                 "/admin/events/-1", f"/admin/events/{event_id}/attendees/99999999999",
                 f"/admin/events/{other_id}/attendees/{registration_id}", "/admin/events/1.5/edit"]:
        assert client.get(path).status_code == 404, path
    base = f"/admin/events/{event_id}"
    for query in ["status=bogus", "sector=" + UNICODE, "sort=drop%20table", "order=sideways", "q=" + LONG,
                  "community=" + LONG]:
        response = client.get(f"{base}/attendees?{query}")
        body = response.get_data(as_text=True)
        assert response.status_code == 400, query
        assert "There is a problem" in body and "registrations match" not in body, query  # no false "0 match"
    # Paging someone edited in the address is brought back within range, not refused.
    for query in ["page=abc", "page=0", "page=-1", "page=999999", "per_page=100000", "per_page=0", "per_page=x"]:
        response = client.get(f"{base}/attendees?{query}")
        body = response.get_data(as_text=True)
        assert response.status_code == 200, query
        assert "1 registration matches." in body and "Page 1 of 1" in body, query
    assert client.get(f"{base}/check-in?q={LONG}").status_code == 400
    token = csrf_token(client, f"{base}/check-in")
    posts = [
        (f"{base}/status", {"status": "exploded"}, 400),
        (f"{base}/status", {"status": LONG}, 400),
        (f"{base}/questions", {"label": LONG, "kind": "short_text"}, 400),
        (f"{base}/questions", {"label": "Q", "kind": "essay"}, 400),
        (f"{base}/questions/{questions[0] + 1000}/delete", {}, 404),
        (f"/admin/events/{other_id}/questions/{questions[0]}/delete", {}, 404),
        (f"{base}/questions/{questions[0]}/edit", {"label": LONG, "kind": "essay"}, 400),
        (f"/admin/events/{other_id}/questions/{questions[0]}/edit", {"label": "Q", "kind": "short_text"}, 404),
        (f"{base}/questions/99999999999/edit", {}, 404),
        (f"{base}/check-in/scan", {"code": LONG}, 400),
        (f"{base}/check-in/scan", {"code": UNICODE}, 400),
        (f"{base}/check-in/scan", {}, 400),
        (f"{base}/check-in/99999999999", {}, 404),
        (f"/admin/events/{other_id}/check-in/{registration_id}", {}, 404),
        (f"{base}/message", {"recipients": ["everyone"], "subject": "x", "body": "y"}, 400),
        (f"{base}/message", {"recipients": ["confirmed"], "subject": LONG, "body": "y"}, 400),
        (f"{base}/edit", {"title": "", "capacity": "-5", "starts_at": "31/02/2027"}, 400),
        (f"{base}/attendees/{registration_id}", {"accessibility_needs": LONG}, 400),
        (f"{base}/attendees/99999999999/cancel", {}, 404),
        ("/admin/events/new", {"slug": UNICODE, "title": UNICODE, "capacity": "1e9",
                               "sector_cap_percent": "150", "reminder_days": "x"}, 400),
        # A folder of the zone database, not a zone: ZoneInfo("America") opens a directory.
        ("/admin/events/new", {"timezone": "America", "starts_at": "2027-05-12T08:30"}, 400),
        (f"{base}/edit", {"timezone": "Etc", "starts_at": "2027-05-12T08:30"}, 400),
        (f"{base}/edit", {"timezone": "x" * 10000, "starts_at": "2027-05-12T08:30"}, 400),
    ]
    for path, data, expected in posts:
        response = client.post(path, data={"csrf_token": token, **data})
        assert response.status_code == expected, (path, data.keys(), response.status_code)
