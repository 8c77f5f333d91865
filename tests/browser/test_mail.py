"""The organizer's Mail page in a real browser: axe-clean, the HTML body sandboxed, retry works."""
from __future__ import annotations

from sqlalchemy import update

from portal.extensions import db
from portal.mail.models import OutboxMessage, OutboxState
from tests.browser.accessibility import assert_accessible
from tests.mail.conftest import Outbox


def test_mail_pages_are_accessible_and_retry_works_with_the_keyboard(app, page, make, tmp_path):
    outbox = Outbox(app)
    failed_id, sent_id = outbox.queue(count=2, title="Symposium programme")
    with app.app_context():
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == failed_id).values(
            state=OutboxState.FAILED.value, attempts=1, last_error="550 5.1.1 No such user"))
        db.session.commit()
    organizer = make.organizer(admin=True)  # the outbox is for admins

    page.goto("/login")
    page.get_by_label("Email").fill(organizer.email)
    page.get_by_label("Password").fill(organizer.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/**")

    page.goto("/admin/mail")
    assert page.get_by_text("550 5.1.1 No such user").is_visible()
    assert_accessible(page, "mail outbox")
    page.goto("/admin/mail?state=nonsense")
    assert_accessible(page, "mail outbox with a bad filter")

    page.goto(f"/admin/mail/{sent_id}")
    frame = page.frame_locator("iframe.mail-html")
    assert frame.get_by_text("The symposium programme is out.").is_visible()
    assert_accessible(page, "one message")

    page.goto("/admin/mail")
    button = page.get_by_role("button", name="Retry the failed messages (1)")
    button.focus()
    page.keyboard.press("Enter")
    page.get_by_text("1 failed message was queued again.").wait_for()
    assert outbox.row(failed_id).state == OutboxState.QUEUED
