"""The admin's Mail page: counts, errors, messages as received, retrying failed mail."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from portal.extensions import db
from portal.mail.attachments import QR_CODE, qr_code_svg
from portal.mail.delivery import drain
from portal.mail.models import OutboxMessage, OutboxState
from portal.mail.services import Attachment
from tests.conftest import csrf_token


def _fail(app, message_ids, reply="550 5.1.1 No such user"):
    with app.app_context():
        db.session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(message_ids))
            .values(state=OutboxState.FAILED.value, attempts=1, last_error=reply)
        )
        db.session.commit()


def _count(page: str, state: str) -> int:
    return int(re.search(rf'data-state="{state}">(\d+)<', page).group(1))


def test_the_page_shows_counts_by_state_and_retry_puts_failed_mail_back(
    app, client, auth, admin, outbox, smtp_server
):
    ids = outbox.queue(count=5)
    _fail(app, ids[:2])
    auth.login(admin)

    page = client.get("/admin/mail").get_data(as_text=True)
    assert _count(page, "queued") == 3 and _count(page, "failed") == 2 and _count(page, "sent") == 0
    assert "550 5.1.1 No such user" in page

    response = client.post("/admin/mail/retry", data={"csrf_token": csrf_token(client, "/admin/mail")})
    assert response.status_code == 302
    page = client.get("/admin/mail").get_data(as_text=True)
    assert _count(page, "queued") == 5 and _count(page, "failed") == 0
    assert "2 failed messages were queued again." in page

    with app.app_context():
        assert drain().sent == 5
        from portal.core.audit import AuditEntry
        from sqlalchemy import select

        actions = db.session.execute(select(AuditEntry.action)).scalars().all()
        assert "mail.outbox.retried" in actions
    assert len(smtp_server.wait_for(5)) == 5
    page = client.get("/admin/mail").get_data(as_text=True)
    assert _count(page, "sent") == 5


def test_one_failed_message_can_be_retried_from_its_page(app, client, auth, admin, outbox):
    [message_id] = outbox.queue("one@example.ca")
    _fail(app, [message_id])
    auth.login(admin)
    token = csrf_token(client, f"/admin/mail/{message_id}")
    response = client.post(f"/admin/mail/{message_id}/retry", data={"csrf_token": token})
    assert response.status_code == 302
    assert outbox.row(message_id).state == OutboxState.QUEUED
    # A message that is not failed is left alone.
    response = client.post(f"/admin/mail/{message_id}/retry", data={"csrf_token": token}, follow_redirects=True)
    assert "Only a failed message can be queued again." in response.get_data(as_text=True)


def test_the_list_filters_by_state_and_pages(app, client, auth, admin, outbox):
    ids = outbox.queue(count=55)
    _fail(app, ids[:1])
    auth.login(admin)
    failed = client.get("/admin/mail?state=failed").get_data(as_text=True)
    assert failed.count(f'href="/admin/mail/{ids[0]}"') >= 1
    assert f'href="/admin/mail/{ids[1]}"' not in failed
    first = client.get("/admin/mail").get_data(as_text=True)
    second = client.get("/admin/mail?page=2").get_data(as_text=True)
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert f'href="/admin/mail/{ids[0]}"' in second  # oldest last


def test_a_message_is_shown_as_received_with_its_html_sandboxed(app, client, auth, admin, outbox):
    [message_id] = outbox.queue(
        "shown@example.ca", title="Programme <script>alert(1)</script>",
        paragraphs=["<img src=https://tracker.example/p.gif onerror=alert(2)>"],
    )
    auth.login(admin)
    page = client.get(f"/admin/mail/{message_id}").get_data(as_text=True)
    row = outbox.row(message_id)
    assert row.message_id.replace("<", "&lt;").replace(">", "&gt;") in page
    assert "shown@example.ca" in page and "Auto-Submitted" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "onerror=alert(2)>" not in page
    assert f'<iframe class="mail-html" sandbox="" src="/admin/mail/{message_id}/html"' in page

    html = client.get(f"/admin/mail/{message_id}/html")
    assert html.status_code == 200
    policy = html.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox; default-src 'none'")
    assert "script-src" not in policy and "frame-ancestors 'self'" in policy
    assert html.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_a_message_lists_its_attachments_with_the_size_they_go_out_at(app, client, auth, admin, outbox):
    [message_id] = outbox.queue("door@example.ca", attachments=[
        Attachment("event.ics", "text/calendar", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"),
        Attachment("check-in-code.svg", "image/svg+xml", b"CHECK-IN-99", generated=QR_CODE),
    ])
    auth.login(admin)
    page = client.get(f"/admin/mail/{message_id}").get_data(as_text=True)
    assert "event.ics (text/calendar, 32 bytes)" in page
    drawn = len(qr_code_svg("CHECK-IN-99"))  # the picture the sender will draw, not the stored text
    assert f"check-in-code.svg (image/svg+xml, {drawn} bytes)" in page


@pytest.mark.parametrize(
    "path, status",
    [
        ("/admin/mail?state=exploded", 400),
        ("/admin/mail?page=abc", 400),
        ("/admin/mail?page=-3", 400),
        ("/admin/mail?page=99999999999999999999", 400),
        ("/admin/mail?state=" + "é" * 5000, 400),
        ("/admin/mail?page=500", 200),
        ("/admin/mail/999999", 404),
        ("/admin/mail/abc", 404),
        ("/admin/mail/-1", 404),
        ("/admin/mail/999999/html", 404),
        ("/admin/mail/99999999999999999999999", 404),
    ],
)
def test_junk_in_urls_gets_a_clear_4xx(client, auth, admin, path, status):
    auth.login(admin)
    response = client.get(path)
    assert response.status_code == status
    if status == 400:
        assert "There is a problem" in response.get_data(as_text=True)


def test_junk_posts_are_refused_without_a_500(client, auth, admin, outbox):
    auth.login(admin)
    token = csrf_token(client, "/admin/mail")
    assert client.post("/admin/mail/999999/retry", data={"csrf_token": token}).status_code == 404
    assert client.post("/admin/mail/abc/retry", data={"csrf_token": token}).status_code == 404
    assert client.post("/admin/mail/retry", data={"csrf_token": "forged"}).status_code == 400
    assert client.post("/admin/mail/retry", data={"csrf_token": token, "junk": "x" * 10000}).status_code == 302


def test_the_mail_page_is_for_admins_only(client, outbox):
    [message_id] = outbox.queue()
    for path in ("/admin/mail", f"/admin/mail/{message_id}", f"/admin/mail/{message_id}/html"):
        response = client.get(path)
        assert response.status_code == 302 and response.location.startswith("/login")


def test_accented_names_are_shown_as_the_recipient_sees_them(app, client, auth, admin):
    from portal.mail.services import queue_email
    from portal.people.services import get_or_create_person

    with app.app_context():
        person = get_or_create_person("eloise@example.ca", name="Éloïse Côté")
        message_id = queue_email(key="test.accents:1", to=person, template="mail/notice",
                                 purpose="mail.test", context={"title": "Bienvenue", "paragraphs": ["x"]})
        db.session.commit()
    auth.login(admin)
    page = client.get(f"/admin/mail/{message_id}").get_data(as_text=True)
    assert "Éloïse Côté &lt;eloise@example.ca&gt;" in page
    assert "=?utf-8?" not in page


def test_only_admins_read_the_outbox_and_never_the_recipients_keys_once_mail_goes_out(
    app, client, auth, organizer, admin, outbox, smtp_server
):
    # A manage link and a check-in code, as a confirmation carries them.
    key = "QBxV" + "k" * 39
    [message_id] = outbox.queue("alice@example.ca", paragraphs=[
        f"Manage: http://portal.test/events/manage/{key}", f"Check-in code: {key[::-1]}"])
    auth.login(organizer)  # runs no event of Alice's
    for path in ("/admin/mail", f"/admin/mail/{message_id}", f"/admin/mail/{message_id}/html"):
        assert client.get(path).status_code == 403, path
    assert 'href="/admin/mail"' not in client.get("/admin/").get_data(as_text=True)
    auth.logout()

    auth.login(admin)
    page = client.get(f"/admin/mail/{message_id}").get_data(as_text=True)
    html = client.get(f"/admin/mail/{message_id}/html").get_data(as_text=True)
    for shown in (page, html):
        assert "alice@example.ca" in page and "/events/manage/QBxV…" in shown
        assert key not in shown and key[::-1] not in shown
    assert 'href="/admin/mail"' in client.get("/admin/").get_data(as_text=True)
    # The message itself is untouched: the recipient gets working links.
    assert key in outbox.row(message_id).body_text


def test_in_the_local_mailbox_admins_read_mail_with_working_links_and_organizers_do_not(
    app, client, auth, organizer, admin, outbox
):
    key = "QBxV" + "k" * 39
    [message_id] = outbox.queue("alice@example.ca", paragraphs=[f"Manage: http://portal.test/events/manage/{key}"])
    assert not app.config.get("MAIL_SERVER")
    auth.login(organizer)
    assert client.get(f"/admin/mail/{message_id}").status_code == 403
    auth.logout()
    auth.login(admin)
    assert key in client.get(f"/admin/mail/{message_id}").get_data(as_text=True)


def test_the_message_headers_are_named_in_the_readers_language(app, client, auth, admin, outbox):
    [message_id] = outbox.queue("alice@example.ca")
    auth.login(admin)
    page = client.get(f"/admin/mail/{message_id}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "<dt>De</dt>" in page and "<dt>À</dt>" in page and "<dt>Objet</dt>" in page


def test_reading_the_outbox_and_a_message_is_on_record(app, client, auth, admin, outbox):
    """A privacy pass found the Mail page, where an admin reads everyone's messages (and, with
    the local mailbox, their working links), the one place personal data was read unaudited."""
    from sqlalchemy import select

    from portal.core.audit import AuditEntry

    [message_id] = outbox.queue("read@example.ca")
    person_id = outbox.row(message_id).person_id
    auth.login(admin)
    assert client.get("/admin/mail?state=queued").status_code == 200
    assert client.get(f"/admin/mail/{message_id}").status_code == 200
    assert client.get(f"/admin/mail/{message_id}/html").status_code == 200
    with app.app_context():
        entries = db.session.execute(select(AuditEntry).where(AuditEntry.action.like("mail.%.viewed"))
                                     .order_by(AuditEntry.id)).scalars().all()
        assert [(e.action, e.subject, e.actor_label) for e in entries] == [
            ("mail.outbox.viewed", "outbox", admin.email),
            ("mail.message.viewed", f"outbox_message:{message_id}", admin.email),
            ("mail.message.viewed", f"outbox_message:{message_id}", admin.email)]
        assert entries[1].detail == {"person": person_id}


def test_a_message_is_marked_with_the_language_it_was_written_in(app, client, auth, admin, outbox):
    """From an accessibility pass (WCAG 3.1.2): English messages on the French Mail page (and
    French ones on the English page) were read with the page's language."""
    [message_id] = outbox.queue("fr@example.ca")
    with app.app_context():
        db.session.get(OutboxMessage, message_id).language = "fr"
        db.session.commit()
    auth.login(admin)
    listing = client.get("/admin/mail").get_data(as_text=True)
    assert re.search(r'<span lang="fr">[^<]+</span></a>', listing)
    page = client.get(f"/admin/mail/{message_id}").get_data(as_text=True)
    assert '<pre class="email" lang="fr">' in page and re.search(r'<h1><span lang="fr">', page)
