"""Posts: one message per confirmed subscriber with live consent, exact List-* headers,
scheduled posts sent once when due, and the organizer's write-preview-test-send pages."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from portal.core import clock
from portal.extensions import db
from portal.lists.models import ListPost
from tests.conftest import csrf_token
from tests.lists.conftest import add_subscriber, deliver_outbox, outbox


def _post(app, list_id, subject="Programme released", body="The **programme** is out.\n\n<script>x()</script>"):
    from portal.lists.models import MailingList
    from portal.lists.services import save_post

    with app.app_context():
        post = save_post(db.session.get(MailingList, list_id), None, subject=subject, body=body)
        db.session.commit()
        return post.id


def _population(app, list_id):
    """Two confirmed subscribers, and four people who must receive nothing."""
    confirmed = [add_subscriber(app, list_id, "ana@example.ca"),
                 add_subscriber(app, list_id, "ben@example.ca", language="fr")]
    add_subscriber(app, list_id, "pending@example.ca", status="pending", consent=None)
    add_subscriber(app, list_id, "gone@example.ca", status="unsubscribed")
    add_subscriber(app, list_id, "noconsent@example.ca", consent=None)
    clock.set_now(datetime(2026, 1, 10, 12, tzinfo=UTC))
    add_subscriber(app, list_id, "implied@example.ca", consent="implied")  # lapses 2028-01-10
    return confirmed


def test_a_post_goes_once_to_each_confirmed_subscriber_with_exact_list_headers(app, public_list):
    from portal.lists.models import ListPost
    from portal.lists.services import send_post_now

    confirmed = _population(app, public_list)
    clock.set_now(datetime(2028, 6, 1, 12, tzinfo=UTC))  # the implied consent has lapsed
    post_id = _post(app, public_list)
    with app.app_context():
        assert send_post_now(db.session.get(ListPost, post_id)) == 2
        db.session.commit()
        from portal.lists.services import PostNotEditable

        try:  # a second send is refused
            send_post_now(db.session.get(ListPost, post_id))
        except PostNotEditable:
            db.session.rollback()
        else:
            raise AssertionError("sent twice")
    messages = outbox(app, "lists.post")
    assert sorted(m.to_address.split("<")[-1].rstrip(">") for m in messages) == ["ana@example.ca", "ben@example.ca"]
    by_address = {m.to_address.split("<")[-1].rstrip(">"): m for m in messages}
    for (subscription_id, person_id, token), address in zip(confirmed, ["ana@example.ca", "ben@example.ca"]):
        message = by_address[address]
        assert message.idempotency_key == f"lists.post:{post_id}:{person_id}"
        assert message.category == "list"
        assert message.headers["List-Id"] == "Symposium announcements <symposium-announcements.lists.owg.example.ca>"
        assert message.headers["List-Unsubscribe"] == (
            f"<http://portal.test/lists/unsubscribe/{token}>, "
            f"<mailto:unsubscribe+{token}@owg.example.ca>")  # `flask receive-unsubscribe-mail` reads it
        assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.headers["List-Post"] == "NO"
        assert "<script>" not in message.body_html and "<strong>programme</strong>" in message.body_html
        assert f"http://portal.test/lists/unsubscribe/{token}" in message.body_text
        assert "70 Birmingham Street" in message.body_text  # CASL: sender's postal address
    assert by_address["ben@example.ca"].language == "fr"


def test_delivered_post_carries_the_headers_at_the_smtp_server(app, public_list, smtp_server):
    from portal.lists.models import ListPost
    from portal.lists.services import send_post_now

    _, _, token = add_subscriber(app, public_list, "ana@example.ca")
    post_id = _post(app, public_list)
    with app.app_context():
        send_post_now(db.session.get(ListPost, post_id))
        db.session.commit()
    deliver_outbox(app)
    [received] = smtp_server.wait_for(1)
    assert received["Subject"] == "Programme released"
    assert received["List-Id"] == "Symposium announcements <symposium-announcements.lists.owg.example.ca>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"/lists/unsubscribe/{token}>" in received["List-Unsubscribe"]
    assert received["List-Post"] == "NO"
    assert received["Message-ID"]


def test_transactional_confirmation_has_no_list_headers(app, client, public_list):
    from portal.lists.models import MailingList
    from portal.lists.services import request_subscription

    with app.app_context():
        request_subscription(db.session.get(MailingList, public_list), "t@example.ca", "T", "en", "w", "v1",
                             "192.0.2.1", "ua")
        db.session.commit()
    [message] = outbox(app)
    assert message.category == "transactional"
    assert "List-Unsubscribe" not in message.headers


def test_a_scheduled_post_is_sent_once_when_due(app, public_list):
    from portal.lists.jobs import send_due_posts
    from portal.lists.models import ListPost
    from portal.lists.services import schedule_post

    add_subscriber(app, public_list, "ana@example.ca")
    add_subscriber(app, public_list, "ben@example.ca")
    clock.set_now(datetime(2026, 3, 1, 9, tzinfo=UTC))
    post_id = _post(app, public_list)
    with app.app_context():
        schedule_post(db.session.get(ListPost, post_id), datetime(2026, 3, 2, 9, tzinfo=UTC))
        db.session.commit()
        assert send_due_posts() == 0
    assert outbox(app, "lists.post") == []
    clock.advance(timedelta(days=1, minutes=1))
    with app.app_context():
        assert send_due_posts() == 1
        assert send_due_posts() == 0
        post = db.session.get(ListPost, post_id)
        assert post.status == "sent" and post.recipient_count == 2
    clock.advance(timedelta(days=3))
    with app.app_context():
        assert send_due_posts() == 0
    assert len(outbox(app, "lists.post")) == 2


def test_implied_consent_lapses_when_the_clock_passes_its_expiry(app, public_list):
    from portal.lists.models import MailingList
    from portal.lists.services import recipients

    clock.set_now(datetime(2026, 1, 10, 12, tzinfo=UTC))
    add_subscriber(app, public_list, "implied@example.ca", consent="implied")
    with app.app_context():
        mailing_list = db.session.get(MailingList, public_list)
        assert [s.person.email for s in recipients(mailing_list)] == ["implied@example.ca"]
        clock.set_now(datetime(2028, 1, 11, 12, tzinfo=UTC))
        assert recipients(mailing_list) == []


def test_every_active_subscriber_has_a_consent_row(app, client, public_list):
    """Whatever path made them active (form, import, group, preference centre)."""
    from portal.lists.imports import import_subscribers
    from portal.lists.models import MailingList, Subscription
    from portal.lists.services import add_group_subscriber, ensure_group_list
    from portal.people.models import ConsentRecord
    from portal.people.services import get_or_create_person

    with app.app_context():
        mailing_list = db.session.get(MailingList, public_list)
        import_subscribers(mailing_list, "email,consent_date,consent_source\na@example.ca,2025-01-01,paper form\n")
        group = ensure_group_list("youth-table", "Youth table", "Table jeunesse")
        add_group_subscriber(group, get_or_create_person("member@example.ca"))
        db.session.commit()
        active = db.session.execute(select(Subscription).where(Subscription.status == "active")).scalars().all()
        assert len(active) == 2
        for subscription in active:
            assert db.session.execute(select(func.count()).select_from(ConsentRecord).where(
                ConsentRecord.person_id == subscription.person_id,
                ConsentRecord.purpose == subscription.mailing_list.consent_purpose)).scalar_one() >= 1


def test_organizer_writes_previews_tests_and_sends(app, client, auth, organizer, public_list):
    add_subscriber(app, public_list, "ana@example.ca")
    auth.login(organizer)
    new = f"/admin/lists/{public_list}/posts/new"
    # Written in French, for an English subscriber: pages and the email mark it as French.
    response = client.post(new, data={"subject": "Hello", "body": "A [link](https://example.ca) <b>raw</b>",
                                      "language": "fr", "csrf_token": csrf_token(client, new)})
    assert response.status_code == 302
    page_path = response.location
    page = client.get(page_path).get_data(as_text=True)
    assert '<a href="https://example.ca" rel="noopener noreferrer">link</a>' in page
    assert '<div class="post-body post-preview" lang="fr">' in page  # the preview says it is French
    assert "<b>raw</b>" not in page
    assert "Unsubscribe:" in page  # the text version as a subscriber sees it
    # ... its post in French, its footer in the page's language.
    assert '<pre class="email"><span lang="fr">A [link](https://example.ca) &lt;b&gt;raw&lt;/b&gt;</span>' in page
    french = client.get(page_path, headers={"Accept-Language": "fr-CA"}).get_data(as_text=True)
    assert "Se désabonner :" in french and "vous êtes abonné à « Annonces" in french  # as French readers get it

    post_id = int(page_path.rsplit("/", 1)[1])
    token = csrf_token(client, page_path)
    assert client.post(f"/admin/lists/posts/{post_id}/test", data={"csrf_token": token}).status_code == 302
    [test_copy] = outbox(app, "lists.post_test")
    assert test_copy.to_address.endswith(f"<{organizer.email}>") and test_copy.subject == "[Test] Hello"
    # The web version's link answers 404 until the post is sent: the test copy says so.
    assert "/archive/" in test_copy.body_text and "(this link works once the post is sent)" in test_copy.body_text
    # Asked for from a French page, the test copy is the French subscribers' version.
    client.post(f"/admin/lists/posts/{post_id}/test", data={"csrf_token": token}, headers={"Accept-Language": "fr"})
    french_copy = outbox(app, "lists.post_test")[-1]
    assert french_copy.language == "fr" and "Ceci est un exemplaire d'essai" in french_copy.body_html
    assert '<html lang="fr">' in french_copy.body_html  # written in French, whoever reads it
    assert outbox(app, "lists.post") == []

    assert client.post(f"/admin/lists/posts/{post_id}/send", data={"csrf_token": token}).status_code == 302
    [sent] = outbox(app, "lists.post")
    assert '<div lang="fr"><p>A <a href="https://example.ca"' in sent.body_html
    # A sent post can no longer be edited or sent again.
    assert client.post(f"/admin/lists/posts/{post_id}/send", data={"csrf_token": token}).status_code == 302
    assert len(outbox(app, "lists.post")) == 1
    assert "already been sent" in client.get(page_path).get_data(as_text=True)  # said once, where it went back to
    refused = client.post(page_path, data={"subject": "x", "body": "y", "csrf_token": token})
    # The page of a sent post draws no form: the reason is above the page, not on a hidden field.
    assert refused.status_code == 409
    assert re.search(r'<p class="flash flash-error">This post has already been sent or is being sent; '
                     r'it can no longer be changed\.</p>', refused.get_data(as_text=True))
    # So is a schedule asked for from a stale tab (its form is not drawn either).
    late = client.post(f"/admin/lists/posts/{post_id}/schedule", data={"send_at": "2031-03-02T09:00",
                                                                       "csrf_token": token})
    assert late.status_code == 409 and 'class="flash flash-error"' in late.get_data(as_text=True)
    # It is in the public archive.
    archive = client.get("/lists/symposium-announcements/archive").get_data(as_text=True)
    assert f'/archive/{post_id}" lang="fr">Hello</a>' in archive
    archived = client.get(f"/lists/symposium-announcements/archive/{post_id}")
    assert archived.status_code == 200 and '<h1 lang="fr">Hello</h1>' in archived.get_data(as_text=True)
    assert "Hello" in client.get(f"/admin/lists/{public_list}/posts").get_data(as_text=True)


def test_scheduling_from_the_page_and_junk(app, client, auth, organizer, public_list):
    clock.set_now(datetime(2026, 3, 1, 14, tzinfo=UTC))
    post_id = _post(app, public_list)
    auth.login(organizer)
    path = f"/admin/lists/posts/{post_id}"
    token = csrf_token(client, path)
    schedule = f"{path}/schedule"
    for junk in ("", "yesterday", "2026-13-45T99:99", "2020-01-01T10:00", "9" * 300, "9999-12-31T23:59",
                 "2101-01-01T00:00", "2026-03-08T02:30"):  # the last: Toronto's clocks skip it
        response = client.post(schedule, data={"send_at": junk, "csrf_token": token})
        assert response.status_code == 400, junk
    response = client.post(schedule, data={"send_at": "2026-03-02T09:00", "csrf_token": token})
    assert response.status_code == 302
    from portal.lists.models import ListPost

    with app.app_context():
        post = db.session.get(ListPost, post_id)
        assert post.status == "scheduled"
        assert post.send_at == datetime(2026, 3, 2, 14, tzinfo=UTC)  # 9:00 in Toronto (EST)
    # Editing a scheduled post takes it back to draft, and the page says so before and after.
    assert "Saving changes takes this post back to draft" in client.get(path).get_data(as_text=True)
    edited = client.post(path, data={"subject": "New subject", "body": "Changed.", "csrf_token": token},
                         follow_redirects=True)
    assert "It is no longer scheduled" in edited.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(ListPost, post_id).status == "draft"
    assert client.post(schedule, data={"send_at": "2026-03-02T09:00", "csrf_token": token}).status_code == 302
    assert client.post(f"{path}/unschedule", data={"csrf_token": token}).status_code == 302
    with app.app_context():
        assert db.session.get(ListPost, post_id).status == "draft"

    new = f"/admin/lists/{public_list}/posts/new"
    for data in ({"subject": "", "body": "x"}, {"subject": "s" * 300, "body": "x"}, {"subject": "x", "body": ""},
                 {"subject": "x", "body": "b" * 60_000}, {"subject": "nul\x00", "body": "x"},
                 {"subject": "x", "body": "nul\x00"}):
        assert client.post(new, data={**data, "csrf_token": token}).status_code == 400, data
    for bad in ("/admin/lists/posts/abc", "/admin/lists/posts/999999", "/admin/lists/posts/2147483648",
                "/admin/lists/999999/posts",
                "/admin/lists/999999/posts/new"):
        assert client.get(bad).status_code == 404, bad
    for bad in ("/admin/lists/posts/999999/send", "/admin/lists/posts/2147483648", "/admin/lists/posts/2147483648/send"):
        assert client.post(bad, data={"csrf_token": token}).status_code == 404, bad


def test_send_now_to_a_large_list_is_handed_to_the_scheduler(app, public_list):
    from portal.lists.jobs import send_due_posts
    from portal.lists.models import ListPost
    from portal.lists.services import send_post_now

    app.config["LISTS_INLINE_FAN_OUT_LIMIT"] = 1
    add_subscriber(app, public_list, "ana@example.ca")
    add_subscriber(app, public_list, "ben@example.ca")
    post_id = _post(app, public_list)
    with app.app_context():
        assert send_post_now(db.session.get(ListPost, post_id)) == 2
        db.session.commit()
        assert db.session.get(ListPost, post_id).status == "scheduled"
    assert outbox(app, "lists.post") == []
    with app.app_context():
        assert send_due_posts() == 1
    assert len(outbox(app, "lists.post")) == 2


def test_the_recipient_count_is_the_recipients_counted_by_the_database(app, public_list):
    """The organizer's pages count a list's recipients in one query (a scale pass measured
    3 s and +120 MB loading 29,000 to count them); it must be the same rule as recipients():
    active, not erased, newest consent neither withdrawn nor lapsed."""
    from portal.lists.models import MailingList
    from portal.lists.services import recipient_count, recipients
    from portal.people.models import ConsentKind, Person
    from portal.people.services import record_consent

    clock.set_now(datetime(2026, 1, 10, 12, tzinfo=UTC))
    add_subscriber(app, public_list, "express@example.ca")
    add_subscriber(app, public_list, "implied@example.ca", consent="implied")
    add_subscriber(app, public_list, "none@example.ca", consent=None)
    add_subscriber(app, public_list, "left@example.ca", status="unsubscribed")
    _, erased_id, _ = add_subscriber(app, public_list, "erased@example.ca")
    _, back_id, _ = add_subscriber(app, public_list, "back@example.ca")
    with app.app_context():
        db.session.get(Person, erased_id).erased_at = clock.now()
        mailing_list = db.session.get(MailingList, public_list)
        back = db.session.get(Person, back_id)
        # withdrew, then consented again: the newest event counts
        record_consent(back, purpose=mailing_list.consent_purpose, kind=ConsentKind.WITHDRAWN, source="t", method="t")
        clock.advance(timedelta(seconds=1))
        record_consent(back, purpose=mailing_list.consent_purpose, kind=ConsentKind.EXPRESS, source="t", method="t")
        db.session.commit()
        expected = sorted(s.person.email for s in recipients(mailing_list))
        assert expected == ["back@example.ca", "express@example.ca", "implied@example.ca"]
        assert recipient_count(mailing_list) == 3
        clock.set_now(datetime(2028, 1, 11, 12, tzinfo=UTC))  # the implied consent lapsed
        assert len(recipients(mailing_list)) == recipient_count(mailing_list) == 2


def test_a_new_message_is_taken_to_be_in_the_language_of_the_page_it_is_written_on(app, client, auth, organizer,
                                                                                    public_list):
    auth.login(organizer)
    new = f"/admin/lists/{public_list}/posts/new"
    form = client.get(new, headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert re.search(r'<input[^>]*checked[^>]*value="fr"|<input[^>]*value="fr"[^>]*checked', form)
    bad = client.post(new, data={"subject": "Hi", "body": "x", "language": "de", "csrf_token": csrf_token(client, new)})
    assert bad.status_code == 400
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(ListPost)).scalar_one() == 0
