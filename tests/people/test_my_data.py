"""My data: ask by email, follow the link, see, take, correct, withdraw, ask for erasure."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from portal.core import clock
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.people.models import ConsentKind, ConsentRecord, Person, PrivacyRequest, Sector
from portal.people.services import has_consent, record_consent

from tests.conftest import counted_statements, csrf_token
from tests.people.conftest import link_from_outbox


def _ask(client, email: str):
    return client.post("/my-data", data={"email": email, "csrf_token": csrf_token(client, "/my-data")})


def _messages() -> int:
    return db.session.execute(select(func.count(OutboxMessage.id))).scalar_one()


def test_the_answer_is_the_same_for_known_and_unknown_addresses(app, client, make):
    person = make.person("known@example.ca", name="Known Person")
    known = _ask(client, "Known@Example.ca ")
    unknown = _ask(client, "nobody@example.ca")
    assert known.status_code == unknown.status_code == 302
    assert known.location == unknown.location == "/my-data/sent"
    sent = client.get("/my-data/sent")
    assert sent.status_code == 200 and "Check your email" in sent.get_data(as_text=True)
    with app.app_context():
        messages = db.session.execute(select(OutboxMessage)).scalars().all()
        assert [m.person_id for m in messages] == [person.id]
        assert messages[0].category == "transactional"
        assert "/my-data/" in messages[0].body_text
        # The access request is on the 30-day ledger, answered at once by the link.
        request_row = db.session.execute(select(PrivacyRequest)).scalar_one()
        assert (request_row.kind, request_row.state) == ("access", "completed")
        assert request_row.due_at - request_row.created_at == timedelta(days=30)


def test_asking_again_at_once_sends_no_second_message(app, client, make):
    make.person("twice@example.ca")
    _ask(client, "twice@example.ca")
    _ask(client, "twice@example.ca")
    with app.app_context():
        assert _messages() == 1


def test_the_link_shows_everything_and_expires_after_7_days(app, client, make):
    person = make.person("link@example.ca", name="Lina Kowalczyk", organization="Sudbury Housing")
    with app.app_context():
        record_consent(db.session.get(Person, person.id), purpose="list:news", kind=ConsentKind.EXPRESS,
                       wording="Yes, send me news", source="events.registration:fall-symposium",
                       method="double opt-in")
        db.session.commit()
    _ask(client, "link@example.ca")
    with app.app_context():
        path = link_from_outbox(person.id)
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for expected in ("Lina Kowalczyk", "Sudbury Housing", "Consent history", "Yes, send me news",
                     "Messages sent to you", "Your privacy requests",
                     # what the ledger's codes mean, in words (the exports keep the codes)
                     "emails of the list “news”", "confirmed from an emailed link",
                     "the registration form of the event “fall-symposium”"):
        assert expected in html, expected
    # Fields read as words, not column names; nothing internal shows.
    assert "<dt>Organization</dt>" in html and "<dt>Wording you agreed to</dt>" in html
    assert "Created at" not in html and "Unsubscribe salt" not in html
    assert "<dt>Kind</dt>\n    <dd>Express" in html and "<dd>express" not in html  # codes in words
    download = client.get(path + "/export.json")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == 'attachment; filename="my-data.json"'
    assert download.headers["Cache-Control"] == "no-store"
    assert json.loads(download.data)["tables"]["person"]["rows"][0]["email"] == "link@example.ca"
    assert json.loads(download.data)["tables"]["consent_record"]["rows"][0]["purpose"] == "list:news"
    as_csv = client.get(path + "/export.csv")
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    assert "person,Your details,1,name,Lina Kowalczyk" in as_csv.get_data(as_text=True)
    client.post("/language", data={"language": "fr", "next": path, "csrf_token": csrf_token(client, path)})
    french = client.get(path).get_data(as_text=True)
    assert '<html lang="fr">' in french and "<dt>Texte que vous avez accepté</dt>" in french

    clock.advance(timedelta(days=7, minutes=1))
    assert client.get(path).status_code == 404
    assert client.get(path + "/export.json").status_code == 404


def test_a_person_corrects_their_details(app, client, make):
    person = make.person("fix@example.ca", name="Fran Typo", job_title="Nurse")
    _ask(client, "fix@example.ca")
    with app.app_context():
        path = link_from_outbox(person.id)
        police = db.session.execute(select(Sector).where(Sector.slug == "police")).scalar_one().id
    response = client.post(path + "/details", data={
        "csrf_token": csrf_token(client, path), "name": "Fran Correct", "organization": "OPP",
        "sector": "police", "community": "Kenora", "job_title": "", "language": "fr",
    })
    assert response.status_code == 302 and response.location == path
    with app.app_context():
        row = db.session.get(Person, person.id)
        assert (row.name, row.organization, row.sector_id, row.community, row.job_title, row.language) == (
            "Fran Correct", "OPP", police, "Kenora", "", "fr")
    # The next page speaks French now, and so does its "corrected" (it was said in English).
    following = client.get(path).get_data(as_text=True)
    assert '<html lang="fr">' in following and "Vos renseignements sont corrigés." in following


def test_a_person_withdraws_a_consent_and_leaves_the_list(app, client, make):
    from portal.lists.models import MailingList, Subscription

    person = make.person("leave@example.ca")
    with app.app_context():
        news = MailingList(slug="news", name_en="News")
        db.session.add(news)
        db.session.flush()
        db.session.add(Subscription(list_id=news.id, person_id=person.id, status="active",
                                    unsubscribe_token_hash="h" * 64))
        row = db.session.get(Person, person.id)
        record_consent(row, purpose="list:news", kind=ConsentKind.EXPRESS, wording="Yes")
        record_consent(row, purpose="events.promotion", kind=ConsentKind.EXPRESS, wording="Yes")
        db.session.commit()
    _ask(client, "leave@example.ca")
    with app.app_context():
        path = link_from_outbox(person.id)
    page = client.get(path).get_data(as_text=True)
    assert "Withdraw consent for emails of the list “News”" in page  # in words, not the code
    response = client.post(path + "/withdraw", data={
        "withdraw-0-csrf_token": csrf_token(client, path), "withdraw-0-purpose": "list:news"})
    assert response.status_code == 302
    with app.app_context():
        assert not has_consent(person.id, "list:news")
        assert has_consent(person.id, "events.promotion")
        subscription = db.session.execute(select(Subscription)).scalar_one()
        assert subscription.status == "unsubscribed" and subscription.unsubscribed_at is not None
        withdrawals = db.session.execute(
            select(ConsentRecord).where(ConsentRecord.kind == "withdrawn")).scalars().all()
        assert [w.purpose for w in withdrawals] == ["list:news"]
    # Withdrawing again: nothing to withdraw, a clear 400.
    again = client.post(path + "/withdraw", data={
        "withdraw-0-csrf_token": csrf_token(client, path), "withdraw-0-purpose": "list:news"})
    assert again.status_code == 400
    assert "no consent to withdraw" in again.get_data(as_text=True)


def test_a_person_asks_for_erasure_once_with_a_due_date(app, client, make):
    person = make.person("erase@example.ca")
    _ask(client, "erase@example.ca")
    with app.app_context():
        path = link_from_outbox(person.id)
    unticked = client.post(path + "/erasure", data={"csrf_token": csrf_token(client, path)})
    assert unticked.status_code == 400
    assert "Tick the box" in unticked.get_data(as_text=True)
    for _ in range(2):
        response = client.post(path + "/erasure", data={"csrf_token": csrf_token(client, path), "confirm": "y"})
        assert response.status_code == 302
    with app.app_context():
        requests = db.session.execute(
            select(PrivacyRequest).where(PrivacyRequest.kind == "erasure")).scalars().all()
        assert len(requests) == 1
        assert requests[0].state == "open"
        assert requests[0].due_at - requests[0].created_at == timedelta(days=30)
        acknowledgement = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "people.erasure_received")).scalar_one()
        assert acknowledgement.person_id == person.id
    assert "We received your request on" in client.get(path).get_data(as_text=True)


def test_my_data_names_what_rows_point_at_in_a_query_per_kind_of_link(app, make):
    """A scale pass counted 1,227 statements for a person with 1,000 messages: one look-up
    per row for the list each message came from. Now one per kind of link, whatever the
    number of rows."""
    from portal.lists.services import save_public_list
    from portal.people.privacy import collect_personal_data

    person = make.person("many@example.ca", name="Ma Ny")

    def add_messages(first: int, count: int) -> None:
        with app.app_context():
            news = save_public_list(None, slug=f"news-{first}", name_en=f"News {first}")
            db.session.flush()
            for n in range(first, first + count):
                db.session.add(OutboxMessage(
                    idempotency_key=f"test:{n}", purpose="lists.post", category="list", person_id=person.id,
                    list_id=news.id, to_address="many@example.ca", from_address="x@example.ca", subject=f"S{n}",
                    body_text="b", body_html="<p>b</p>", message_id=f"<{n}@example.ca>", headers={},
                    next_attempt_at=clock.now()))
            db.session.commit()

    def statements() -> tuple[int, list[dict]]:
        with counted_statements(app) as seen, app.app_context():
            sections = collect_personal_data(db.session.get(Person, person.id))
        outbox = next(s for s in sections if s.table == "outbox_message")
        return len(seen), outbox.references

    add_messages(0, 2)
    few, _ = statements()
    add_messages(100, 12)
    many, references = statements()
    assert many == few
    assert {r["list_id"] for r in references} == {"News 0", "News 100"}


def test_my_data_includes_the_audit_record_about_them_sign_in_attempts_and_what_messages_said(
        app, client, make):
    """A privacy pass found the access export leaving out the audit entries about the person
    (organizers' reads of their data included), a sign-in attempt typed with their address,
    and what each message said, which the notice says is held. Organizers are named by role,
    not address; links in the messages are masked."""
    from portal.auth.services import LoginFailed, authenticate
    from portal.core.audit import record_audit
    from portal.people.privacy import collect_personal_data, export_json

    person = make.person("asker@example.ca", name="Ada Asker")
    organizer = make.organizer()
    with app.app_context():
        from portal.auth.models import OrganizerAccount

        try:
            authenticate("asker@example.ca", "a wrong guess 12345", origin="198.51.100.9")
        except LoginFailed:
            pass
        record_audit("people.request.viewed", actor=db.session.get(OrganizerAccount, organizer.id),
                     subject=f"person:{person.id}", origin="203.0.113.5")
        db.session.commit()
    _ask(client, "asker@example.ca")
    with app.app_context():
        sections = {s.table: s for s in collect_personal_data(db.session.get(Person, person.id))}
        audit = {row["action"]: row["who"] for row in sections["audit_entry"].rows}
        # What was done, in words (the log's codes mean nothing to the person).
        assert audit["Privacy request read"] == "an organizer" and audit["Sign-in failed"] == "you"
        assert organizer.email not in json.dumps(export_json(db.session.get(Person, person.id)))
        assert sections["login_attempt"].rows[0]["origin"] == "198.51.100.9"
        body = sections["outbox_message"].rows[-1]["body_text"]
        assert "my-data" in body and "…" in body  # the message, its link masked
        raw = link_from_outbox(person.id).rsplit("/", 1)[1]
        assert raw not in body


def test_a_french_reader_reads_their_data_in_french(app, client, make):
    """A French reviewer found the my-data page half English: English event and question
    names, column names and codes ('Use count', 'pending', 'transactional'), a ticked box as
    'True', and an accented name in its email encoding ('=?utf-8?q?Jos=C3=A9e...')."""
    from datetime import UTC, datetime

    from portal.events.models import Event, EventQuestion, Registration
    from portal.mail.services import queue_email

    person = make.person("josee@example.ca", name="Josée Tremblay", language="fr")
    with app.app_context():
        start = datetime(2027, 5, 12, 12, tzinfo=UTC)
        event = Event(slug="cswb", title="Collaborating for Community Safety", title_fr="Collaborer pour la sécurité",
                      starts_at=start, ends_at=start + timedelta(hours=8), capacity=10, status="published")
        db.session.add(event)
        db.session.flush()
        question = EventQuestion(event_id=event.id, label="Photo consent", label_fr="Consentement aux photos",
                                 kind="checkbox")
        db.session.add(question)
        db.session.flush()
        db.session.add(Registration(event_id=event.id, person_id=person.id, status="confirmed",
                                    answers={str(question.id): True}))
        queue_email(key="test:josee", to=db.session.get(Person, person.id), template="people/my_data_link",
                    purpose="test", context={"my_data_path": "/my-data/x", "valid_days": 7})
        db.session.commit()
    _ask(client, "josee@example.ca")
    with app.app_context():
        page = client.get(link_from_outbox(person.id)).get_data(as_text=True)
    assert '<html lang="fr"' in page
    assert "(Collaborer pour la sécurité)" in page and "Collaborating for Community Safety" not in page
    assert "Consentement aux photos : oui" in page
    assert "Josée Tremblay" in page and "=?utf-8?" not in page
    page = page.replace("&#39;", "'")
    assert "Numéro d'enregistrement" in page and "Nombre d'utilisations" in page
    assert "au sujet d'une de vos démarches" in page and ">transactional<" not in page
    # What each link opens and each message was about, in words (not "events.manage").
    assert "cette page (vos données)" in page and "un lien vers vos données" in page
    assert ">people.my_data<" not in page and ">people.my_data_link<" not in page


def test_two_questions_worded_alike_keep_both_answers(app, make):
    """A code review: with the question's id gone from the label, two questions both worded
    "Other (please specify)" kept only one answer in the person's data."""
    from datetime import UTC, datetime

    from portal.events.models import Event, EventQuestion, Registration
    from portal.people.privacy import collect_personal_data

    person = make.person("twice.asked@example.ca")
    with app.app_context():
        start = datetime(2027, 5, 12, 12, tzinfo=UTC)
        event = Event(slug="alike", title="Alike", starts_at=start, ends_at=start + timedelta(hours=8), capacity=5,
                      status="published")
        db.session.add(event)
        db.session.flush()
        first, second = (EventQuestion(event_id=event.id, label="Other (please specify)", kind="short_text")
                         for _ in range(2))
        db.session.add_all([first, second])
        db.session.flush()
        db.session.add(Registration(event_id=event.id, person_id=person.id, status="confirmed",
                                    answers={str(first.id): "vegan", str(second.id): "wheelchair"}))
        db.session.commit()
        first_id = first.id
        sections = {s.table: s for s in collect_personal_data(db.session.get(Person, person.id))}
        answers = sections["registration"].rows[0]["answers"]
    assert sorted(answers.values()) == ["vegan", "wheelchair"]
    assert f"Other (please specify) (q{first_id})" in answers


def test_every_consent_method_the_portal_records_reads_in_words():
    """The consent ledger keeps a method code; the my-data page and the organizers' subscriber
    page show it in words. A review found 'erased at their request' shown as the code on a
    French page: every method recorded anywhere now has words."""
    import ast
    from pathlib import Path

    from portal.people.privacy import _VALUE_LABELS

    recorders = {"record_consent", "unsubscribe", "_unsubscribe", "remove_group_subscriber"}
    recorded: set[str] = set()
    for path in Path(__file__).resolve().parents[2].joinpath("portal").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            name = getattr(getattr(node, "func", None), "id", None) or getattr(getattr(node, "func", None), "attr", None)
            if not isinstance(node, ast.Call) or name not in recorders:
                continue
            given = [keyword.value for keyword in node.keywords if keyword.arg in ("method", "reason")]
            if name in ("unsubscribe", "_unsubscribe") and len(node.args) >= 2:
                given.append(node.args[1])
            recorded |= {part.value for value in given for part in ast.walk(value)
                         if isinstance(part, ast.Constant) and isinstance(part.value, str)}
    assert len(recorded) > 12  # the scan found the calls
    assert sorted(recorded - set(_VALUE_LABELS[("consent_record", "method")])) == []
