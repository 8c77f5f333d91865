"""RFC 8058 one-click unsubscribe: POST without cookie or CSRF → 200, no redirect; GET changes
nothing; a bad token is the same 404 as any unknown token; links work for 60+ days."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.core import clock
from portal.extensions import db
from tests.lists.conftest import add_subscriber


def _status(app, subscription_id):
    from portal.lists.models import Subscription

    with app.app_context():
        return db.session.get(Subscription, subscription_id).status


def _ledger(app, person_id):
    from portal.people.models import ConsentRecord

    with app.app_context():
        return [(r.kind, r.method) for r in db.session.execute(
            select(ConsentRecord).where(ConsentRecord.person_id == person_id).order_by(ConsentRecord.id)).scalars()]


def test_one_click_post_without_cookie_or_csrf_unsubscribes_with_200_and_no_redirect(app, public_list):
    subscription_id, person_id, token = add_subscriber(app, public_list, "reader@example.ca")
    client = app.test_client(use_cookies=False)
    response = client.post(f"/lists/unsubscribe/{token}", data="List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "You are unsubscribed" in response.get_data(as_text=True)
    assert _status(app, subscription_id) == "unsubscribed"
    assert _ledger(app, person_id)[-1] == ("withdrawn", "one-click unsubscribe")
    # Posting again (a provider retrying) is still 200 and adds nothing.
    again = client.post(f"/lists/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert len(_ledger(app, person_id)) == 2


def test_multipart_one_click_body_works_too(app, public_list):
    subscription_id, _, token = add_subscriber(app, public_list, "multi@example.ca")
    response = app.test_client(use_cookies=False).post(
        f"/lists/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data")
    assert response.status_code == 200
    assert _status(app, subscription_id) == "unsubscribed"


def test_get_shows_a_button_and_changes_nothing(app, client, public_list):
    subscription_id, person_id, token = add_subscriber(app, public_list, "scanner@example.ca")
    for _ in range(3):
        page = client.get(f"/lists/unsubscribe/{token}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert 'name="List-Unsubscribe" value="One-Click"' in html
    assert _status(app, subscription_id) == "active"
    assert _ledger(app, person_id) == [("express", "test")]


def test_a_post_without_the_one_click_body_changes_nothing(app, public_list):
    subscription_id, _, token = add_subscriber(app, public_list, "odd@example.ca")
    client = app.test_client(use_cookies=False)
    assert client.post(f"/lists/unsubscribe/{token}", data={"List-Unsubscribe": "Maybe"}).status_code == 400
    assert client.post(f"/lists/unsubscribe/{token}").status_code == 400
    assert _status(app, subscription_id) == "active"


def _main(response) -> str:
    html = response.get_data(as_text=True)
    return html[html.index("<main"):html.index("</main>")]


def test_a_bad_token_is_the_same_404_as_any_unknown_token(app, public_list):
    client = app.test_client(use_cookies=False)
    reference = client.get("/lists/confirm/" + "A" * 43)
    assert reference.status_code == 404
    for token in ("A" * 43, "short", "é" * 10, "x" * 500, "a.b"):
        for method in ("get", "post"):
            response = getattr(client, method)(f"/lists/unsubscribe/{token}",
                                               data={"List-Unsubscribe": "One-Click"} if method == "post" else None)
            assert response.status_code == 404, (token, method)
            assert _main(response) == _main(reference), (token, method)


def test_the_link_still_works_after_60_days(app, public_list):
    subscription_id, _, token = add_subscriber(app, public_list, "patient@example.ca")
    clock.advance(timedelta(days=75))
    response = app.test_client(use_cookies=False).post(f"/lists/unsubscribe/{token}",
                                                        data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert _status(app, subscription_id) == "unsubscribed"


def test_unsubscribing_withholds_list_mail_still_waiting_in_the_outbox(app, public_list):
    from portal.lists.models import ListPost
    from portal.lists.services import save_post, send_post_now
    from portal.mail.models import OutboxMessage

    _, person_id, token = add_subscriber(app, public_list, "quick@example.ca")
    with app.app_context():
        from portal.lists.models import MailingList

        post = save_post(db.session.get(MailingList, public_list), None, subject="Hello", body="Hi")
        assert send_post_now(post) == 1
        db.session.commit()
    app.test_client(use_cookies=False).post(f"/lists/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    with app.app_context():
        message = db.session.execute(select(OutboxMessage).where(OutboxMessage.person_id == person_id)).scalar_one()
        assert message.state == "withheld"
        assert db.session.execute(select(ListPost)).scalar_one().status == "sent"


def test_a_withdrawal_already_written_by_the_caller_is_not_doubled(app, public_list):
    from portal.lists.models import Subscription
    from portal.lists.services import unsubscribe
    from portal.people.models import ConsentKind, Person
    from portal.people.services import record_consent

    subscription_id, person_id, _ = add_subscriber(app, public_list, "mydata@example.ca")
    with app.app_context():
        record_consent(db.session.get(Person, person_id), purpose="list:symposium-announcements",
                       kind=ConsentKind.WITHDRAWN, method="my data page")
        assert unsubscribe(db.session.get(Subscription, subscription_id), "my data page") is True
        db.session.commit()
    assert _ledger(app, person_id) == [("express", "test"), ("withdrawn", "my data page")]
    assert _status(app, subscription_id) == "unsubscribed"


def _mailto_of(app, subscription_id) -> str:
    """The mailto half of the List-Unsubscribe header this subscriber's list mail carries."""
    from portal.lists.models import Subscription
    from portal.lists.notifications import list_context_for

    with app.test_request_context():
        return list_context_for(db.session.get(Subscription, subscription_id)).unsubscribe_mailto


def test_a_message_to_the_mailto_unsubscribe_address_unsubscribes(app, runner, public_list):
    subscription_id, person_id, token = add_subscriber(app, public_list, "mailer@example.ca")
    other_id, _, _ = add_subscriber(app, public_list, "stays@example.ca")
    address = _mailto_of(app, subscription_id)
    assert address.startswith(f"unsubscribe+{token}@")
    message = (f"From: Reader <mailer@example.ca>\r\nTo: {address}\r\nSubject: unsubscribe\r\n\r\n"
               "Please take me off.\r\n").encode()
    result = runner.invoke(args=["receive-unsubscribe-mail"], input=message)
    assert result.exit_code == 0, result.output
    assert "Unsubscribed from symposium-announcements" in result.output
    assert _status(app, subscription_id) == "unsubscribed" and _status(app, other_id) == "active"
    assert _ledger(app, person_id)[-1] == ("withdrawn", "email unsubscribe")


def test_the_envelope_recipient_counts_and_unknown_addresses_change_nothing(app, runner, public_list):
    subscription_id, _, _ = add_subscriber(app, public_list, "envelope@example.ca")
    address = _mailto_of(app, subscription_id)
    forged = b"From: someone@example.com\r\nTo: unsubscribe+" + b"A" * 43 + b"@owg.example.ca\r\n\r\nhi\r\n"
    result = runner.invoke(args=["receive-unsubscribe-mail"], input=forged)
    assert result.exit_code == 0 and "nothing changed" in result.output  # no bounce to a forged sender
    assert _status(app, subscription_id) == "active"
    bcc = b"From: envelope@example.ca\r\nTo: undisclosed-recipients:;\r\n\r\n\r\n"
    result = runner.invoke(args=["receive-unsubscribe-mail", "--recipient", address], input=bcc)
    assert result.exit_code == 0, result.output
    assert _status(app, subscription_id) == "unsubscribed"


def test_the_unsubscribe_page_speaks_the_subscribers_language(app, client, public_list):
    _, _, token = add_subscriber(app, public_list, "abonnee@example.ca", language="fr")
    page = client.get(f"/lists/unsubscribe/{token}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="fr">' in page
