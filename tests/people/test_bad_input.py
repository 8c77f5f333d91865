"""Junk on every form and URL of the people area: a clear message and a 4xx, never a 500."""
from __future__ import annotations

import pytest

from portal.extensions import db
from portal.people.models import ConsentKind, Person
from portal.people.services import record_consent, request_erasure

from tests.conftest import csrf_token
from tests.people.conftest import link_from_outbox

JUNK_EMAILS = ["", "   ", "not-an-address", "a@" + "b" * 400 + ".ca", "ünïcödé@@例え.jp", "\x00@example.ca",
               "<script>@example.ca"]


def test_my_data_request_with_junk_is_a_400_with_a_message(client):
    token = csrf_token(client, "/my-data")
    for email in JUNK_EMAILS:
        response = client.post("/my-data", data={"email": email, "csrf_token": token})
        assert response.status_code == 400, email
        assert "There is a problem" in response.get_data(as_text=True)


def test_my_data_request_without_the_field_is_a_400(client):
    response = client.post("/my-data", data={"csrf_token": csrf_token(client, "/my-data")})
    assert response.status_code == 400


def test_junk_links_are_the_common_404(client):
    for token in ["x", "A" * 43, "A" * 500, "ünïcödé", "%00", "..%2F..%2Fetc"]:
        for suffix in ["", "/export.json", "/export.csv"]:
            response = client.get(f"/my-data/{token}{suffix}")
            assert response.status_code == 404, (token, suffix)
            html = response.get_data(as_text=True)
            assert "not valid" in html or "not find" in html


@pytest.fixture
def link(app, client, make):
    person = make.person("junk@example.ca", name="Jun K")
    with app.app_context():
        record_consent(db.session.get(Person, person.id), purpose="list:news", kind=ConsentKind.EXPRESS)
        db.session.commit()
    client.post("/my-data", data={"email": "junk@example.ca", "csrf_token": csrf_token(client, "/my-data")})
    with app.app_context():
        return link_from_outbox(person.id)


DETAIL_JUNK = [
    {"name": "n" * 201},
    {"organization": "o" * 201},
    {"community": "c" * 121},
    {"job_title": "j" * 201},
    {"sector": "not-a-sector"},
    {"sector": "1"},
    {"language": "de"},
    {"language": ""},
]


def test_correcting_details_with_junk_is_a_400(app, client, link):
    token = csrf_token(client, link)
    for changes in DETAIL_JUNK:
        data = {"name": "Jun K", "organization": "", "sector": "", "community": "", "job_title": "",
                "language": "en", **changes, "csrf_token": token}
        response = client.post(link + "/details", data=data)
        assert response.status_code == 400, changes
        assert "There is a problem" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(Person.name).where(Person.email == "junk@example.ca")).scalar_one() == "Jun K"
    # A sector of only spaces is no sector chosen, not a 500.
    response = client.post(link + "/details", data={"name": "Jun K", "organization": "", "sector": " ",
                                                     "community": "", "job_title": "", "language": "en",
                                                     "csrf_token": token})
    assert response.status_code == 302


WITHDRAW_JUNK = [
    {},
    {"withdraw-0-purpose": ""},
    {"withdraw-0-purpose": "p" * 500},
    {"withdraw-0-purpose": "list:somebody-elses"},
    {"withdraw-0-purpose": "ünïcödé"},
    {"withdraw-xxxxxxxxxxxxxxxxxxxxxxxxxxxxx-purpose": "list:news"},
]


def test_withdrawing_junk_is_a_400_and_asking_erasure_needs_the_box(client, link):
    token = csrf_token(client, link)
    for form in WITHDRAW_JUNK:
        response = client.post(link + "/withdraw", data={"csrf_token": token, "withdraw-0-csrf_token": token, **form})
        assert response.status_code == 400, form
    for data in ({"csrf_token": token}, {"csrf_token": token, "confirm": ""}):
        assert client.post(link + "/erasure", data=data).status_code == 400


def test_posts_to_a_junk_link_are_404(client, link):
    token = csrf_token(client, link)
    for action in ("details", "withdraw", "erasure"):
        assert client.post(f"/my-data/nope/{action}", data={"csrf_token": token}).status_code == 404


def test_refusing_with_a_junk_reason_is_a_400(app, client, auth, organizer, make):
    person = make.person()
    with app.app_context():
        request_id = request_erasure(db.session.get(Person, person.id)).id
        db.session.commit()
    auth.login(organizer)
    path = f"/admin/privacy/requests/{request_id}"
    token = csrf_token(client, path)
    for reason in ("", "   ", "r" * 2001):
        response = client.post(path + "/refuse", data={"csrf_token": token, "reason": reason})
        assert response.status_code == 400, reason
        assert "There is a problem" in response.get_data(as_text=True)


def test_the_my_data_pages_speak_the_persons_language(app, client, make):
    person = make.person("lecteur@example.ca", name="Lecteur", language="fr")
    client.post("/my-data", data={"email": "lecteur@example.ca", "csrf_token": csrf_token(client, "/my-data")})
    with app.app_context():
        path = link_from_outbox(person.id)
    page = client.get(path, headers={"Accept-Language": "en-CA"}).get_data(as_text=True)
    assert '<html lang="fr">' in page
