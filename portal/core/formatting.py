"""Template filters: times in the portal's zone, sanitized markdown."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import nh3
from flask import Flask, current_app
from flask_babel import format_datetime
from markdown_it import MarkdownIt
from markupsafe import Markup

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


def local_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(ZoneInfo(current_app.config["PORTAL_TIMEZONE"]))


def format_local(value: datetime | None, format: str = "medium") -> str:
    if value is None:
        return ""
    return format_datetime(value, format)  # Flask-Babel converts to BABEL_DEFAULT_TIMEZONE


def portal_zone_place() -> str:
    """The place that names the portal's time zone, for labels like "Toronto time"."""
    zone = current_app.config["PORTAL_TIMEZONE"]
    return zone.rsplit("/", 1)[-1].replace("_", " ")


def register_filters(app: Flask) -> None:
    app.jinja_env.globals["portal_zone_place"] = portal_zone_place
    app.jinja_env.filters["markdown"] = render_markdown
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["datetime"] = format_local
