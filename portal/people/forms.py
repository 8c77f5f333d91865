"""Forms of the my-data pages and the organizer's privacy pages."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from portal.core.forms import PortalForm
from portal.core.web import current_language
from portal.people.services import InvalidEmail, list_sectors, normalize_email


def an_email_address(form, field) -> None:
    """Validator: the address passes the rule the services apply (normalize_email), so a form
    reports a bad address together with its other errors, not in a second round."""
    if field.data:
        try:
            normalize_email(field.data)
        except InvalidEmail as error:
            raise ValidationError(str(error.message)) from None


#: English and French, each option named in its own language and marked so (WCAG 3.1.2).
LANGUAGE_CHOICES = [SelectChoice("en", "English", render_kw={"lang": "en"}),
                    SelectChoice("fr", "Français", render_kw={"lang": "fr"})]


class LanguageField(RadioField):
    """English or French, each option's label marked in its own language (the forms macro
    reads `option_languages`; WTForms' radios ignore a choice's render_kw)."""

    option_languages = {"en": "en", "fr": "fr"}


def written_in() -> LanguageField:
    """The language a message is written in; the page's language unless said otherwise."""
    return LanguageField(_l("Language of this message"), choices=list(LANGUAGE_CHOICES),
                         default=current_language, validators=[DataRequired()])


def their_email_language() -> SelectField:
    """For organizers entering someone else: the language of the emails that person gets
    (an address the portal already knows keeps the language saved for it)."""
    return SelectField(_l("Language of their emails"), default="en", validate_choice=True,
                       choices=list(LANGUAGE_CHOICES))


class MyDataRequestForm(PortalForm):
    """Ask for a link to one's data: the address is the only thing collected."""

    email = EmailField(_l("Your email address"), validators=[DataRequired(), Length(max=320), an_email_address],
                       render_kw={"autocomplete": "email"})


class DetailsForm(PortalForm):
    """Correct what we hold; blank optional fields are cleared."""

    name = StringField(_l("Full name"), validators=[Optional(), Length(max=200)],
                       render_kw={"autocomplete": "name"})
    organization = StringField(_l("Organization"), validators=[Optional(), Length(max=200)],
                               render_kw={"autocomplete": "organization"})
    sector = SelectField(_l("Sector"), validators=[Optional()])
    community = StringField(_l("Community"), validators=[Optional(), Length(max=120)])
    job_title = StringField(_l("Job title"), validators=[Optional(), Length(max=200)],
                            render_kw={"autocomplete": "organization-title"})
    language = SelectField(_l("Language for messages"), validators=[InputRequired()],
                           choices=[SelectChoice("en", "English"), SelectChoice("fr", "Français")])

    def __init__(self, *args, shown_in: str = "en", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sector.choices = [SelectChoice("", _l("Not given"))] + [
            SelectChoice(s.slug, s.name(shown_in)) for s in list_sectors()
        ]


class WithdrawConsentForm(PortalForm):
    """Withdraw one consent; `purpose` is checked against the person's live consents."""

    purpose = HiddenField(validators=[DataRequired(), Length(max=120)])


class ErasureRequestForm(PortalForm):
    confirm = BooleanField(
        _l("I understand that my details will be erased and cannot be brought back"),
        validators=[DataRequired(_l("Tick the box to confirm you want your data erased."))],
    )


class CompleteErasureForm(PortalForm):
    confirm = BooleanField(
        _l("Erase this person's data everywhere now"),
        validators=[DataRequired(_l("Tick the box to confirm the erasure."))],
    )


class RefuseErasureForm(PortalForm):
    reason = TextAreaField(
        _l("Reason for refusing"),
        validators=[DataRequired(_l("Give the reason for refusing; the person will be told.")),
                    Length(max=2000)],
    )
