"""Forms of the organizer's Mail page."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import IntegerField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional

from portal.core.forms import PortalForm
from portal.mail.models import OutboxState

STATE_LABELS = {
    OutboxState.QUEUED.value: _l("Queued"),
    OutboxState.SENDING.value: _l("Sending"),
    OutboxState.SENT.value: _l("Sent"),
    OutboxState.RETRY.value: _l("Waiting to retry"),
    OutboxState.FAILED.value: _l("Failed"),
    OutboxState.WITHHELD.value: _l("Withheld (unsubscribed)"),
}


class OutboxFilterForm(PortalForm):
    """The GET filter above the message list; no CSRF since it changes nothing."""

    class Meta:
        csrf = False

    state = SelectField(
        _l("State"),
        choices=[SelectChoice("", _l("All states"))]
        + [SelectChoice(value, label) for value, label in STATE_LABELS.items()],
        default="",
        validators=[Optional()],
    )
    page = IntegerField(
        _l("Page"), default=1,
        validators=[Optional(), NumberRange(min=1, max=1_000_000, message=_l("Choose a page from 1 up."))],
    )


class RetryFailedForm(PortalForm):
    """A button: queue every failed message again."""


class RetryMessageForm(PortalForm):
    """A button: queue this failed message again."""
