"""My data (see, take, correct, withdraw, erase) and the organizer's privacy pages."""
from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import case, select

from portal.core.clock import now
from portal.core.db import MAX_ID
from portal.core.errors import DomainError
from portal.core.permissions import organizer_required
from portal.core.formatting import format_date
from portal.core.web import audit_page_view, current_language, request_origin, speak_the_language_of, user_agent
from portal.extensions import db, limiter
from portal.people import bp
from portal.people.forms import (
    CompleteErasureForm,
    DetailsForm,
    ErasureRequestForm,
    MyDataRequestForm,
    RefuseErasureForm,
    WithdrawConsentForm,
)
from portal.people.models import Person, PrivacyRequest, PrivacyRequestState, Sector
from portal.people.privacy import collect_personal_data, count_personal_rows, export_csv, export_json, value_in_words
from portal.people.services import (
    complete_erasure,
    correct_details,
    live_consent_purposes,
    open_erasure_request,
    person_for_my_data,
    refuse_erasure,
    request_erasure,
    send_my_data_link,
    withdraw_consent,
)

# --- the person's own pages ------------------------------------------------------------


@bp.route("/my-data", methods=["GET", "POST"])
@limiter.limit("10/minute;50/hour", methods=["POST"])
def my_data():
    form = MyDataRequestForm()
    if form.validate_on_submit():
        # The same answer whether or not the address is known: nothing is revealed.
        send_my_data_link(
            form.email.data,
            my_data_path=lambda raw: url_for("people.my_data_view", token=raw, _external=False),
        )
        db.session.commit()
        return redirect(url_for("people.my_data_sent"))
    status = 400 if request.method == "POST" else 200
    return render_template("people/my_data_request.html", form=form), status


@bp.route("/my-data/sent")
def my_data_sent():
    return render_template("people/my_data_sent.html")



def _my_data_person(token: str) -> Person:
    """The person whose data link this is; the pages speak their language, as the email did."""
    person = person_for_my_data(token)
    speak_the_language_of(person)
    return person


def _my_data_page(person: Person, token: str, *, details_form=None, erasure_form=None, status=200):
    if details_form is None:
        details_form = DetailsForm(formdata=None, shown_in=current_language())
        details_form.name.data = person.name
        details_form.organization.data = person.organization
        details_form.sector.data = person.sector.slug if person.sector else ""
        details_form.community.data = person.community
        details_form.job_title.data = person.job_title
        details_form.language.data = person.language or "en"
    withdraw_forms = []
    for purpose in live_consent_purposes(person):
        form = WithdrawConsentForm(formdata=None, prefix=f"withdraw-{len(withdraw_forms)}")
        form.purpose.data = purpose
        withdraw_forms.append((purpose, form))
    return render_template(
        "people/my_data.html",
        person=person,
        token=token,
        sections=collect_personal_data(person),
        details_form=details_form,
        withdraw_forms=withdraw_forms,
        erasure_form=erasure_form or ErasureRequestForm(formdata=None),
        erasure_request=open_erasure_request(person),
        in_words=value_in_words,
    ), status


@bp.route("/my-data/<token>")
def my_data_view(token: str):
    person = _my_data_person(token)
    return _my_data_page(person, token)


def _download(body: str, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/my-data/<token>/export.json")
def my_data_json(token: str):
    person = _my_data_person(token)
    return _download(export_json(person), "application/json", "my-data.json")


@bp.route("/my-data/<token>/export.csv")
def my_data_csv(token: str):
    person = _my_data_person(token)
    return _download(export_csv(person), "text/csv", "my-data.csv")


@bp.route("/my-data/<token>/details", methods=["POST"])
def my_data_details(token: str):
    person = _my_data_person(token)
    form = DetailsForm(shown_in=current_language())
    if form.validate_on_submit():
        sector = None
        if form.sector.data:
            sector = db.session.execute(select(Sector).where(Sector.slug == form.sector.data)).scalar_one()
        try:
            correct_details(
                person,
                origin=request_origin(),
                name=(form.name.data or "").strip(),
                organization=(form.organization.data or "").strip(),
                sector_id=sector.id if sector else None,
                community=(form.community.data or "").strip(),
                job_title=(form.job_title.data or "").strip(),
                language=form.language.data,
            )
        except DomainError as error:
            db.session.rollback()
            form.name.errors.append(str(error.message))
            return _my_data_page(person, token, details_form=form, status=error.status)
        db.session.commit()
        with force_locale(person.language or "en"):  # the next page speaks the language just chosen
            flash(_("Your details are corrected."), "success")
        return redirect(url_for("people.my_data_view", token=token))
    return _my_data_page(person, token, details_form=form, status=400)


@bp.route("/my-data/<token>/withdraw", methods=["POST"])
def my_data_withdraw(token: str):
    person = _my_data_person(token)
    # Each consent has its own prefixed form on the page; find the one that was posted.
    prefix = next((k.removesuffix("-purpose") for k in request.form if k.endswith("-purpose")), "")
    form = WithdrawConsentForm(prefix=prefix if prefix.startswith("withdraw-") and len(prefix) < 20 else "")
    if not form.validate_on_submit():
        flash(_("Choose a consent to withdraw."), "error")
        return _my_data_page(person, token, status=400)
    try:
        withdraw_consent(person, form.purpose.data, origin=request_origin(), user_agent=user_agent())
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return _my_data_page(person, token, status=error.status)
    db.session.commit()
    flash(_("Your consent is withdrawn. Nothing more will be sent for it."), "success")
    return redirect(url_for("people.my_data_view", token=token))


@bp.route("/my-data/<token>/erasure", methods=["POST"])
def my_data_erasure(token: str):
    person = _my_data_person(token)
    form = ErasureRequestForm()
    if not form.validate_on_submit():
        return _my_data_page(person, token, erasure_form=form, status=400)
    privacy_request = request_erasure(person, origin=request_origin())
    db.session.commit()
    flash(_("We received your request to erase your data. We will answer by %(date)s.",
            date=format_date(privacy_request.due_at, "long")), "success")
    return redirect(url_for("people.my_data_view", token=token))


# --- organizers -------------------------------------------------------------------------

def _load_request(request_id: int) -> PrivacyRequest:
    if request_id > MAX_ID:
        abort(404)
    return db.get_or_404(PrivacyRequest, request_id)


@bp.route("/admin/privacy/requests")
@organizer_required
def admin_requests():
    open_first = case((PrivacyRequest.state == PrivacyRequestState.OPEN.value, 0), else_=1)
    rows = db.session.execute(
        select(PrivacyRequest, Person)
        .join(Person, PrivacyRequest.person_id == Person.id)
        .order_by(open_first, PrivacyRequest.due_at, PrivacyRequest.id)
        .limit(500)
    ).all()
    # Seeing who asked is an organizer action on personal data: on record.
    audit_page_view("people.requests.viewed", "")
    return render_template("people/admin_requests.html", rows=rows, moment=now())


def _request_page(privacy_request: PrivacyRequest, *, complete_form=None, refuse_form=None, status=200):
    person = db.session.get(Person, privacy_request.person_id)
    return render_template(
        "people/admin_request.html",
        privacy_request=privacy_request,
        person=person,
        counts=count_personal_rows(person.id),
        complete_form=complete_form or CompleteErasureForm(formdata=None),
        refuse_form=refuse_form or RefuseErasureForm(formdata=None),
    ), status


@bp.route("/admin/privacy/requests/<int:request_id>")
@organizer_required
def admin_request(request_id: int):
    privacy_request = _load_request(request_id)
    audit_page_view("people.request.viewed", f"person:{privacy_request.person_id}", request=privacy_request.id)
    return _request_page(privacy_request)


@bp.route("/admin/privacy/requests/<int:request_id>/complete", methods=["POST"])
@organizer_required
def admin_request_complete(request_id: int):
    privacy_request = _load_request(request_id)
    form = CompleteErasureForm()
    if not form.validate_on_submit():
        return _request_page(privacy_request, complete_form=form, status=400)
    try:
        complete_erasure(privacy_request, actor=current_user._get_current_object(), origin=request_origin())
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return _request_page(db.get_or_404(PrivacyRequest, request_id), status=error.status)
    db.session.commit()
    flash(_("The person's data is erased."), "success")
    return redirect(url_for("people.admin_requests"))


@bp.route("/admin/privacy/requests/<int:request_id>/refuse", methods=["POST"])
@organizer_required
def admin_request_refuse(request_id: int):
    privacy_request = _load_request(request_id)
    form = RefuseErasureForm()
    if not form.validate_on_submit():
        return _request_page(privacy_request, refuse_form=form, status=400)
    try:
        refuse_erasure(privacy_request, actor=current_user._get_current_object(),
                       reason=form.reason.data, origin=request_origin())
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return _request_page(db.get_or_404(PrivacyRequest, request_id), status=error.status)
    db.session.commit()
    flash(_("The request is refused; the person will be told why."), "success")
    return redirect(url_for("people.admin_requests"))


@bp.route("/admin/privacy/retention")
@organizer_required
def admin_retention():
    from portal.people.jobs import retention_modules

    labels = {
        "people": _("People, links and sign-in attempts"),
        "events": _("Events"),
        "groups": _("Working groups"),
        "lists": _("Mailing lists"),
        "guidelines": _("Guidelines"),
        "mail": _("Messages sent"),
    }
    areas = []
    for area, module in retention_modules():
        forecast = getattr(module, "forecast", None)
        areas.append((area, labels.get(area, area.capitalize()), module,
                      forecast(now()) if callable(forecast) else None))
    return render_template("people/admin_retention.html", areas=areas)
