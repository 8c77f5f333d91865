"""Members' pages: personal link, terms of reference first, directory shows only what was agreed."""
from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from tests.conftest import Auth, counted_statements, csrf_token


def test_members_pages_need_the_link_then_the_terms(app, client, groups):
    from portal.groups.models import Membership

    info = groups.group(tor_version="2026-1")
    member = groups.member(info, "reader@example.ca", name="Rea Der")
    members = f"/groups/{info.slug}/members"
    assert client.get(members).location.endswith("/members/link")

    response = client.get(groups.member_link(member))
    assert response.status_code == 302 and response.location == members  # the token leaves the URL
    assert client.get(members).location.endswith("/members/terms")
    terms = client.get(f"/groups/{info.slug}/members/terms")
    assert "Be kind." in terms.get_data(as_text=True) and "2026-1" in terms.get_data(as_text=True)

    refused = client.post(f"/groups/{info.slug}/members/terms",
                          data={"csrf_token": csrf_token(client, f"/groups/{info.slug}/members/terms")})
    assert refused.status_code == 400
    client.post(f"/groups/{info.slug}/members/terms",
                data={"acknowledge": "y", "csrf_token": csrf_token(client, f"/groups/{info.slug}/members/terms")})
    with app.app_context():
        membership = db.session.get(Membership, member)
        assert membership.tor_acknowledged_version == "2026-1" and membership.tor_acknowledged_at is not None
    assert client.get(members).status_code == 200


def test_a_new_version_of_the_terms_asks_again(app, client, groups):
    from portal.groups.models import WorkingGroup
    from portal.groups.services import update_group

    info = groups.group()
    member = groups.member(info, "reader@example.ca", acknowledged=True)
    client.get(groups.member_link(member))
    assert client.get(f"/groups/{info.slug}/members").status_code == 200
    with app.app_context():
        update_group(db.session.get(WorkingGroup, info.id), tor_version="2", terms_of_reference="New terms.")
        db.session.commit()
    assert client.get(f"/groups/{info.slug}/members").location.endswith("/members/terms")


def test_a_link_for_one_group_does_not_open_another(app, client, groups):
    a = groups.group("group-a", "Group A")
    b = groups.group("group-b", "Group B")
    member = groups.member(a, "reader@example.ca", acknowledged=True)
    path = groups.member_link(member).replace("/groups/group-a/", "/groups/group-b/")
    assert client.get(path).status_code == 404
    assert client.get(f"/groups/{b.slug}/members").status_code == 302


def test_directory_shows_only_what_each_member_agreed_to_show(app, client, groups):
    info = groups.group()
    viewer = groups.member(info, "viewer@example.ca", name="Vi Ewer", acknowledged=True)
    groups.member(info, "open@example.ca", name="Open Person", organization="Open Org",
                  show_email=True, show_organization=True)
    groups.member(info, "private@example.ca", name="Private Person", organization="Secret Org")
    groups.member(info, "halfway@example.ca", name="Half Way", organization="Visible Org", show_organization=True)
    client.get(groups.member_link(viewer))
    page = client.get(f"/groups/{info.slug}/members").get_data(as_text=True)
    assert "Open Person" in page and "open@example.ca" in page and "Open Org" in page
    assert "Private Person" in page and "private@example.ca" not in page and "Secret Org" not in page
    assert "Half Way" in page and "Visible Org" in page and "halfway@example.ca" not in page


def test_a_member_changes_what_they_show(app, client, groups):
    from portal.groups.models import Membership

    info = groups.group()
    member = groups.member(info, "reader@example.ca", acknowledged=True, show_email=True)
    client.get(groups.member_link(member))
    token = csrf_token(client, f"/groups/{info.slug}/members")
    response = client.post(f"/groups/{info.slug}/members/directory",
                           data={"show_organization": "y", "csrf_token": token})
    assert response.status_code == 302
    with app.app_context():
        membership = db.session.get(Membership, member)
        assert membership.show_organization and not membership.show_email


def test_members_see_documents_and_the_post_archive(app, client, groups):
    from portal.groups.models import WorkingGroup
    from portal.groups.services import add_document, save_group_post, send_group_post

    info = groups.group()
    member = groups.member(info, "reader@example.ca", acknowledged=True)
    with app.app_context():
        group = db.session.get(WorkingGroup, info.id)
        add_document(group, title="Meeting minutes", url="https://example.ca/minutes", note="From *May*.", actor=None)
        post = save_group_post(group, subject="Agenda for June", body="We meet **Tuesday**.", author=None)
        send_group_post(group, post, actor=None)
        db.session.commit()
    client.get(groups.member_link(member))
    page = client.get(f"/groups/{info.slug}/members").get_data(as_text=True)
    assert 'href="https://example.ca/minutes"' in page and "<em>May</em>" in page
    assert "Agenda for June" in page and "<strong>Tuesday</strong>" in page


def test_chair_accounts_are_separate_from_memberships(app, groups):
    from portal.auth.models import OrganizerAccount
    from portal.groups.models import GroupChair

    info = groups.group()
    chair = groups.chair(info)
    groups.chair(info)  # twice: still one link
    with app.app_context():
        assert db.session.get(OrganizerAccount, chair.id).role == "chair"
        assert len(db.session.execute(select(GroupChair)).scalars().all()) == 1


def _reads_french(app, email: str) -> None:
    from portal.people.models import Person

    with app.app_context():
        db.session.execute(select(Person).where(Person.email == email)).scalar_one().language = "fr"
        db.session.commit()


def test_french_members_read_the_terms_in_french_where_they_are_written(app, client, auth, organizer, groups):
    info = groups.group()
    member = groups.member(info, "lecteur@example.ca", name="Léo Lecteur")
    _reads_french(app, "lecteur@example.ca")
    terms = f"/groups/{info.slug}/members/terms"
    french = {"Accept-Language": "fr-CA"}
    client.get(groups.member_link(member), headers=french)
    english_only = client.get(terms, headers=french).get_data(as_text=True)
    assert '<div class="terms-of-reference" lang="en"><p>Be kind.</p>' in english_only  # marked as English

    auth.login(organizer)
    edit = f"/admin/groups/{info.slug}/edit"
    page = client.get(edit).get_data(as_text=True)
    assert 'name="terms_of_reference_fr"' in page
    form = {"name_en": "Situation Tables", "terms_of_reference": "Be kind.", "tor_version": "1",
            "terms_of_reference_fr": "Soyez bienveillants.", "retention_months": "24", "slug": info.slug,
            "csrf_token": csrf_token(client, edit)}
    assert client.post(edit, data=form).status_code == 302
    auth.logout()
    client.get(groups.member_link(member), headers=french)
    translated = client.get(terms, headers=french).get_data(as_text=True)
    assert '<div class="terms-of-reference"><p>Soyez bienveillants.</p>' in translated


def test_the_member_pages_take_the_same_statements_for_3_or_12_members(app, client, admin, groups):
    """A scale pass counted 519 statements for a group of 500: one per member for their
    person. The directory and the organizers' group page now load people with memberships."""
    info = groups.group(tor_version="1")
    reader = groups.member(info, "reader@example.ca", name="Rea Der", acknowledged=True)
    for n in range(2):
        groups.member(info, f"m{n}@example.ca", name=f"Member {n}", acknowledged=True)
    client.get(groups.member_link(reader))
    other = app.test_client()
    Auth(other).login(admin)

    def statements_for(fetch) -> int:
        with counted_statements(app) as seen:
            assert fetch().status_code == 200
        return len(seen)

    pages = (lambda: client.get(f"/groups/{info.slug}/members"),
             lambda: other.get(f"/admin/groups/{info.slug}"))
    few = [statements_for(page) for page in pages]
    for n in range(2, 11):
        groups.member(info, f"m{n}@example.ca", name=f"Member {n}", acknowledged=True)
    many = [statements_for(page) for page in pages]
    assert many == few, (few, many)


def test_the_members_pages_speak_the_members_language_whatever_the_browser(app, client, groups):
    """Found by a French reviewer: a French member opening their emailed link in a browser set
    to English read the terms and the members' page in English (other emailed-link pages
    follow the person's language)."""
    info = groups.group()
    member = groups.member(info, "francois@example.ca", name="François Bélanger")
    _reads_french(app, "francois@example.ca")
    english_browser = {"Accept-Language": "en-CA"}
    client.get(groups.member_link(member), headers=english_browser)
    terms = client.get(f"/groups/{info.slug}/members/terms", headers=english_browser).get_data(as_text=True)
    assert '<html lang="fr"' in terms
