"""A person subscribes to a public list, confirms from the email, receives a post,
unsubscribes in one click as a mail provider would, and receives nothing more.
Every lists page, public and organizer, is axe-clean."""
from __future__ import annotations

import re
import urllib.request

from portal.extensions import db
from tests.browser.accessibility import assert_accessible
from tests.lists.conftest import deliver_outbox


def _text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def _send_post(app, list_id: int, subject: str) -> int:
    from portal.lists.models import MailingList
    from portal.lists.services import save_post, send_post_now

    with app.app_context():
        post = save_post(db.session.get(MailingList, list_id), None, subject=subject,
                         body="The **programme** is ready.\n\n- Day one\n- Day two")
        count = send_post_now(post)
        db.session.commit()
        return count


def test_subscribe_confirm_receive_unsubscribe_in_one_click(app, page, live_server, smtp_server, make):
    from portal.lists.services import save_public_list

    with app.app_context():
        list_id = save_public_list(None, slug="symposium-announcements", name_en="Symposium announcements",
                                   name_fr="Annonces du symposium", description_en="Dates and programme.").id
        db.session.commit()

    page.goto("/lists/")
    assert_accessible(page, "lists index")
    page.get_by_role("link", name="Subscribe – Symposium announcements").click()
    page.get_by_role("button", name="Subscribe").click()  # empty form: errors
    assert page.get_by_text("There is a problem").is_visible()
    assert_accessible(page, "subscribe with errors")
    page.get_by_label("Email address").fill("reader@example.ca")
    page.get_by_label("Your name").fill("Robin Reader")
    page.get_by_label(re.compile("Yes, send me")).check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    assert_accessible(page, "check your email")

    deliver_outbox(app)
    [confirmation] = smtp_server.wait_for(1)
    assert confirmation["To"] == "Robin Reader <reader@example.ca>"
    assert confirmation["List-Unsubscribe"] is None
    link = re.search(r"(http://127\.0\.0\.1:\d+/lists/confirm/\S+)", _text(confirmation)).group(1)
    page.goto(link)
    assert_accessible(page, "confirm")
    page.get_by_role("button", name="Confirm my subscription").click()
    page.get_by_role("heading", name="You are subscribed").wait_for()
    assert_accessible(page, "confirmed")

    assert _send_post(app, list_id, "Programme released") == 1
    deliver_outbox(app)
    messages = smtp_server.wait_for(2)
    post = messages[1]
    assert post["Subject"] == "Programme released"
    assert post["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = re.search(r"<(http://[^>]+)>", post["List-Unsubscribe"]).group(1)

    # The visible link's page changes nothing and is accessible.
    page.goto(unsubscribe_url)
    assert_accessible(page, "unsubscribe confirmation page")
    # The mail provider's one-click POST: no cookie, no CSRF token.
    request = urllib.request.Request(unsubscribe_url, data=b"List-Unsubscribe=One-Click", method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.url == unsubscribe_url  # no redirect was followed
        assert "You are unsubscribed" in response.read().decode()

    assert _send_post(app, list_id, "Second announcement") == 0
    deliver_outbox(app)
    assert [m["Subject"] for m in smtp_server.to("reader@example.ca")] == [
        confirmation["Subject"], "Programme released"]

    page.goto(unsubscribe_url)
    page.get_by_text("You are not subscribed").wait_for()
    page.goto("/lists/symposium-announcements/archive")
    assert_accessible(page, "archive")
    page.get_by_role("link", name="Programme released").click()
    assert_accessible(page, "archived post")

    page.goto("/lists/preferences")
    assert_accessible(page, "preferences request")
    page.get_by_label("Email address").fill("reader@example.ca")
    page.get_by_role("button", name="Send me the link").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    assert_accessible(page, "preferences sent")
    deliver_outbox(app)
    preferences_mail = smtp_server.wait_for(3)[-1]
    page.goto(re.search(r"(http://127\.0\.0\.1:\d+/lists/preferences/\S+)", _text(preferences_mail)).group(1))
    assert_accessible(page, "preference centre")
    page.get_by_label("Symposium announcements").check()
    page.get_by_role("button", name="Save my choices").click()
    page.get_by_text("1 joined").wait_for()
    assert_accessible(page, "preference centre saved")


def test_organizer_list_pages_are_accessible(app, page, make):
    from portal.lists.imports import create_import_job
    from portal.lists.jobs import process_import_job
    from portal.lists.models import MailingList
    from portal.lists.services import save_post, save_public_list
    from tests.lists.conftest import add_subscriber

    organizer = make.organizer()
    with app.app_context():
        list_id = save_public_list(None, slug="guideline-releases", name_en="Guideline releases").id
        db.session.commit()
    subscription_id, _, _ = add_subscriber(app, list_id, "ana@example.ca")
    with app.app_context():
        mailing_list = db.session.get(MailingList, list_id)
        post_id = save_post(mailing_list, None, subject="New guideline", body="Read **it**.").id
        job_id = create_import_job(mailing_list, "email\nbad\n", filename="bad.csv", ask_unconfirmed=True).id
        db.session.commit()
        process_import_job(job_id)

    page.goto("/login")
    page.get_by_label("Email").fill(organizer.email)
    page.get_by_label("Password").fill(organizer.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/**")
    for path, label in (
        ("/admin/lists/", "admin lists"),
        ("/admin/lists/new", "new list"),
        (f"/admin/lists/{list_id}/edit", "edit list"),
        (f"/admin/lists/{list_id}", "subscribers"),
        (f"/admin/lists/{list_id}/subscribers/{subscription_id}", "subscriber history"),
        (f"/admin/lists/{list_id}/import", "import"),
        (f"/admin/lists/imports/{job_id}", "import report"),
        (f"/admin/lists/{list_id}/posts", "posts"),
        (f"/admin/lists/{list_id}/posts/new", "new post"),
        (f"/admin/lists/posts/{post_id}", "post preview"),
    ):
        page.goto(path)
        assert_accessible(page, label)
    page.goto("/admin/lists/new")
    page.get_by_role("button", name="Save the list").click()
    assert_accessible(page, "new list with errors")
    page.goto(f"/admin/lists/posts/{post_id}")
    page.get_by_role("button", name="Schedule").click()
    assert_accessible(page, "schedule with errors")
