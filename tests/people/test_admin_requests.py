"""Organizers handle erasure requests; each of their actions on personal data is on record."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.core.audit import AuditEntry
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.people.models import Person, PrivacyRequest
from portal.people.services import request_erasure

from tests.conftest import BACKENDS, csrf_token


def _erasure_request(app, make, email="asks@example.ca", name="Asha Requester") -> tuple[int, int]:
    person = make.person(email, name=name)
    with app.app_context():
        row = request_erasure(db.session.get(Person, person.id))
        db.session.commit()
        return person.id, row.id


def _entries(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        return db.session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars().all()


def test_organizers_see_requests_with_due_dates_and_the_view_is_on_record(app, client, auth, organizer, make):
    person_id, request_id = _erasure_request(app, make)
    auth.login(organizer)
    page = client.get("/admin/privacy/requests")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "asks@example.ca" in html and "open" in html and f"Request {request_id}" in html
    [entry] = _entries(app, "people.requests.viewed")
    assert entry.actor_id == organizer.id and entry.actor_label == organizer.email and entry.at
    detail = client.get(f"/admin/privacy/requests/{request_id}")
    assert detail.status_code == 200 and "Erase now" in detail.get_data(as_text=True)
    [entry] = _entries(app, "people.request.viewed")
    assert entry.subject == f"person:{person_id}"


def test_an_organizer_completes_an_erasure(app, client, auth, organizer, make):
    person_id, request_id = _erasure_request(app, make)
    auth.login(organizer)
    path = f"/admin/privacy/requests/{request_id}"
    unticked = client.post(path + "/complete", data={"csrf_token": csrf_token(client, path)})
    assert unticked.status_code == 400
    response = client.post(path + "/complete", data={"csrf_token": csrf_token(client, path), "confirm": "y"})
    assert response.status_code == 302
    with app.app_context():
        person = db.session.get(Person, person_id)
        assert person.erased_at is not None and person.email == f"erased-{person_id}@erased.invalid"
        request_row = db.session.get(PrivacyRequest, request_id)
        assert request_row.state == "completed" and request_row.handled_by_id == organizer.id
    [entry] = _entries(app, "people.person.erased")
    assert entry.actor_id == organizer.id and entry.subject == f"person:{person_id}"
    # Completing again: already answered, a clear 409.
    again = client.post(path + "/complete", data={"csrf_token": csrf_token(client, path), "confirm": "y"})
    assert again.status_code == 409
    assert "already been answered" in again.get_data(as_text=True)


def test_an_organizer_refuses_with_a_recorded_reason_the_person_is_told(app, client, auth, organizer, make):
    person_id, request_id = _erasure_request(app, make)
    auth.login(organizer)
    path = f"/admin/privacy/requests/{request_id}"
    blank = client.post(path + "/refuse", data={"csrf_token": csrf_token(client, path), "reason": "  "})
    assert blank.status_code == 400 and "Give the reason" in blank.get_data(as_text=True)
    reason = "Attendance records of the 2025 symposium are kept 7 years under our funding agreement."
    response = client.post(path + "/refuse", data={"csrf_token": csrf_token(client, path), "reason": reason})
    assert response.status_code == 302
    with app.app_context():
        request_row = db.session.get(PrivacyRequest, request_id)
        assert (request_row.state, request_row.refusal_reason) == ("refused", reason)
        assert db.session.get(Person, person_id).erased_at is None
        message = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "people.erasure_refused")).scalar_one()
        assert reason in message.body_text and message.person_id == person_id
    [entry] = _entries(app, "people.erasure.refused")
    assert entry.actor_id == organizer.id and entry.subject == f"person:{person_id}"


def test_unknown_and_junk_request_ids_are_4xx(client, auth, organizer):
    auth.login(organizer)
    assert client.get("/admin/privacy/requests/999999").status_code == 404
    assert client.get("/admin/privacy/requests/abc").status_code == 404
    assert client.get("/admin/privacy/requests/99999999999999999999999").status_code == 404
    token = csrf_token(client, "/admin/privacy/requests")
    assert client.post("/admin/privacy/requests/999999/complete", data={"csrf_token": token, "confirm": "y"}).status_code == 404
    assert client.post("/admin/privacy/requests/999999/refuse", data={"csrf_token": token, "reason": "x"}).status_code == 404


def test_an_access_request_cannot_be_completed_or_refused(app, client, auth, organizer, make):
    from portal.people.services import send_my_data_link

    person = make.person("reader@example.ca")
    with app.app_context():
        send_my_data_link(person.email, my_data_path=lambda raw: "/my-data/" + raw)
        db.session.commit()
        request_id = db.session.execute(select(PrivacyRequest.id)).scalar_one()
    auth.login(organizer)
    path = f"/admin/privacy/requests/{request_id}"
    token = csrf_token(client, "/admin/privacy/requests")
    assert client.post(path + "/complete", data={"csrf_token": token, "confirm": "y"}).status_code == 409
    assert client.post(path + "/refuse", data={"csrf_token": token, "reason": "no"}).status_code == 409


def test_an_erasure_request_left_open_past_30_days_shows_as_overdue(app, client, auth, organizer, make):
    from datetime import timedelta

    from portal.core import clock

    _erasure_request(app, make)
    auth.login(organizer)
    assert "overdue" not in client.get("/admin/privacy/requests").get_data(as_text=True)
    clock.advance(timedelta(days=30, minutes=1))
    auth.login(organizer)  # a month later the login session has long ended
    assert "overdue" in client.get("/admin/privacy/requests").get_data(as_text=True)


# PostgreSQL only: there a decision waits on the request's row lock while another commits;
# SQLite's writers never overlap (each begins with the write lock).
@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_refusal_that_waited_on_a_completed_erasure_is_refused_itself(app, make, organizer):
    """The page loaded the request open; a second organizer completed it meanwhile. Read
    afresh under the lock, the refusal is too late; read from the page's copy, the person
    was both erased and told no."""
    from sqlalchemy import update

    from portal.auth.models import OrganizerAccount
    from portal.people.services import RequestNotOpen, refuse_erasure

    _person_id, request_id = _erasure_request(app, make)
    with app.app_context():
        loaded = db.session.get(PrivacyRequest, request_id)
        assert loaded.state == "open"
        with db.engine.begin() as other_organizer:
            other_organizer.execute(update(PrivacyRequest).where(PrivacyRequest.id == request_id)
                                    .values(state="completed"))
        with pytest.raises(RequestNotOpen):
            refuse_erasure(loaded, actor=db.session.get(OrganizerAccount, organizer.id), reason="A record we keep.")
        db.session.rollback()
        assert db.session.execute(select(OutboxMessage).where(
            OutboxMessage.purpose == "people.erasure_refused")).first() is None
