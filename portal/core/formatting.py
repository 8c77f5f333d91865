"""Template filters: times in the portal's zone, sanitized markdown."""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import nh3
from flask import Flask, current_app
from flask_babel import (
    format_decimal, format_percent, format_time, get_locale, get_timezone, gettext, pgettext,
)
from flask_babel import format_date as babel_format_date
from markdown_it import MarkdownIt
from markupsafe import Markup

from portal.core.audit_actions import action_in_words

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

ALLOWED_TAGS = {
    "a", "p", "br", "strong", "em", "ul", "ol", "li", "h2", "h3", "h4", "blockquote",
    "code", "pre", "table", "thead", "tbody", "tr", "th", "td", "hr",
}


def render_markdown(source: str | None) -> Markup:
    """Markdown to HTML that is safe to show: raw HTML is never passed through."""
    html = _markdown.render(source or "")
    return Markup(nh3.clean(html, tags=ALLOWED_TAGS, attributes={"a": {"href", "title"}},
                            url_schemes={"http", "https", "mailto"}))


_FIRST_OF_MONTH = re.compile(
    r"\b1 (?=janv|févr|mars|avr|mai|juin|juil|août|sept|oct|nov|déc)")


def format_date(value: Any = None, format: str = "medium", rebase: bool = True) -> str:
    """Flask-Babel's date in the reader's language, with French's "1er": CLDR writes
    "1 décembre", French usage "1er décembre"."""
    text = babel_format_date(value, format, rebase=rebase)
    if str(get_locale() or "en").startswith("fr"):
        text = _FIRST_OF_MONTH.sub("1er ", text)
    return text


def local_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(ZoneInfo(current_app.config["PORTAL_TIMEZONE"]))


def format_local(value: datetime | None, format: str = "medium") -> str:
    """A moment in the portal's zone, to the minute: "Jan 21, 2027, 8:30 AM", in French
    "21 janv. 2027, 8 h 30" (`format` is the date's: "short", "medium", "long"). Babel's
    own date-times add seconds and write French times as "08:30:00"."""
    if value is None:
        return ""
    return f"{format_date(value, format)}, {short_time(value)}"  # Flask-Babel converts the zone


def time_range(starts_at: datetime, ends_at: datetime, zone_name: str | None = None) -> str:
    """"Sunday, January 10, 2027, 8:30 AM – 4:30 PM" in the reader's language and `zone_name`
    (an event's own zone: a Kenora forum in Kenora's time), else the portal's (the end date
    is repeated only when it is another day)."""
    return _time_range(starts_at, ends_at, str(get_locale() or "en"), zone_name or str(get_timezone()))


@lru_cache(maxsize=256)
def _time_range(starts_at: datetime, ends_at: datetime, _locale: str, zone_name: str) -> str:
    # Keyed on the language and zone: every confirmation, reminder and event list shows the
    # same few ranges, and Babel's formatting is the slow part.
    zone = ZoneInfo(zone_name)
    starts, ends = starts_at.astimezone(zone), ends_at.astimezone(zone)
    text = f"{format_date(starts, 'full', rebase=False)}, {short_time(starts, rebase=False)} – "
    if starts.date() != ends.date():
        text += f"{format_date(ends, 'full', rebase=False)}, "
    return text + short_time(ends, rebase=False)


def short_time_in(value: datetime, zone_name: str | None) -> str:
    """`short_time` in a given zone (an event's own), the portal's when none."""
    if not zone_name:
        return short_time(value)
    return short_time(value.astimezone(ZoneInfo(zone_name)), rebase=False)


def short_time(value: datetime, rebase: bool = True) -> str:
    """A time to the minute as the reader's language writes it: "8:30 AM"; in French
    "8 h 30", as the Office québécois de la langue française and Canadian usage want
    (CLDR's French gives "08:30"). `rebase=False`: `value` is already in the zone to show."""
    if str(get_locale() or "en").startswith("fr"):
        return format_time(value, "H 'h' mm", rebase=rebase)
    return format_time(value, "short", rebase=rebase)


def org_name(language: str) -> str:
    """The working group's name as a reader of `language` sees it (sender identification in
    every page and email footer, CASL)."""
    config = current_app.config
    if language == "fr" and config.get("PORTAL_ORG_NAME_FR"):
        return config["PORTAL_ORG_NAME_FR"]
    return config["PORTAL_ORG_NAME"]


#: Zones whose place is not spelled as in their name.
_PLACE_NAMES = {"America/St_Johns": "St. John's"}


def zone_place(zone_name: str | None = None) -> str:
    """The place that names a time zone ("Winnipeg" for America/Winnipeg), the portal's by
    default, for labels like "Winnipeg time"; a fixed offset as "UTC−5" (the zone
    Etc/GMT+5 is five hours behind UTC: its sign reads backwards)."""
    zone = zone_name or current_app.config["PORTAL_TIMEZONE"]
    if zone in _PLACE_NAMES:
        return _PLACE_NAMES[zone]
    offset = re.fullmatch(r"Etc/GMT([+-])(\d{1,2})", zone)
    if offset:
        return f"UTC{'−' if offset.group(1) == '+' else '+'}{offset.group(2)}"
    if zone in ("UTC", "Etc/UTC", "Etc/GMT", "GMT"):
        return "UTC"
    return zone.rsplit("/", 1)[-1].replace("_", " ")


def zone_time(zone_name: str | None = None) -> str:
    """"Winnipeg time", in French "heure de Winnipeg" or, before a vowel, "heure
    d'Edmonton"; a fixed offset reads "UTC−5"."""
    place = zone_place(zone_name)
    if place.startswith("UTC"):
        return place
    if str(get_locale() or "en").startswith("fr") and unicodedata.normalize("NFD", place)[0].lower() in "aeiouy":
        return pgettext("a place beginning with a vowel", "%(place)s time", place=place)
    return gettext("%(place)s time", place=place)


def in_language(obj: Any, name: str, language: str) -> Any:
    """`obj.<name>_fr` for French when it has one; otherwise `obj.<name>` (organizers may leave
    the French text empty)."""
    if language == "fr":
        french = getattr(obj, f"{name}_fr", "")
        if french:
            return french
    return getattr(obj, name)


def localized(obj: Any, name: str) -> Any:
    """The template filter: `in_language` for the page's (or the email's) language."""
    from portal.core.web import current_language

    return in_language(obj, name, current_language())


def english_marked(text: str) -> Markup:
    """Text a French reader is given in English (no French was written), marked lang="en" so
    a screen reader reads it as English (WCAG 3.1.2)."""
    return Markup('<span lang="en">%s</span>') % text


def name_marked(obj: Any, language: str, what: str = "name") -> Markup:
    """A group's or list's `name(language)` (or a guideline's `title(language)`, with
    what="title") for a page's body, its English text marked lang="en" where a French reader
    gets it for want of a French one (see localized_marked)."""
    text = getattr(obj, what)(language)
    if language == "fr" and not getattr(obj, f"{what}_fr", ""):
        return english_marked(text)
    return Markup.escape(text)


def fallback_lang(obj: Any, name: str, language: str | None = None) -> Markup:
    """' lang="en"' for the element holding `obj`'s `name` (a markdown description or
    summary, which no span can wrap) where a French reader gets the English text; else ''."""
    from portal.core.web import current_language

    if (language or current_language()) == "fr" and not getattr(obj, f"{name}_fr", ""):
        return Markup(' lang="en"')
    return Markup("")


def localized_marked(obj: Any, name: str) -> Markup:
    """`localized` for a page's body: where a French reader gets the English text (no French
    was written), it is marked lang="en", so a screen reader reads it as English (WCAG
    3.1.2). Not for <title> or attributes, which take no markup."""
    from portal.core.web import current_language

    language = current_language()
    text = in_language(obj, name, language)
    if language == "fr" and not getattr(obj, f"{name}_fr", ""):
        return english_marked(text)
    return Markup.escape(text)


def format_day_and_time(value: datetime | None, zone_name: str | None = None) -> str:
    """A day and a time to the minute, in the portal's zone or `zone_name` ("Saturday,
    December 5, 2026, 9:00 AM"): Babel's "full" date-time would add seconds and the zone's
    long name."""
    if value is None:
        return ""
    if zone_name:
        local = value.astimezone(ZoneInfo(zone_name))
        return f"{format_date(local, 'full', rebase=False)}, {short_time(local, rebase=False)}"
    return f"{format_date(value, 'full')}, {short_time(value)}"


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["localized"] = localized
    app.jinja_env.filters["localized_marked"] = localized_marked
    app.jinja_env.filters["name_marked"] = name_marked
    app.jinja_env.filters["fallback_lang"] = fallback_lang
    app.jinja_env.filters["day_and_time"] = format_day_and_time
    # Numbers as the page's language writes them (French: "15,0", "30 %").
    app.jinja_env.globals["format_decimal"] = format_decimal
    app.jinja_env.globals["format_percent"] = format_percent
    app.jinja_env.globals["zone_place"] = zone_place
    app.jinja_env.globals["zone_time"] = zone_time
    app.jinja_env.globals["time_range"] = time_range
    app.jinja_env.filters["markdown"] = render_markdown
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["datetime"] = format_local
    app.jinja_env.filters["short_time"] = short_time
    app.jinja_env.filters["short_time_in"] = short_time_in
    app.jinja_env.filters["dateformat"] = format_date  # Flask-Babel's, with French's "1er"
    app.jinja_env.filters["action_in_words"] = action_in_words
