"""English and French: the visitor's choice, then the browser's Accept-Language."""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import csrf_token

ROOT = Path(__file__).resolve().parents[2]


def test_browser_language_is_followed(client):
    page = client.get("/", headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "Passer au contenu principal" in page


def test_english_by_default(client):
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Skip to main content" in page


def test_visitor_choice_beats_the_browser(client):
    response = client.post("/language", data={"language": "fr", "next": "/privacy",
                                              "csrf_token": csrf_token(client, "/")})
    assert response.status_code == 302 and response.location == "/privacy"
    page = client.get("/privacy", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Avis de confidentialité" in page


def test_language_switch_refuses_junk(client):
    token = csrf_token(client, "/")
    for junk in ({"language": "de"}, {"language": "x" * 500}, {}):
        response = client.post("/language", data=dict(junk, csrf_token=token))
        assert response.status_code == 400
    bad_next = client.post("/language", data={"language": "fr", "next": "https://evil.example",
                                              "csrf_token": token})
    assert bad_next.location == "/"


def test_every_marked_string_has_a_french_translation():
    """The French catalogue covers every string marked in code and templates."""
    method_map = [("portal/**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None,
                "pgettext": ((1, "c"), 2), "lazy_pgettext": ((1, "c"), 2)}
    marked = {
        (context, message if isinstance(message, str) else message[0])
        for _file, _line, message, _comments, context in extract_from_dir(
            str(ROOT), method_map=method_map, keywords=keywords
        )
    }
    with open(ROOT / "portal/translations/fr/LC_MESSAGES/messages.po", "rb") as handle:
        catalogue = read_po(handle, locale="fr")
    translated = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalogue if m.id and m.string}
    missing = sorted(marked - translated)
    assert not missing, f"{len(missing)} strings without French: {missing[:20]}"


def test_the_french_catalogue_holds_each_message_once_and_follows_its_punctuation():
    """A message defined twice makes strict tools (msgfmt -c) refuse the whole catalogue, and
    babel keeps whichever comes last. The catalogue's convention, Canadian usage: no space
    before ; ? or ! (a space there in a few strings only looked careless)."""
    import re

    seen: dict[tuple[str | None, str], int] = {}
    duplicates, spaced = [], []
    context = key = None
    part = ""
    for number, line in enumerate((ROOT / "portal/translations/fr/LC_MESSAGES/messages.po")
                                  .read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(("msgctxt ", "msgid ", "msgid_plural ", "msgstr")):
            part = line.split(" ", 1)[0]
        if line.startswith("msgctxt "):
            context = line[8:].strip('"')
        elif line.startswith("msgid "):
            key, start = line[6:].strip('"'), number
        elif line.startswith('"') and part == "msgid":
            key += line.strip('"')
        elif part == "msgid_plural" or (line.startswith("msgstr") and key is not None):
            if key and (context, key) in seen:
                duplicates.append((key, seen[(context, key)], start))
            if key:
                seen[(context, key)] = start
            context = key = None
        if part.startswith("msgstr") and re.search(r" [;?!]", line):
            spaced.append(line)
    assert duplicates == [] and spaced == []


def test_french_never_puts_de_or_que_before_a_name_that_may_begin_with_a_vowel():
    """"de Élise", "que Élise", "de Échange d'information": French elides before a vowel,
    and a name or title can begin with one, so no translation puts "de", "que" or "à titre
    de" right before a placeholder for one."""
    import re

    from babel.messages.pofile import read_po

    with open(ROOT / "portal/translations/fr/LC_MESSAGES/messages.po", "rb") as handle:
        catalogue = read_po(handle, locale="fr")
    names = r"%\((?:name|group|title|event|member|org|list|file)\)s"
    offending = []
    for message in catalogue:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            if text and re.search(rf"\b(?:de|que) {names}", text):
                offending.append(text)
    assert not offending, offending


def test_french_writes_times_as_8_h_30_and_english_as_8_30_am(app):
    from datetime import UTC, datetime

    from portal.core.formatting import format_day_and_time, time_range

    starts = datetime(2027, 1, 13, 13, 30, tzinfo=UTC)  # 8:30 in Toronto (EST)
    ends = datetime(2027, 1, 13, 21, 30, tzinfo=UTC)
    with app.test_request_context("/", headers={"Accept-Language": "fr-CA"}):
        assert time_range(starts, ends) == "mercredi 13 janvier 2027, 8 h 30 – 16 h 30"
        assert format_day_and_time(starts).endswith(", 8 h 30")
    with app.test_request_context("/", headers={"Accept-Language": "en-CA"}):
        assert time_range(starts, ends).replace("\u202f", " ") == "Wednesday, January 13, 2027, 8:30 AM – 4:30 PM"


def test_the_my_data_page_links_the_privacy_notice_rather_than_showing_its_markup(client):
    for language in ("en-CA", "fr-CA"):
        page = client.get("/my-data", headers={"Accept-Language": language}).get_data(as_text=True)
        assert '<a href="/privacy">' in page and "&lt;a href" not in page, language


def test_english_left_on_a_french_page_is_marked_as_english(app, client):
    """From an accessibility pass (WCAG 3.1.2): an event with no French title showed its
    English title on French pages unmarked, read by screen readers with French sounds."""
    from tests.events.conftest import EventFactory

    EventFactory(app)(slug="only-english", title="Collaborating for Safety")
    EventFactory(app)(slug="both", title="Working Together", title_fr="Travailler ensemble")
    french = {"Accept-Language": "fr"}
    page = client.get("/events/only-english", headers=french).get_data(as_text=True)
    assert '<h1><span lang="en">Collaborating for Safety</span></h1>' in page
    assert "<title>Collaborating for Safety" in page  # a title takes no markup
    listing = client.get("/events", headers=french).get_data(as_text=True)
    assert '<span lang="en">Collaborating for Safety</span>' in listing
    assert ">Travailler ensemble</a>" in listing and '<span lang="en">Working Together' not in listing
    english = client.get("/events/only-english").get_data(as_text=True)
    assert "<h1>Collaborating for Safety</h1>" in english
    register = client.get("/events/only-english/register", headers=french).get_data(as_text=True)
    assert '<span lang="en">Collaborating for Safety</span></h1>' in register


def test_a_list_or_group_named_only_in_english_is_marked_on_french_pages(app, client):
    from portal.extensions import db
    from portal.groups.services import create_group
    from portal.lists.services import save_public_list

    with app.app_context():
        save_public_list(None, slug="news", name_en="Safety News")
        save_public_list(None, slug="nouvelles", name_en="Updates", name_fr="Nouvelles")
        create_group(slug="tables", name_en="Situation Tables", mandate_en="Share.", communities=["Sudbury"],
                     terms_of_reference="Be kind.", tor_version="1")
        db.session.commit()
    french = {"Accept-Language": "fr"}
    lists = client.get("/lists/", headers=french).get_data(as_text=True)
    assert '<h2><span lang="en">Safety News</span></h2>' in lists and "<h2>Nouvelles</h2>" in lists
    group = client.get("/groups/tables", headers=french).get_data(as_text=True)
    assert '<h1><span lang="en">Situation Tables</span></h1>' in group
    assert "<h1>Situation Tables</h1>" in client.get("/groups/tables").get_data(as_text=True)


def test_a_time_zone_is_named_as_readers_write_it(app):
    """A code review: with events in their own zones, French read 'heure de Edmonton' (no
    elision), St. John's lost its spelling, and Etc/GMT+5 read as 'GMT+5' (it is UTC−5)."""
    from portal.core.formatting import zone_time

    expected = {
        "en": {"America/Winnipeg": "Winnipeg time", "America/Edmonton": "Edmonton time",
               "America/St_Johns": "St. John's time", "Etc/GMT+5": "UTC−5", None: "Toronto time"},
        "fr": {"America/Winnipeg": "heure de Winnipeg", "America/Edmonton": "heure d'Edmonton",
               "America/Iqaluit": "heure d'Iqaluit", "Etc/GMT-2": "UTC+2", None: "heure de Toronto"},
    }
    for language, names in expected.items():
        with app.test_request_context(headers={"Accept-Language": language}):
            for zone, label in names.items():
                assert zone_time(zone) == label, (language, zone)


def test_french_writes_the_first_of_the_month_as_1er(app):
    """An accessibility and French pass: 'mardi 1 décembre 2026' (CLDR) where French writes
    '1er décembre'."""
    from datetime import UTC, date, datetime

    from portal.core.formatting import format_date, time_range

    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert format_date(date(2026, 12, 1), "long") == "1er décembre 2026"
        assert format_date(date(2026, 12, 11), "long") == "11 décembre 2026"
        assert time_range(datetime(2026, 12, 1, 14, tzinfo=UTC), datetime(2026, 12, 1, 20, tzinfo=UTC)).startswith(
            "mardi 1er décembre 2026")
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert format_date(date(2026, 12, 1), "long") == "December 1, 2026"
