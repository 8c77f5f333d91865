from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from portal.auth import bp
from portal.auth.forms import LoginForm, LogoutForm
from portal.auth.services import authenticate, end_session
from portal.core.errors import DomainError
from portal.core.web import is_safe_next, request_origin
from portal.extensions import db, limiter

SESSION_KEY = "login_key"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20/minute;200/hour", methods=["POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
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
            session.clear()
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
    session.clear()
    flash(_("You are signed out."), "success")
    return redirect(url_for("public.home"))
