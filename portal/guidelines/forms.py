"""Forms of the guidelines area: request a copy, and the organizer's editing forms."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateTimeLocalField, EmailField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.core.formatting import zone_place
from portal.core.forms import PortalForm, ShownByClocksIn
from portal.people.forms import LANGUAGE_CHOICES, an_email_address


def _optional_int(value):
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None  # blank, as Optional() sees spaces: no choice made
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1  # not a choice: pre_validate rejects it with a message, never a 500


class RequestCopyForm(PortalForm):
    name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)],
                       render_kw={"autocomplete": "name"})
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320), an_email_address],
                       render_kw={"autocomplete": "email"})
    organization = StringField(_l("Organization"), validators=[Optional(), Length(max=200)],
                               render_kw={"autocomplete": "organization"})
    sector = SelectField(_l("Sector"), coerce=_optional_int, validators=[Optional()])
    language = SelectField(_l("Preferred language"), choices=LANGUAGE_CHOICES, validators=[DataRequired()])
    accessible_format = BooleanField(_l("I need this guideline in an accessible alternate format"))
    format_details = StringField(_l("Which format do you need?"), validators=[Optional(), Length(max=300)])
    list_opt_in = BooleanField(
        _l("Yes, also send me news of future guideline releases by email (the \"Guideline releases\" list). "
           "I can unsubscribe at any time.")
    )

    def validate(self, extra_validators=None) -> bool:
        return _format_named(self, super().validate(extra_validators))


def _format_named(form, valid: bool) -> bool:
    # Checked after the fields, not inline: Optional() would stop an inline check on an empty field.
    if form.accessible_format.data and not (form.format_details.data or "").strip():
        form.format_details.errors = [*form.format_details.errors,
                                      _l("Tell us which format you need, for example large print or plain text.")]
        return False
    return valid


class FormatForm(PortalForm):
    """The accessible format of a request, changed from the requester's own emailed link."""

    accessible_format = BooleanField(_l("I need this guideline in an accessible alternate format"))
    format_details = StringField(_l("Which format do you need?"), validators=[Optional(), Length(max=300)])

    def validate(self, extra_validators=None) -> bool:
        return _format_named(self, super().validate(extra_validators))


class GuidelineForm(PortalForm):
    title_en = StringField(_l("Title (English)"), validators=[DataRequired(), Length(max=200)])
    title_fr = StringField(_l("Title (French)"), validators=[Optional(), Length(max=200)])
    summary_en = TextAreaField(_l("Summary (English)"), validators=[Optional(), Length(max=4000)])
    summary_fr = TextAreaField(_l("Summary (French)"), validators=[Optional(), Length(max=4000)])
    version = StringField(_l("Version"), validators=[DataRequired(), Length(max=20)])
    revision_of = SelectField(_l("Revision of"), coerce=_optional_int, validators=[Optional()])


class EditionForm(PortalForm):
    language = SelectField(_l("Language of this edition"), choices=LANGUAGE_CHOICES, validators=[DataRequired()])
    file = FileField(_l("PDF file"), validators=[FileRequired(_l("Choose a PDF file to upload."))])


class ScheduleForm(PortalForm):
    release_at = DateTimeLocalField(
        _l("Release time"), format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        validators=[DataRequired(_l("Enter the release date and time.")), ShownByClocksIn()],
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The zone is a setting, so the label is made per request, not at import.
        self.release_at.label.text = _("Release time (%(place)s time)", place=zone_place())


class WithdrawForm(PortalForm):
    """A button with a CSRF token."""


class ConfirmForm(PortalForm):
    """The confirm button on the page a confirmation link opens (mail scanners only GET)."""
