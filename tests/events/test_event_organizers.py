"""Each event is run by its own organizers: only they (and admins) see its attendees and needs."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.auth.models import OrganizerAccount, Role
from portal.core.audit import AuditEntry
from portal.events.models import EventOrganizer, Registration
from portal.extensions import db
from tests.conftest import csrf_token
from tests.events.conftest import register
from tests.events.test_admin import EVENT_FORM


def _event_pages(event_id: int, registration_id: int) -> list[tuple[str, str, dict]]:
    base = f"/admin/events/{event_id}"
    return [
        ("GET", base, {}), ("GET", f"{base}/edit", {}), ("GET", f"{base}/questions", {}),
        ("GET", f"{base}/attendees", {}), ("GET", f"{base}/attendees/{registration_id}", {}),
        ("GET", f"{base}/attendees.csv", {}), ("GET", f"{base}/attendees.xlsx", {}),
        ("GET", f"{base}/check-in?q=ada", {}), ("GET", f"{base}/message", {}), ("GET", f"{base}/organizers", {}),
        ("POST", f"{base}/attendees/{registration_id}", {"accessibility_needs": "changed", "dietary_needs": ""}),
        ("POST", f"{base}/attendees/{registration_id}/cancel", {}),
        ("POST", f"{base}/check-in/{registration_id}", {}),
        ("POST", f"{base}/status", {"status": "cancelled"}),
        ("POST", f"{base}/message", {"recipients": "confirmed", "subject": "Hi", "body": "Hello", "action": "send",
                                    "batch": "e" * 16}),
        ("GET", f"{base}/attendees/new", {}),
        ("POST", f"{base}/attendees/{registration_id}/seat", {}),
        ("POST", f"{base}/attendees/new", {"name": "Intruder", "email": "intruder@example.ca", "organization": "X",
                                           "sector": "police", "community": "X", "language": "en", "privacy": "y"}),
    ]


def _registration_id(app) -> int:
    with app.app_context():
        return db.session.execute(select(Registration.id)).scalar_one()


def test_an_organizer_of_another_event_sees_nothing_of_this_one(app, client, auth, make, make_event):
    event_id = make_event(run_by_organizers=False)
    register(client, "symposium-1", email="ada@example.ca", accessibility_needs="ASL interpreter",
             dietary_needs="Halal")
    registration_id = _registration_id(app)
    outsider = make.organizer()
    auth.login(outsider)
    token = csrf_token(client, "/admin/events")
    for method, path, form in _event_pages(event_id, registration_id):
        response = client.open(path, method=method, data={**form, "csrf_token": token} if method == "POST" else None)
        body = response.get_data(as_text=True)
        assert response.status_code == 403, (method, path)
        assert "ASL interpreter" not in body and "Halal" not in body and "ada@example.ca" not in body
    with app.app_context():  # nothing changed
        registration = db.session.get(Registration, registration_id)
        assert registration.status == "confirmed" and registration.accessibility_needs == "ASL interpreter"
        assert registration.checked_in_at is None
    listing = client.get("/admin/events").get_data(as_text=True)
    assert "Symposium 1" in listing and f'href="/admin/events/{event_id}"' not in listing
    assert "Run by other organizers" in listing


def test_another_events_registration_or_question_through_ones_own_event_is_a_logged_404(
        app, client, auth, organizer, make_event, caplog):
    """The pages of an event one runs, given an id of another event's registration or
    question: the same 404 as an unknown id, and, as every refused authorization, logged
    (a review found these refusals left no trace)."""
    from portal.events.models import EventQuestion

    theirs = make_event(run_by_organizers=False, questions=[{"label": "Badge", "kind": "short_text"}])
    mine = make_event()
    register(client, "symposium-1", email="ada@example.ca")
    registration_id = _registration_id(app)
    with app.app_context():
        question_id = db.session.execute(select(EventQuestion.id).where(EventQuestion.event_id == theirs)).scalar_one()
    auth.login(organizer)
    token = csrf_token(client, "/admin/events")
    caplog.set_level("WARNING")
    for path in (f"/admin/events/{mine}/attendees/{registration_id}/cancel",
                 f"/admin/events/{mine}/questions/{question_id}/delete"):
        assert client.post(path, data={"csrf_token": token}).status_code == 404
        assert f"authorization refused: account={organizer.id} path={path}" in caplog.text
    with app.app_context():
        assert db.session.get(Registration, registration_id).status == "confirmed"
        assert db.session.get(EventQuestion, question_id) is not None


def test_admins_run_every_event_and_organizers_their_own(app, client, auth, make, make_event, admin):
    event_id = make_event(run_by_organizers=False)
    register(client, "symposium-1", email="ada@example.ca", accessibility_needs="ASL interpreter")
    registration_id = _registration_id(app)
    auth.login(admin)
    page = client.get(f"/admin/events/{event_id}/attendees/{registration_id}")
    assert page.status_code == 200 and "ASL interpreter" in page.get_data(as_text=True)
    auth.logout()
    member = make.organizer()
    with app.app_context():
        db.session.add(EventOrganizer(event_id=event_id, account_id=member.id))
        db.session.commit()
    auth.login(member)
    page = client.get(f"/admin/events/{event_id}/attendees/{registration_id}")
    assert page.status_code == 200 and "ASL interpreter" in page.get_data(as_text=True)
    assert f'href="/admin/events/{event_id}"' in client.get("/admin/events").get_data(as_text=True)


def test_whoever_creates_an_event_runs_it_and_no_other_organizer_does(app, client, auth, make):
    creator, colleague = make.organizer(), make.organizer()
    auth.login(creator)
    token = csrf_token(client, "/admin/events/new")
    created = client.post("/admin/events/new", data={**EVENT_FORM, "csrf_token": token})
    assert created.status_code == 302
    event_id = int(re.search(r"/admin/events/(\d+)", created.headers["Location"]).group(1))
    assert client.get(f"/admin/events/{event_id}/attendees").status_code == 200
    auth.logout()
    auth.login(colleague)
    assert client.get(f"/admin/events/{event_id}/attendees").status_code == 403


def test_a_team_adds_and_removes_organizers_on_the_organizers_page(app, client, auth, make, make_event):
    runner = make.organizer()
    event_id = make_event()  # run by `runner`
    colleague = make.organizer()
    auth.login(runner)
    path = f"/admin/events/{event_id}/organizers"
    page = client.get(path).get_data(as_text=True)
    assert runner.email in page and f'<option value="{colleague.id}">' in page
    token = csrf_token(client, path)
    added = client.post(path, data={"csrf_token": token, "account": str(colleague.id)})
    assert added.status_code == 302
    again = client.post(path, data={"csrf_token": token, "account": str(colleague.id)})
    assert again.status_code == 400  # no longer offered: the choice is refused, nothing doubled
    with app.app_context():
        team = set(db.session.execute(
            select(EventOrganizer.account_id).where(EventOrganizer.event_id == event_id)).scalars())
        assert team == {runner.id, colleague.id}
        actions = list(db.session.execute(select(AuditEntry.action)).scalars())
        assert actions.count("events.organizer.added") == 1
    auth.logout()
    auth.login(colleague)
    assert client.get(f"/admin/events/{event_id}/attendees").status_code == 200
    auth.logout()
    auth.login(runner)
    token = csrf_token(client, path)
    removed = client.post(f"{path}/{colleague.id}/remove", data={"csrf_token": token})
    assert removed.status_code == 302 and removed.headers["Location"].endswith(path)
    assert client.post(f"{path}/{colleague.id}/remove", data={"csrf_token": token}).status_code == 404
    left = client.post(f"{path}/{runner.id}/remove", data={"csrf_token": token})
    assert left.status_code == 302 and left.headers["Location"].endswith("/admin/events")
    assert client.get(f"/admin/events/{event_id}/attendees").status_code == 403
    with app.app_context():
        assert db.session.execute(select(EventOrganizer).where(EventOrganizer.event_id == event_id)).first() is None
        assert "events.organizer.removed" in db.session.execute(select(AuditEntry.action)).scalars().all()


@pytest.mark.parametrize("who", ["chair", "inactive", "nobody", "garbage"])
def test_only_active_organizer_accounts_can_join_a_team(app, client, auth, make, make_event, who):
    runner = make.organizer()
    event_id = make_event()
    other = make.organizer()
    with app.app_context():
        account = db.session.get(OrganizerAccount, other.id)
        if who == "chair":
            account.role = Role.CHAIR.value
        elif who == "inactive":
            account.active = False
        db.session.commit()
    value = {"nobody": "999999", "garbage": "x' OR 1=1"}.get(who, str(other.id))
    auth.login(runner)
    path = f"/admin/events/{event_id}/organizers"
    response = client.post(path, data={"csrf_token": csrf_token(client, path), "account": value})
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="account-error"' in body
    with app.app_context():
        team = set(db.session.execute(
            select(EventOrganizer.account_id).where(EventOrganizer.event_id == event_id)).scalars())
        assert team == {runner.id}


def test_adding_to_a_team_without_a_csrf_token_is_refused(app, client, auth, make, make_event):
    runner = make.organizer()
    event_id = make_event()
    colleague = make.organizer()
    auth.login(runner)
    response = client.post(f"/admin/events/{event_id}/organizers", data={"account": str(colleague.id)})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.execute(select(EventOrganizer).where(
            EventOrganizer.account_id == colleague.id)).first() is None


def test_the_service_refuses_a_chair_and_ignores_a_second_add(app_context, make, make_event):
    from portal.events import services
    from portal.events.models import Event

    runner = make.organizer()
    event_id = make_event()
    chair, admin = make.organizer(), make.organizer(admin=True)
    db.session.rollback()  # read what the factories committed
    event = db.session.get(Event, event_id)
    db.session.get(OrganizerAccount, chair.id).role = Role.CHAIR.value
    with pytest.raises(services.NotAnOrganizer):
        services.add_event_organizer(event, chair.id, actor=None)
    services.add_event_organizer(event, admin.id, actor=None)
    services.add_event_organizer(event, admin.id, actor=None)
    assert {a.id for a in services.event_organizers(event)} == {runner.id, admin.id}
    assert services.runs_event(db.session.get(OrganizerAccount, runner.id), event.id)
    assert not services.runs_event(db.session.get(OrganizerAccount, chair.id), event.id)
