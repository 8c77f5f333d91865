"""No 500 for anything a person can put in a URL or a form, on any route.

Each area has its own precise bad-input tests; this walk is the net under them: junk in every
URL parameter of every route, and junk posted (with a valid CSRF token) to every POST route,
as a visitor and as an organizer, must get an answer below 500.
"""
from __future__ import annotations

import pytest

from tests.conftest import csrf_token

# "\x00" reaches the view as a real NUL (url_for encodes it as %00); PostgreSQL refuses to
# even compare text holding one.
JUNK_SEGMENTS = ["0", "-1", "99999999999999999999", "%00", "\x00", "a\x00b", "é" * 3, "x" * 300,
                 "..%2f..%2fetc", "' OR 1=1 --"]

JUNK_FORM = {
    "email": "not an address" + "x" * 400,
    "name": "\u202e" * 5 + "A" * 5000,
    "organization": "☃" * 300,
    "sector": "not-a-sector",
    "community": "",
    "language": "klingon",
    "capacity": "-5",
    "quantity": "1e309",
    "starts_at": "31/31/31",
    "release_at": "yesterday",
    "id": "abc",
    "status": "'; DROP TABLE person; --",
    "title": "",
    "file": "not a file",
    "token": "x" * 1000,
    "next": "https://evil.example/",
}


def _url(app, rule, segment: str) -> str:
    from flask import url_for

    values = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__
        values[name] = (2**63 - 1 if segment == "0" else 987654) if "Integer" in kind else segment
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def _routes(app):
    return [r for r in app.url_map.iter_rules() if r.endpoint != "static"]


@pytest.mark.parametrize("as_organizer", [False, True], ids=["visitor", "organizer"])
def test_junk_in_urls_never_gets_a_500(app, client, auth, organizer, as_organizer):
    if as_organizer:
        auth.login(organizer)
    failures = []
    for rule in _routes(app):
        if "GET" not in rule.methods:
            continue
        segments = JUNK_SEGMENTS if rule._converters else ["?page=-1&q=" + "%FF" * 10 + "&sort=nonsense&status=zzz",
                                                                "?q=a%00b&action=%00&community=%00&page=%00"]
        for segment in segments:
            url = _url(app, rule, segment) if rule._converters else _url(app, rule, "") + segment
            response = client.get(url)
            if response.status_code >= 500:
                failures.append((url[:120], response.status_code))
    assert not failures, failures
    if as_organizer:
        assert client.get("/admin/").status_code == 200  # still signed in: the walk saw organizer pages


@pytest.mark.parametrize("as_organizer", [False, True], ids=["visitor", "organizer"])
def test_junk_posted_to_every_form_never_gets_a_500(app, client, auth, admin, as_organizer):
    if as_organizer:
        auth.login(admin)
    token = csrf_token(client, "/login")
    failures = []
    for rule in _routes(app):
        if "POST" not in rule.methods or rule.endpoint == "auth.logout":
            continue  # logging out mid-walk would leave the rest untested as an organizer
        url = _url(app, rule, "x")
        response = client.post(url, data=dict(JUNK_FORM, csrf_token=token))
        if response.status_code >= 500:
            failures.append((url, response.status_code))
    assert not failures, failures
    if as_organizer:
        assert client.get("/admin/").status_code == 200


def test_ids_too_large_for_the_database_are_not_found(app, client):
    int_routes = [r for r in _routes(app) if "GET" in r.methods and any(
        "Integer" in type(c).__name__ for c in r._converters.values())]
    assert int_routes, "no route takes an integer id"
    for rule in int_routes:
        url = _url(app, rule, "x").replace("987654", "9" * 30)
        assert client.get(url).status_code in (302, 404), url


def _public_list(app) -> None:
    from portal.extensions import db
    from portal.lists.services import save_public_list

    with app.app_context():
        save_public_list(None, slug="symposium-announcements", name_en="Symposium announcements")
        db.session.commit()


def test_noncharacters_are_refused_beside_the_field_and_never_reach_a_spreadsheet(app, client):
    """Found by a review: a name holding U+FFFF was accepted, and every Excel export of the
    event was then a damaged file (XML cannot hold it)."""
    from portal.core.spreadsheets import xlsx_row

    page = "/lists/symposium-announcements/subscribe"
    _public_list(app)
    answer = client.post(page, data={"email": "ana@example.ca", "name": "Ana\uffffLopez", "language": "en",
                                     "consent": "y", "csrf_token": csrf_token(client, page)})
    assert answer.status_code == 400
    assert "Remove the invisible control characters" in answer.get_data(as_text=True)

    from openpyxl import Workbook

    sheet = Workbook(write_only=True).create_sheet()
    [cell] = xlsx_row(sheet, ["Ana\uffffLopez\x00"])
    assert cell.value == "AnaLopez"


def test_a_forged_user_agent_with_nul_is_stored_without_it(app, client):
    """PostgreSQL refuses text holding NUL: a header nobody checks answered 500 there."""
    from sqlalchemy import select

    from portal.extensions import db
    from portal.lists.models import Subscription

    _public_list(app)
    page = "/lists/symposium-announcements/subscribe"
    answer = client.post(page, headers={"User-Agent": "Mozilla\x00evil\x01"},
                         data={"email": "ana@example.ca", "name": "Ana", "language": "en", "consent": "y",
                               "csrf_token": csrf_token(client, page)})
    assert answer.status_code in (200, 302), answer.status_code
    with app.app_context():
        agents = db.session.execute(select(Subscription.requested_user_agent)).scalars().all()
    assert agents == ["Mozillaevil"]
