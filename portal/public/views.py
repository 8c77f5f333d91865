from __future__ import annotations

from flask import abort, redirect, render_template, request, session, url_for

from portal.core.web import is_safe_next
from portal.public import bp
from portal.public.forms import LanguageForm


@bp.route("/")
def home():
    return render_template("public/home.html")


@bp.route("/language", methods=["POST"])
def choose_language():
    form = LanguageForm()
    if not form.validate_on_submit():
        abort(400)
    session["language"] = form.language.data
    target = form.next.data
    return redirect(target if is_safe_next(target) else url_for("public.home"))


@bp.route("/privacy")
def privacy_notice():
    return render_template("public/privacy.html")


@bp.route("/accessibility")
def accessibility():
    return render_template("public/accessibility.html")


@bp.app_context_processor
def _language_form():
    def language_form() -> LanguageForm:
        form = LanguageForm(formdata=None)
        form.next.data = request.full_path.rstrip("?") if request else "/"
        return form

    return {"language_form": language_form}
