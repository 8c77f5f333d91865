"""Guideline pages through the real app: uploads, scheduling, requests, downloads, junk."""
from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.core import clock
from portal.core.clock import now
from portal.extensions import db
from portal.guidelines.jobs import release_due_guidelines
from portal.guidelines.models import CopyRequest, Guideline, GuidelineDownload, GuidelineStatus
from portal.mail.models import OutboxMessage
from portal.people.models import ConsentRecord
from tests.conftest import BACKENDS, csrf_token
from tests.guidelines.conftest import create_guideline


def _new_guideline(app, **kwargs) -> int:
    with app.app_context():
        guideline = create_guideline(**kwargs)
        db.session.commit()
        return guideline.id


class Fetched:
    """A response read and closed (send_file's open file must not leak into the next test)."""

    def __init__(self, response) -> None:
        self.status_code = response.status_code
        self.data = response.data
        self.headers = response.headers
        self.mimetype = response.mimetype
        response.close()

    def get_data(self, as_text: bool = False):
        return self.data.decode() if as_text else self.data


def fetch(client, path: str) -> Fetched:
    return Fetched(client.get(path))


def _link_from(body: str, pattern: str) -> str:
    match = re.search(r"http://portal\.test(" + pattern + r")", body)
    assert match, body
    return match.group(1)


def _upload(client, gid: int, content: bytes, filename: str, language: str = "en"):
    return client.post(
        f"/admin/guidelines/{gid}/editions",
        data={"csrf_token": csrf_token(client, f"/admin/guidelines/{gid}"), "language": language,
              "file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )


def test_organizer_creates_uploads_and_schedules_in_toronto_time(app, client, auth, organizer, pdf_bytes):
    auth.login(organizer)
    response = client.post("/admin/guidelines/new", data={
        "csrf_token": csrf_token(client, "/admin/guidelines/new"), "title_en": "Information Sharing",
        "title_fr": "Échange d'information", "summary_en": "About **sharing**.", "version": "1.0",
        "revision_of": "",
    })
    assert response.status_code == 302
    gid = int(response.location.rstrip("/").split("/")[-1])

    # Scheduling needs both PDFs first.
    future = "2031-01-15T09:30"
    response = client.post(f"/admin/guidelines/{gid}/schedule", data={
        "csrf_token": csrf_token(client, f"/admin/guidelines/{gid}"), "release_at": future})
    assert response.status_code == 400
    assert "Upload the English and French PDF" in response.get_data(as_text=True)

    for language in ("en", "fr"):
        assert _upload(client, gid, pdf_bytes, f"Guide {language}.pdf", language).status_code == 302
    for typo, message in (("9999-12-31T23:59", "Enter a date between 1900 and 2100."),  # beyond any release
                          ("0001-01-01T00:00", "Enter a date between 1900 and 2100."),
                          ("2031-03-09T02:30", "The clocks skip this time"),  # Toronto springs forward
                          ("2031-11-02T01:30", "The clocks show this time twice")):  # and falls back
        response = client.post(f"/admin/guidelines/{gid}/schedule", data={
            "csrf_token": csrf_token(client, f"/admin/guidelines/{gid}"), "release_at": typo})
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    response = client.post(f"/admin/guidelines/{gid}/schedule", data={
        "csrf_token": csrf_token(client, f"/admin/guidelines/{gid}"), "release_at": future})
    assert response.status_code == 302
    with app.app_context():
        guideline = db.session.get(Guideline, gid)
        assert guideline.status == GuidelineStatus.SCHEDULED
        # 09:30 in Toronto in January (EST, UTC-5) is 14:30 UTC.
        assert guideline.release_at == datetime(2031, 1, 15, 14, 30, tzinfo=UTC)
        edition = guideline.edition("en")
        stored = Path(app.instance_path) / "guidelines" / edition.stored_name
        assert stored.read_bytes() == pdf_bytes
        assert "static" not in str(stored)
        assert edition.original_name == "Guide-en.pdf"
    page = client.get(f"/admin/guidelines/{gid}").get_data(as_text=True)
    assert 'value="2031-01-15T09:30"' in page

    # Reschedule, then the public page lists it as upcoming with its date.
    response = client.post(f"/admin/guidelines/{gid}/schedule", data={
        "csrf_token": csrf_token(client, f"/admin/guidelines/{gid}"), "release_at": "2031-07-01T08:00"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Guideline, gid).release_at == datetime(2031, 7, 1, 12, 0, tzinfo=UTC)  # EDT
    public = client.get("/guidelines/").get_data(as_text=True)
    assert "Information Sharing" in public and "Request a copy" in public


def test_replacing_a_pdf_deletes_the_file_it_replaced(app, client, auth, organizer, pdf_bytes):
    """Only files an edition names stay under instance/guidelines; a replaced one goes once
    the replacement is committed, and an upload whose transaction fails leaves nothing."""
    from portal.guidelines import services as guideline_services

    gid = _new_guideline(app)
    folder = Path(app.instance_path) / "guidelines"
    auth.login(organizer)
    for version in (b"1", b"2", b"3"):
        assert _upload(client, gid, pdf_bytes + version, "Guide.pdf").status_code == 302
    with app.app_context():
        guideline = db.session.get(Guideline, gid)
        english = guideline.edition("en").stored_name
        kept = sorted(edition.stored_name for edition in guideline.editions)
    assert sorted(p.name for p in folder.iterdir()) == kept
    assert (folder / english).read_bytes() == pdf_bytes + b"3"

    with app.app_context():
        guideline_services.add_edition(db.session.get(Guideline, gid), "en", io.BytesIO(pdf_bytes), "Other.pdf")
        assert len(list(folder.iterdir())) == len(kept) + 1  # written, not yet committed
        db.session.rollback()
    assert sorted(p.name for p in folder.iterdir()) == kept


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"MZ\x90\x00 this is an executable", "guide.pdf", "is not a PDF"),
        # The magic, then anything: no reader could open it.
        (b"%PDF-" + bytes(range(256)) * 4, "guide.pdf", "is not a PDF"),
        # The trailer, but not where a reader looks for it (within the last 1,024 bytes).
        (b"%PDF-1.4\n%%EOF\n" + b"0" * 1024, "guide.pdf", "is not a PDF"),
        (b"", "guide.pdf", "The file is empty"),
        (b"%PDF-1.4\n" + b"0" * 3000, "guide.pdf", "larger than"),
        (b"%PDF-1.4\n%%EOF", "guide.exe", "must end in .pdf"),
    ],
    ids=["not-a-pdf", "only-the-magic", "trailer-too-early", "empty", "oversized", "wrong-extension"],
)
def test_bad_uploads_are_refused_with_a_clear_message(app, client, auth, organizer, content, filename, message):
    app.config["GUIDELINE_MAX_BYTES"] = 2048
    gid = _new_guideline(app, status=GuidelineStatus.DRAFT)
    with app.app_context():
        before = db.session.get(Guideline, gid).edition("en").sha256
    auth.login(organizer)
    response = _upload(client, gid, content, filename)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and 'aria-invalid="true"' in page
    with app.app_context():
        assert db.session.get(Guideline, gid).edition("en").sha256 == before


def test_upload_without_a_file_is_a_form_error(app, client, auth, organizer):
    gid = _new_guideline(app, status=GuidelineStatus.DRAFT)
    auth.login(organizer)
    response = client.post(f"/admin/guidelines/{gid}/editions", data={
        "csrf_token": csrf_token(client, f"/admin/guidelines/{gid}"), "language": "en"})
    assert response.status_code == 400
    assert "Choose a PDF file to upload" in response.get_data(as_text=True)


def test_request_confirm_release_download(app, client, smtp_server):
    """A person asks for a copy, confirms, and downloads from the notice's personal link."""
    start = now()
    clock.set_now(start)
    gid = _new_guideline(app, release_at=start + timedelta(hours=1))
    with app.app_context():
        from portal.people.services import list_sectors

        sector_id = list_sectors()[1].id
    response = client.post(f"/guidelines/{gid}/request", data={
        "csrf_token": csrf_token(client, f"/guidelines/{gid}/request"), "name": "Amélie Tremblay",
        "email": "Amelie@Example.ca", "organization": "Sudbury Health", "sector": str(sector_id),
        "language": "fr", "accessible_format": "y", "format_details": "Large print",
        "list_opt_in": "y",
    })
    assert response.status_code == 302
    with app.app_context():
        confirmation = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "guidelines.request_confirmation")
        ).scalar_one()
        assert confirmation.language == "fr"
        request_row = db.session.execute(select(CopyRequest)).scalar_one()
        assert request_row.status == "pending" and request_row.accessible_format
        # Consent only once the address is proven.
        assert db.session.execute(select(ConsentRecord)).first() is None
    confirm_path = _link_from(confirmation.body_text, r"/guidelines/confirm/[\w-]+")

    # Following the link (as a mail scanner would) changes nothing; the button confirms.
    page = client.get(confirm_path)
    assert page.status_code == 200 and "Confirmer ma demande" in page.get_data(as_text=True)
    # In French, as she asked, though this browser prefers English.
    assert '<html lang="fr">' in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(CopyRequest)).scalar_one().status == "pending"
    response = client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)})
    assert response.status_code == 200
    with app.app_context():
        request_row = db.session.execute(select(CopyRequest)).scalar_one()
        assert request_row.status == "confirmed"
        consent = db.session.execute(select(ConsentRecord)).scalar_one()
        assert consent.purpose == "list:guideline-releases" and consent.kind == "express"
        assert consent.method == "double opt-in"
        # What the page showed beside the box, in the page's language (English here), though
        # she wants her copy in French.
        assert consent.wording == ('Yes, also send me news of future guideline releases by email (the '
                                   '"Guideline releases" list). I can unsubscribe at any time.')
        assert consent.language == "en"

    # Organizers see the accessible-format request highlighted.
    clock.set_now(start + timedelta(hours=1, seconds=1))
    assert release_due_guidelines_in(app) == 1
    with app.app_context():
        notice = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.purpose == "guidelines.release_notice")
        ).scalar_one()
        assert notice.to_address.endswith("<amelie@example.ca>")
        assert "(FR)" in notice.subject
    link = _link_from(notice.body_text, r"/guidelines/link/[\w-]+")
    landing = client.get(link, headers={"Accept-Language": "en-CA"})
    assert landing.status_code == 200 and '<html lang="fr">' in landing.get_data(as_text=True)
    response = fetch(client, link + "/fr")
    assert response.status_code == 200
    assert response.data.startswith(b"%PDF-")
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "guide-fr.pdf" in response.headers["Content-Disposition"]
    assert response.mimetype == "application/pdf"
    with app.app_context():
        download = db.session.execute(select(GuidelineDownload)).scalar_one()
        assert download.sector_id == sector_id and download.via == "link"
        from portal.core.tokens import AccessToken

        link_token = db.session.execute(
            select(AccessToken).where(AccessToken.purpose == "guidelines.download")).scalar_one()
        assert link_token.use_count == 1  # the file, not the landing page, counts
        assert link_token.expires_at == start + timedelta(hours=1, seconds=1, days=90)


def release_due_guidelines_in(app) -> int:
    with app.app_context():
        return release_due_guidelines()


def test_the_consent_recorded_is_the_opt_in_as_a_french_page_showed_it(app, client):
    gid = _new_guideline(app, release_at=now() + timedelta(days=3))
    french = {"Accept-Language": "fr-CA"}
    page = client.get(f"/guidelines/{gid}/request", headers=french).get_data(as_text=True)
    label = re.search(r'<label for="list_opt_in"[^>]*>(.*?)(?: <span class="optional">.*?</span>)?</label>',
                      page, re.S).group(1).strip()
    assert label.startswith("Oui")
    client.post(f"/guidelines/{gid}/request", headers=french, data={
        "csrf_token": csrf_token(client, "/guidelines/"), "name": "Luc", "email": "luc@example.ca",
        "language": "en", "list_opt_in": "y"})
    with app.app_context():
        body = db.session.execute(select(OutboxMessage.body_text)).scalar_one()
    confirm = _link_from(body, r"/guidelines/confirm/[\w-]+")
    client.post(confirm, data={"csrf_token": csrf_token(client, "/guidelines/")})
    with app.app_context():
        consent = db.session.execute(select(ConsentRecord)).scalar_one()
        assert consent.language == "fr"
        assert html.escape(consent.wording, quote=True).replace("&#x27;", "&#39;") == label


def test_request_after_release_sends_the_copy_once_confirmed(app, client):
    gid = _new_guideline(app, status=GuidelineStatus.RELEASED, release_at=now() - timedelta(days=1))
    response = client.post(f"/guidelines/{gid}/request", data={
        "csrf_token": csrf_token(client, f"/guidelines/{gid}/request"), "name": "Sam",
        "email": "sam@example.ca", "language": "en"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.execute(select(OutboxMessage).where(
            OutboxMessage.purpose == "guidelines.release_notice")).first() is None
        body = db.session.execute(select(OutboxMessage.body_text)).scalar_one()
    confirm_path = _link_from(body, r"/guidelines/confirm/[\w-]+")
    for _ in range(2):  # confirming twice sends one copy
        assert client.post(confirm_path, data={"csrf_token": csrf_token(client, "/guidelines/")}).status_code == 200
    with app.app_context():
        notices = db.session.execute(select(OutboxMessage).where(
            OutboxMessage.purpose == "guidelines.release_notice")).scalars().all()
        assert len(notices) == 1 and "/guidelines/link/" in notices[0].body_text
        assert db.session.execute(select(ConsentRecord)).first() is None  # the opt-in was left unticked


def test_asking_again_after_confirming_keeps_the_request_and_offers_its_owner_the_format(app, client, auth,
                                                                                       organizer):
    """The form is open to anyone, so it never changes a confirmed request; its owner is
    emailed (once an hour at most) a link where they ask for an accessible format (AODA)."""
    gid = _new_guideline(app, release_at=now() + timedelta(days=3))
    form = {"name": "Rita", "email": "rita@example.ca", "language": "en"}
    client.post(f"/guidelines/{gid}/request", data={**form, "csrf_token": csrf_token(client, "/guidelines/")})
    with app.app_context():
        body = db.session.execute(select(OutboxMessage.body_text)).scalar_one()
    client.post(_link_from(body, r"/guidelines/confirm/[\w-]+"), data={"csrf_token": csrf_token(client, "/guidelines/")})

    again = {**form, "accessible_format": "y", "format_details": "Large print, 18pt"}
    for _ in range(2):
        response = client.post(f"/guidelines/{gid}/request",
                               data={**again, "csrf_token": csrf_token(client, "/guidelines/")})
        assert response.status_code == 302
    assert "We sent a message about your request" in client.get(response.location).get_data(as_text=True)
    with app.app_context():
        request_row = db.session.execute(select(CopyRequest)).scalar_one()
        assert request_row.status == "confirmed" and not request_row.accessible_format  # a stranger could have typed it
        (stands,) = db.session.execute(select(OutboxMessage).where(
            OutboxMessage.purpose == "guidelines.request_stands")).scalars()  # one, not two
        assert "already confirmed" in stands.body_text
    link = _link_from(stands.body_text, r"/guidelines/confirm/[\w-]+")
    page = client.get(link).get_data(as_text=True)
    assert "You have not asked for an alternate format." in page and 'name="format_details"' in page
    token = csrf_token(client, link)
    missing = client.post(link + "/format", data={"csrf_token": token, "accessible_format": "y"})
    assert missing.status_code == 400 and 'id="format_details-error"' in missing.get_data(as_text=True)
    saved = client.post(link + "/format", data={"csrf_token": token, "accessible_format": "y",
                                                "format_details": "Large print, 18pt"})
    assert saved.status_code == 302
    assert "You asked for: Large print, 18pt." in client.get(link).get_data(as_text=True)
    auth.login(organizer)
    admin = client.get(f"/admin/guidelines/{gid}").get_data(as_text=True)
    assert "1 person asked for an accessible format" in admin and "Large print, 18pt" in admin


def test_the_request_form_emails_one_address_at_most_six_times_an_hour(app, client):
    gid = _new_guideline(app, release_at=now() + timedelta(days=3))
    statuses = []
    for n in range(7):
        statuses.append(client.post(f"/guidelines/{gid}/request", data={
            "csrf_token": csrf_token(client, "/guidelines/"), "name": "Victim", "email": "victim@example.org",
            "language": "en"}, environ_base={"REMOTE_ADDR": f"10.0.0.{n}"}).status_code)
    assert statuses == [302] * 6 + [429]
    with app.app_context():
        assert len(db.session.execute(select(OutboxMessage)).all()) == 6


def test_a_sector_of_spaces_is_no_sector_chosen(app, client):
    """Spaces were read as a choice not offered, and the refusal was shown beside the email."""
    gid = _new_guideline(app, release_at=now() + timedelta(days=3))
    response = client.post(f"/guidelines/{gid}/request", data={
        "csrf_token": csrf_token(client, "/guidelines/"), "name": "Ren", "email": "ren@example.org",
        "sector": "   ", "language": "en"})
    assert response.status_code == 302


def test_public_download_is_an_attachment_and_counted(app, client):
    gid = _new_guideline(app, status=GuidelineStatus.RELEASED, release_at=now() - timedelta(days=1))
    page = client.get("/guidelines/").get_data(as_text=True)
    assert f"/guidelines/{gid}/download/en" in page
    response = fetch(client, f"/guidelines/{gid}/download/en")
    assert response.status_code == 200 and response.data.startswith(b"%PDF-")
    assert response.headers["Content-Disposition"] == "attachment; filename=guide-en.pdf"
    with app.app_context():
        assert db.session.execute(select(GuidelineDownload)).scalar_one().via == "public"
    # A HEAD (link checkers, mail scanners) answers but counts nothing.
    for _ in range(3):
        with client.head(f"/guidelines/{gid}/download/en") as response:
            assert response.status_code == 200
    with app.app_context():
        assert len(db.session.execute(select(GuidelineDownload)).all()) == 1
    # A draft or scheduled guideline cannot be downloaded publicly.
    draft = _new_guideline(app, status=GuidelineStatus.DRAFT)
    assert client.get(f"/guidelines/{draft}/download/en").status_code == 404


def _personal_link(app, gid: int, email: str = "reader@example.ca") -> str:
    from portal.guidelines.notifications import DOWNLOAD_PURPOSE
    from portal.core.tokens import issue_token
    from portal.people.services import get_or_create_person

    with app.app_context():
        person = get_or_create_person(email, name="Reader")
        db.session.flush()
        raw = issue_token(DOWNLOAD_PURPOSE, person_id=person.id, subject_id=gid, valid_for=timedelta(days=90))
        db.session.commit()
    return f"/guidelines/link/{raw}"


def test_expired_revoked_or_unknown_links_get_a_clear_page_never_the_file(app, client, auth, organizer):
    gid = _new_guideline(app, status=GuidelineStatus.RELEASED, release_at=now() - timedelta(days=1))
    link = _personal_link(app, gid)
    assert fetch(client, link + "/en").data.startswith(b"%PDF-")

    for bad in ("/guidelines/link/not-a-token/en", "/guidelines/link/" + "x" * 300 + "/en",
                "/guidelines/link/unknown", link + "/de"):
        response = fetch(client, bad)
        assert response.status_code == 404
        assert not response.data.startswith(b"%PDF")
        assert "This link is not valid" in response.get_data(as_text=True) or "Page not found" in response.get_data(as_text=True)

    clock.set_now(now() + timedelta(days=91))  # expired
    response = fetch(client, link + "/en")
    assert response.status_code == 404 and "This link is not valid" in response.get_data(as_text=True)
    clock.reset()

    auth.login(organizer)  # withdrawing revokes every link
    response = client.post(f"/admin/guidelines/{gid}/withdraw",
                           data={"csrf_token": csrf_token(client, f"/admin/guidelines/{gid}")})
    assert response.status_code == 302
    for path in (link, link + "/en"):  # the holder of a real link is told why it stopped
        response = fetch(client, path)
        assert response.status_code == 410 and not response.data.startswith(b"%PDF")
        assert "was withdrawn by the working group" in response.get_data(as_text=True)
    assert fetch(client, "/guidelines/link/not-a-token/en").status_code == 404  # nothing for a made-up one
    assert fetch(client, f"/guidelines/{gid}/download/en").status_code == 404


def test_withdrawing_a_scheduled_guideline_tells_who_confirmed_a_request(app, client, auth, organizer):
    gid = _new_guideline(app, release_at=now() + timedelta(days=3))
    with app.app_context():
        from portal.people.services import get_or_create_person

        waiting = get_or_create_person("waiting@example.ca", name="Wanda")
        unsure = get_or_create_person("unsure@example.ca", name="Uma")
        db.session.add_all([CopyRequest(guideline_id=gid, person_id=waiting.id, status="confirmed"),
                            CopyRequest(guideline_id=gid, person_id=unsure.id, status="pending")])
        db.session.commit()
    auth.login(organizer)
    client.post(f"/admin/guidelines/{gid}/withdraw", data={"csrf_token": csrf_token(client, f"/admin/guidelines/{gid}")})
    with app.app_context():
        (told,) = db.session.execute(select(OutboxMessage).where(
            OutboxMessage.purpose == "guidelines.request_withdrawn")).scalars()
        assert "waiting@example.ca" in told.to_address and "withdrawn it before its release" in told.body_text


def test_admin_pages_show_requests_progress_and_suppressed_sector_counts(app, client, auth, organizer):
    from portal.people.services import get_or_create_person, list_sectors

    gid = _new_guideline(app, status=GuidelineStatus.RELEASED, release_at=now() - timedelta(days=1))
    with app.app_context():
        sectors = [(s.id, s.name_en) for s in list_sectors()]
        person = get_or_create_person("needs@example.ca", name="Needs Format")
        db.session.add(CopyRequest(guideline_id=gid, person_id=person.id, accessible_format=True,
                                   format_details="Braille please", status="confirmed"))
        for _ in range(6):
            db.session.add(GuidelineDownload(guideline_id=gid, language="en", sector_id=sectors[0][0], at=now()))
        for _ in range(2):
            db.session.add(GuidelineDownload(guideline_id=gid, language="en", sector_id=sectors[3][0], at=now()))
        db.session.commit()
    auth.login(organizer)
    assert client.get("/admin/guidelines/").status_code == 200
    page = client.get(f"/admin/guidelines/{gid}").get_data(as_text=True)
    assert "needs-accessible-format" in page and "Braille please" in page
    assert "1 person asked for an accessible format" in page
    assert f"<td>{sectors[0][1]}</td><td>6</td>" in page
    assert f"<td>{sectors[3][1]}</td><td>fewer than 5</td>" in page
    assert client.get(f"/admin/guidelines/{gid}/edit").status_code == 200
    assert fetch(client, f"/admin/guidelines/{gid}/editions/en").data.startswith(b"%PDF")


JUNK = ["", "x" * 5000, "🙂" * 50, "<script>alert(1)</script>", "-1", "1e9", "None", "\x00"]


def test_junk_on_the_public_request_form_is_a_4xx(app, client):
    gid = _new_guideline(app)
    for value in JUNK:
        data = {"csrf_token": csrf_token(client, f"/guidelines/{gid}/request"), "name": value, "email": value,
                "organization": value, "sector": value, "language": value, "format_details": value,
                "accessible_format": value, "list_opt_in": value}
        response = client.post(f"/guidelines/{gid}/request", data=data)
        assert 400 <= response.status_code < 500, (value, response.status_code)
    # A well-formed request with an unknown sector number, or a bad address
    for field, value in (("sector", "99999"), ("email", "not-an-address"), ("accessible_format", "y"),
                         ("name", "Nul\x00Byte"), ("organization", "\x00"), ("sector", "1.5")):
        data = {"csrf_token": csrf_token(client, f"/guidelines/{gid}/request"), "name": "A", "email": "a@example.ca",
                "language": "en", field: value}
        response = client.post(f"/guidelines/{gid}/request", data=data)
        assert response.status_code == 400, field
        assert "error-summary" in response.get_data(as_text=True)
    for path in ("/guidelines/999999/request", "/guidelines/abc/request", f"/guidelines/{gid}/download/xx",
                 "/guidelines/99999/download/en", "/guidelines/confirm/x", "/guidelines/confirm/" + "🙂" * 30):
        assert 400 <= client.get(path).status_code < 500, path
    assert client.post("/guidelines/confirm/nope", data={"csrf_token": csrf_token(client, "/guidelines/")}).status_code == 404
    draft = _new_guideline(app, status=GuidelineStatus.DRAFT)
    assert client.get(f"/guidelines/{draft}/request").status_code == 404


def test_junk_on_organizer_forms_is_a_4xx(app, client, auth, organizer):
    gid = _new_guideline(app, status=GuidelineStatus.DRAFT)
    auth.login(organizer)
    token = csrf_token(client, "/admin/guidelines/new")
    for value in JUNK:
        data = {"csrf_token": token, "title_en": value, "title_fr": value, "summary_en": value * 2,
                "summary_fr": value, "version": value, "revision_of": value}
        for path in ("/admin/guidelines/new", f"/admin/guidelines/{gid}/edit"):
            response = client.post(path, data=data)
            assert response.status_code in (302, 400), (path, value, response.status_code)
            if value in ("", "x" * 5000, "\x00"):
                assert response.status_code == 400
        response = client.post(f"/admin/guidelines/{gid}/schedule", data={"csrf_token": token, "release_at": value})
        assert response.status_code == 400, value
        response = client.post(f"/admin/guidelines/{gid}/editions", data={"csrf_token": token, "language": value})
        assert response.status_code == 400, value
    response = client.post("/admin/guidelines/new", data={"csrf_token": token, "title_en": "T\x00", "version": "1"})
    assert response.status_code == 400 and "control characters" in response.get_data(as_text=True)
    # revision of itself, of an unknown guideline, in the past
    assert client.post(f"/admin/guidelines/{gid}/edit", data={"csrf_token": token, "title_en": "T", "version": "1",
                                                               "revision_of": str(gid)}).status_code == 400
    assert client.post("/admin/guidelines/new", data={"csrf_token": token, "title_en": "T", "version": "1",
                                                       "revision_of": "424242"}).status_code == 400
    response = client.post(f"/admin/guidelines/{gid}/schedule", data={"csrf_token": token, "release_at": "2001-01-01T10:00"})
    assert response.status_code == 400 and "in the future" in response.get_data(as_text=True)
    for path in ("/admin/guidelines/99999", "/admin/guidelines/99999/edit", f"/admin/guidelines/{gid}/editions/de",
                 "/admin/guidelines/abc"):
        assert client.get(path).status_code == 404, path
    assert client.post("/admin/guidelines/99999/withdraw", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/admin/guidelines/{gid}/withdraw", data={"csrf_token": token}).status_code == 302
    assert client.post(f"/admin/guidelines/{gid}/withdraw", data={"csrf_token": token}).status_code == 409


def test_a_released_revision_takes_its_predecessors_place_on_the_public_page(app, client):
    first = _new_guideline(app, status=GuidelineStatus.RELEASED, version="1.0", title="Situation Tables")
    second = _new_guideline(app, status=GuidelineStatus.RELEASED, version="2.0", title="Situation Tables",
                            revision_of_id=first)
    other = _new_guideline(app, status=GuidelineStatus.RELEASED, version="1.0", title="Privacy Basics")
    page = client.get("/guidelines/").get_data(as_text=True)
    assert page.count("<h3>Situation Tables</h3>") == 1 and page.count("<h3>Privacy Basics</h3>") == 1
    current, earlier = page.split("<summary>Earlier versions</summary>")
    # The revision's card offers its own files; the first version's are under "Earlier versions".
    assert f"/guidelines/{second}/download/en" in current and f"/guidelines/{first}/download/en" not in current
    assert f"/guidelines/{first}/download/en" in earlier and "Version 1.0" in earlier
    assert page.count("Earlier versions") == 1  # a guideline never revised has none
    assert f"/guidelines/{other}/download/en" in page
    assert Fetched(client.get(f"/guidelines/{first}/download/en")).status_code == 200  # still downloadable


def test_versions_form_a_chain_never_a_loop(app, client, auth, organizer):
    """Found by a review: 1 made a revision of 2, and 2 of 1, was accepted, and both released
    guidelines vanished from the public list (each replaced the other)."""
    first = _new_guideline(app, status=GuidelineStatus.RELEASED, version="1.0", title="Situation Tables")
    second = _new_guideline(app, status=GuidelineStatus.RELEASED, version="2.0", title="Situation Tables",
                            revision_of_id=first)
    third = _new_guideline(app, status=GuidelineStatus.DRAFT, version="3.0", title="Situation Tables",
                           revision_of_id=second)
    auth.login(organizer)
    token = csrf_token(client, f"/admin/guidelines/{first}/edit")
    for later in (second, third):  # the next version, and one further down the chain
        response = client.post(f"/admin/guidelines/{first}/edit", data={
            "csrf_token": token, "title_en": "Situation Tables", "version": "1.0", "revision_of": str(later)})
        assert response.status_code == 400, later
        error = re.search(r'id="revision_of-error">(.*?)</p>', response.get_data(as_text=True), re.S)
        assert error and "is an earlier version of the one chosen" in error.group(1), later
    # Itself: refused too, beside the same field.
    response = client.post(f"/admin/guidelines/{first}/edit", data={
        "csrf_token": token, "title_en": "Situation Tables", "version": "1.0", "revision_of": str(first)})
    assert response.status_code == 400 and 'id="revision_of-error"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Guideline, first).revision_of_id is None
    assert "<h3>Situation Tables</h3>" in client.get("/guidelines/").get_data(as_text=True)


def test_confirming_a_request_for_a_withdrawn_guideline_says_so_and_promises_nothing(app, client):
    from portal.guidelines.services import withdraw_guideline

    start = now()
    clock.set_now(start)
    gid = _new_guideline(app, release_at=start + timedelta(hours=1))
    planned = client.get(f"/guidelines/{gid}/request").get_data(as_text=True)
    assert re.search(r"Release planned for \w+day, \w+ \d+, \d{4}, \d+:\d\d\s[AP]M \(Toronto time\)\.", planned)
    client.post(f"/guidelines/{gid}/request", data={
        "csrf_token": csrf_token(client, f"/guidelines/{gid}/request"), "name": "Quinn", "email": "quinn@example.ca",
        "organization": "", "language": "en", "list_opt_in": "y"})
    with app.app_context():
        body = db.session.execute(select(OutboxMessage.body_text).where(
            OutboxMessage.purpose == "guidelines.request_confirmation")).scalar_one()
        withdraw_guideline(db.session.get(Guideline, gid))
        db.session.commit()
    confirm_path = _link_from(body, r"/guidelines/confirm/[\w-]+")
    page = client.get(confirm_path)
    assert page.status_code == 410 and "was withdrawn" in page.get_data(as_text=True)
    assert "<title>No longer available" in page.get_data(as_text=True)  # not "Bad request"
    posted = client.post(confirm_path, data={"csrf_token": csrf_token(client, "/guidelines/")})
    assert posted.status_code == 410 and "as soon as it is released" not in posted.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(CopyRequest)).scalar_one().status == "pending"
        assert db.session.execute(select(ConsentRecord)).first() is None


def test_a_release_time_already_past_is_not_announced_as_the_plan(app, client):
    start = now()
    clock.set_now(start)
    gid = _new_guideline(app, release_at=start + timedelta(hours=1))
    client.post(f"/guidelines/{gid}/request", data={
        "csrf_token": csrf_token(client, f"/guidelines/{gid}/request"), "name": "Late", "email": "late@example.ca",
        "organization": "", "language": "en"})
    with app.app_context():
        body = db.session.execute(select(OutboxMessage.body_text)).scalars().first()
    confirm_path = _link_from(body, r"/guidelines/confirm/[\w-]+")
    clock.set_now(start + timedelta(hours=1, minutes=5))  # the release job has not run yet
    page = client.post(confirm_path, data={"csrf_token": csrf_token(client, "/guidelines/")}).get_data(as_text=True)
    assert "as soon as it is released." in page and "planned for" not in page


def test_a_known_address_keeps_its_language_and_the_organizers_see_the_one_used(app, client, auth, organizer):
    """Found by a review: a known French reader asked in English; the emails came in French
    (their saved language is kept: the form is open to anyone) while the organizers' table
    said English. The form now says so, and the table shows the language used."""
    from portal.people.services import get_or_create_person

    gid = _new_guideline(app, release_at=now() + timedelta(days=3))
    with app.app_context():
        get_or_create_person("amelie@example.ca", name="Amélie", language="fr")
        db.session.commit()
    page = client.get(f"/guidelines/{gid}/request").get_data(as_text=True)
    assert "the language saved for it is kept" in page
    client.post(f"/guidelines/{gid}/request", data={"name": "Amélie", "email": "amelie@example.ca", "language": "en",
                                                    "csrf_token": csrf_token(client, f"/guidelines/{gid}/request")})
    with app.app_context():
        sent = db.session.execute(select(OutboxMessage)).scalar_one()
        assert sent.language == "fr"
    auth.login(organizer)
    detail = client.get(f"/admin/guidelines/{gid}").get_data(as_text=True)
    assert '<span lang="fr">Français</span>' in detail


def test_a_guideline_with_no_french_title_or_summary_is_marked_english_for_french_readers(app, client):
    """WCAG 3.1.2: a review found English titles and summaries unmarked on French pages."""
    with app.app_context():
        guideline = create_guideline(title="Information Sharing Guide")
        guideline.title_fr, guideline.summary_fr = "", ""
        db.session.commit()
    page = client.get("/guidelines/", headers={"Accept-Language": "fr-CA"}).get_data(as_text=True)
    assert '<h3><span lang="en">Information Sharing Guide</span></h3>' in page
    assert '<div lang="en"><p>Summary.</p>' in page
    english = client.get("/guidelines/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "<h3>Information Sharing Guide</h3>" in english and '<div><p>Summary.</p>' in english


# PostgreSQL only: there a confirmation waits on the guideline's row lock while the release
# commits; SQLite's writers never overlap (each begins with the write lock).
@pytest.mark.parametrize("database_url", [b for b in BACKENDS if b == "postgresql"], indirect=True)
def test_a_confirmation_that_waited_on_the_release_sends_the_copy(app, client):
    """The link's page loaded the guideline as scheduled; the release job committed while the
    confirmation waited for the lock, having read its recipients before this one confirmed.
    Read afresh under the lock, the copy goes now; read from the page's copy, never."""
    from sqlalchemy import update

    from portal.guidelines.services import confirm_copy_request, copy_request_for_token

    gid = _new_guideline(app, release_at=now() + timedelta(days=3))
    client.post(f"/guidelines/{gid}/request", data={
        "csrf_token": csrf_token(client, "/guidelines/"), "name": "Late", "email": "late@example.ca",
        "language": "en"})
    with app.app_context():
        body = db.session.execute(select(OutboxMessage.body_text)).scalar_one()
    raw = _link_from(body, r"/guidelines/confirm/[\w-]+").rsplit("/", 1)[1]
    with app.app_context():
        as_the_page_loaded_it = copy_request_for_token(raw)  # held, as confirm_copy_request holds it
        assert as_the_page_loaded_it.guideline.status == GuidelineStatus.SCHEDULED
        with db.engine.begin() as release_job:
            release_job.execute(update(Guideline).where(Guideline.id == gid)
                                .values(status=GuidelineStatus.RELEASED.value))
        confirm_copy_request(raw)
        db.session.commit()
        notices = db.session.execute(select(OutboxMessage).where(
            OutboxMessage.purpose == "guidelines.release_notice")).scalars().all()
        assert len(notices) == 1 and notices[0].to_address.endswith("<late@example.ca>")


def test_simultaneous_requests_for_one_address_send_at_most_six_links(app):
    """The form's per-address limit counts a request once answered, so requests at the same
    moment all passed it; the service counts the hour's links under the person's lock."""
    import threading

    gid = _new_guideline(app, release_at=now() + timedelta(days=3))
    visitors = [app.test_client() for _ in range(12)]
    tokens = [csrf_token(visitor, "/guidelines/") for visitor in visitors]
    together = threading.Barrier(len(visitors))
    statuses: list[int] = []

    def ask(i: int) -> None:
        together.wait()
        statuses.append(visitors[i].post(f"/guidelines/{gid}/request", data={
            "csrf_token": tokens[i], "name": "Victim", "email": "victim@example.org", "language": "en"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{i}"}).status_code)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(visitors))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with app.app_context():
        assert len(db.session.execute(select(OutboxMessage)).all()) == 6
    assert sorted(statuses) == [302] * 6 + [429] * 6
