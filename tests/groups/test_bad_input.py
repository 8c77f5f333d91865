"""Junk in every groups form and URL: a clear message and a 4xx, never a 500."""
from __future__ import annotations

from tests.conftest import csrf_token

LONG = "x" * 5000
UNICODE = "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u202e\u0000 é"


def _post(client, path, data, token_page=None, prefix=""):
    data = dict(data)
    data[f"{prefix}csrf_token"] = csrf_token(client, token_page or path)
    return client.post(path, data=data)


def _assert_4xx(response, label, message=None):
    assert 400 <= response.status_code < 500, (label, response.status_code)
    if message:
        assert message in response.get_data(as_text=True), label


def test_public_urls_with_junk(client, groups):
    info = groups.group()
    for path in (
        "/groups/nope", f"/groups/{LONG}", "/groups/%F0%9D%94%98", "/groups/nope/apply", "/groups/a%00",
        "/groups/a%00/apply",
        f"/groups/{info.slug}/members/access/not-a-token", f"/groups/{info.slug}/members/access/{LONG}",
        "/groups/invitations/not-a-token", f"/groups/invitations/{LONG}", "/groups/nope/members/link",
    ):
        _assert_4xx(client.get(path), path)


def test_application_form_with_junk(client, groups):
    info = groups.group()
    page = f"/groups/{info.slug}/apply"
    good = {"name": "A", "email": "a@example.ca", "why": "Because.", "consent": "y"}
    cases = [
        ({}, "\u201cFull name\u201d is required."),
        ({**good, "email": "not an email"}, "valid email"),
        ({**good, "email": LONG + "@example.ca"}, None),
        ({**good, "name": LONG}, None),
        ({**good, "why": LONG}, None),
        ({**good, "sector": "abc"}, "Not a valid choice"),
        ({**good, "sector": "999999"}, "Not a valid choice"),
        ({**good, "organization": LONG}, None),
        ({**good, "email": UNICODE}, "valid email"),
        ({**good, "consent": ""}, "Tick the box"),
        ({**good, "name": "A\x00"}, "invisible control characters"),
        ({**good, "why": "Because\x00."}, "invisible control characters"),
        ({**good, "email": "andré@example.ca"}, "only unaccented letters"),
        ({**good, "email": "δοκιμή@example.com"}, "only unaccented letters"),
    ]
    for data, message in cases:
        _assert_4xx(_post(client, page, data), data, message)
    # A choice of only spaces is no choice (Optional() lets it through as empty), not a 500.
    for blank in (" ", "\t", "\u00a0"):
        response = _post(client, page, {**good, "email": f"blank{ord(blank)}@example.ca", "sector": blank})
        assert response.status_code == 302, (blank, response.status_code)


def test_member_link_and_terms_forms_with_junk(client, groups):
    info = groups.group()
    member = groups.member(info, "m@example.ca")
    page = f"/groups/{info.slug}/members/link"
    _assert_4xx(_post(client, page, {"email": UNICODE}), "link", "valid email")
    _assert_4xx(_post(client, page, {"email": LONG}), "link long")
    client.get(groups.member_link(member))
    terms = f"/groups/{info.slug}/members/terms"
    _assert_4xx(_post(client, terms, {"acknowledge": ""}), "terms", "acknowledge")


def test_invitation_form_with_junk(app, client, auth, organizer, groups):
    info = groups.group()
    auth.login(organizer)
    page = f"/admin/groups/{info.slug}/invitations/new"
    _assert_4xx(_post(client, page, {"email": "x", "role": "member"}), "invite email", "valid email")
    _assert_4xx(_post(client, page, {"email": "a@example.ca", "role": "king"}), "invite role", "Not a valid choice")
    _assert_4xx(_post(client, page, {"email": "a@example.ca", "role": "member", "name": LONG}), "invite name")


def test_a_group_web_address_is_short_enough_for_its_lists(app, client, auth, organizer):
    """The group's list is named group-<address>, in a column as long as the group's own: an
    address of 75 to 80 characters made a list slug that PostgreSQL refused (a 500)."""
    from sqlalchemy import select

    from portal.extensions import db
    from portal.groups.models import WorkingGroup
    from portal.lists.models import MailingList

    auth.login(organizer)
    new = "/admin/groups/new"
    base = {"name_en": "Long", "tor_version": "1", "retention_months": "24"}
    for length in (75, 80):
        response = _post(client, new, {**base, "slug": "a" * length})
        assert response.status_code == 400, (length, response.status_code)
        assert "Field cannot be longer than 74 characters." in response.get_data(as_text=True), length
    assert _post(client, new, {**base, "slug": "a" * 74}).status_code == 302
    with app.app_context():
        assert db.session.execute(select(WorkingGroup.slug)).scalars().all() == ["a" * 74]
        assert db.session.execute(select(MailingList.slug)).scalars().all() == ["group-" + "a" * 74]


def test_admin_forms_with_junk(app, client, auth, organizer, groups):
    info = groups.group()
    member = groups.member(info, "m@example.ca")
    auth.login(organizer)
    new = "/admin/groups/new"
    base = {"slug": "fresh", "name_en": "Fresh", "tor_version": "1", "retention_months": "24"}
    for data, message in [
        ({**base, "slug": "Bad Slug!"}, "lowercase"),
        ({**base, "slug": "new"}, "already uses"),
        ({**base, "slug": info.slug}, "already uses"),
        ({**base, "retention_months": "abc"}, None),
        ({**base, "retention_months": "0"}, None),
        ({**base, "sectors": "abc"}, None),
        ({**base, "name_en": LONG}, None),
        ({**base, "name_en": ""}, "required"),
    ]:
        _assert_4xx(_post(client, new, data), data, message)
    edit = f"/admin/groups/{info.slug}/edit"
    _assert_4xx(_post(client, edit, {**base, "tor_version": ""}), "edit")

    group_page = f"/admin/groups/{info.slug}"
    _assert_4xx(_post(client, f"{group_page}/memberships/{member}/decision", {"decision": "maybe"}, group_page), "decision")
    _assert_4xx(_post(client, f"{group_page}/memberships/999999/decision", {"decision": "approve"}, group_page), "no row")
    _assert_4xx(client.get(f"{group_page}/memberships/999999"), "no membership")
    _assert_4xx(client.get(f"{group_page}/memberships/abc"), "non-numeric")
    membership_page = f"{group_page}/memberships/{member}"
    for data in ({"role": "king"}, {"role": "member", "term_start": "not a date"},
                 {"role": "member", "term_end": "2026-02-30"}, {"role": UNICODE}):
        _assert_4xx(_post(client, membership_page, data), data)

    add = f"{group_page}/members/new"
    for data in ({"email": "nope", "name": "N", "role": "member"}, {"email": "a@example.ca", "name": "", "role": "member"},
                 {"email": "a@example.ca", "name": "N", "role": "member", "term_start": "31/12/2026"},
                 {"email": "a@example.ca", "name": "N", "role": "member", "term_start": "2027-01-01", "term_end": "2026-01-01"}):
        _assert_4xx(_post(client, add, data), data)

    for data in ({"document-title": "", "document-url": "https://example.ca"},
                 {"document-title": "T", "document-url": "javascript:alert(1)"},
                 {"document-title": LONG}):
        _assert_4xx(_post(client, f"{group_page}/documents", data, group_page, prefix="document-"), data)
    _assert_4xx(_post(client, f"{group_page}/documents/999999/delete", {}, group_page), "no document")

    chairs = f"{group_page}/chairs"
    _assert_4xx(_post(client, chairs, {"email": "c@example.ca", "name": "C", "password": "short"}), "password")
    _assert_4xx(_post(client, chairs, {"email": "bad", "name": "C", "password": "long enough pass"}), "chair email")

    post = f"{group_page}/post"
    _assert_4xx(_post(client, post, {"subject": "S", "body": "B", "action": "explode"}), "post action")
    _assert_4xx(_post(client, post, {"subject": "S", "body": "B", "action": "send", "draft": "abc"}), "post draft")
    # Past the id columns' range: PostgreSQL refused even to look such a draft up (a 500).
    for draft in ("2147483648", "99999999999", "0", "１２"):
        for action in ("test", "send"):
            _assert_4xx(_post(client, post, {"subject": "S", "body": "B", "action": action, "draft": draft}),
                        ("post draft", draft, action), "refers to nothing that exists")
    # Spaces are no draft (they were a 500: read as one, then not a number): a test goes as from a new form.
    for draft in (" ", "\t"):
        assert _post(client, post, {"subject": "S", "body": "B", "action": "test", "draft": draft}).status_code == 200
    _assert_4xx(_post(client, post, {"subject": LONG, "body": "B", "action": "send"}), "post subject")
    _assert_4xx(_post(client, post, {"subject": "", "body": "", "action": "send"}), "post empty")
