"""Privacy pages in a real browser: each state axe-clean, flows done by keyboard and mouse."""
from __future__ import annotations

from portal.extensions import db
from portal.people.models import ConsentKind, Person
from portal.people.services import record_consent, request_erasure

from tests.browser.accessibility import assert_accessible
from tests.people.conftest import link_from_outbox


def test_privacy_and_my_data_pages_are_accessible(app, page, make):
    person = make.person("reader@example.ca", name="Rae Reader", organization="Kenora Housing")
    with app.app_context():
        record_consent(db.session.get(Person, person.id), purpose="list:news", kind=ConsentKind.EXPRESS,
                       wording="Yes, send me news")
        db.session.commit()

    page.goto("/privacy")
    assert page.locator("h1").inner_text() == "Privacy notice"
    assert_accessible(page, "privacy notice")
    page.get_by_role("link", name="See, download, correct or erase your data").click()

    assert_accessible(page, "my data: form")
    page.get_by_role("button", name="Email me a link").click()
    assert page.locator(".error-summary").is_visible()
    assert_accessible(page, "my data: form with errors")

    page.get_by_label("Your email address").fill("reader@example.ca")
    page.keyboard.press("Enter")
    page.wait_for_url("**/my-data/sent")
    assert_accessible(page, "my data: sent")

    with app.app_context():
        path = link_from_outbox(person.id)
    page.goto(path)
    assert page.get_by_text("Kenora Housing").first.is_visible()
    assert_accessible(page, "my data via the link")

    page.get_by_role("button", name="Save my details").scroll_into_view_if_needed()
    # The field says maxlength=200; a hand-crafted request can still send more.
    page.eval_on_selector("#name", "field => field.removeAttribute('maxlength')")
    page.get_by_label("Full name").fill("n" * 250)
    page.get_by_role("button", name="Save my details").click()
    assert page.locator(".error-summary").first.is_visible()
    assert_accessible(page, "my data: details with errors")

    page.goto(path)
    page.get_by_role("button", name="Withdraw consent for emails of the list “News”").click()
    assert page.get_by_text("Your consent is withdrawn").is_visible()
    page.get_by_label("I understand that my details").check()
    page.get_by_role("button", name="Ask for erasure").click()
    assert page.get_by_text("We received your request to erase your data").is_visible()
    assert_accessible(page, "my data: after withdrawal and erasure request")


def test_organizer_privacy_pages_are_accessible(app, page, make):
    account = make.organizer(admin=True)
    person = make.person("asks@example.ca", name="Asha Asks")
    with app.app_context():
        request_id = request_erasure(db.session.get(Person, person.id)).id
        db.session.commit()

    page.goto("/login")
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")
    page.get_by_role("link", name="Privacy requests").click()
    assert page.get_by_text("asks@example.ca").is_visible()
    assert_accessible(page, "privacy requests")

    page.get_by_role("link", name=f"Request {request_id}").click()
    assert_accessible(page, "privacy request")
    page.get_by_role("button", name="Refuse with this reason").click()
    assert page.locator(".error-summary").first.is_visible()
    assert_accessible(page, "privacy request: refusal with errors")
    page.get_by_label("Erase this person's data everywhere now").check()
    page.get_by_role("button", name="Erase now").click()
    assert page.get_by_text("The person's data is erased.").is_visible()
    assert page.get_by_text(f"erased-{person.id}@erased.invalid").is_visible()

    page.goto("/admin/privacy/retention")
    assert_accessible(page, "retention")

    page.goto("/admin/audit")
    assert page.get_by_text("people.person.erased").first.is_visible()
    assert_accessible(page, "audit log")
    page.goto("/admin/audit?date_from=soon")
    assert page.locator(".error-summary").is_visible()
    assert_accessible(page, "audit log: filter with errors")
