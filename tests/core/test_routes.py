"""One walk over every route: organizer pages need login and the role; every POST needs CSRF."""
from __future__ import annotations

import pytest

from portal.extensions import db

#: POST endpoints that must work without a CSRF token, and why.
CSRF_EXEMPT = {
    # RFC 8058 one-click unsubscribe: mail providers POST without cookies or tokens.
    "lists.one_click_unsubscribe",
}


def _sample_url(app, rule) -> str:
    values = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__
        values[name] = 1 if "Integer" in kind or "Number" in kind else "x"
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def _rules(app):
    return [r for r in app.url_map.iter_rules() if r.endpoint != "static"]


def test_every_admin_route_is_declared_for_organizers(app):
    for rule in _rules(app):
        view = app.view_functions[rule.endpoint]
        if rule.rule.startswith("/admin"):
            assert hasattr(view, "required_role"), f"{rule.rule} has no role check"


def test_anonymous_visitors_are_sent_to_login_from_organizer_pages(app, client):
    checked = 0
    for rule in _rules(app):
        view = app.view_functions[rule.endpoint]
        if not hasattr(view, "required_role") or "GET" not in rule.methods:
            continue
        response = client.get(_sample_url(app, rule))
        assert response.status_code == 302, rule.rule
        assert response.location.startswith("/login"), rule.rule
        checked += 1
    assert checked >= 1


def test_accounts_without_the_role_are_refused(app, client, auth, make):
    from portal.auth.models import OrganizerAccount, Role

    organizer = make.organizer()
    chair = make.organizer()
    with app.app_context():
        db.session.get(OrganizerAccount, chair.id).role = Role.CHAIR.value
        db.session.commit()
    checked = 0
    for account, role_name in ((chair, "_is_organizer"), (organizer, "_is_admin")):
        auth.login(account)
        for rule in _rules(app):
            view = app.view_functions[rule.endpoint]
            if getattr(view, "required_role", None) != role_name or "GET" not in rule.methods:
                continue
            response = client.get(_sample_url(app, rule))
            assert response.status_code == 403, (rule.rule, account.email)
            checked += 1
        auth.logout()
    assert checked >= 1


def test_every_post_without_a_csrf_token_is_refused(app):
    client = app.test_client()
    checked = 0
    for rule in _rules(app):
        if "POST" not in rule.methods or rule.endpoint in CSRF_EXEMPT:
            continue
        response = client.post(_sample_url(app, rule), data={"anything": "x"})
        assert response.status_code == 400, rule.rule
        assert "form expired" in response.get_data(as_text=True).lower(), rule.rule
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("path", ["/", "/login", "/privacy", "/accessibility"])
def test_public_pages_answer(client, path):
    assert client.get(path).status_code == 200


def test_no_page_repeats_an_id(app, client, auth, admin):
    """Every page has the language switch's form; its CSRF field must not take the id of the
    page's own (WCAG 2.0's 4.1.1: ids are unique)."""
    import re
    from collections import Counter

    auth.login(admin)
    pages = 0
    for rule in _rules(app):
        if "GET" not in rule.methods or rule._converters:
            continue
        response = client.get(_sample_url(app, rule))
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        pages += 1
        ids = Counter(re.findall(r'\sid="([^"]+)"', response.get_data(as_text=True)))
        repeated = [name for name, count in ids.items() if count > 1]
        assert not repeated, (rule.rule, repeated)
    assert pages > 10


def test_a_page_with_several_forms_repeats_no_id(app, client, make):
    """The manage page holds the needs form and the cancel form, each with its CSRF field."""
    from tests.events.conftest import EventFactory, register

    app.config["EVENTS_REGISTER_RATE_LIMIT"] = "1000/minute"
    EventFactory(app)()
    register(client, "symposium-1", email="ids@example.ca")
    with app.app_context():
        from portal.events.models import Registration
        from portal.events.notifications import manage_path

        link = manage_path(db.session.execute(db.select(Registration)).scalar_one())
        db.session.commit()
    import re
    from collections import Counter

    page = client.get(link).get_data(as_text=True)
    assert page.count('name="csrf_token"') >= 3  # language switch, needs, cancel
    ids = Counter(re.findall(r'\sid="([^"]+)"', page))
    assert [name for name, count in ids.items() if count > 1] == []
