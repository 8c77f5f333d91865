"""Forms of the lists area: subscribing, preferences, and the organizer's pages."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from portal.core.formatting import zone_place
from portal.core.forms import MultiCheckboxField, PortalForm, ShownByClocksIn
from portal.people.forms import LANGUAGE_CHOICES, LanguageField, an_email_address, written_in


class SubscribeForm(PortalForm):
    email = EmailField(_l("Email address"), validators=[DataRequired(), Length(max=320), an_email_address],
                       render_kw={"autocomplete": "email"})
    name = StringField(_l("Your name"), validators=[Optional(), Length(max=200)],
                       render_kw={"autocomplete": "name"})
    language = LanguageField(_l("Language for messages"), choices=LANGUAGE_CHOICES, default="en",
                          validators=[DataRequired()])
    # Never pre-ticked; the label is the consent wording (set by the view, versioned).
    consent = BooleanField(_l("I agree"), validators=[DataRequired(_l("Tick the box to say you want these emails."))])


class ConfirmForm(PortalForm):
    """The confirmation button: a POST, since mail scanners follow links."""


class PreferencesRequestForm(PortalForm):
    email = EmailField(_l("Email address"), validators=[DataRequired(), Length(max=320), an_email_address],
                       render_kw={"autocomplete": "email"})


class PreferencesForm(PortalForm):
    language = LanguageField(_l("Language for messages"), choices=LANGUAGE_CHOICES, validators=[DataRequired()])
    lists = MultiCheckboxField(_l("Lists I want to receive"), coerce=int, choices=[], validate_choice=True)


class ListForm(PortalForm):
    slug = StringField(_l("Short name (used in links)"), validators=[
        DataRequired(), Length(max=80),
        Regexp(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$", message=_l("Use lowercase letters, digits and hyphens.")),
    ])
    name_en = StringField(_l("Name in English"), validators=[DataRequired(), Length(max=200)])
    name_fr = StringField(_l("Name in French"), validators=[Optional(), Length(max=200)])
    description_en = TextAreaField(_l("Description in English"), validators=[Optional(), Length(max=5000)])
    description_fr = TextAreaField(_l("Description in French"), validators=[Optional(), Length(max=5000)])
    announce_only = BooleanField(_l("Announcements only (replies are not sent to the list)"), default=True)
    retention_months = IntegerField(
        _l("Months to keep an unsubscribed person's subscription"), default=24,
        validators=[DataRequired(), NumberRange(min=2, max=240, message=_l("Choose from 2 to 240 months: an unsubscribe link must keep working at least 60 days."))],
    )


class PostForm(PortalForm):
    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=200)])
    body = TextAreaField(_l("Message (markdown)"), validators=[DataRequired(), Length(max=50_000)],
                         render_kw={"rows": 14})
    language = written_in()


class ActionForm(PortalForm):
    """A button that changes something (send a test, send now, cancel a schedule)."""


class ScheduleForm(PortalForm):
    send_at = DateTimeLocalField(_l("Send at"), format="%Y-%m-%dT%H:%M",
                                 validators=[DataRequired(_l("Enter a date and time.")), ShownByClocksIn()])

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The zone is a setting, so the label is made per request, not at import.
        self.send_at.label.text = _("Send at (%(place)s time)", place=zone_place())


class ImportForm(PortalForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file."))])
    ask_unconfirmed = BooleanField(
        _l("Send a confirmation request to rows without consent evidence"), default=False)


class SubscriberFilterForm(PortalForm):
    class Meta:
        csrf = False

    status = SelectField(_l("Status"), choices=[
        SelectChoice("", _l("All")), SelectChoice("active", _l("Active")),
        SelectChoice("pending", _l("Waiting for confirmation")), SelectChoice("unsubscribed", _l("Unsubscribed")),
    ], validators=[Optional()])
    q = StringField(_l("Email or name contains"), validators=[Optional(), Length(max=100)])
    # Paging links only; a page past the database's integer range would fail the query.
    page = IntegerField(validators=[Optional(), NumberRange(min=1, max=100_000)])
