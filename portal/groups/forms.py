"""Forms of the groups area: the public application, members' pages and the admin pages."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from portal.auth.forms import NewPassword
from portal.core.forms import MultiCheckboxField, PortalForm, RowId
from portal.groups.models import ROLE_WORDS, MemberRole
from portal.groups.services import SLUG_MAX_LENGTH
from portal.people.forms import an_email_address, their_email_language, written_in


def role_choices() -> list[SelectChoice]:
    return [SelectChoice(role.value, ROLE_WORDS[role.value]) for role in MemberRole]


def _email_field(label=None):
    return EmailField(label or _l("Email address"), validators=[DataRequired(), Length(max=320), an_email_address])


class ApplyForm(PortalForm):
    name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    email = _email_field()
    organization = StringField(_l("Organization"), validators=[Optional(), Length(max=200)])
    sector = SelectField(_l("Sector"), validators=[Optional()])
    community = StringField(_l("Community"), validators=[Optional(), Length(max=120)])
    why = TextAreaField(_l("Why do you want to join?"), validators=[DataRequired(), Length(max=4000)])
    show_email = BooleanField(_l("Show my email address to other members"))
    show_organization = BooleanField(_l("Show my organization to other members"))
    # The label is the exact consent wording, set by the view (it names the group).
    consent = BooleanField("", validators=[DataRequired(_l("Tick the box to agree to receive the group's mail: members take part through it."))])


class AcceptInvitationForm(PortalForm):
    show_email = BooleanField(_l("Show my email address to other members"))
    show_organization = BooleanField(_l("Show my organization to other members"))
    consent = BooleanField("", validators=[DataRequired(_l("Tick the box to agree to receive the group's mail: members take part through it."))])


class MemberLinkForm(PortalForm):
    email = _email_field()


class AcknowledgeForm(PortalForm):
    acknowledge = BooleanField(
        _l("I have read the terms of reference and agree to follow them"),
        validators=[DataRequired(_l("Tick the box to acknowledge the terms of reference."))],
    )


class DirectoryForm(PortalForm):
    show_email = BooleanField(_l("Show my email address to other members"))
    show_organization = BooleanField(_l("Show my organization to other members"))


class ConfirmForm(PortalForm):
    """A button that only needs CSRF protection (leave, remove, delete)."""


class DecisionForm(PortalForm):
    decision = SelectField(
        _l("Decision"),
        choices=[SelectChoice("approve", _l("Approve")), SelectChoice("decline", _l("Decline"))],
        validators=[DataRequired()],
    )


class GroupForm(PortalForm):
    slug = StringField(
        _l("Web address"),
        # Its list's web address is made from it: both must fit their columns.
        validators=[DataRequired(), Length(max=SLUG_MAX_LENGTH),
                    Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", message=_l("Use lowercase letters, digits and dashes."))],
    )
    name_en = StringField(_l("Name (English)"), validators=[DataRequired(), Length(max=200)])
    name_fr = StringField(_l("Name (French)"), validators=[Optional(), Length(max=200)])
    mandate_en = TextAreaField(_l("Mandate (English)"), validators=[Optional(), Length(max=20000)])
    mandate_fr = TextAreaField(_l("Mandate (French)"), validators=[Optional(), Length(max=20000)])
    communities = TextAreaField(_l("Member communities"), validators=[Optional(), Length(max=5000)])
    sectors = MultiCheckboxField(_l("Sectors"), coerce=int, validators=[Optional()])
    terms_of_reference = TextAreaField(_l("Terms of reference"), validators=[Optional(), Length(max=50000)])
    terms_of_reference_fr = TextAreaField(_l("Terms of reference (French)"),
                                          validators=[Optional(), Length(max=50000)])
    tor_version = StringField(_l("Terms of reference version"), validators=[DataRequired(), Length(max=40)])
    retention_months = IntegerField(
        _l("Months to keep former members' details"), default=24,
        validators=[DataRequired(), NumberRange(min=1, max=240)],
    )


class MembershipForm(PortalForm):
    role = SelectField(_l("Role"), choices=role_choices(), validators=[DataRequired()])
    term_start = DateField(_l("Term start"), validators=[Optional()])
    term_end = DateField(_l("Term end"), validators=[Optional()])


class AddMemberForm(PortalForm):
    email = _email_field()
    name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    organization = StringField(_l("Organization"), validators=[Optional(), Length(max=200)])
    role = SelectField(_l("Role"), choices=role_choices(), default="member", validators=[DataRequired()])
    term_start = DateField(_l("Term start"), validators=[Optional()])
    term_end = DateField(_l("Term end"), validators=[Optional()])
    language = their_email_language()


class InviteForm(PortalForm):
    email = _email_field()
    name = StringField(_l("Full name"), validators=[Optional(), Length(max=200)])
    role = SelectField(_l("Role"), choices=role_choices(), default="member", validators=[DataRequired()])
    language = their_email_language()


class DocumentForm(PortalForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    url = URLField(_l("Link"), validators=[Optional(), Length(max=500),
                                           Regexp(r"^https?://\S+$", message=_l("Enter a link starting with https://."))])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=5000)])


class ChairAccountForm(PortalForm):
    email = _email_field()
    name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    # The rule for new passwords, judged against the chair's address and name (portal.auth.passwords).
    password = PasswordField(_l("Password"), validators=[DataRequired(), NewPassword(
        lambda form: (form.email.data, form.name.data))])


class PostForm(PortalForm):
    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=200)])
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=50000)])
    language = written_in()
    # Spaces are no draft (Optional() stops there, so the view must not see them either).
    draft = HiddenField(validators=[Optional(), RowId()], filters=[lambda value: (value or "").strip() or None])
    action = SelectField(
        choices=[SelectChoice("preview", _l("Preview")), SelectChoice("test", _l("Send me a test")),
                 SelectChoice("send", _l("Send to the members now"))],
        validators=[DataRequired()],
    )
