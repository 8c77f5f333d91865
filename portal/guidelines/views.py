"""Guideline pages: public (/guidelines) and organizer (/admin/guidelines)."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from portal.core.clock import now
from portal.core.db import writing
from portal.core.errors import DomainError
from portal.core.permissions import organizer_required
from portal.core.web import (
    audit_page_view,
    current_language,
    form_accepted,
    per_typed_address,
    request_origin,
    speak_the_language_of,
    submit_form,
    user_agent,
)
from portal.extensions import db, limiter
from portal.guidelines import bp, services, storage
from portal.guidelines.forms import (
    ConfirmForm,
    FormatForm,
    EditionForm,
    GuidelineForm,
    RequestCopyForm,
    ScheduleForm,
    WithdrawForm,
)
from portal.guidelines.models import LANGUAGES, CopyRequest, Guideline, GuidelineEdition, GuidelineStatus
from portal.people.services import list_sectors



def _send_edition(edition: GuidelineEdition, download_name: str | None = None):
    """The PDF as an attachment under a safe name; a missing file is a 404, never a 500."""
    try:
        path = storage.path_of(edition.stored_name)
        if not path.is_file():
            raise FileNotFoundError(path)
    except FileNotFoundError:
        current_app.logger.error("guideline file missing: edition %s", edition.id)
        abort(404)
    response = send_file(
        path,
        mimetype="application/pdf",
        as_attachment=True,
        download_name=storage.safe_download_name(download_name or edition.original_name),
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- public ------------------------------------------------------------------------------------


@bp.route("/guidelines/")
def index():
    return render_template(
        "guidelines/index.html",
        released=services.released_guidelines(),
        upcoming=services.upcoming_guidelines(),
        language=current_language(),
    )


def _sector_choices(language: str, blank: str) -> list[SelectChoice]:
    return [SelectChoice("", blank)] + [SelectChoice(str(s.id), s.name(language)) for s in list_sectors()]



@bp.route("/guidelines/<int:guideline_id>/request", methods=["GET", "POST"])
@limiter.limit("20/minute;100/hour", methods=["POST"])
@limiter.limit("6/hour", key_func=per_typed_address("guidelines-request"), methods=["POST"], deduct_when=form_accepted)
def request_copy(guideline_id: int):
    guideline = services.public_guideline(guideline_id)
    language = current_language()
    form = RequestCopyForm()
    form.sector.choices = _sector_choices(language, _("Choose your sector"))
    if request.method == "GET":
        form.language.data = language

    def save():
        return services.request_copy(
            guideline,
            email=form.email.data,
            name=form.name.data.strip(),
            organization=(form.organization.data or "").strip(),
            sector_id=form.sector.data,
            language=form.language.data,
            accessible_format=form.accessible_format.data,
            format_details=form.format_details.data or "",
            list_opt_in=form.list_opt_in.data,
            opt_in_wording=str(form.list_opt_in.label.text),  # as the page showed it
            shown_in=language,
            origin=request_origin(),
        )

    outcome = submit_form(form, save, error_field="email",
                          redirect_to=url_for("guidelines.request_sent", guideline_id=guideline.id))
    if isinstance(outcome, Response):
        return outcome
    return render_template("guidelines/request.html", guideline=guideline, form=form, language=language), outcome


@bp.route("/guidelines/<int:guideline_id>/request/sent")
def request_sent(guideline_id: int):
    guideline = services.public_guideline(guideline_id)
    return render_template("guidelines/request_sent.html", guideline=guideline, language=current_language())


@bp.route("/guidelines/confirm/<token>", methods=["GET", "POST"])
def confirm_request(token: str):
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        copy_request = services.confirm_copy_request(token, origin=request_origin(), user_agent=user_agent())
        speak_the_language_of(copy_request.person)
        guideline = copy_request.guideline
        released = guideline.status == GuidelineStatus.RELEASED
        # A release time already past (the job is about to run) is not a plan to announce.
        planned = guideline.release_at if guideline.release_at and guideline.release_at > now() else None
        db.session.commit()
        return render_template("guidelines/confirmed.html", guideline=guideline, released=released,
                               planned=planned, language=current_language())
    # A GET only shows the button: mail scanners follow links and must not confirm.
    copy_request = services.copy_request_for_token(token)
    speak_the_language_of(copy_request.person)
    return _confirm_page(copy_request, token, form, FormatForm(obj=copy_request))


def _confirm_page(copy_request, token: str, form, format_form, status: int = 200):
    return render_template("guidelines/confirm.html", guideline=copy_request.guideline, form=form, token=token,
                           confirmed=copy_request.status == "confirmed", format_form=format_form,
                           copy_request=copy_request, language=current_language()), status


@bp.route("/guidelines/confirm/<token>/format", methods=["POST"])
def request_format(token: str):
    """The requester (their emailed link proves the address) asks for an accessible format,
    or changes or drops the one they asked for."""
    copy_request = services.copy_request_for_token(token)
    speak_the_language_of(copy_request.person)
    format_form = FormatForm()
    if not format_form.validate_on_submit():
        return _confirm_page(copy_request, token, ConfirmForm(), format_form, 400)
    services.set_accessible_format(copy_request, accessible_format=format_form.accessible_format.data,
                                   format_details=format_form.format_details.data or "", origin=request_origin())
    db.session.commit()
    flash(_("Your request is updated: the organizers will send the format you asked for.")
          if format_form.accessible_format.data else _("Your request is updated: no alternate format."), "success")
    return redirect(url_for("guidelines.confirm_request", token=token))


@bp.route("/guidelines/<int:guideline_id>/download/<language>")
def download(guideline_id: int, language: str):
    db.session.rollback()  # a fresh transaction, so the one below begins as a writer
    with writing():  # the download is counted: take SQLite's write lock up front
        guideline = db.get_or_404(Guideline, guideline_id)
        if guideline.status != GuidelineStatus.RELEASED or language not in LANGUAGES:
            abort(404)
        edition = guideline.edition(language) or abort(404)
        if _really_downloading():
            services.record_download(guideline, language, sector_id=None, via="public")
            db.session.commit()
    return _send_edition(edition)


def _really_downloading() -> bool:
    """A GET takes the file; a HEAD only asks about it (link checkers and mail scanners send
    them) and must not count as a download."""
    return request.method != "HEAD"


@bp.route("/guidelines/link/<token>")
def download_link(token: str):
    """The page a notice's personal link opens: the editions to download."""
    access = services.open_download_link(token)  # only looking: a use counts when a file is downloaded
    speak_the_language_of(access.person)
    return render_template("guidelines/link.html", guideline=access.guideline, token=token,
                           language=current_language())


@bp.route("/guidelines/link/<token>/<language>")
def download_link_file(token: str, language: str):
    if language not in LANGUAGES:
        abort(404)
    db.session.rollback()  # a fresh transaction, so the one below begins as a writer
    with writing():
        access = services.open_download_link(token)
        edition = access.guideline.edition(language) or abort(404)
        if _really_downloading():
            services.record_download(access.guideline, language,
                                     sector_id=access.person.sector_id if access.person else None, via="link")
            db.session.commit()
    return _send_edition(edition)


# --- organizers --------------------------------------------------------------------------------

def _local_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["PORTAL_TIMEZONE"])


def _revision_choices(exclude: int | None = None) -> list[SelectChoice]:
    guidelines = db.session.execute(select(Guideline).order_by(Guideline.id.desc())).scalars()
    return [SelectChoice("", _("Not a revision"))] + [
        SelectChoice(str(g.id), f"{g.title(current_language())} ({g.version})") for g in guidelines if g.id != exclude
    ]


@bp.route("/admin/guidelines/")
@organizer_required
def admin_index():
    counts = dict(db.session.execute(
        select(CopyRequest.guideline_id, func.count()).group_by(CopyRequest.guideline_id)
    ).all())
    guidelines = db.session.execute(select(Guideline).order_by(Guideline.created_at.desc(), Guideline.id.desc())).scalars().all()
    return render_template("guidelines/admin/index.html", guidelines=guidelines, counts=counts)


def _guideline_fields(form: GuidelineForm) -> dict:
    return dict(
        title_en=form.title_en.data.strip(),
        title_fr=(form.title_fr.data or "").strip(),
        summary_en=(form.summary_en.data or "").strip(),
        summary_fr=(form.summary_fr.data or "").strip(),
        version=form.version.data.strip(),
        revision_of_id=form.revision_of.data,
    )


@bp.route("/admin/guidelines/new", methods=["GET", "POST"])
@organizer_required
def admin_new():
    form = GuidelineForm()
    form.revision_of.choices = _revision_choices()
    outcome = submit_form(
        form,
        lambda: services.create_guideline(actor=current_user, origin=request_origin(), **_guideline_fields(form)),
        error_field="revision_of",
        success=_("Guideline created. Upload its PDF files, then schedule the release."),
        redirect_to=lambda guideline: url_for("guidelines.admin_detail", guideline_id=guideline.id),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("guidelines/admin/edit.html", form=form, guideline=None), outcome


@bp.route("/admin/guidelines/<int:guideline_id>/edit", methods=["GET", "POST"])
@organizer_required
def admin_edit(guideline_id: int):
    guideline = db.get_or_404(Guideline, guideline_id)
    form = GuidelineForm(obj=guideline if request.method == "GET" else None)
    form.revision_of.choices = _revision_choices(exclude=guideline.id)
    if request.method == "GET":
        form.revision_of.data = guideline.revision_of_id
    outcome = submit_form(
        form,
        lambda: services.update_guideline(guideline, actor=current_user, origin=request_origin(),
                                          **_guideline_fields(form)),
        error_field="title_en", success=_("Guideline saved."),
        redirect_to=url_for("guidelines.admin_detail", guideline_id=guideline.id),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("guidelines/admin/edit.html", form=form, guideline=guideline), outcome


def _render_detail(guideline: Guideline, status: int = 200, **forms):
    schedule_form = forms.get("schedule_form") or ScheduleForm()
    if "schedule_form" not in forms and guideline.release_at:
        schedule_form.release_at.data = guideline.release_at.astimezone(_local_zone()).replace(tzinfo=None)
    return render_template(
        "guidelines/admin/detail.html",
        guideline=guideline,
        edition_form=forms.get("edition_form") or EditionForm(),
        schedule_form=schedule_form,
        withdraw_form=WithdrawForm(),
        requests=services.requests_for(guideline),
        progress=services.release_progress(guideline),
        downloads=services.downloads_by_sector(guideline, current_language()),
        suppress_below=services.SUPPRESS_BELOW,
    ), status


@bp.route("/admin/guidelines/<int:guideline_id>")
@organizer_required
def admin_detail(guideline_id: int):
    guideline = db.get_or_404(Guideline, guideline_id)
    audit_page_view("guidelines.requests.viewed", f"guideline:{guideline.id}")
    return _render_detail(guideline)


@bp.route("/admin/guidelines/<int:guideline_id>/editions", methods=["POST"])
@organizer_required
def admin_upload(guideline_id: int):
    guideline = db.get_or_404(Guideline, guideline_id)
    form = EditionForm()
    outcome = submit_form(
        form,
        lambda: services.add_edition(guideline, form.language.data, form.file.data.stream,
                                     form.file.data.filename or "", actor=current_user, origin=request_origin()),
        error_field="file", success=_("PDF uploaded."),
        redirect_to=url_for("guidelines.admin_detail", guideline_id=guideline.id),
    )
    if isinstance(outcome, Response):
        return outcome
    # A refused upload was rolled back, which expired the guideline: read it again (a 404 if
    # it has gone meanwhile); otherwise this is the same object, with no query.
    return _render_detail(db.get_or_404(Guideline, guideline_id), outcome, edition_form=form)


@bp.route("/admin/guidelines/<int:guideline_id>/editions/<language>")
@organizer_required
def admin_edition_file(guideline_id: int, language: str):
    guideline = db.get_or_404(Guideline, guideline_id)
    edition = guideline.edition(language) if language in LANGUAGES else None
    if edition is None:
        abort(404)
    return _send_edition(edition)


@bp.route("/admin/guidelines/<int:guideline_id>/schedule", methods=["POST"])
@organizer_required
def admin_schedule(guideline_id: int):
    guideline = db.get_or_404(Guideline, guideline_id)
    form = ScheduleForm()
    if form.validate_on_submit():
        # Organizers enter Toronto wall-clock time; the database keeps UTC.
        release_at = form.release_at.data.replace(tzinfo=_local_zone())
        try:
            services.schedule_release(guideline, release_at, actor=current_user, origin=request_origin())
        except DomainError as error:
            db.session.rollback()
            form.release_at.errors.append(str(error.message))
            return _render_detail(db.get_or_404(Guideline, guideline_id), 400, schedule_form=form)
        db.session.commit()
        flash(_("Release scheduled."), "success")
        return redirect(url_for("guidelines.admin_detail", guideline_id=guideline.id))
    return _render_detail(guideline, 400, schedule_form=form)


@bp.route("/admin/guidelines/<int:guideline_id>/withdraw", methods=["POST"])
@organizer_required
def admin_withdraw(guideline_id: int):
    guideline = db.get_or_404(Guideline, guideline_id)
    form = WithdrawForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.withdraw_guideline(guideline, actor=current_user, origin=request_origin())
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return _render_detail(db.get_or_404(Guideline, guideline_id), 409)
    db.session.commit()
    flash(_("Guideline withdrawn. Its release will not happen, download links no longer work and notices not yet sent are held back."), "success")
    return redirect(url_for("guidelines.admin_detail", guideline_id=guideline.id))
