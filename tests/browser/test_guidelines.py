"""Guidelines in a real browser: request a copy, confirm from the email, receive the release."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from portal.core import clock
from portal.core.clock import now
from portal.extensions import db
from portal.guidelines.jobs import release_due_guidelines
from portal.guidelines.models import GuidelineStatus
from tests.browser.accessibility import assert_accessible
from tests.guidelines.conftest import create_guideline


def _deliver(app) -> int:
    from portal.mail.delivery import deliver_due

    with app.app_context():
        return deliver_due()


def _text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def test_a_person_requests_a_copy_and_downloads_it_when_released(app, page, live_server, smtp_server):
    start = now()
    clock.set_now(start)
    release_at = start + timedelta(days=2)
    with app.app_context():
        guideline = create_guideline(release_at=release_at,
                                     title="Situation Table Guidance: Information Sharing and Privacy")
        db.session.commit()
        gid = guideline.id

    page.goto("/guidelines/")
    assert_accessible(page, "guidelines index")
    page.get_by_role("link", name=re.compile("Request a copy of")).click()
    assert page.locator("h1").inner_text().startswith("Request a copy")
    assert_accessible(page, "request form")

    page.get_by_role("button", name="Request a copy").click()  # nothing filled in
    assert page.locator(".error-summary").is_visible()
    assert_accessible(page, "request form with errors")

    page.get_by_label("Full name").fill("Jordan Lee")
    page.get_by_label("Email", exact=True).fill("jordan@example.ca")
    page.get_by_label("Organization").fill("Thunder Bay Police Service")
    page.get_by_label("Sector").select_option(label="Police")
    page.get_by_label("I need this guideline in an accessible alternate format").check()
    page.get_by_label("Which format do you need?").fill("Large print")
    assert not page.get_by_label(re.compile("also send me news")).is_checked()  # opt-in unticked
    page.get_by_role("button", name="Request a copy").click()
    assert page.locator("h1").inner_text() == "Check your email"
    assert_accessible(page, "request sent")

    assert _deliver(app) == 1
    (confirmation,) = smtp_server.wait_for(1)
    assert confirmation["To"].addresses[0].addr_spec == "jordan@example.ca"
    confirm_url = re.search(r"http://\S+/guidelines/confirm/\S+", _text_of(confirmation)).group(0)
    page.goto(confirm_url)
    assert_accessible(page, "confirm page")
    page.get_by_role("button", name="Confirm my request").click()
    assert page.locator("h1").inner_text() == "Request confirmed"
    assert_accessible(page, "confirmed")

    clock.set_now(release_at + timedelta(seconds=20))  # the scheduler's next poll
    with app.app_context():
        assert release_due_guidelines() == 1
    assert _deliver(app) == 1
    messages = smtp_server.wait_for(2)
    notice = messages[1]
    assert notice["Subject"].startswith("Released:")
    assert notice["List-Unsubscribe"] is None  # asked for it: a transactional notice
    link = re.search(r"http://\S+/guidelines/link/\S+", _text_of(notice)).group(0)

    page.goto(link)
    assert page.locator("h1").inner_text() == "Situation Table Guidance: Information Sharing and Privacy"
    assert_accessible(page, "personal download page")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download in English (PDF)").click()
    download = download_info.value
    assert download.suggested_filename == "guide-en.pdf"
    assert Path(download.path()).read_bytes().startswith(b"%PDF-")

    page.goto("/guidelines/")
    assert page.get_by_role("heading", name="Released guidelines").is_visible()
    assert page.get_by_role("link", name=re.compile("Download in English")).is_visible()
    assert_accessible(page, "guidelines index after release")
    with app.app_context():
        from portal.guidelines.models import Guideline

        assert db.session.get(Guideline, gid).status == GuidelineStatus.RELEASED


def test_organizer_pages_are_accessible(app, page, live_server, make, tmp_path):
    account = make.organizer()
    with app.app_context():
        guideline = create_guideline(status=GuidelineStatus.DRAFT)
        from portal.guidelines.models import CopyRequest
        from portal.people.services import get_or_create_person

        person = get_or_create_person("needs@example.ca", name="Needs Format")
        db.session.flush()
        db.session.add(CopyRequest(guideline_id=guideline.id, person_id=person.id, accessible_format=True,
                                   format_details="Braille", status="confirmed"))
        db.session.commit()
        gid = guideline.id
    page.goto("/login")
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()

    page.goto("/admin/guidelines/")
    assert_accessible(page, "admin index")
    page.goto("/admin/guidelines/new")
    page.get_by_role("button", name="Save").click()
    assert page.locator(".error-summary").is_visible()
    assert_accessible(page, "new guideline with errors")

    page.goto(f"/admin/guidelines/{gid}")
    assert page.locator(".needs-accessible-format").is_visible()
    assert_accessible(page, "guideline detail")
    fake = tmp_path / "renamed.pdf"
    fake.write_bytes(b"GIF89a not a pdf")
    page.get_by_label("PDF file", exact=True).set_input_files(str(fake))
    page.get_by_role("button", name="Upload PDF").click()
    assert "is not a PDF" in page.locator(".error-summary").inner_text()
    assert_accessible(page, "upload refused")
    page.get_by_label("Release time (Toronto time)").fill("2001-01-01T09:00")
    page.get_by_role("button", name="Schedule release").click()
    assert "in the future" in page.locator(".error-summary").inner_text()
    assert_accessible(page, "schedule refused")
    page.goto(f"/admin/guidelines/{gid}/edit")
    assert_accessible(page, "edit guideline")


def test_earlier_versions_open_from_the_keyboard_and_still_download(app, page, live_server):
    with app.app_context():
        first = create_guideline(status=GuidelineStatus.RELEASED, version="1.0", title="Situation Tables")
        create_guideline(status=GuidelineStatus.RELEASED, version="2.0", title="Situation Tables",
                         revision_of_id=first.id)
        db.session.commit()
        first_id = first.id

    page.goto("/guidelines/")
    assert page.get_by_role("heading", name="Situation Tables").count() == 1
    older = page.locator(f'a[href="/guidelines/{first_id}/download/en"]')
    assert not older.is_visible()  # folded away under "Earlier versions"
    page.get_by_text("Earlier versions").focus()
    page.keyboard.press("Enter")
    assert older.is_visible()
    assert_accessible(page, "guidelines index with earlier versions open")
    with page.expect_download() as download_info:
        older.click()
    assert Path(download_info.value.path()).read_bytes().startswith(b"%PDF-")
