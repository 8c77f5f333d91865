"""The audit log: written for every login attempt and privacy action, append-only, and
viewable and filterable by admins only."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, update

from portal.core import clock
from portal.core.audit import AuditEntry, AuditLogIsAppendOnly, record_audit
from portal.extensions import db

from tests.conftest import csrf_token


def _actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars())


def test_every_login_attempt_is_on_record_without_the_password(app, client, organizer):
    client.post("/login", data={"email": organizer.email, "password": "wrong password 1",
                                "csrf_token": csrf_token(client, "/login")})
    client.post("/login", data={"email": organizer.email, "password": organizer.password,
                                "csrf_token": csrf_token(client, "/login")})
    with app.app_context():
        entries = db.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
        assert [e.action for e in entries] == ["auth.login.failed", "auth.login.succeeded"]
        for entry in entries:
            assert entry.actor_label == organizer.email and entry.origin and entry.at
            assert organizer.password not in str(entry.detail) and "wrong password" not in str(entry.detail)


def test_audit_entries_are_never_updated_or_deleted(app_context):
    entry = record_audit("people.test.done", actor_label="someone", subject="person:1")
    db.session.commit()
    entry.action = "people.test.undone"
    with pytest.raises(AuditLogIsAppendOnly):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEntry, entry.id))
    with pytest.raises(AuditLogIsAppendOnly):
        db.session.flush()
    db.session.rollback()
    with pytest.raises(AuditLogIsAppendOnly):
        db.session.execute(update(AuditEntry).values(action="x"))
    db.session.rollback()
    with pytest.raises(AuditLogIsAppendOnly):
        db.session.execute(delete(AuditEntry))
    db.session.rollback()
    assert db.session.get(AuditEntry, entry.id).action == "people.test.done"


def test_only_admins_see_the_audit_log(app, client, auth, organizer, admin):
    auth.login(organizer)
    assert client.get("/admin/audit").status_code == 403
    auth.logout()
    auth.login(admin)
    page = client.get("/admin/audit")
    assert page.status_code == 200
    assert "auth.login.succeeded" in page.get_data(as_text=True)
    # Reading the log is itself on record.
    assert _actions(app)[-1] == "admin.audit.viewed"


def test_the_audit_log_filters_by_action_actor_and_dates_and_pages(app, client, auth, admin):
    clock.set_now(datetime(2026, 3, 10, 15, 0, tzinfo=UTC))
    with app.app_context():
        for n in range(60):
            record_audit("events.attendees.viewed", actor_label="ana@owg.example.ca", subject=f"event:{n}")
        clock.set_now(datetime(2026, 3, 12, 15, 0, tzinfo=UTC))
        record_audit("people.person.erased", actor_label="ben@owg.example.ca", subject="person:7")
        db.session.commit()
    auth.login(admin)

    def rows(query: str) -> str:
        response = client.get("/admin/audit?" + query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_data(as_text=True)

    html = rows("action=people.")
    assert "person:7" in html and "event:3" not in html
    # The action in words, and its code (what the action filter takes) beside it.
    assert "Personal data erased" in html and "<code class=\"hint\">people.person.erased</code>" in html
    french = client.get("/admin/audit?action=people.", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Données personnelles effacées" in french
    html = rows("actor=ANA@owg")
    assert "60 entries" in html and "person:7" not in html and "Older" in html
    assert "event:59" in rows("actor=ana&page=1") and "event:0<" in rows("actor=ana&page=2")
    html = rows("date_from=2026-03-11&date_to=2026-03-12&actor=ben@")
    assert "1 entry" in html and "person:7" in html
    assert "No entries match." in rows("date_from=2026-03-01&date_to=2026-03-09")


def test_audit_page_links_carry_only_the_filters(app, client, auth, admin):
    with app.app_context():
        for n in range(60):
            record_audit("events.attendees.viewed", actor_label="ana@owg.example.ca", subject=f"event:{n}")
        db.session.commit()
    auth.login(admin)
    # Arguments of url_for itself, passed on from the address, were a 500 or a link elsewhere.
    for extra in ["endpoint=x", "_method=POST", "page=2&_method=POST", "_anchor=x", "_external=1", "_scheme=gopher"]:
        response = client.get(f"/admin/audit?actor=ana&{extra}")
        body = response.get_data(as_text=True)
        assert response.status_code == 200, (extra, response.status_code)
        page_links = re.findall(r'href="(/admin/audit\?page=[^"]*)"', body)
        assert page_links and all(link.endswith("&amp;actor=ana") for link in page_links), (extra, page_links)


JUNK_FILTERS = [
    "page=abc", "page=0", "page=-3", "page=99999999999999999999", "date_from=yesterday",
    "date_from=2026-13-45", "date_from=2026-03-12&date_to=2026-03-01", "action=" + "x" * 500,
    "actor=" + "é" * 400, "date_to=9999-12-31", "date_from=0001-01-01",
]


def test_junk_filters_are_a_clear_400(client, auth, admin):
    auth.login(admin)
    for query in JUNK_FILTERS:
        response = client.get("/admin/audit?" + query)
        assert response.status_code == 400, query
        assert "There is a problem" in response.get_data(as_text=True)


def test_organizer_looks_at_personal_data_in_groups_lists_and_guidelines_on_record(app, client, auth, organizer):
    """Each organizer page showing people (a group's members, one membership, a list's
    subscribers, one subscriber's consent history, a guideline's copy requests), the
    subscriber export and a role change write exactly one entry naming who and what."""
    from portal.guidelines.models import CopyRequest
    from portal.lists.services import save_public_list
    from tests.groups.conftest import GroupFactories
    from tests.guidelines.conftest import add_people, create_guideline
    from tests.lists.conftest import add_subscriber

    groups = GroupFactories(app)
    info = groups.group()
    membership_id = groups.member(info, "member@example.ca")
    with app.app_context():
        list_id = save_public_list(None, slug="announcements", name_en="Announcements", name_fr="Annonces").id
        guideline = create_guideline()
        gid = guideline.id
        db.session.add(CopyRequest(guideline_id=gid, person_id=add_people(1, "asker")[0]))
        db.session.commit()
    subscription_id, _person, _token = add_subscriber(app, list_id, "reader@example.ca")

    auth.login(organizer)
    visits = [
        (f"/admin/groups/{info.slug}", "groups.members.viewed", f"group:{info.id}"),
        (f"/admin/groups/{info.slug}/memberships/{membership_id}", "groups.membership.viewed",
         f"membership:{membership_id}"),
        (f"/admin/lists/{list_id}", "lists.subscribers.viewed", f"list:{list_id}"),
        (f"/admin/lists/{list_id}/subscribers/{subscription_id}", "lists.subscriber.viewed",
         f"subscription:{subscription_id}"),
        (f"/admin/lists/{list_id}/export.csv", "lists.subscribers.exported", f"list:{list_id}"),
        (f"/admin/guidelines/{gid}", "guidelines.requests.viewed", f"guideline:{gid}"),
    ]
    for path, action, subject in visits:
        before = len(_actions(app))
        assert client.get(path).status_code == 200, path
        with app.app_context():
            new = db.session.execute(select(AuditEntry).order_by(AuditEntry.id).offset(before)).scalars().all()
            assert [(e.action, e.subject) for e in new] == [(action, subject)], path
            assert new[0].actor_id == organizer.id and new[0].origin

    page = f"/admin/groups/{info.slug}/memberships/{membership_id}"
    token = csrf_token(client, page)
    before = len(_actions(app))
    from portal.groups.models import Membership

    with app.app_context():
        term_start = db.session.get(Membership, membership_id).term_start
    response = client.post(page, data={"role": "co-chair", "term_start": term_start.isoformat() if term_start else "",
                                       "term_end": "", "csrf_token": token})
    assert response.status_code == 302
    assert _actions(app)[before:] == ["groups.membership.role_changed"]


def test_every_action_the_portal_records_reads_in_words():
    """Each `record_audit` (and page-view audit) call's action has words in ACTION_WORDS, so
    the audit log and the my-data page never show a bare code."""
    import ast
    from pathlib import Path

    from portal.core.audit_actions import ACTION_WORDS
    from portal.events.models import EventStatus

    recorded: set[str] = {f"events.event.{status.value}" for status in EventStatus}  # an f-string
    for path in Path(__file__).resolve().parents[2].joinpath("portal").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in ("record_audit", "audit_page_view"):
                # Whole codes only: an f-string's fixed part ("events.event.") is not one.
                recorded |= {part.value for part in ast.walk(node.args[0])
                             if isinstance(part, ast.Constant) and isinstance(part.value, str)
                             and not part.value.endswith(".")}
    assert len(recorded) > 80  # the scan found the calls
    assert sorted(recorded - set(ACTION_WORDS)) == []
    assert sorted(set(ACTION_WORDS) - recorded) == []  # and no words for actions no longer recorded
