"""The base of every form in the portal, and what no field of any form may hold."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from portal.core.db import MAX_ID

#: C0 control characters (tab, line feed and carriage return excepted), DEL, and Unicode's
#: noncharacters (U+FFFE, U+FFFF and the like): nobody types them, PostgreSQL refuses NUL, and
#: an XML file (an .xlsx export) cannot hold any of them: one in a name made every Excel
#: export of the event unreadable.
CONTROL_CHARACTERS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufdd0-\ufdef"
    + "".join(f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17))
    + "]")
CONTROL_CHARACTERS_MESSAGE = _l("Remove the invisible control characters from this field.")

#: Dates outside these years are typos (a date field takes 0001 to 9999); near the ends of
#: that range, converting between zones or adding a day overflows Python's datetime.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2100


def looks_blank(value: str) -> bool:
    """Only spaces and invisible characters (zero-width spaces, direction marks...): text that
    passes a "required" check yet shows nothing."""
    return all(ch.isspace() or unicodedata.category(ch) in ("Cf", "Zs", "Zl", "Zp") for ch in value)


def without_control_characters(value: str) -> str:
    """Text from somewhere no form checks (a header, an uploaded file's name) with the
    characters `CONTROL_CHARACTERS` names taken out."""
    return CONTROL_CHARACTERS.sub("", value)


def has_control_characters(value: Any) -> bool:
    if isinstance(value, str):
        return CONTROL_CHARACTERS.search(value) is not None
    if isinstance(value, (list, tuple)):
        return any(has_control_characters(item) for item in value)
    return False


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_named(name: object) -> ZoneInfo | None:
    """The IANA zone called `name`, or None. Only names of zones are tried: ZoneInfo("America")
    opens a directory (IsADirectoryError) and a very long name fails in the file system."""
    if not isinstance(name, str) or name not in _zone_names():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def exists_locally(moment: datetime, zone: ZoneInfo) -> bool:
    """Whether the zone's clocks ever show this wall time (not one skipped when they go forward)."""
    return moment.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == moment


def happens_twice_locally(moment: datetime, zone: ZoneInfo) -> bool:
    """Whether the zone's clocks show this wall time twice (in the hour repeated when they go back)."""
    return moment.replace(tzinfo=zone, fold=0).utcoffset() != moment.replace(tzinfo=zone, fold=1).utcoffset()


class ShownByClocksIn:
    """Validator of a local date and time: it must exist in the zone `zone_of(form)` names (or
    the portal's), once. In the hour skipped when the clocks go forward, 02:30 would silently
    become 03:30 and everyone would be told the wrong time; in the hour repeated when they go
    back, 01:30 is two moments an hour apart, and the first would be taken without a word."""

    def __init__(self, zone_of: Callable[[Any], str] | None = None) -> None:
        self.zone_of = zone_of

    def __call__(self, form, field) -> None:
        from flask import current_app

        moment = field.data
        if not isinstance(moment, datetime) or not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
            return  # empty, or PortalForm refuses the year
        zone = zone_named(self.zone_of(form) if self.zone_of else current_app.config["PORTAL_TIMEZONE"])
        if zone is None:
            return  # the zone field reports its own error
        if not exists_locally(moment.replace(second=0, microsecond=0), zone):
            raise ValidationError(_l("The clocks skip this time (they go forward an hour then). Choose another time."))
        if happens_twice_locally(moment, zone):
            raise ValidationError(_l("The clocks show this time twice that night (they go back an hour then). "
                                     "Choose a time outside that hour."))


class RowId:
    """A row's id carried by a form (the hidden draft of a message being written): digits
    naming an id a row can have. A larger one, forged or mangled, would reach the database
    and fail there (PostgreSQL refuses to compare past int4): a 500 where the form should
    refuse it. Put `Optional()` before it when the id may be absent."""

    _DIGITS = re.compile("[0-9]{1,10}")

    def __init__(self, message: str | None = None) -> None:
        self.message = message or _l("This refers to nothing that exists. Reload the page and try again.")

    def __call__(self, form, field) -> None:
        value = field.data
        if not (isinstance(value, str) and self._DIGITS.fullmatch(value) and 0 < int(value) <= MAX_ID):
            raise ValidationError(self.message)


class MultiCheckboxField(SelectMultipleField):
    """Several checkboxes in a fieldset (the forms macro renders it by this class name).
    Each box ticked counts once: a browser sends a box's value once, but a forged post can
    repeat it (q_21=A&q_21=A), which would be stored, and counted, as many times."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def process_formdata(self, valuelist) -> None:
        super().process_formdata(valuelist)
        self.data = list(dict.fromkeys(self.data))  # after coercion: "1" and "01" are one sector


class PortalForm(FlaskForm):
    """Every form in the portal. Besides each field's own validators, no field may hold
    control characters (nobody types them; a form that forgot to refuse them would store them
    raw or, on PostgreSQL, fail with a 500), no required field may hold only invisible
    characters, and no date may fall outside EARLIEST_YEAR to LATEST_YEAR. The error goes
    beside the field."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        csrf_field = getattr(self, "csrf_token", None)
        if csrf_field is not None:
            # A page often holds several forms (and always the language switch): their hidden
            # CSRF fields would all carry id="csrf_token", and WCAG 2.0 (4.1.1) wants ids unique.
            csrf_field.render_kw = {"id": False}

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:  # the portal's forms have no nested forms (FieldList, FormField)
            if field.errors:
                field.errors = [_named_if_generic(field, message) for message in field.errors]
                continue
            if isinstance(field, SelectField) and isinstance(field.data, str) and looks_blank(field.data):
                # Optional() passes a choice of only spaces as "nothing chosen" and drops the
                # choice check's error: make it nothing chosen, not a value no option has.
                field.data = ""
            if has_control_characters(field.data):
                field.errors = [*field.errors, str(CONTROL_CHARACTERS_MESSAGE)]
                valid = False
            elif _is_one_line(field) and one_line_breaks(field.data):
                # A text input cannot hold a line break: only a forged post sends one, and a
                # name with lines in it would write lines of its own into the emails it is in.
                field.errors = [*field.errors, _("Write this on one line.")]
                valid = False
            elif field.flags.required and isinstance(field.data, str) and field.data and looks_blank(field.data):
                field.errors = [*field.errors, _("Enter visible text in this field.")]
                valid = False
            elif isinstance(field.data, date) and not EARLIEST_YEAR <= field.data.year <= LATEST_YEAR:
                field.errors = [*field.errors, _("Enter a date between %(first)d and %(last)d.",
                                                 first=EARLIEST_YEAR, last=LATEST_YEAR)]
                valid = False
        return valid

    def link_args(self, *leave_out: str) -> dict[str, str]:
        """What was typed in this GET form's fields, for links to the same page (its other pages).
        Only the form's own fields: copying the whole query string into url_for would let any
        extra parameter (event_id, endpoint, _method, _external...) clash with url_for's own
        arguments, a 500, or change where the link goes."""
        return {field.name: field.raw_data[0] for field in self
                if field.name not in leave_out and field.raw_data and field.raw_data[0]}


_LINE_BREAKS = re.compile("[\r\n\u2028\u2029]")


def one_line_breaks(value: Any) -> bool:
    """Text meant for one line (a name, an address) that holds a line break."""
    return isinstance(value, str) and _LINE_BREAKS.search(value) is not None


def _is_one_line(field) -> bool:
    """A text input (name, email, password...), not a text area."""
    return isinstance(field, StringField) and not isinstance(field, TextAreaField)


#: DataRequired's and InputRequired's own message (WTForms translates it with its catalogue).
WTFORMS_REQUIRED = "This field is required."


def _named_if_generic(field, message: str) -> str:
    """WTForms' "This field is required." names no field: in the error summary, a list of
    several reads the same and a screen-reader user cannot tell them apart (WCAG 3.3.1,
    2.4.4). Say which field, in the page's language."""
    if message in (field.gettext(WTFORMS_REQUIRED), WTFORMS_REQUIRED):
        # A label may be markup (English shown to a French reader, marked lang="en"): the
        # message is text, so it names the field by the label's text.
        label = field.label.text
        return _("“%(label)s” is required.", label=label.striptags() if isinstance(label, Markup) else label)
    return message
