"""Importing subscribers: a report by line number, all or nothing, consent evidence, and a
50,000-row import in the background."""
from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.core.clock import now
from portal.extensions import db
from tests.conftest import BACKENDS, csrf_token
from tests.lists.conftest import add_subscriber, outbox

GOOD = """email,name,language,consent_date,consent_source,consent_wording
ana@example.ca,Ana,en,2025-05-01,Symposium 2025 registration form,Send me symposium news
ben@example.ca,Ben,fr,2025-06-02T10:30:00,Paper sign-up sheet,Oui
carla@example.ca,Carla,en,,,
ANA@example.ca,Ana again,en,2025-05-01,Same,Same
dup@example.ca,Dup,en,2025-01-01,Web,Yes
gone@example.ca,Gone,en,2025-01-01,Web,Yes
"""


def _count(app, model):
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_import_reports_each_row_and_records_consent(app, public_list):
    from portal.lists.imports import import_subscribers
    from portal.lists.models import MailingList, Subscription
    from portal.people.models import ConsentRecord, Person

    add_subscriber(app, public_list, "dup@example.ca")
    add_subscriber(app, public_list, "gone@example.ca", status="unsubscribed")
    with app.app_context():
        report = import_subscribers(db.session.get(MailingList, public_list), GOOD, filename="members.csv")
        db.session.commit()
        assert report.imported == [2, 3]
        assert report.without_evidence == [4] and report.confirmation_requested == [4]
        assert report.already_there == [5, 6]
        assert report.previously_unsubscribed == [7]
        assert report.invalid == []
        statuses = dict(db.session.execute(select(Person.email, Subscription.status).join(
            Subscription, Subscription.person_id == Person.id)).tuples().all())
        assert statuses["ana@example.ca"] == "active" and statuses["carla@example.ca"] == "pending"
        assert statuses["gone@example.ca"] == "unsubscribed"
        ana = db.session.execute(select(ConsentRecord).join(Person, Person.id == ConsentRecord.person_id)
                                 .where(Person.email == "ana@example.ca")).scalar_one()
        assert (ana.kind, ana.method, ana.wording) == ("express", "import", "Send me symposium news")
        assert "Symposium 2025 registration form" in ana.source and ana.created_at.year == 2025
    # Carla gets a confirmation request only; nobody gets a list post.
    assert [m.purpose for m in outbox(app)] == ["lists.confirmation"]
    assert "carla@example.ca" in outbox(app)[0].to_address


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(app, public_list):
    from portal.lists.imports import import_subscribers
    from portal.lists.models import MailingList, Subscription
    from portal.people.models import Person

    people_before = _count(app, Person)
    bad = GOOD + "not-an-address,X,en,,,\nok@example.ca,Ok,de,,,\nz@example.ca,Z,en,2999-01-01,Web,Yes\n"
    with app.app_context():
        report = import_subscribers(db.session.get(MailingList, public_list), bad)
        db.session.commit()
    assert report.rejected
    assert [line for line, _, _ in report.invalid] == [8, 9, 10]
    assert report.invalid[1:] == [(9, "language", "de"), (10, "consent_date", "2999-01-01")]
    assert report.invalid[0][1:] == ("address", "not-an-address")
    assert _count(app, Subscription) == 0 and _count(app, Person) == people_before
    assert outbox(app) == []


def test_rows_the_outbox_could_not_send_to_or_forms_would_refuse_are_reported(app, public_list):
    from portal.lists.imports import import_subscribers
    from portal.lists.models import MailingList, Subscription

    bad = ("email,name,language,consent_date,consent_source\n"
           "ｃ３０@example.com,Full Width,en,2024-01-01,form\n"
           "andré@example.ca,André,fr,2024-01-01,form\n"
           "c9@example.com,C,en,0001-01-01T00:00+01:00,form\n"
           "c10@example.com,C,en,9999-12-31T23:59-01:00,form\n"
           "c11@example.com,\"A\x01\x0bB\x1b[31m\",en,2024-01-01,form\n"
           "c12@example.com,C,en,2024-01-01,\"web\x00form\"\n"
           "c13@example.com,\"Eve\r\nBcc: x@evil.example\",en,2024-01-01,form\n")
    with app.app_context():
        report = import_subscribers(db.session.get(MailingList, public_list), bad)
        db.session.commit()
    assert report.rejected
    assert [(line, code) for line, code, _ in report.invalid] == [
        (2, "address"), (3, "address"), (4, "consent_date"), (5, "consent_date"), (6, "control"), (7, "control"),
        (8, "lines")]
    assert report.invalid[4][2] == "name" and report.invalid[5][2] == "consent_source"
    assert _count(app, Subscription) == 0


def test_implied_consent_already_expired_is_no_consent_and_is_left_out(app, client, auth, organizer, public_list):
    """CASL's implied consent lasts two years from the transaction: a row whose two years have
    run out is reported and left out, not counted as imported then never mailed."""
    from portal.lists.imports import import_subscribers
    from portal.lists.models import MailingList, Subscription

    rows = ("email,name,language,consent_date,consent_source,consent_kind\n"
            "old.implied@example.org,Old,en,2022-01-15,Business card 2022,implied\n"
            "fresh.implied@example.org,Fresh,en,{recent},Symposium,implied\n"
            "old.express@example.org,Express,en,2019-05-01,Web form,express\n")
    recent = (now() - timedelta(days=100)).date().isoformat()
    with app.app_context():
        report = import_subscribers(db.session.get(MailingList, public_list), rows.format(recent=recent))
        db.session.commit()
        active = set(db.session.execute(select(Subscription.person_id).where(
            Subscription.status == "active")).scalars())
    assert report.imported == [3, 4] and report.consent_expired == [2]
    assert "1 with implied consent already expired (left out)" in report.summary()
    assert len(active) == 2 and outbox(app) == []

    # The same address again, now with consent that holds: imported, not "already there".
    again = ("email,name,language,consent_date,consent_source,consent_kind\n"
             "twice@example.org,Twice,en,2022-01-15,Business card 2022,implied\n"
             f"twice@example.org,Twice,en,{recent},Symposium,express\n")
    with app.app_context():
        report = import_subscribers(db.session.get(MailingList, public_list), again)
        db.session.commit()
    assert report.consent_expired == [2] and report.imported == [3] and report.already_there == []


def test_a_file_saved_with_semicolons_by_a_french_excel_is_read(app, public_list):
    from portal.lists.imports import import_subscribers
    from portal.lists.models import MailingList

    text = ("email;name;language;consent_date;consent_source\n"
            "anais@example.ca;Anaïs Roy;fr;2025-05-01;Formulaire, symposium 2025\n")
    with app.app_context():
        report = import_subscribers(db.session.get(MailingList, public_list), text)
        db.session.commit()
    assert report.imported == [2] and not report.invalid


def test_import_page_shows_the_report_and_junk_files_are_400(app, client, auth, organizer, public_list):
    auth.login(organizer)
    path = f"/admin/lists/{public_list}/import"
    # Asking for consent by email is itself a message CASL governs: the organizer opts in.
    form = client.get(path).get_data(as_text=True)
    box = re.search(r'<input[^>]*name="ask_unconfirmed"[^>]*>', form).group(0)
    assert "checked" not in box
    token = csrf_token(client, path)
    response = client.post(path, data={"file": (io.BytesIO(GOOD.encode()), "members.csv"), "ask_unconfirmed": "y",
                                       "csrf_token": token}, content_type="multipart/form-data")
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "Done" in page and "Imported" in page
    for content, name in ((b"\xff\xfe\x00bad", "x.csv"), (b"", "empty.csv"), (b"name\nAna\n", "noemail.csv"),
                          (b'email\n"unterminated', "quote.csv"), (b"email\n\x00bad\n", "nul.csv"),
                          (b"email,name\na@example.ca," + b"n" * 200_000 + b"\n", "huge-field.csv"),
                          (("email\n" + "é" * 400 + "@example.ca\n").encode(), "long.csv")):
        response = client.post(path, data={"file": (io.BytesIO(content), name), "csrf_token": token},
                               content_type="multipart/form-data")
        assert response.status_code in (302, 400), name
        if response.status_code == 302:
            assert "nothing was imported" in client.get(response.location).get_data(as_text=True).lower(), name
    assert client.post(path, data={"csrf_token": token}).status_code == 400
    assert client.get("/admin/lists/imports/999999").status_code == 404
    # A forged file name with NUL and escape codes in it (PostgreSQL refused the NUL: a 500).
    response = client.post(path, data={"file": (io.BytesIO(b"email\r\nx@example.ca"), "s\x01\x1b[31m\x00.csv"),
                                       "csrf_token": token}, content_type="multipart/form-data")
    assert response.status_code == 302
    with app.app_context():
        from sqlalchemy import select

        from portal.lists.models import ImportJob

        names = db.session.execute(select(ImportJob.filename).order_by(ImportJob.id)).scalars().all()
    assert names[-1] == "s[31m.csv"


def test_large_upload_runs_in_the_background_with_progress(app, client, auth, organizer, public_list):
    from portal.lists.jobs import process_pending_imports
    from portal.lists.models import Subscription

    app.config["LISTS_IMPORT_IN_THREAD"] = False  # the test plays the worker
    rows = "".join(f"member{n}@example.ca,Member {n},en,2025-01-01,Signup,Yes\n" for n in range(2500))
    auth.login(organizer)
    path = f"/admin/lists/{public_list}/import"
    response = client.post(path, data={
        "file": (io.BytesIO(("email,name,language,consent_date,consent_source,consent_wording\n" + rows).encode()),
                 "big.csv"), "csrf_token": csrf_token(client, path)}, content_type="multipart/form-data")
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "Waiting to start" in page and "0 / 2500" in page
    with app.app_context():
        assert process_pending_imports() == 1
        assert process_pending_imports() == 0
    assert "Done" in client.get(response.location).get_data(as_text=True)
    assert _count(app, Subscription) == 2500


def test_an_import_whose_worker_died_is_taken_over_two_minutes_after_its_last_sign_of_life(app, public_list):
    from datetime import timedelta

    from portal.core import clock
    from portal.lists.imports import create_import_job
    from portal.lists.jobs import process_pending_imports
    from portal.lists.models import ImportJob, ImportStatus, MailingList, Subscription

    clock.set_now(clock.now())
    with app.app_context():
        job = create_import_job(db.session.get(MailingList, public_list), GOOD, filename="x.csv", ask_unconfirmed=False)
        # A web worker took it and was restarted mid-way (a deploy's reload).
        job.status, job.lease_until = ImportStatus.RUNNING.value, clock.now() + timedelta(minutes=2)
        db.session.commit()
        job_id = job.id
    clock.advance(timedelta(minutes=1))
    with app.app_context():
        assert process_pending_imports() == 0  # it may still be alive
    clock.advance(timedelta(minutes=1, seconds=1))
    with app.app_context():
        assert process_pending_imports() == 1
        assert db.session.get(ImportJob, job_id).status == ImportStatus.DONE.value
    assert _count(app, Subscription) == 4


def test_cli_imports_50000_rows(app, runner, public_list, tmp_path):
    from portal.lists.models import Subscription
    from portal.people.models import ConsentRecord

    path = tmp_path / "50k.csv"
    with path.open("w") as handle:
        handle.write("email,name,language,consent_date,consent_source,consent_wording\n")
        for n in range(50_000):
            handle.write(f"subscriber{n}@example.ca,Subscriber {n},en,2025-03-01,Symposium form,Yes please\n")
    started = time.perf_counter()
    result = runner.invoke(args=["import-subscribers", "symposium-announcements", str(path)])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert "50000 rows: 50000 imported" in result.output
    assert _count(app, Subscription) == 50_000
    assert _count(app, ConsentRecord) == 50_000
    print(f"\n50,000-row import took {elapsed:.1f} s")  # a figure to read, not a timed assertion


def test_cli_reports_bad_rows_and_exits_1(app, runner, public_list, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("email\nok@example.ca\nnope\n")
    result = runner.invoke(args=["import-subscribers", "symposium-announcements", str(path)])
    assert result.exit_code == 1
    assert "line 3: invalid address: nope" in result.output
    result = runner.invoke(args=["import-subscribers", "no-such-list", str(path)])
    assert result.exit_code != 0 and "could not find" in result.output.lower()


def test_a_groups_list_takes_no_import_it_is_the_groups_members(app, client, auth, organizer):
    from portal.groups.models import WorkingGroup
    from portal.lists.imports import MembersOnlyList, create_import_job
    from portal.lists.models import MailingList, Subscription
    from tests.groups.conftest import GroupFactories

    group = GroupFactories(app).group()
    with app.app_context():
        list_id = db.session.get(WorkingGroup, group.id).mailing_list_id
    auth.login(organizer)
    path = f"/admin/lists/{list_id}/import"
    assert client.get(path).status_code == 404
    outsider = b"email,name,consent_date,consent_source\nzed@outsider.example,Zed,2026-11-01,paper form\n"
    token = csrf_token(client, f"/admin/lists/{list_id}")
    response = client.post(path, data={"file": (io.BytesIO(outsider), "x.csv"), "csrf_token": token},
                           content_type="multipart/form-data")
    assert response.status_code == 404
    assert 'href="/admin/lists/%d/import"' % list_id not in client.get(f"/admin/lists/{list_id}").get_data(as_text=True)
    with app.app_context():
        import pytest

        with pytest.raises(MembersOnlyList):
            create_import_job(db.session.get(MailingList, list_id), outsider.decode(), filename="x.csv",
                              ask_unconfirmed=False)
        assert db.session.execute(select(func.count()).select_from(Subscription)
                                  .where(Subscription.list_id == list_id)).scalar_one() == 0


def test_the_import_report_speaks_the_organizers_language(app, client, auth, organizer, public_list):
    auth.login(organizer)
    path = f"/admin/lists/{public_list}/import"
    french = {"Accept-Language": "fr"}
    bad = b"email,name,language\nbad-address,X,en\nok@example.ca,Ok,de\n"
    response = client.post(path, headers=french, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(bad), "x.csv"), "csrf_token": csrf_token(client, path)})
    page = client.get(response.location, headers=french).get_data(as_text=True)
    assert "Ligne 2 : adresse non valide : bad-address" in page
    assert "Ligne 3 : la langue doit être en ou fr : de" in page
    assert "invalid address" not in page


def test_a_second_row_bringing_consent_is_not_dropped_as_a_duplicate_of_one_without(app, public_list):
    """A review: an address listed first without evidence, then with it, was reported
    'already there' and not imported at all (the evidence dropped); a row with lapsed consent
    before a row without evidence left the address out the same way."""
    from portal.lists.imports import import_subscribers
    from portal.lists.models import MailingList, Subscription
    from portal.people.models import ConsentRecord, Person

    rows = ("email,name,language,consent_date,consent_source,consent_wording,consent_kind\n"
            "dup.two@example.org,Dup Two,en,,,,\n"
            "dup.two@example.org,Dup Two,en,2026-01-10,symposium sign-up sheet,Send me news,\n"
            "old@example.org,Old,en,2019-01-10,symposium registration,,implied\n"
            "old@example.org,Old,en,,,,\n")
    with app.app_context():
        report = import_subscribers(db.session.get(MailingList, public_list), rows, filename="dupes.csv",
                                    ask_unconfirmed=True)
        db.session.commit()
        assert report.imported == [3] and report.already_there == [2]
        assert report.consent_expired == [4] and report.confirmation_requested == [5]
        statuses = dict(db.session.execute(select(Person.email, Subscription.status).join(
            Subscription, Subscription.person_id == Person.id)).tuples().all())
        assert statuses == {"dup.two@example.org": "active", "old@example.org": "pending"}
        evidence = db.session.execute(select(ConsentRecord).join(Person, Person.id == ConsentRecord.person_id)
                                      .where(Person.email == "dup.two@example.org")).scalar_one()
        assert evidence.wording == "Send me news" and "symposium sign-up sheet" in evidence.source


def test_someone_imported_without_evidence_is_told_the_truth_and_their_consent_keeps_the_words_shown(
        app, client, public_list):
    """A review: the request said 'Someone, probably you, asked...' when an organizer had
    imported the address, and the consent recorded on confirmation kept an internal note
    instead of the words the person was shown."""
    from portal.lists.imports import import_subscribers
    from portal.lists.models import MailingList
    from portal.people.models import ConsentRecord

    with app.app_context():
        import_subscribers(db.session.get(MailingList, public_list), "email,name,language\nfleur@example.ca,Fleur,fr\n",
                           filename="old-contacts.csv", ask_unconfirmed=True)
        db.session.commit()
    (request,) = outbox(app, "lists.confirmation")
    assert "avait cette adresse dans ses dossiers" in request.body_text and "probablement vous" not in request.body_text
    link = re.search(r"/lists/confirm/[A-Za-z0-9_-]+", request.body_text).group(0)
    page = client.get(link).get_data(as_text=True)
    assert "Appuyez sur le bouton pour commencer à recevoir « Annonces du symposium » à l'adresse fleur@example.ca." in page
    assert client.post(link, data={"csrf_token": csrf_token(client, link)}).status_code == 200
    with app.app_context():
        consent = db.session.execute(select(ConsentRecord)).scalar_one()
        assert consent.wording == ("Appuyez sur le bouton pour commencer à recevoir « Annonces du symposium » "
                                   "à l'adresse fleur@example.ca.")
        assert (consent.wording_version, consent.method, consent.kind) == (
            "lists.confirm-page.v1", "double opt-in", "express")
        assert consent.source == "import:old-contacts.csv"
    # Someone who asked on the form still reads that someone asked.
    client.post("/lists/symposium-announcements/subscribe", data={
        "email": "asked@example.ca", "name": "Asked", "consent": "y", "language": "en",
        "csrf_token": csrf_token(client, "/lists/symposium-announcements")})
    asked = outbox(app, "lists.confirmation")[-1]
    assert "asked@example.ca" in asked.to_address and "Someone, probably you, asked" in asked.body_text


def test_a_background_imports_failure_reads_in_the_readers_language(app, client, auth, organizer, public_list):
    """A review: the reason was kept as a sentence in one language ('Le fichier est vide.' on
    an English page, 'The file has too many rows' on a French one)."""
    from portal.lists.jobs import process_pending_imports

    app.config["LISTS_IMPORT_IN_THREAD"] = False
    auth.login(organizer)
    path = f"/admin/lists/{public_list}/import"
    bad = ("name\n" + "Ana\n" * 2100).encode()  # large, so in the background; no email column
    response = client.post(path, headers={"Accept-Language": "fr"}, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(bad), "x.csv"), "csrf_token": csrf_token(client, path)})
    assert response.status_code == 302
    with app.app_context():
        assert process_pending_imports() == 1
    english = client.get(response.location, headers={"Accept-Language": "en"}).get_data(as_text=True)
    french = client.get(response.location, headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Failed: nothing was imported" in english and "The first row must name the columns" in english
    assert "La première ligne" in french and "The first row" not in french


def test_a_refusal_keeps_its_words_and_values_until_read():
    from flask_babel import lazy_gettext as _l

    from portal.lists.imports import refusal_in_words, refusal_record

    record = refusal_record(_l("The file could not be read as CSV (line %(line)s).", line=7))
    assert record == {"error": "The file could not be read as CSV (line %(line)s).", "error_values": {"line": 7}}
    from flask import Flask

    from portal import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert refusal_in_words(record) == "Le fichier n'a pas pu être lu en tant que CSV (ligne 7)."
        # A reason kept before (an English sentence) reads as it was kept.
        assert refusal_in_words({"error": "Some old sentence."}) == "Some old sentence."


def test_rows_naming_one_address_twice_read_truthfully(app, public_list):
    """From a code review: a new person took the name and language of the address's first
    row, not the row imported from; a lapsed row of someone already subscribed read 'consent
    expired'; a repeated row of an address left out read 'already there'."""
    from portal.lists.imports import import_subscribers
    from portal.lists.models import MailingList
    from portal.people.models import Person

    add_subscriber(app, public_list, "member@example.ca")
    rows = ("email,name,language,consent_date,consent_source,consent_wording,consent_kind\n"
            "xav@example.ca,,en,,,,\n"                                      # 2: repeat of line 3
            "xav@example.ca,Xavière,fr,2026-01-10,sign-up sheet,Oui,\n"     # 3: imported
            "member@example.ca,Member,en,2019-01-10,old form,,implied\n"    # 4: already there
            "none@example.ca,None,en,,,,\n"                                 # 5: no evidence
            "none@example.ca,None,en,,,,\n")                                # 6: no evidence either
    with app.app_context():
        report = import_subscribers(db.session.get(MailingList, public_list), rows, filename="twice.csv",
                                    ask_unconfirmed=False)
        db.session.commit()
        assert report.imported == [3] and report.already_there == [2, 4]
        assert report.without_evidence == [5, 6] and report.consent_expired == []
        xav = db.session.execute(select(Person).where(Person.email == "xav@example.ca")).scalar_one()
        assert (xav.name, xav.language) == ("Xavière", "fr")


def test_the_consent_kept_is_the_page_as_it_was_shown_and_a_later_form_request_reads_as_asked(
        app, client, public_list):
    """From a code review: the wording was fixed at import in the file's language, while the
    page spoke the person's; and someone imported, then asking on the form, was still told the
    organizers 'had this address on file'."""
    from portal.lists.imports import import_subscribers
    from portal.lists.models import MailingList
    from portal.people.models import ConsentRecord
    from portal.people.services import get_or_create_person

    with app.app_context():
        get_or_create_person("known@example.ca", name="Known", language="en")
        import_subscribers(db.session.get(MailingList, public_list), "email,name,language\nknown@example.ca,Known,fr\n",
                           filename="x.csv", ask_unconfirmed=True)
        db.session.commit()
    (request,) = outbox(app, "lists.confirmation")
    link = re.search(r"/lists/confirm/[A-Za-z0-9_-]+", request.body_text).group(0)
    page = client.get(link).get_data(as_text=True)
    assert "Press the button to start receiving" in page
    client.post(link, data={"csrf_token": csrf_token(client, link)})
    with app.app_context():
        consent = db.session.execute(select(ConsentRecord)).scalar_one()
        assert consent.wording == ("Press the button to start receiving “Symposium announcements” "
                                   "at known@example.ca.")
        # ... in the language it was shown in, with the click's address (the import has none).
        assert consent.language == "en" and consent.ip == "127.0.0.1"
        import_subscribers(db.session.get(MailingList, public_list), "email,name,language\nlater@example.ca,Later,en\n",
                           filename="y.csv", ask_unconfirmed=True)
        db.session.commit()
    client.post("/lists/symposium-announcements/subscribe", data={
        "email": "later@example.ca", "name": "Later", "consent": "y", "language": "en",
        "csrf_token": csrf_token(client, "/lists/symposium-announcements")})
    asked = [m for m in outbox(app, "lists.confirmation") if "later@example.ca" in m.to_address]
    assert len(asked) == 2 and "had this address on file" in asked[0].body_text
    assert "Someone, probably you, asked" in asked[1].body_text


# PostgreSQL only: there an import and the subscribe form can overlap; SQLite's writers
# never do (each begins with the write lock).
@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_an_import_waits_for_a_subscription_under_way_to_one_of_its_addresses(app, public_list):
    """A race pass: an address subscribed from the form while an import naming it ran made
    the import's insert meet the form's new person, and the whole import failed (the other
    rows' consent evidence lost). The import now waits for the form's transaction and finds
    that person and their pending subscription."""
    import threading

    from portal.lists.imports import import_subscribers
    from portal.lists.models import MailingList
    from portal.lists.services import request_subscription

    form_done, outcome = threading.Event(), {}

    def import_meanwhile() -> None:
        with app.app_context():
            try:
                outcome["report"] = import_subscribers(db.session.get(MailingList, public_list), GOOD)
                db.session.commit()
            except Exception as error:  # noqa: BLE001  reported by the assertion below
                outcome["error"] = f"{type(error).__name__}: {error}"
                db.session.rollback()

    with app.app_context():
        request_subscription(db.session.get(MailingList, public_list), "carla@example.ca", "Carla", "en",
                             "Send me news", "v1", "203.0.113.5", "Browser")
        importer = threading.Thread(target=import_meanwhile)
        importer.start()
        importer.join(1.0)  # it waits for the form's transaction (or, unfixed, on Carla's new row)
        db.session.commit()
    importer.join(30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["report"].imported == [2, 3, 6, 7] and 4 in outcome["report"].already_there
