from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_user, logout_user

from portal.auth import bp
from portal.auth.forms import ChangePasswordForm, LoginForm, LogoutForm
from portal.auth.services import (
    SessionEnd,
    authenticate,
    change_password as change_account_password,
    end_session,
    keep_session_alive,
    record_refused_login,
    refused_login_to_record,
    session_due,
)
from portal.core.db import writing
from portal.core.errors import DomainError
from portal.core.permissions import _require
from portal.core.web import is_safe_next, request_origin
from portal.extensions import db, limiter

SESSION_KEY = "login_key"


def _is_signed_in(account) -> bool:
    """Any account that can sign in: admin, organizer or working-group chair."""
    return bool(getattr(account, "is_authenticated", False))


signed_in_required = _require(_is_signed_in)


@bp.before_app_request
def _check_login_session():
    """The first step of every request with a login cookie: end the login session if it is
    past its idle or absolute limit (the person is told why, and a page that needs signing
    in then sends them to the login page with ?next= pointing back), or note that it was
    seen. Most requests only read; a write gets its own short writer transaction."""
    if request.endpoint in (None, "static"):
        return None  # static files never read the session nor the database
    key = session.get(SESSION_KEY)
    if not key:
        return None
    due = session_due(key)
    if due is None:
        return None
    db.session.rollback()  # end the reading transaction; the write begins as a writer
    with writing():
        reason = keep_session_alive(due, origin=request_origin())
        db.session.commit()
    if reason is None:
        return None
    logout_user()
    session.pop(SESSION_KEY, None)
    if request.endpoint != "auth.logout":
        flash(_expiry_message(reason), "info")
    return None


def _expiry_message(reason: SessionEnd) -> str:
    if reason is SessionEnd.IDLE:
        return ngettext("You were signed out after %(num)d minute without activity; sign in again.",
                        "You were signed out after %(num)d minutes without activity; sign in again.",
                        current_app.config["SESSION_IDLE_MINUTES"])
    return ngettext("You were signed out after %(num)d hour; sign in again.",
                    "You were signed out after %(num)d hours; sign in again.",
                    current_app.config["SESSION_MAX_HOURS"])


def _start_afresh() -> None:
    """A new session at sign-in and sign-out (nothing from before carries over), but for the
    language the reader chose: a French reader stayed French only until signing in."""
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language


def _login_over_limit(_limit) -> None:
    """Flask-Limiter refuses the attempt before the view runs: log it all the same (every
    login attempt is logged), and put it on the audit log in its own short transaction. The
    refusal stands whatever happens to that write (the database may be what is failing)."""
    current_app.logger.warning("login refused by the rate limit: origin=%s", request_origin())
    db.session.rollback()
    try:
        address = refused_login_to_record(request.form.get("email"), origin=request_origin())
        db.session.rollback()
        if address is not None:
            with writing():
                record_refused_login(address, origin=request_origin())
                db.session.commit()
    except Exception:
        db.session.rollback()
        current_app.logger.exception("a rate-limited login could not be put on the audit log")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20/minute;200/hour", methods=["POST"], on_breach=_login_over_limit)
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.process_formdata([request.args.get("next", "")])
    status = 200
    if form.validate_on_submit():
        try:
            account, key = authenticate(form.email.data, form.password.data, origin=request_origin())
        except DomainError as error:
            db.session.commit()  # keep the record of the failed attempt
            form.password.errors.append(str(error.message))
            status = error.status if error.status != 400 else 400
        else:
            db.session.commit()
            _start_afresh()
            session[SESSION_KEY] = key
            login_user(account)
            flash(_("You are signed in."), "success")
            target = form.next.data
            return redirect(target if is_safe_next(target) else _landing_page(account))
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


def _landing_page(account) -> str:
    """Organizers land on the dashboard; a working-group chair on the groups they chair."""
    if account.is_organizer or "groups.admin_index" not in current_app.view_functions:
        return url_for("admin.dashboard")
    return url_for("groups.admin_index")


@bp.route("/logout", methods=["POST"])
def logout():
    form = LogoutForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        end_session(session.get(SESSION_KEY), account=current_user._get_current_object(),
                    origin=request_origin())
        db.session.commit()
    logout_user()
    _start_afresh()
    flash(_("You are signed out."), "success")
    return redirect(url_for("public.home"))


@bp.route("/account/still-here")
@signed_in_required
def still_here():
    """'Stay signed in' on the idle warning: a request, which keeps the login session alive
    (the login-session check before every request notes it was seen)."""
    return "", 204


@bp.route("/account/password", methods=["GET", "POST"])
@signed_in_required
@limiter.limit("10/minute;100/hour", methods=["POST"])
def change_password():
    """Any signed-in account changes its own password; its other login sessions end."""
    form = ChangePasswordForm()
    status = 200
    if form.validate_on_submit():
        account = current_user._get_current_object()
        try:
            change_account_password(account, form.current_password.data, form.new_password.data,
                                    keep_session_key=session.get(SESSION_KEY), origin=request_origin())
        except DomainError as error:
            db.session.commit()  # keep the record of a wrong current password
            field = form[error.field] if error.field and error.field in form else form.current_password
            field.errors = [*field.errors, str(error.message)]
            status = error.status
        else:
            target = _landing_page(account)
            db.session.commit()
            flash(_("Your password is changed. Any other browser signed in to your account is now "
                    "signed out."), "success")
            return redirect(target)
    elif request.method == "POST":
        status = 400
    return render_template("auth/password.html", form=form), status
