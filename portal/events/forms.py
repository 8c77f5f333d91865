"""Forms for registering, managing a registration, and running events."""
from __future__ import annotations

import secrets
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    IntegerField,
    RadioField,
    SearchField,
    SelectField,
    HiddenField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from portal.core.formatting import english_marked
from portal.core.forms import MultiCheckboxField, PortalForm, ShownByClocksIn, zone_named
from portal.core.web import current_language
from portal.events.models import Event, EventStatus, QuestionKind
from portal.events.services import ANNOUNCEMENTS_WORDING, QuestionShape
from portal.people.forms import an_email_address, their_email_language


def _choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class RegistrationForm(PortalForm):
    """The fixed part; `registration_form(questions, sectors)` adds the event's own questions."""

    name = StringField(_l("Full name"), validators=[DataRequired(_l("Enter your full name.")), Length(max=200)],
                       render_kw={"autocomplete": "name"})
    email = EmailField(_l("Email"), validators=[DataRequired(_l("Enter your email address.")), Length(max=320),
                                             an_email_address],
                       render_kw={"autocomplete": "email"})
    organization = StringField(_l("Organization"), validators=[DataRequired(_l("Enter your organization.")), Length(max=200)],
                               render_kw={"autocomplete": "organization"})
    sector = SelectField(_l("Sector"), validators=[DataRequired(_l("Choose your sector."))], validate_choice=True)
    community = StringField(_l("Community you work in"), validators=[DataRequired(_l("Enter the community you work in.")), Length(max=120)])
    job_title = StringField(_l("Job title"), validators=[Optional(), Length(max=200)],
                            render_kw={"autocomplete": "organization-title"})
    accessibility_needs = TextAreaField(_l("Accessibility needs"), validators=[Optional(), Length(max=2000)])
    dietary_needs = TextAreaField(_l("Dietary needs"), validators=[Optional(), Length(max=1000)])
    privacy = BooleanField(_l("I have read the privacy notice and agree to my information being used to run this event"),
                           validators=[DataRequired(_l("You must agree to the privacy notice to register."))])
    announcements = BooleanField(ANNOUNCEMENTS_WORDING, default=False)

    question_fields: list[tuple[str, int]] = []

    def answers(self) -> dict[str, object]:
        """The event's questions' answers by question id (empty ones left out)."""
        result: dict[str, object] = {}
        for field_name, question_id in self.question_fields:
            value = self[field_name].data
            if value in (None, "", [], False):
                continue
            result[str(question_id)] = value.strip() if isinstance(value, str) else value
        return result


def registration_form(questions: tuple[QuestionShape, ...], sectors, *,
                      base: type[RegistrationForm] = RegistrationForm, **kwargs) -> RegistrationForm:
    """The form with one field per question (`services.question_shapes`), in the organizer's
    order and the page's language."""
    language = current_language()
    form = _form_class(_asked_in(questions, language), base)(**kwargs)
    # The page asks the event's questions before the privacy agreement; the error summary
    # lists errors in field order, so the fields take the page's order.
    for name in ("privacy", "announcements", "language"):
        if name in form:
            form._fields.move_to_end(name)
    form.sector.choices = [SelectChoice("", str(_l("Choose your sector")))] + [
        SelectChoice(sector.slug, sector.name(language)) for sector in sectors
    ]
    return form


def _asked_in(questions: tuple[QuestionShape, ...], language: str) -> tuple[tuple, ...]:
    """Each question as asked in `language`: (id, kind, label, label as shown, hint as shown,
    required, options as (stored value, label shown) pairs). French falls back to English
    where it has no text; an option's value is always the English option, so answers compare
    across languages."""
    asked = []
    french = language == "fr"
    for question_id, kind, label, hint, required, choices, label_fr, hint_fr, choices_fr in questions:
        # What a French reader gets in English for want of French is marked lang="en" on the
        # page (WCAG 3.1.2); the error messages that quote the label keep it as plain text.
        shown_label = label_fr if french and label_fr else english_marked(label) if french else label
        shown_hint = hint_fr if french and hint_fr else english_marked(hint) if french and hint else hint
        options = (tuple(zip(choices, choices_fr)) if french and choices_fr
                   else tuple((value, english_marked(value)) for value in choices) if french
                   else tuple(zip(choices, choices)))
        asked.append((question_id, kind, (french and label_fr) or label, shown_label, shown_hint, required, options))
    return tuple(asked)


class AddedRegistrationForm(RegistrationForm):
    """The registration form as an organizer fills it in for someone (by phone, a speaker).
    No announcements opt-in: express consent is the person's own to give. The privacy
    agreement is the organizer's word that the person was told and agreed."""

    announcements = None
    privacy = BooleanField(
        _l("They were told how their information is used (the privacy notice) and agreed to it"),
        validators=[DataRequired(_l("Tell them about the privacy notice and get their agreement first."))])
    language = their_email_language()

    #: The public form speaks to the registrant ("Enter your full name."); this one to the
    #: organizer about someone else.
    _ABOUT_THEM = {
        "name": (_l("Full name"), _l("Enter their full name.")),
        "email": (_l("Email"), _l("Enter their email address.")),
        "organization": (_l("Organization"), _l("Enter their organization.")),
        "sector": (_l("Sector"), _l("Choose their sector.")),
        "community": (_l("Community they work in"), _l("Enter the community they work in.")),
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # These are someone else's details: the browser must not offer the organizer's own
        # (WCAG 1.3.5's input purposes are about the user).
        for name in ("name", "email", "organization", "job_title"):
            self[name].render_kw = {**(self[name].render_kw or {}), "autocomplete": "off"}
        for name, (label, required) in self._ABOUT_THEM.items():
            field = self[name]
            field.label.text = label
            # A new list for this form: the validators themselves are shared with the class.
            field.validators = [DataRequired(required) if isinstance(v, DataRequired) else v
                                for v in field.validators]


def added_registration_form(questions: tuple[QuestionShape, ...], sectors, **kwargs) -> AddedRegistrationForm:
    """`registration_form` for an organizer adding someone."""
    form = registration_form(questions, sectors, base=AddedRegistrationForm, **kwargs)
    form.sector.choices[0] = SelectChoice("", str(_l("Choose their sector")))
    return form


@lru_cache(maxsize=128)
def _form_class(questions: tuple[tuple, ...], base: type[RegistrationForm] = RegistrationForm) -> type[RegistrationForm]:
    """One form class per version of an event's questions: building a WTForms class (and its
    first sorting of fields) on every request was a few percent of a registration."""

    class EventRegistrationForm(base):
        pass

    question_fields: list[tuple[str, int]] = []
    for question_id, kind, label, shown_label, description, required, choices in questions:
        name = f"q_{question_id}"
        if kind == QuestionKind.LONG_TEXT:
            field = TextAreaField(shown_label, description=description, validators=[
                DataRequired() if required else Optional(), Length(max=4000)])
        elif kind == QuestionKind.SINGLE_CHOICE:
            field = RadioField(shown_label, description=description,
                               choices=_choices(choices),
                               validators=[InputRequired(_l("Choose an answer to “%(question)s”.", question=label))]
                               if required else [Optional()],
                               validate_choice=True)
        elif kind == QuestionKind.MULTIPLE_CHOICE:
            field = MultiCheckboxField(shown_label, description=description,
                                       choices=_choices(choices),
                                       validators=[DataRequired(_l("Choose at least one answer to “%(question)s”.", question=label))]
                                       if required else [Optional()])
        elif kind == QuestionKind.CHECKBOX:
            field = BooleanField(shown_label, description=description,
                                 validators=[DataRequired(_l("This box must be ticked to register."))] if required else [])
        else:
            field = StringField(shown_label, description=description, validators=[
                DataRequired() if required else Optional(), Length(max=300)])
        setattr(EventRegistrationForm, name, field)
        question_fields.append((name, question_id))
    EventRegistrationForm.question_fields = question_fields
    return EventRegistrationForm


class NeedsForm(PortalForm):
    accessibility_needs = TextAreaField(_l("Accessibility needs"), validators=[Optional(), Length(max=2000)])
    dietary_needs = TextAreaField(_l("Dietary needs"), validators=[Optional(), Length(max=1000)])


class AttendeeDetailsForm(PortalForm):
    """An organizer corrects a registrant's details (the attendee page); about someone else,
    so the browser offers none of the organizer's own."""

    name = StringField(_l("Full name"), validators=[DataRequired(_l("Enter their full name.")), Length(max=200)],
                       render_kw={"autocomplete": "off"})
    organization = StringField(_l("Organization"), validators=[DataRequired(_l("Enter their organization.")),
                                                              Length(max=200)], render_kw={"autocomplete": "off"})
    sector = SelectField(_l("Sector"), validators=[DataRequired(_l("Choose their sector."))], validate_choice=True)
    community = StringField(_l("Community they work in"),
                            validators=[DataRequired(_l("Enter the community they work in.")), Length(max=120)])
    job_title = StringField(_l("Job title"), validators=[Optional(), Length(max=200)],
                            render_kw={"autocomplete": "off"})


def attendee_details_form(registration, sectors, *, posted: bool) -> AttendeeDetailsForm:
    """The form with the sectors in the page's language; unless `posted`, filled in with the
    person's saved details and the registration's sector (the one its seat counts in)."""
    form = AttendeeDetailsForm(prefix="details") if posted else AttendeeDetailsForm(prefix="details", formdata=None)
    language = current_language()
    form.sector.choices = [SelectChoice("", str(_l("Choose their sector")))] + [
        SelectChoice(sector.slug, sector.name(language)) for sector in sectors]
    person = registration.person
    if person is not None and not posted:
        form.name.data, form.organization.data = person.name, person.organization
        form.community.data, form.job_title.data = person.community, person.job_title
        form.sector.data = next((s.slug for s in sectors if s.id == registration.sector_id), "")
    return form


class CancelForm(PortalForm):
    """Cancelling is a POST with a CSRF token."""


class ActionForm(PortalForm):
    """A button that changes state (check-in, status change): only the CSRF token."""


class MoveForm(PortalForm):
    """Move an attendee to another event: the choices are the events the organizer may move
    them to (`services.events_to_move_to`), set by the view."""

    event = SelectField(_l("Event to move them to"), validators=[DataRequired(_l("Choose the event to move them to."))],
                        validate_choice=True)


def _zone_validator(form, field) -> None:
    if zone_named(field.data) is None:
        raise ValidationError(_l("Enter a time zone name like America/Toronto."))


#: The event's times are wall times in the event's own zone.
_IN_EVENT_ZONE = ShownByClocksIn(lambda form: form.timezone.data)


class EventForm(PortalForm):
    #: The edit page's `services.edition_of` the event: a save from a page opened before
    #: someone else's is refused rather than undoing theirs.
    edition = HiddenField(validators=[Optional(), Regexp(r"^[0-9a-f]{32}$")])
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    slug = StringField(_l("Web address"), validators=[
        DataRequired(), Length(max=80),
        Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", message=_l("Use lowercase letters, digits and dashes only."))])
    summary = StringField(_l("Summary"), validators=[Optional(), Length(max=500)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=20000)])
    title_fr = StringField(_l("Title in French"), validators=[Optional(), Length(max=200)])
    summary_fr = StringField(_l("Summary in French"), validators=[Optional(), Length(max=500)])
    description_fr = TextAreaField(_l("Description in French"), validators=[Optional(), Length(max=20000)])
    starts_at = DateTimeLocalField(_l("Starts"), format="%Y-%m-%dT%H:%M",
                                   validators=[DataRequired(_l("Enter the date and time it starts.")), _IN_EVENT_ZONE])
    ends_at = DateTimeLocalField(_l("Ends"), format="%Y-%m-%dT%H:%M",
                                 validators=[DataRequired(_l("Enter the date and time it ends.")), _IN_EVENT_ZONE])
    timezone = StringField(_l("Time zone"), default="America/Toronto",
                           validators=[DataRequired(), Length(max=60), _zone_validator])
    venue_name = StringField(_l("Venue"), validators=[Optional(), Length(max=200)])
    venue_address = StringField(_l("Venue address"), validators=[Optional(), Length(max=300)])
    venue_accessibility = TextAreaField(_l("Venue accessibility"), validators=[Optional(), Length(max=5000)])
    venue_accessibility_fr = TextAreaField(_l("Venue accessibility in French"),
                                           validators=[Optional(), Length(max=5000)])
    capacity = IntegerField(_l("Seats"), validators=[InputRequired(), NumberRange(min=1, max=100000)])
    sector_cap_percent = IntegerField(_l("Largest share of seats for one sector (percent)"),
                                      validators=[Optional(), NumberRange(min=1, max=100)])
    registration_opens_at = DateTimeLocalField(_l("Registration opens"), format="%Y-%m-%dT%H:%M",
                                               validators=[Optional(), _IN_EVENT_ZONE])
    registration_closes_at = DateTimeLocalField(_l("Registration closes"), format="%Y-%m-%dT%H:%M",
                                                validators=[Optional(), _IN_EVENT_ZONE])
    reminder_days = IntegerField(_l("Reminder, days before"), default=2, validators=[InputRequired(), NumberRange(min=0, max=60)])
    retention_days = IntegerField(_l("Keep attendees' personal data for (days after the event)"), default=365,
                                  validators=[InputRequired(), NumberRange(min=30, max=3650)])

    def values(self) -> dict[str, object]:
        """Field values for the services, local times turned into aware UTC."""
        zone = ZoneInfo(self.timezone.data)

        def aware(value: datetime | None) -> datetime | None:
            return value.replace(tzinfo=zone) if value else None

        return {
            "title": self.title.data.strip(), "slug": self.slug.data, "summary": (self.summary.data or "").strip(),
            "description": self.description.data or "", "starts_at": aware(self.starts_at.data),
            "ends_at": aware(self.ends_at.data), "timezone": self.timezone.data,
            "venue_name": (self.venue_name.data or "").strip(), "venue_address": (self.venue_address.data or "").strip(),
            "venue_accessibility": self.venue_accessibility.data or "", "capacity": self.capacity.data,
            "sector_cap_percent": self.sector_cap_percent.data,
            "registration_opens_at": aware(self.registration_opens_at.data),
            "registration_closes_at": aware(self.registration_closes_at.data),
            "reminder_days": self.reminder_days.data, "retention_days": self.retention_days.data,
            "title_fr": (self.title_fr.data or "").strip(), "summary_fr": (self.summary_fr.data or "").strip(),
            "description_fr": self.description_fr.data or "",
            "venue_accessibility_fr": self.venue_accessibility_fr.data or "",
        }

    def fill_from(self, event: Event, edition: str = "") -> None:
        self.edition.data = edition
        zone = ZoneInfo(event.timezone)
        for name in ("title", "slug", "summary", "description", "timezone", "venue_name", "venue_address",
                     "venue_accessibility", "capacity", "sector_cap_percent", "reminder_days", "retention_days",
                     "title_fr", "summary_fr", "description_fr", "venue_accessibility_fr"):
            self[name].data = getattr(event, name)
        for name in ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at"):
            value = getattr(event, name)
            self[name].data = value.astimezone(zone).replace(tzinfo=None) if value else None


class EventOrganizerForm(PortalForm):
    """Add an account to an event's team; the view fills the choices."""

    account = SelectField(_l("Organizer account"),
                          validators=[DataRequired(_l("Choose an organizer account."))], validate_choice=True)


class StatusForm(PortalForm):
    status = SelectField(_l("Status"), choices=_choices([
        (EventStatus.DRAFT.value, _l("Draft")), (EventStatus.PUBLISHED.value, _l("Published")),
        (EventStatus.CLOSED.value, _l("Closed")), (EventStatus.CANCELLED.value, _l("Cancelled")),
    ]), validators=[DataRequired()])


class QuestionForm(PortalForm):
    label = StringField(_l("Question"), validators=[DataRequired(), Length(max=300)])
    hint = StringField(_l("Help text"), validators=[Optional(), Length(max=500)])
    kind = SelectField(_l("Kind of answer"), choices=_choices([
        (QuestionKind.SHORT_TEXT.value, _l("Short text")), (QuestionKind.LONG_TEXT.value, _l("Long text")),
        (QuestionKind.SINGLE_CHOICE.value, _l("One choice")), (QuestionKind.MULTIPLE_CHOICE.value, _l("Several choices")),
        (QuestionKind.CHECKBOX.value, _l("A checkbox")),
    ]), validators=[DataRequired()])
    choices_text = TextAreaField(_l("Options (for choice questions), one per line"), validators=[Optional(), Length(max=4000)])
    required = BooleanField(_l("An answer is required"))
    label_fr = StringField(_l("Question in French"), validators=[Optional(), Length(max=300)])
    hint_fr = StringField(_l("Help text in French"), validators=[Optional(), Length(max=500)])
    choices_fr_text = TextAreaField(_l("Options in French, in the same order"),
                                    validators=[Optional(), Length(max=4000)])


class AttendeeFilterForm(PortalForm):
    """GET filters for the attendee list (no CSRF: reading only)."""

    class Meta:
        csrf = False

    q = SearchField(_l("Search name, email or organization"), validators=[Optional(), Length(max=200)])
    status = SelectField(_l("Status"), validators=[Optional()])
    sector = SelectField(_l("Sector"), validators=[Optional()])
    community = SelectField(_l("Community"), validators=[Optional()])
    sort = SelectField(_l("Sort by"), choices=_choices([
        ("registered", _l("Registration order")), ("name", _l("Name")), ("organization", _l("Organization")),
        ("sector", _l("Sector")), ("status", _l("Status")),
    ]), validators=[Optional()])
    order = SelectField(_l("Order"), choices=_choices([("asc", _l("Ascending")), ("desc", _l("Descending"))]),
                        validators=[Optional()])
    # Paging (page, per_page) is not a filter anyone types: the view keeps it within range.


class CheckInSearchForm(PortalForm):
    class Meta:
        csrf = False

    q = SearchField(_l("Name, email or organization"), validators=[Optional(), Length(max=200)])


class ScanForm(PortalForm):
    code = StringField(_l("Check-in code (scan the QR code or type it)"), validators=[DataRequired(), Length(max=200)],
                       render_kw={"autocomplete": "off"})


class MessageForm(PortalForm):
    recipients = MultiCheckboxField(_l("Send to"), choices=_choices([
        ("confirmed", _l("Confirmed attendees")), ("waitlisted", _l("People on the waitlist"))]),
        validators=[DataRequired(_l("Choose who should receive the message."))])
    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=200)])
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=20000)])
    # Not Optional(): an empty one must still be checked against the other (both or neither;
    # half a French version would mix the languages in one email).
    subject_fr = StringField(_l("Subject in French"), validators=[Length(max=200)])
    body_fr = TextAreaField(_l("Message in French"), validators=[Length(max=20000)])
    #: Drawn when the form is first shown and kept through its previews: the message's
    #: identity, so sending the same form twice (a double click, a resubmitted page) is
    #: seen as the same message.
    batch = HiddenField(default=lambda: secrets.token_hex(8), validators=[Regexp(r"^[0-9a-f]{16}$")])

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not self.batch.raw_data:
            # Posted without one (a page from before it existed, a script): a batch drawn now
            # would be new at every post, and the same message would go out at each.
            self.form_errors.append(_l("This form is out of date. Open it again to write your message."))
            return False
        return valid

    def validate_subject_fr(self, field) -> None:
        if (self.body_fr.data or "").strip() and not (field.data or "").strip():
            raise ValidationError(_l("Give the French subject too, or leave the French message empty."))

    def validate_body_fr(self, field) -> None:
        if (self.subject_fr.data or "").strip() and not (field.data or "").strip():
            raise ValidationError(_l("Give the French message too, or leave the French subject empty."))
