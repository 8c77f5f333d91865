"""The organizer's list pages: create and edit lists, subscribers with consent history, export."""
from __future__ import annotations

import csv
import io

import pytest

from portal.extensions import db
from tests.conftest import counted_statements, csrf_token
from tests.lists.conftest import add_subscriber


def test_create_and_edit_a_list_and_junk(app, client, auth, organizer):
    auth.login(organizer)
    token = csrf_token(client, "/admin/lists/new")
    good = {"slug": "guideline-releases", "name_en": "Guideline releases", "name_fr": "Publication",
            "description_en": "New guidelines.", "announce_only": "y", "retention_months": "24",
            "csrf_token": token}
    response = client.post("/admin/lists/new", data=good)
    assert response.status_code == 302
    assert "Guideline releases" in client.get("/admin/lists/").get_data(as_text=True)
    assert "Guideline releases" in client.get("/lists/").get_data(as_text=True)
    assert client.post("/admin/lists/new", data=good).status_code == 409  # slug taken
    for junk in ({"slug": "Bad Slug!"}, {"slug": ""}, {"slug": "unsubscribe"}, {"slug": "x" * 100},
                 {"name_en": ""}, {"name_en": "n" * 300}, {"description_en": "d" * 6000},
                 {"name_en": "nul\x00"}, {"slug": "nul\x00"}, {"retention_months": "0"}, {"retention_months": "1"},
                 {"retention_months": "abc"}, {"retention_months": "99999999999"}, {"retention_months": ""}):
        response = client.post("/admin/lists/new", data={**good, "slug": "other", **junk})
        assert response.status_code in (400, 409), junk
        assert "There is a problem" in response.get_data(as_text=True), junk
    from sqlalchemy import select

    from portal.lists.models import MailingList

    with app.app_context():
        list_id = db.session.execute(select(MailingList.id)).scalar_one()
    edit = f"/admin/lists/{list_id}/edit"
    assert client.post(edit, data={**good, "name_en": "Guideline notices", "retention_months": "6"}).status_code == 302
    assert "Guideline notices" in client.get("/admin/lists/").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(MailingList, list_id).retention_months == 6  # the purge follows it
    # The short name is fixed: links already sent and the releases' own list go by it (a
    # renamed "guideline-releases" silently stopped getting release notices).
    renamed = client.post(edit, data={**good, "slug": "guideline-news"})
    assert renamed.status_code == 302
    with app.app_context():
        assert db.session.get(MailingList, list_id).slug == good["slug"]
        from portal.lists.services import SlugFixed, save_public_list

        with pytest.raises(SlugFixed):
            save_public_list(db.session.get(MailingList, list_id), slug="guideline-news", name_en="x")
        db.session.rollback()
    assert "cannot be changed" in client.get(edit).get_data(as_text=True)
    for bad in ("/admin/lists/abc/edit", "/admin/lists/999999/edit", "/admin/lists/999999",
                "/admin/lists/999999/export.csv", f"/admin/lists/{list_id}/subscribers/999999",
                "/admin/lists/99999999999999999999999", "/admin/lists/posts/-1"):
        assert client.get(bad).status_code == 404, bad


def test_subscribers_history_and_export(app, client, auth, organizer, public_list):
    subscription_id, _, _ = add_subscriber(app, public_list, "ana@example.ca")
    add_subscriber(app, public_list, "=cmd@example.ca")
    add_subscriber(app, public_list, "wait@example.ca", status="pending", consent=None)
    auth.login(organizer)
    page = client.get(f"/admin/lists/{public_list}").get_data(as_text=True)
    assert "ana@example.ca" in page and "Waiting for confirmation" in page
    french = client.get(f"/admin/lists/{public_list}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Actifs : 2; en attente de confirmation : 1; désabonnés : 0." in french  # no "1 actifs"
    filtered = client.get(f"/admin/lists/{public_list}?status=pending&q=wait").get_data(as_text=True)
    assert "wait@example.ca" in filtered and "ana@example.ca" not in filtered
    for junk in ("?status=bogus", "?page=abc", "?page=-5", "?q=" + "é" * 500, "?page=99999", "?q=a%00b", "?status=%00",
                 "?page=1000000000000000000", "?page=" + "9" * 40):
        assert client.get(f"/admin/lists/{public_list}{junk}").status_code == 200, junk
    detail = client.get(f"/admin/lists/{public_list}/subscribers/{subscription_id}").get_data(as_text=True)
    assert "Consent history" in detail and "<td>Express</td>" in detail
    # Stored codes in words, in the page's language.
    french = client.get(f"/admin/lists/{public_list}/subscribers/{subscription_id}",
                        headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "<dd>Anglais</dd>" in french and "<td>Exprès</td>" in french
    response = client.get(f"/admin/lists/{public_list}/export.csv")
    assert response.headers["Content-Disposition"] == 'attachment; filename="symposium-announcements-subscribers.csv"'
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel then reads the accents as UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert {r["email"] for r in rows} == {"ana@example.ca", "'=cmd@example.ca", "wait@example.ca"}


def test_the_subscribers_page_takes_the_same_statements_for_2_or_12_subscribers(app, client, auth, organizer,
                                                                                public_list):
    """Found at scale: each row read its person on its own (61 statements a page of 50)."""
    def statements() -> int:
        with counted_statements(app) as seen:
            assert client.get(f"/admin/lists/{public_list}").status_code == 200
        return len(seen)

    for n in range(2):
        add_subscriber(app, public_list, f"s{n}@example.ca")
    auth.login(organizer)
    few = statements()
    for n in range(2, 12):
        add_subscriber(app, public_list, f"s{n}@example.ca")
    assert statements() == few


def test_the_subscriber_export_streams_in_batches(app, client, auth, organizer, public_list):
    """A scale pass saw +140 MB building a 30,000-row export as one string: it streams now."""
    from portal.lists.models import MailingList
    from portal.lists.services import subscriber_csv_chunks

    for n in range(5):
        add_subscriber(app, public_list, f"s{n}@example.ca")
    with app.app_context():
        chunks = list(subscriber_csv_chunks(db.session.get(MailingList, public_list), rows_per_chunk=2))
    assert len(chunks) == 4  # the BOM, then the header and rows 1-2, rows 3-4, row 5
    rows = list(csv.reader(io.StringIO("".join(chunks).removeprefix("\ufeff"))))
    assert rows[0][0] == "email" and [r[0] for r in rows[1:]] == [f"s{n}@example.ca" for n in range(5)]
    auth.login(organizer)
    response = client.get(f"/admin/lists/{public_list}/export.csv")
    assert response.is_streamed and response.status_code == 200
    assert response.get_data(as_text=True).removeprefix("\ufeff") == "".join(chunks).removeprefix("\ufeff")
