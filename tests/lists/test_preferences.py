"""The preference centre: a link by email (same answer whether known or not), then every list
and the language in one place."""
from __future__ import annotations

import re

from sqlalchemy import select

from portal.extensions import db
from tests.conftest import csrf_token, without_csrf_tokens
from tests.lists.conftest import add_subscriber, outbox


def _link(app):
    [message] = outbox(app, "lists.preferences")
    return re.search(r"http://portal\.test(/lists/preferences/\S+)", message.body_text).group(1)


def _second_list(app):
    from portal.lists.services import save_public_list

    with app.app_context():
        other = save_public_list(None, slug="guideline-releases", name_en="Guideline releases",
                                 name_fr="Publication des lignes directrices")
        db.session.commit()
        return other.id


def test_asking_for_the_link_answers_the_same_for_known_and_unknown(app, client, public_list):
    add_subscriber(app, public_list, "known@example.ca")
    answers = []
    for email in ("known@example.ca", "unknown@example.ca"):
        response = client.post("/lists/preferences", data={
            "email": email, "csrf_token": csrf_token(client, "/lists/preferences")})
        assert response.status_code == 302
        answers.append(without_csrf_tokens(client.get(response.location).get_data(as_text=True)))
    assert answers[0] == answers[1]
    assert len(outbox(app, "lists.preferences")) == 1
    assert "known@example.ca" in outbox(app)[0].to_address


def test_preferences_change_language_and_lists_with_ledger_rows(app, client, public_list):
    from portal.lists.models import Subscription
    from portal.people.models import ConsentRecord, Person

    other = _second_list(app)
    _, person_id, _ = add_subscriber(app, public_list, "pat@example.ca")
    client.post("/lists/preferences", data={"email": "pat@example.ca",
                                            "csrf_token": csrf_token(client, "/lists/preferences")})
    link = _link(app)
    page = client.get(link).get_data(as_text=True)
    assert "Symposium announcements" in page and "Guideline releases" in page
    # Leave the first list, join the second, switch to French.
    response = client.post(link, data={"language": "fr", "lists": [str(other)], "csrf_token": csrf_token(client, link)})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Person, person_id).language == "fr"
        statuses = {s.list_id: s.status for s in db.session.execute(
            select(Subscription).where(Subscription.person_id == person_id)).scalars()}
        assert statuses == {public_list: "unsubscribed", other: "active"}
        ledger = [(r.purpose, r.kind, r.method) for r in db.session.execute(
            select(ConsentRecord).where(ConsentRecord.person_id == person_id).order_by(ConsentRecord.id)).scalars()]
        assert sorted(ledger[1:]) == [("list:guideline-releases", "express", "preference centre (emailed link)"),
                                      ("list:symposium-announcements", "withdrawn", "preference centre")]
    # The page after saving speaks the language just chosen, its message included.
    assert "Vos choix sont enregistrés" in client.get(link).get_data(as_text=True)


def test_saving_preferences_leaves_a_subscription_awaiting_confirmation_alone(app, client, public_list):
    from portal.lists.models import Subscription

    other = _second_list(app)
    _, person_id, _ = add_subscriber(app, public_list, "olga@example.ca")
    with app.app_context():
        db.session.add(Subscription(list_id=other, person_id=person_id, status="pending",
                                    unsubscribe_salt="salt-olga", unsubscribe_token_hash="h" * 64))
        db.session.commit()
    client.post("/lists/preferences", data={"email": "olga@example.ca",
                                            "csrf_token": csrf_token(client, "/lists/preferences")})
    link = _link(app)
    assert "Waiting for your confirmation" in client.get(link).get_data(as_text=True)
    # Only the language changes; the waiting list's box was never ticked for her.
    client.post(link, data={"language": "fr", "lists": [str(public_list)], "csrf_token": csrf_token(client, link)})
    with app.app_context():
        statuses = {s.list_id: s.status for s in db.session.execute(
            select(Subscription).where(Subscription.person_id == person_id)).scalars()}
    assert statuses == {public_list: "active", other: "pending"}


def test_preferences_junk_and_bad_tokens(app, client, public_list):
    add_subscriber(app, public_list, "pat@example.ca")
    client.post("/lists/preferences", data={"email": "pat@example.ca",
                                            "csrf_token": csrf_token(client, "/lists/preferences")})
    link = _link(app)
    token = csrf_token(client, link)
    for data in ({"language": "xx"}, {"language": "en", "lists": ["abc"]}, {"language": "en", "lists": ["99999"]},
                 {}):
        assert client.post(link, data={**data, "csrf_token": token}).status_code == 400, data
    for email in ("", "nope", "é" * 400, "a\x00@example.ca"):
        response = client.post("/lists/preferences", data={"email": email, "csrf_token": token})
        assert response.status_code == 400, email
    assert client.get("/lists/preferences/" + "B" * 43).status_code == 404
    assert client.post("/lists/preferences/" + "B" * 43, data={"csrf_token": token}).status_code == 404


def test_group_lists_from_the_groups_area(app):
    from portal.lists.models import MailingList, Subscription
    from portal.lists.services import (
        SlugTaken,
        add_group_subscriber,
        ensure_group_list,
        recipients,
        remove_group_subscriber,
        save_public_list,
    )
    from portal.people.models import ConsentRecord
    from portal.people.services import get_or_create_person

    with app.app_context():
        group = ensure_group_list("youth-table", "Youth table", "Table jeunesse")
        assert ensure_group_list("youth-table", "Youth table", "Table jeunesse").id == group.id
        member = get_or_create_person("member@example.ca")
        db.session.flush()
        first = add_group_subscriber(group, member)
        assert add_group_subscriber(group, member).id == first.id
        assert [s.person_id for s in recipients(group)] == [member.id]
        remove_group_subscriber(group, member)
        assert recipients(group) == []
        add_group_subscriber(group, member)  # re-joined
        assert [s.status for s in db.session.execute(select(Subscription)).scalars()] == ["active"]
        kinds = [(r.kind, r.source) for r in db.session.execute(select(ConsentRecord).order_by(ConsentRecord.id)).scalars()]
        # No consent recorded by a way into the group: membership alone is implied consent.
        assert kinds == [("implied", "groups.membership"), ("withdrawn", "groups.membership"),
                         ("implied", "groups.membership")]
        save_public_list(None, slug="public-one", name_en="Public one")
        try:
            ensure_group_list("public-one", "x", "y")
        except SlugTaken:
            pass
        else:
            raise AssertionError("a group took a public list's slug")
        assert db.session.get(MailingList, group.id).kind == "group"


def test_preference_centre_shows_working_group_memberships(app, client, public_list):
    from portal.groups.models import Membership, WorkingGroup
    from portal.lists.services import add_group_subscriber, ensure_group_list
    from portal.people.services import get_or_create_person

    with app.app_context():
        person = get_or_create_person("member@example.ca", name="Mem")
        group = WorkingGroup(slug="youth-table", name_en="Youth table", name_fr="Table jeunesse")
        db.session.add(group)
        db.session.flush()
        db.session.add(Membership(group_id=group.id, person_id=person.id, role="chair", status="active"))
        add_group_subscriber(ensure_group_list("group-youth-table", "Youth table", "Table jeunesse"), person)
        db.session.commit()
    client.post("/lists/preferences", data={"email": "member@example.ca",
                                            "csrf_token": csrf_token(client, "/lists/preferences")})
    page = client.get(_link(app)).get_data(as_text=True)
    assert "Working groups" in page and "Youth table (chair)" in page
    # The group's list is there too, ticked, and can be left (withdrawal is always possible).
    assert re.search(r'<input[^>]*checked[^>]*value="\d+"|<input[^>]*value="\d+"[^>]*checked', page)
