"""Walk every /admin/groups route: who gets in, who is refused."""
from __future__ import annotations

import pytest
from flask import url_for

from portal.extensions import db
from tests.conftest import csrf_token


def _groups_admin_rules(app):
    return [r for r in app.url_map.iter_rules()
            if r.endpoint.startswith("groups.") and r.rule.startswith("/admin/groups")]


@pytest.fixture
def two_groups(app, groups):
    from portal.groups.models import WorkingGroup
    from portal.groups.services import add_document

    a = groups.group("group-a", "Group A")
    b = groups.group("group-b", "Group B")
    ids = {}
    for info in (a, b):
        membership_id = groups.member(info, f"member@{info.slug}.example.ca")
        with app.app_context():
            document = add_document(db.session.get(WorkingGroup, info.id), title="Minutes",
                                    url="https://example.ca/m", actor=None)
            db.session.commit()
            ids[info.slug] = {"membership_id": membership_id, "document_id": document.id}
    return a, b, ids


def _url(app, rule, slug, ids) -> str:
    values = {}
    if "slug" in rule.arguments:
        values["slug"] = slug
    for name in ("membership_id", "document_id"):
        if name in rule.arguments:
            values[name] = ids[slug][name]
    if "account_id" in rule.arguments:
        values["account_id"] = 999999  # POST only: the check comes before the lookup
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def _request(client, rule, url, token):
    if "GET" in rule.methods:
        return client.get(url)
    return client.post(url, data={"csrf_token": token})


def test_every_groups_admin_route_declares_its_check(app):
    rules = _groups_admin_rules(app)
    assert len(rules) >= 10
    for rule in rules:
        role = getattr(app.view_functions[rule.endpoint], "required_role", None)
        assert role in ("_is_group_manager", "_is_organizer"), rule.rule


def test_anonymous_visitors_go_to_login(app, client, two_groups):
    a, _b, ids = two_groups
    token = csrf_token(client, "/groups")
    for rule in _groups_admin_rules(app):
        response = _request(client, rule, _url(app, rule, a.slug, ids), token)
        assert response.status_code == 302, rule.rule
        assert response.location.startswith("/login"), rule.rule


def test_a_chair_manages_only_their_own_group(app, client, auth, groups, two_groups):
    a, b, ids = two_groups
    chair = groups.chair(a)
    auth.login(chair)
    token = csrf_token(client, "/groups")
    for rule in _groups_admin_rules(app):
        role = app.view_functions[rule.endpoint].required_role
        if "slug" in rule.arguments:
            other = _request(client, rule, _url(app, rule, b.slug, ids), token)
            assert other.status_code == 403, ("group B", rule.rule)
        own = _request(client, rule, _url(app, rule, a.slug, ids), token) if "GET" in rule.methods else None
        if own is None:
            continue
        if role == "_is_organizer":
            assert own.status_code == 403, ("organizer-only", rule.rule)
        else:
            assert own.status_code == 200, ("group A", rule.rule)


def test_a_chair_sees_only_their_group_in_the_list(client, auth, groups, two_groups):
    a, _b, _ids = two_groups
    auth.login(groups.chair(a))
    page = client.get("/admin/groups").get_data(as_text=True)
    assert "Group A" in page and "Group B" not in page


def test_a_chair_account_without_a_group_is_refused(app, client, auth, make):
    from portal.auth.models import OrganizerAccount, Role

    account = make.organizer()
    with app.app_context():
        db.session.get(OrganizerAccount, account.id).role = Role.CHAIR.value
        db.session.commit()
    auth.login(account)
    assert client.get("/admin/groups").status_code == 403


def test_organizers_manage_every_group(app, client, auth, organizer, two_groups):
    a, b, ids = two_groups
    auth.login(organizer)
    for rule in _groups_admin_rules(app):
        if "GET" not in rule.methods:
            continue
        for slug in (a.slug, b.slug):
            response = client.get(_url(app, rule, slug, ids))
            assert response.status_code == 200, (slug, rule.rule)


def test_organizer_stops_a_chair_managing_the_group(app, client, auth, organizer, groups):
    from portal.core.audit import AuditEntry

    info = groups.group()
    chair = groups.chair(info)
    auth.login(organizer)
    page = f"/admin/groups/{info.slug}/chairs"
    assert chair.email in client.get(page).get_data(as_text=True)
    response = client.post(f"{page}/{chair.id}/remove", data={"csrf_token": csrf_token(client, page)})
    assert response.status_code == 302
    again = client.post(f"{page}/{chair.id}/remove", data={"csrf_token": csrf_token(client, page)})
    assert again.status_code == 404
    auth.logout()
    auth.login(chair)
    assert client.get(f"/admin/groups/{info.slug}").status_code == 403
    with app.app_context():
        from sqlalchemy import select

        assert db.session.execute(select(AuditEntry).where(
            AuditEntry.action == "groups.chair_account.revoked")).scalar_one().actor_id == organizer.id
