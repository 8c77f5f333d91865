"""Subscribing to a public list: double opt-in, consent evidence, nothing revealed, rate limits."""
from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.core import clock
from portal.extensions import db
from tests.conftest import BACKENDS, csrf_token
from tests.lists.conftest import add_subscriber, outbox

SUBSCRIBE = "/lists/symposium-announcements/subscribe"


def _subscribe(client, email, **extra):
    data = {"email": email, "name": "Sam", "language": "en", "consent": "y",
            "csrf_token": csrf_token(client, SUBSCRIBE), **extra}
    return client.post(SUBSCRIBE, data=data, headers={"User-Agent": "TestBrowser/1.0"})


def _subscription(app, email):
    from portal.lists.models import Subscription
    from portal.people.models import Person

    with app.app_context():
        row = db.session.execute(select(Subscription).join(Person).where(Person.email == email)).scalar_one_or_none()
        if row is not None:
            db.session.expunge(row)
        return row


def _consents(app, email):
    from portal.people.models import ConsentRecord, Person

    with app.app_context():
        return [(r.kind, r.method, r.source, r.wording, r.wording_version, r.ip, r.user_agent, r.language)
                for r in db.session.execute(select(ConsentRecord).join(Person, Person.id == ConsentRecord.person_id)
                                            .where(Person.email == email).order_by(ConsentRecord.id)).scalars()]


def test_index_and_subscribe_page_show_the_list_and_an_unticked_box(client, public_list):
    assert "Symposium announcements" in client.get("/lists/").get_data(as_text=True)
    page = client.get(SUBSCRIBE).get_data(as_text=True)
    box = re.search(r'<input[^>]*name="consent"[^>]*>', page).group(0)
    assert "checked" not in box
    assert "unsubscribe at any time" in page


def test_double_opt_in_sends_only_a_confirmation_then_records_consent_on_confirm(app, client, public_list):
    response = _subscribe(client, "New.Person@Example.ca")
    assert response.status_code == 302
    assert response.location.endswith("/lists/symposium-announcements/check-email")
    assert _subscription(app, "new.person@example.ca").status == "pending"
    assert _consents(app, "new.person@example.ca") == []

    [message] = outbox(app)
    assert message.purpose == "lists.confirmation"
    assert message.category == "transactional"
    assert not any(name.startswith("List-") for name in message.headers)
    link = re.search(r"http://portal\.test(/lists/confirm/\S+)", message.body_text).group(1)

    # A GET (a mail scanner following the link) changes nothing.
    page = client.get(link)
    assert page.status_code == 200 and "Confirm my subscription" in page.get_data(as_text=True)
    assert _subscription(app, "new.person@example.ca").status == "pending"

    response = client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert response.status_code == 200
    assert "You are subscribed" in response.get_data(as_text=True)
    assert _subscription(app, "new.person@example.ca").status == "active"
    [consent] = _consents(app, "new.person@example.ca")
    kind, method, source, wording, version, ip, agent, language = consent
    assert (kind, method, source, version, ip, agent, language) == (
        "express", "double opt-in", "lists.subscribe-form", "lists.subscribe.v1", "127.0.0.1",
        "TestBrowser/1.0", "en")
    assert "Symposium announcements" in wording and "unsubscribe at any time" in wording

    # Confirming again is harmless: still one consent row.
    client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert len(_consents(app, "new.person@example.ca")) == 1


def test_the_consent_records_the_language_of_the_wording_shown_not_of_the_messages(app, client, public_list):
    """On the French page, asking for English messages: the ledger keeps the French wording
    the person agreed to, marked French."""
    french = {"Accept-Language": "fr-CA"}
    client.post(SUBSCRIBE, headers=french, data={
        "email": "amelie@example.ca", "name": "Amélie", "language": "en", "consent": "y",
        "csrf_token": csrf_token(client, SUBSCRIBE)})
    [message] = outbox(app)
    link = re.search(r"http://portal\.test(/lists/confirm/\S+)", message.body_text).group(1)
    client.post(link, data={"csrf_token": csrf_token(client, link)})
    [consent] = _consents(app, "amelie@example.ca")
    wording, language = consent[3], consent[7]
    assert language == "fr" and wording.startswith("Oui")


def test_the_page_says_the_same_for_known_and_unknown_addresses(app, client, public_list):
    add_subscriber(app, public_list, "already@example.ca")
    known = _subscribe(client, "already@example.ca")
    unknown = _subscribe(client, "stranger@example.ca")
    assert known.status_code == unknown.status_code == 302
    assert known.location == unknown.location
    assert client.get(known.location).get_data(as_text=True) == client.get(unknown.location).get_data(as_text=True)
    # The active subscriber received nothing; the stranger got the confirmation.
    assert [m.to_address for m in outbox(app)] == ["Sam <stranger@example.ca>"]


def test_subscribing_never_renames_someone_else(app, client, public_list):
    add_subscriber(app, public_list, "owner@example.ca")
    _subscribe(client, "owner@example.ca", name="Impostor")
    from portal.people.services import find_person

    with app.app_context():
        assert find_person("owner@example.ca").name == "owner"


def test_a_re_request_sends_a_fresh_link_and_the_address_limit_answers_429(app, client, public_list):
    for _ in range(3):
        assert _subscribe(client, "eager@example.ca").status_code == 302
    assert len(outbox(app, "lists.confirmation")) == 3
    response = _subscribe(client, "eager@example.ca")
    assert response.status_code == 429
    assert "Too many requests" in response.get_data(as_text=True)
    assert len(outbox(app, "lists.confirmation")) == 3
    # An hour later the address may ask again.
    clock.advance(timedelta(hours=1, minutes=1))
    assert _subscribe(client, "eager@example.ca").status_code == 302


def test_refused_submissions_use_up_no_address_allowance(app, client, public_list):
    """A blank address is everyone's: counted, the seventh visitor to forget theirs was told
    "too many requests"; and anyone's refused posts could use up someone else's address."""
    app.config["LISTS_SUBSCRIBE_LIMIT_PER_IP"] = "100/minute"  # as if from many visitors
    assert [_subscribe(client, "").status_code for _ in range(7)] == [400] * 7
    assert [_subscribe(client, "victim@example.ca", consent="").status_code for _ in range(7)] == [400] * 7
    assert _subscribe(client, "victim@example.ca").status_code == 302


def test_the_ip_limit_answers_429(app, client, public_list):
    app.config["LISTS_SUBSCRIBE_LIMIT_PER_IP"] = "3/minute"
    statuses = [_subscribe(client, f"p{n}@example.ca").status_code for n in range(4)]
    assert statuses == [302, 302, 302, 429]


def test_the_confirmation_link_expires(app, client, public_list):
    _subscribe(client, "late@example.ca")
    link = re.search(r"http://portal\.test(/lists/confirm/\S+)", outbox(app)[0].body_text).group(1)
    token = csrf_token(client, link)
    clock.advance(timedelta(days=8))
    assert client.get(link).status_code == 404
    assert client.post(link, data={"csrf_token": token}).status_code == 404
    assert _subscription(app, "late@example.ca").status == "pending"


def test_junk_on_the_subscribe_form_is_a_400_with_a_message(client, public_list):
    cases = [
        {"email": "not-an-address"},
        {"email": "x" * 400 + "@example.ca"},
        {"email": "ünïcødé@@example"},
        {"email": ""},
        {"consent": ""},
        {"language": "de"},
        {"name": "n" * 300},
        {"name": "nul\x00byte"},
        {"email": "nul\x00@example.ca"},
    ]
    for case in cases:
        data = {"email": "ok@example.ca", "name": "Ok", "language": "en", "consent": "y",
                "csrf_token": csrf_token(client, SUBSCRIBE), **case}
        if not data["consent"]:
            del data["consent"]
        response = client.post(SUBSCRIBE, data=data)
        assert response.status_code == 400, case
        assert "There is a problem" in response.get_data(as_text=True), case


def test_addresses_the_outbox_cannot_send_to_are_refused_beside_the_field(app, client, public_list):
    """No SMTPUTF8 here: an accented mailbox or domain is refused where it is typed, not a
    500 when its confirmation is queued (nor a list post that fails for everyone later)."""
    # Some fold to ASCII (straße, a ligature, the Kelvin sign): never to another person's address.
    for address in ("andré@example.ca", "ｃ３１@example.com", "c32@bücher.example", "straße@example.ca",
                     "jane.\ufb01sher@example.ca", "\u212aim@example.ca"):
        response = _subscribe(client, address)
        body = response.get_data(as_text=True)
        assert response.status_code == 400, address
        assert re.search(r'id="email-error"[^>]*>.*only unaccented letters', body, re.S), address
    assert outbox(app) == []


def test_an_internationalized_domain_typed_in_ascii_is_subscribed_as_typed(app, client, public_list):
    """Its ASCII form (xn--...) is what the outbox can send to; the Unicode spelling of the
    same domain is the one refused above."""
    response = _subscribe(client, "Ana@XN--bcher-kva.example")
    assert response.status_code == 302
    [message] = outbox(app)
    assert message.to_address.endswith("<ana@xn--bcher-kva.example>")


def test_every_error_of_the_subscribe_form_is_reported_at_once(client, public_list):
    response = client.post(SUBSCRIBE, data={"email": "pas-une-adresse", "language": "fr",
                                            "csrf_token": csrf_token(client, SUBSCRIBE)})
    summary = response.get_data(as_text=True).split('class="error-summary"', 1)[1].split("</ul>", 1)[0]
    assert response.status_code == 400
    assert 'href="#email"' in summary and 'href="#consent"' in summary
    wrong_language = client.post(SUBSCRIBE, data={"email": "ok@example.ca", "language": "de", "consent": "y",
                                                  "csrf_token": csrf_token(client, SUBSCRIBE)})
    radios = re.findall(r'<input[^>]*name="language"[^>]*>', wrong_language.get_data(as_text=True))
    assert len(radios) == 2 and all('aria-invalid="true"' in radio for radio in radios)


def test_unknown_or_group_lists_are_404(app, client):
    from portal.lists.services import ensure_group_list

    with app.app_context():
        ensure_group_list("youth-table", "Youth table", "Table jeunesse")
        db.session.commit()
    for path in ("/lists/nope/subscribe", "/lists/youth-table/subscribe", "/lists/youth-table/archive",
                 "/lists/" + "x" * 300 + "/subscribe", "/lists/%C3%A9t%C3%A9/check-email",
                 "/lists/symposium-announcements/archive/abc", "/lists/a%00b/subscribe", "/lists/a%00b/archive"):
        assert client.get(path).status_code == 404, path
    assert client.get("/lists/confirm/" + "z" * 43).status_code == 404


def test_the_confirmation_page_speaks_the_subscribers_language(app, client, public_list):
    assert _subscribe(client, "abonne@example.ca", language="fr").status_code == 302
    link = re.search(r"http://portal\.test(/lists/confirm/\S+)", outbox(app)[0].body_text).group(1)
    english_browser = {"Accept-Language": "en-CA"}
    assert '<html lang="fr">' in client.get(link, headers=english_browser).get_data(as_text=True)
    confirmed = client.post(link, data={"csrf_token": csrf_token(client, link)}, headers=english_browser)
    assert confirmed.status_code == 200 and '<html lang="fr">' in confirmed.get_data(as_text=True)


def test_an_old_confirmation_link_cannot_undo_an_unsubscribe(app, client, public_list):
    from portal.lists.models import Subscription
    from portal.lists.services import unsubscribe

    _subscribe(client, "eve@example.ca")
    link = re.search(r"http://portal\.test(/lists/confirm/\S+)", outbox(app)[0].body_text).group(1)
    token = csrf_token(client, link)
    assert client.post(link, data={"csrf_token": token}).status_code == 200
    assert client.post(link, data={"csrf_token": token}).status_code == 200  # twice is harmless
    with app.app_context():
        unsubscribe(db.session.get(Subscription, _subscription(app, "eve@example.ca").id), "one-click unsubscribe")
        db.session.commit()
    ledger = _consents(app, "eve@example.ca")
    assert client.get(link).status_code == 404
    assert client.post(link, data={"csrf_token": token}).status_code == 404
    assert _subscription(app, "eve@example.ca").status == "unsubscribed"
    assert _consents(app, "eve@example.ca") == ledger  # no "double opt-in" written for her
    # Asking again is how she comes back: a fresh link.
    _subscribe(client, "eve@example.ca")
    fresh = re.search(r"http://portal\.test(/lists/confirm/\S+)", outbox(app)[-1].body_text).group(1)
    assert fresh != link and client.post(fresh, data={"csrf_token": token}).status_code == 200
    assert _subscription(app, "eve@example.ca").status == "active"


def test_a_known_person_asking_for_english_messages_gets_them_once_they_confirm(app, client, public_list):
    """The form cannot change a known person's language (anyone can type their address);
    their confirmation, which proves the address, can."""
    from portal.people.models import Person
    from portal.people.services import get_or_create_person

    with app.app_context():
        get_or_create_person("amelie@example.ca", name="Amélie", language="fr")
        db.session.commit()
    _subscribe(client, "amelie@example.ca", language="en")
    with app.app_context():
        assert db.session.execute(select(Person.language).where(Person.email == "amelie@example.ca")).scalar() == "fr"
    [message] = outbox(app)
    assert message.language == "fr"  # before the address is proven: as saved
    link = re.search(r"http://portal\.test(/lists/confirm/\S+)", message.body_text).group(1)
    client.post(link, data={"csrf_token": csrf_token(client, link)})
    with app.app_context():
        assert db.session.execute(select(Person.language).where(Person.email == "amelie@example.ca")).scalar() == "en"


def test_a_french_reader_sees_the_working_groups_french_name_everywhere(app, client, public_list):
    """Page footer, consent wording and the email's footer name the working group in the
    reader's language, as the French consent texts already did (found by a French pass: the
    footers named it in English)."""
    french_name = app.config["PORTAL_ORG_NAME_FR"]
    english_name = app.config["PORTAL_ORG_NAME"]
    page = client.get(SUBSCRIBE, headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert french_name.replace("'", "&#39;") in page and english_name not in page
    client.post(
        SUBSCRIBE, data={"email": "sam@example.ca", "name": "Sam", "language": "fr", "consent": "y",
                         "csrf_token": csrf_token(client, SUBSCRIBE)}, headers={"Accept-Language": "fr"})
    [message] = outbox(app)
    assert message.language == "fr"
    for body in (message.body_text, message.body_html.replace("&#39;", "'")):
        assert french_name in body and english_name not in body
    english = client.get(SUBSCRIBE, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert english_name in english


def test_the_language_choices_are_each_marked_in_their_own_language(client, public_list):
    """From an accessibility pass (WCAG 3.1.2): "Français" on an English page (and "English"
    on a French one) was read with the page's language."""
    import re

    page = client.get(SUBSCRIBE).get_data(as_text=True)
    assert re.search(r'<label[^>]*lang="fr"[^>]*>Français</label>', page), page
    assert re.search(r'<label[^>]*lang="en"[^>]*>English</label>', page)


# PostgreSQL only: there a confirmation can wait on the subscription's row lock while an
# unsubscription commits; SQLite's writers never overlap (each begins with the write lock).
@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_confirmation_that_waited_on_an_unsubscription_never_undoes_it(app, client, public_list):
    """The confirmation had read the subscription as pending when the one-click
    unsubscription committed: read afresh under the lock, it is refused; from its own copy it
    made the person a subscriber again (and had deadlocked with the unsubscription)."""
    from sqlalchemy import update

    from portal.core.errors import InvalidToken
    from portal.lists.models import Subscription
    from portal.lists.services import confirm_subscription, confirmation_for

    _subscribe(client, "torn@example.ca")
    raw = re.search(r"http://portal\.test/lists/confirm/(\S+)", outbox(app)[0].body_text).group(1)
    with app.app_context():
        as_read_first = confirmation_for(raw)
        assert as_read_first.status == "pending"
        with db.engine.begin() as unsubscription:
            unsubscription.execute(update(Subscription).where(Subscription.id == as_read_first.id)
                                   .values(status="unsubscribed"))
        with pytest.raises(InvalidToken):
            confirm_subscription(raw)
        db.session.rollback()
    assert _subscription(app, "torn@example.ca").status == "unsubscribed"



def _alongside_a_new_request(app, monkeypatch, list_id: int, email: str, first) -> list[str]:
    """Run `first` (which writes a consent while holding the subscription's lock) and, while
    its consent write is held up a moment, a new subscribe request for `email`; return what
    either raised or refused."""
    import portal.lists.services as services

    consent_under_way = threading.Event()
    record_consent = services.record_consent

    def held_up_a_moment(*args, **kwargs):
        consent_under_way.set()  # the subscription row is locked by now
        time.sleep(1.5)          # time for the request to take the person's lock and queue
        return record_consent(*args, **kwargs)

    monkeypatch.setattr(services, "record_consent", held_up_a_moment)
    problems: list[str] = []

    def guarded(action) -> None:
        with app.app_context():
            try:
                action()
                db.session.commit()
            except Exception as error:  # noqa: BLE001  reported below, whatever it is
                problems.append(f"{type(error).__name__}: {str(error)[:300]}")
                db.session.rollback()

    def request_again() -> None:
        consent_under_way.wait(10)
        guarded(lambda: services.request_subscription(
            db.session.get(services.MailingList, list_id), email, "Sam", "en", "w", "v1", "1.2.3.4", "ua"))

    threads = [threading.Thread(target=guarded, args=(first,)), threading.Thread(target=request_again)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return problems


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_confirmation_and_a_new_request_for_its_address_at_once_never_deadlock(app, client, public_list,
                                                                                  monkeypatch):
    """The request counts its address's hour under the person's row lock while the
    confirmation, holding the subscription's, writes a consent referring to the person: with
    a plain FOR UPDATE each waited on the other (PostgreSQL killed one: a 500)."""
    from portal.lists.services import confirm_subscription

    _subscribe(client, "race@example.ca")
    raw = re.search(r"/lists/confirm/(\S+)", outbox(app)[0].body_text).group(1)
    assert _alongside_a_new_request(app, monkeypatch, public_list, "race@example.ca",
                                    lambda: confirm_subscription(raw)) == []


@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_one_click_unsubscribe_and_a_new_request_for_its_address_at_once_never_deadlock(app, public_list,
                                                                                          monkeypatch):
    """As above, for the one-click unsubscription (its withdrawal is a consent row too)."""
    _sid, _pid, raw = add_subscriber(app, public_list, "leaver@example.ca")
    answers: list[int] = []

    def one_click() -> None:
        answers.append(app.test_client().post(f"/lists/unsubscribe/{raw}",
                                              data={"List-Unsubscribe": "One-Click"}).status_code)

    assert _alongside_a_new_request(app, monkeypatch, public_list, "leaver@example.ca", one_click) == []
    assert answers == [200]
