"""Working groups in a real browser: apply, be approved by a chair, receive the mail at a
real SMTP server, open the members' link, acknowledge the terms, see the members' page.
axe-core checks every groups page along the way."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from portal.extensions import db
from tests.browser.accessibility import assert_accessible
from tests.groups.conftest import GroupFactories, link_in


def _sign_in(page, account) -> None:
    page.get_by_label("Email", exact=True).fill(account.email)
    page.get_by_label("Password", exact=True).fill(account.password)
    page.get_by_role("button", name="Sign in").click()


def test_apply_be_approved_by_the_chair_and_open_the_members_page(app, page, smtp_server):
    from portal.mail.delivery import deliver_due

    groups = GroupFactories(app)
    info = groups.group(tor_version="2026-1")
    chair = groups.chair(info)
    groups.member(info, "open@example.ca", name="Olive Open", organization="Open Org",
                  show_email=True, show_organization=True, role="chair")
    groups.member(info, "private@example.ca", name="Pat Private", organization="Secret Org")

    page.goto("/groups")
    assert_accessible(page, "groups index")
    page.get_by_role("link", name="Situation Tables").click()
    assert_accessible(page, "group page")
    page.get_by_role("link", name="Apply to join").click()
    assert_accessible(page, "apply form")
    consent = page.get_by_label(re.compile("Yes, send me the messages"))
    expect(consent).not_to_be_checked()  # express consent: never pre-ticked

    page.get_by_role("button", name="Send my application").click()
    expect(page.locator(".error-summary")).to_be_visible()
    assert_accessible(page, "apply form with errors")

    page.get_by_label("Full name", exact=True).fill("Alex Applicant")
    page.get_by_label("Email address", exact=True).fill("alex@example.ca")
    page.get_by_label("Organization (optional)", exact=True).fill("Sudbury Police")
    page.get_by_label("Sector (optional)", exact=True).select_option(label="Police")
    page.get_by_label("Community (optional)", exact=True).fill("Sudbury")
    page.get_by_label("Why do you want to join?", exact=True).fill("I coordinate our situation table.")
    page.get_by_label("Show my organization to other members").check()
    consent.check()
    page.get_by_role("button", name="Send my application").click()
    expect(page.get_by_text("confirm your application from the link we sent")).to_be_visible()
    assert_accessible(page, "group page after applying")

    # The address confirms it from the email (real SMTP), ticking the consent box itself.
    with app.app_context():
        deliver_due()
    [request] = [m for m in smtp_server.wait_for(1) if "Confirm your application" in str(m["Subject"])]
    page.goto(link_in(request.get_body(("plain",)).get_content(), "/groups/applications/"))
    expect(page.get_by_label("Show my organization to other members")).to_be_checked()  # as applied
    assert_accessible(page, "confirming an application")
    page.get_by_label(re.compile("Yes, send me the messages")).check()
    page.get_by_role("button", name="Confirm my application").click()
    expect(page.get_by_text("Your application was sent")).to_be_visible()
    assert_accessible(page, "group page after confirming the application")

    # The chair signs in (sent to the login page first) and approves.
    page.goto(f"/admin/groups/{info.slug}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    _sign_in(page, chair)
    expect(page.get_by_role("heading", level=1)).to_have_text("Situation Tables")
    assert_accessible(page, "chair's group page")
    page.get_by_role("button", name="Approve Alex Applicant").click()
    expect(page.get_by_text("Alex Applicant was approved")).to_be_visible()
    assert_accessible(page, "chair's group page after approving")
    page.get_by_role("link", name="Alex Applicant").click()
    assert_accessible(page, "membership page")
    page.goto(f"/admin/groups/{info.slug}/post")
    assert_accessible(page, "write to the list")
    page.get_by_role("button", name="Sign out").click()

    with app.app_context():
        deliver_due()
    smtp_server.wait_for(1)
    [welcome] = [m for m in smtp_server.to("alex@example.ca") if "Welcome" in str(m["Subject"])]
    members_path = link_in(welcome.get_body(("plain",)).get_content(), "/members/access/")

    page.goto(members_path)
    expect(page).to_have_url(re.compile(r"/members/terms$"))
    assert_accessible(page, "terms of reference")
    page.get_by_role("button", name="Acknowledge and continue").click()
    expect(page.locator(".error-summary")).to_be_visible()
    assert_accessible(page, "terms with errors")
    page.get_by_label("I have read the terms of reference").check()
    page.get_by_role("button", name="Acknowledge and continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Members of Situation Tables")
    assert_accessible(page, "members page")
    directory = page.locator("table").first
    expect(directory).to_contain_text("Alex Applicant")
    expect(directory).to_contain_text("Sudbury Police")  # Alex chose to show it
    expect(directory).to_contain_text("open@example.ca")
    expect(directory).to_contain_text("Pat Private")
    expect(directory).not_to_contain_text("private@example.ca")
    expect(directory).not_to_contain_text("Secret Org")

    page.goto(f"/groups/{info.slug}/members/link")
    assert_accessible(page, "members' link request")


def test_organizer_pages_are_accessible(app, page, organizer):
    from portal.groups.models import WorkingGroup
    from portal.groups.services import invite_member

    groups = GroupFactories(app)
    info = groups.group()
    member = groups.member(info, "m@example.ca", name="Mem Ber")
    groups.chair(info)  # the chairs page then lists an account with its button
    page.goto("/admin/groups")
    _sign_in(page, organizer)
    assert_accessible(page, "admin groups index")
    for path, label in [
        ("/admin/groups/new", "new group"),
        (f"/admin/groups/{info.slug}/edit", "edit group"),
        (f"/admin/groups/{info.slug}/members/new", "add member"),
        (f"/admin/groups/{info.slug}/invitations/new", "invite"),
        (f"/admin/groups/{info.slug}/chairs", "chairs"),
        (f"/admin/groups/{info.slug}/memberships/{member}", "membership"),
    ]:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_accessible(page, label)
    page.goto("/admin/groups/new")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".error-summary")).to_be_visible()
    assert_accessible(page, "new group with errors")

    with app.app_context():
        invite_member(db.session.get(WorkingGroup, info.id), email="guest@example.ca", name="Gu Est", actor=None)
        db.session.commit()
        from portal.mail.models import OutboxMessage
        from sqlalchemy import select

        body = db.session.execute(select(OutboxMessage.body_text).where(
            OutboxMessage.purpose == "groups.invitation")).scalar_one()
    page.goto(link_in(body, "/groups/invitations/"))
    assert_accessible(page, "invitation")
    page.get_by_role("button", name="Accept the invitation").click()
    assert_accessible(page, "invitation with errors")
    expect(page.locator(".error-summary")).to_be_visible()
