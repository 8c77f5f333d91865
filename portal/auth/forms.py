from __future__ import annotations

from collections.abc import Callable

from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from portal.auth.passwords import MAX_PASSWORD_LENGTH, WeakPassword, check_new_password
from portal.core.forms import PortalForm
from portal.core.web import is_safe_next


class NewPassword:
    """Validator: the field holds a password that meets the rule for new passwords
    (portal.auth.passwords), judged against the (email, name) `owner(form)` gives, so the
    message shows beside the field together with the form's other errors."""

    def __init__(self, owner: Callable[[PortalForm], tuple[str, str]]) -> None:
        self.owner = owner

    def __call__(self, form, field) -> None:
        if not isinstance(field.data, str) or not field.data:
            return  # DataRequired speaks for an empty field
        email, name = self.owner(form)
        try:
            check_new_password(field.data, email=email if isinstance(email, str) else "",
                               name=name if isinstance(name, str) else "")
        except WeakPassword as error:
            raise ValidationError(str(error.message)) from None


class WhereToGoNext(HiddenField):
    """The page to return to after signing in: a path on this site, or nothing. A link
    someone else made may carry anything; refused, it would be an error on a field nobody
    can see or fix, so it is dropped and the person lands on their usual page."""

    def process_formdata(self, valuelist) -> None:
        super().process_formdata(valuelist)
        if not is_safe_next(self.data):
            self.data = ""


class LoginForm(PortalForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)],
                       render_kw={"autocomplete": "username"})
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=128)],
                             render_kw={"autocomplete": "current-password"})
    next = WhereToGoNext()


class LogoutForm(PortalForm):
    """Logout is a POST with a CSRF token: no state change on GET."""


def _signed_in_account(_form) -> tuple[str, str]:
    return current_user.email, current_user.name


class ChangePasswordForm(PortalForm):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)],
        render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(
        _l("New password"), validators=[DataRequired(), NewPassword(_signed_in_account)],
        render_kw={"autocomplete": "new-password"})
    new_password_again = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The two new passwords are not the same."))],
        render_kw={"autocomplete": "new-password"})
