"""Pages for events: the public list, event pages, registration and its manage link, and the
organizers' pages under /admin/events (events, questions, attendees, exports, check-in)."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import date
from zoneinfo import ZoneInfo

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal.core.audit import record_audit
from portal.core.clock import now
from portal.core.db import MAX_ID, become_writer, want_write_transaction
from portal.core.errors import DomainError
from portal.core.formatting import format_date, in_language, short_time_in
from portal.core.pages import render_error
from portal.core.permissions import organizer_required, refuse_another_ones
from portal.core.web import audit_page_view, current_language, request_origin, speak_the_language_of, submit_form, user_agent
from portal.events import bp, services
from portal.events.charts import bar_chart
from portal.events.forms import (
    ActionForm,
    AttendeeFilterForm,
    CancelForm,
    CheckInSearchForm,
    EventForm,
    EventOrganizerForm,
    MessageForm,
    MoveForm,
    NeedsForm,
    QuestionForm,
    ScanForm,
    StatusForm,
    added_registration_form,
    attendee_details_form,
    registration_form,
)
from portal.events.models import Event, EventQuestion, EventStatus, QuestionKind, Registration, RegistrationStatus
from portal.extensions import db, limiter
from portal.people.services import list_sectors

OUTCOME_KEY = "events_outcome"
#: The most attendees one page of the list shows.
ATTENDEES_PER_PAGE_MAX = 500


def _register_limit() -> str:
    # Configurable so load tests and the concurrency test can lift it (one IP, many posts).
    return (current_app.config.get("EVENTS_REGISTER_RATE_LIMIT")
            or os.environ.get("EVENTS_REGISTER_RATE_LIMIT") or "30/minute;300/hour")


# --- public ---------------------------------------------------------------------------


@bp.route("/events")
def index():
    return render_template("events/index.html", events=services.upcoming_events())


@bp.route("/events/<slug>")
def detail(slug: str):
    event = services.public_event(slug)
    moment = now()
    return render_template("events/detail.html", event=event, seats=services.seat_counts(event),
                           is_open=event.registration_is_open(moment), moment=moment)


@bp.route("/events/<slug>/register", methods=["GET", "POST"])
@limiter.limit(_register_limit, methods=["POST"])
def register(slug: str):
    # Reading the event and checking the form need no write lock: on SQLite the writer
    # transaction starts only when the service runs (see below), so the lock is held briefly.
    want_write_transaction(False)
    if request.method == "POST":
        return _send_registration(slug, services.registration_door(slug))
    event = services.public_event(slug)
    if not event.registration_is_open(now()):
        return render_template("events/closed.html", event=event)
    form = registration_form(services.question_shapes(event.questions), list_sectors())
    # Someone arriving by a direct link learns before filling it in that they would wait.
    full = services.seat_counts(event)["seats_left"] == 0
    return render_template("events/register.html", event=event, form=form, full=full)


def _send_registration(slug: str, door: services.RegistrationDoor, *, again: bool = True):
    """Check the posted form against the event's door (services.registration_door) and
    register; the seat itself is decided under the event's lock."""
    if not door.is_open(now()):
        # The door may be a few seconds old: only the event as it is now says "closed".
        door = services.registration_door(slug, fresh=True)
        if not door.is_open(now()):
            return render_template("events/closed.html", event=services.public_event(slug)), 409
    form = registration_form(door.questions, list_sectors())
    if not form.validate_on_submit():
        return _registration_form_page(slug, form, 400)
    material = services.notifications.prepare_seat_material()
    become_writer()  # SQLite: the service's transaction begins with the write lock
    details = services.RegistrationDetails(
        email=form.email.data, name=form.name.data, organization=form.organization.data,
        sector_slug=form.sector.data, community=form.community.data,
        job_title=form.job_title.data or "", accessibility_needs=form.accessibility_needs.data or "",
        dietary_needs=form.dietary_needs.data or "", answers=form.answers(),
        announcements=bool(form.announcements.data), language=str(get_locale() or "en"),
        ip=request_origin(), user_agent=user_agent(),
    )
    try:
        outcome = services.register_for_event(door.event_id, details, material,
                                              form_version=door.questions_version)
    except services.FormChanged as error:
        db.session.rollback()
        want_write_transaction(False)
        if again:  # the answers may well fit the new questions: check them against those
            return _send_registration(slug, services.registration_door(slug, fresh=True), again=False)
        form.form_errors.append(str(error.message))
        return _registration_form_page(slug, form, error.status)
    except DomainError as error:
        db.session.rollback()
        want_write_transaction(False)
        form.email.errors = list(form.email.errors) + [str(error.message)]
        return _registration_form_page(slug, form, error.status)
    # Read what the page needs before the commit expires it (no second transaction).
    kind = outcome.registration.status if outcome.created else "duplicate"
    session[OUTCOME_KEY] = {"event": slug, "kind": kind, "place": outcome.place, "sector_full": outcome.sector_full,
                            "announcements": outcome.announcements_to_confirm}
    db.session.commit()
    return redirect(url_for("events.registered", slug=slug))


def _registration_form_page(slug: str, form, status: int):
    event = services.public_event(slug)
    return render_template("events/register.html", event=event, form=form,
                           full=services.seat_counts(event)["seats_left"] == 0), status


@bp.route("/events/<slug>/registered")
def registered(slug: str):
    event = services.public_event(slug)
    outcome = session.get(OUTCOME_KEY)
    if not isinstance(outcome, dict) or outcome.get("event") != event.slug:
        return redirect(url_for("events.detail", slug=event.slug))
    templates = {"confirmed": "events/confirmed.html", "waitlisted": "events/waitlisted.html"}
    return render_template(templates.get(outcome.get("kind"), "events/check_email.html"),
                           event=event, place=outcome.get("place"), sector_full=bool(outcome.get("sector_full")),
                           announcements_to_confirm=bool(outcome.get("announcements")))


def _manage_context(registration: Registration, **extra):
    moved_to = db.session.get(Registration, registration.moved_to_id) if registration.moved_to_id else None
    return dict(registration=registration, event=registration.event,
                place=services.waitlist_place(registration), moved_to=moved_to, **extra)


@bp.route("/events/manage/<token>", methods=["GET", "POST"])
def manage(token: str):
    registration = services.registration_for_manage_token(token)
    speak_the_language_of(registration.person)
    form = NeedsForm(obj=registration if request.method == "GET" else None)
    status = 200
    if form.validate_on_submit():
        try:
            services.update_needs(registration, accessibility_needs=form.accessibility_needs.data or "",
                                  dietary_needs=form.dietary_needs.data or "")
        except DomainError as error:
            db.session.rollback()
            flash(str(error.message), "error")
            status = error.status
        else:
            db.session.commit()
            flash(_("Your needs were updated. Thank you for telling us."), "success")
            return redirect(url_for("events.manage", token=token))
    elif request.method == "POST":
        status = 400
    return render_template("events/manage.html", form=form, cancel_form=CancelForm(),
                           **_manage_context(registration)), status


@bp.route("/events/manage/<token>/confirmation", methods=["POST"])
@limiter.limit("10/hour", methods=["POST"])
def manage_confirmation_again(token: str):
    """'Email me my confirmation again': the seat holder lost the first one."""
    registration = services.registration_for_manage_token(token)
    speak_the_language_of(registration.person)
    try:
        sent = services.send_confirmation_again(registration)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return redirect(url_for("events.manage", token=token))
    db.session.commit()
    flash(_("Your confirmation is on its way, with a new check-in code and the calendar file.") if sent
          else _("We sent your confirmation again less than an hour ago: look for it in your inbox and "
                 "spam folder."), "success")
    return redirect(url_for("events.manage", token=token))


@bp.route("/events/manage/<token>/cancel", methods=["POST"])
def manage_cancel(token: str):
    registration = services.registration_for_manage_token(token)
    speak_the_language_of(registration.person)
    form = CancelForm()
    if not form.validate_on_submit():
        return render_template("events/manage.html", form=NeedsForm(obj=registration), cancel_form=form,
                               **_manage_context(registration)), 400
    try:
        services.cancel_registration(registration, by="registrant")
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return redirect(url_for("events.manage", token=token))
    db.session.commit()
    flash(_("Your registration is cancelled. Thank you for freeing your place."), "success")
    return redirect(url_for("events.manage", token=token))


# --- organizers -----------------------------------------------------------------------


def _get_or_404(model, object_id: int):
    if object_id > MAX_ID:
        abort(404)
    return db.get_or_404(model, object_id)


def _admin_event(event_id: int) -> Event:
    """The event, for one of its organizers (or an admin); 403 for any other account."""
    event = _get_or_404(Event, event_id)
    if not services.runs_event(current_user, event.id):
        current_app.logger.warning("authorization refused: account=%s is not an organizer of event %s",
                                   current_user.id, event.id)
        abort(403)
    return event


def _admin_registration(event_id: int, registration_id: int) -> tuple[Event, Registration]:
    """A registration of an event the account runs (`_admin_event`); 404 for one of another event."""
    event = _admin_event(event_id)
    registration = _get_or_404(Registration, registration_id)
    if registration.event_id != event.id:
        refuse_another_ones("registration", registration.id)
    return event, registration


def _refuse(message: str, code: int = 400):
    db.session.rollback()
    return render_error(code, message=message)


def _actor():
    return current_user._get_current_object()


@bp.route("/admin/events")
@organizer_required
def admin_index():
    events = db.session.execute(db.select(Event).order_by(Event.starts_at.desc())).scalars().all()
    mine = services.events_run_by(current_user)
    return render_template("events/admin/index.html", events=events, runs=lambda e: mine is None or e.id in mine,
                           counts={event.id: services.seat_counts(event) for event in events})


@bp.route("/admin/events/new", methods=["GET", "POST"])
@organizer_required
def admin_create():
    form = EventForm()
    outcome = submit_form(
        form, lambda: services.create_event(actor=_actor(), origin=request_origin(), **form.values()),
        error_field="slug", success=_("Event created as a draft. Add questions, then publish it."),
        redirect_to=lambda event: url_for("events.admin_dashboard", event_id=event.id),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("events/admin/edit.html", form=form, event=None), outcome


@bp.route("/admin/events/<int:event_id>/edit", methods=["GET", "POST"])
@organizer_required
def admin_edit(event_id: int):
    event = _admin_event(event_id)
    form = EventForm()
    if request.method == "GET":
        form.fill_from(event, services.edition_of(event))
    status = 200
    if form.validate_on_submit():
        try:
            update = services.update_event(event, actor=_actor(), origin=request_origin(),
                                           seen_edition=form.edition.data, **form.values())
        except DomainError as error:
            db.session.rollback()
            # The message goes beside the field it is about (DomainError.field), or above the form.
            if error.field in form:
                form[error.field].errors = list(form[error.field].errors) + [str(error.message)]
            else:
                form.form_errors.append(str(error.message))
            status = error.status
        else:
            db.session.commit()
            said = [_("Event saved.")]
            if update.promoted:
                said.append(ngettext("%(num)d person was promoted from the waitlist.",
                                     "%(num)d people were promoted from the waitlist.", len(update.promoted)))
            if update.told_of_move:
                said.append(ngettext("%(num)d person registered was emailed the new time or place.",
                                     "%(num)d people registered were emailed the new time or place.",
                                     update.told_of_move))
            flash(" ".join(said), "success")
            return redirect(url_for("events.admin_dashboard", event_id=event.id))
    elif request.method == "POST":
        status = 400
    return render_template("events/admin/edit.html", form=form, event=event), status


@bp.route("/admin/events/<int:event_id>/status", methods=["POST"])
@organizer_required
def admin_status(event_id: int):
    event = _admin_event(event_id)
    form = StatusForm()
    if not form.validate_on_submit():
        return _refuse(_("Choose a valid status: draft, published, closed or cancelled."))
    try:
        told = services.set_event_status(event, EventStatus(form.status.data), actor=_actor(), origin=request_origin())
    except DomainError as error:  # e.g. already cancelled, from a page left open: say so on the dashboard
        db.session.rollback()
        flash(str(error.message), "error")
        return _dashboard_page(db.get_or_404(Event, event_id), error.status)
    db.session.commit()
    message = _("Status changed.")
    if told:
        message += " " + ngettext("%(num)d registrant was emailed.", "%(num)d registrants were emailed.", told)
    flash(message, "success")
    return redirect(url_for("events.admin_dashboard", event_id=event.id))


def _question_fields(form: QuestionForm) -> dict:
    """What the question form says, as the add and update services take it."""
    return dict(label=form.label.data, kind=QuestionKind(form.kind.data), required=form.required.data,
                hint=form.hint.data or "", choices_text=form.choices_text.data or "",
                label_fr=form.label_fr.data or "", hint_fr=form.hint_fr.data or "",
                choices_fr_text=form.choices_fr_text.data or "", actor=_actor(), origin=request_origin())


@bp.route("/admin/events/<int:event_id>/questions", methods=["GET", "POST"])
@organizer_required
def admin_questions(event_id: int):
    event = _admin_event(event_id)
    form = QuestionForm()
    outcome = submit_form(
        form,
        lambda: services.add_question(event, **_question_fields(form)),
        error_field="choices_text", success=_("Question added."),
        redirect_to=url_for("events.admin_questions", event_id=event.id),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("events/admin/questions.html", event=event, form=form,
                           delete_form=ActionForm()), outcome


@bp.route("/admin/events/<int:event_id>/questions/<int:question_id>/edit", methods=["GET", "POST"])
@organizer_required
def admin_question_edit(event_id: int, question_id: int):
    event = _admin_event(event_id)
    question = _get_or_404(EventQuestion, question_id)
    if question.event_id != event.id:
        refuse_another_ones("question", question.id)
    form = QuestionForm(obj=question if request.method == "GET" else None)
    outcome = submit_form(
        form,
        lambda: services.update_question(question, **_question_fields(form)),
        error_field="choices_text", success=_("Question saved."),
        redirect_to=url_for("events.admin_questions", event_id=event.id),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("events/admin/question_edit.html", event=event, question=question,
                           form=form), outcome


@bp.route("/admin/events/<int:event_id>/questions/<int:question_id>/delete", methods=["POST"])
@organizer_required
def admin_question_delete(event_id: int, question_id: int):
    event = _admin_event(event_id)
    question = _get_or_404(EventQuestion, question_id)
    if question.event_id != event.id:
        refuse_another_ones("question", question.id)
    services.remove_question(question, actor=_actor(), origin=request_origin())
    db.session.commit()
    flash(_("Question removed."), "success")
    return redirect(url_for("events.admin_questions", event_id=event.id))


def _organizers_page(event: Event, form: EventOrganizerForm, status: int = 200):
    return render_template("events/admin/organizers.html", event=event, form=form,
                           team=services.event_organizers(event)), status


@bp.route("/admin/events/<int:event_id>/organizers", methods=["GET", "POST"])
@organizer_required
def admin_organizers(event_id: int):
    event = _admin_event(event_id)
    form = EventOrganizerForm()
    form.account.choices = [SelectChoice("", _("Choose an account"))] + [
        SelectChoice(str(account.id), f"{account.name} ({account.email})" if account.name else account.email)
        for account in services.organizers_to_add(event)]
    if request.method == "GET":
        return _organizers_page(event, form)
    if not form.validate_on_submit():
        return _organizers_page(event, form, 400)
    try:
        account = services.add_event_organizer(event, int(form.account.data), actor=_actor(), origin=request_origin())
    except DomainError as error:
        db.session.rollback()
        form.account.errors = list(form.account.errors) + [str(error.message)]
        return _organizers_page(event, form, error.status)
    db.session.commit()
    flash(_("%(email)s is now one of this event's organizers.", email=account.email), "success")
    return redirect(url_for("events.admin_organizers", event_id=event.id))


@bp.route("/admin/events/<int:event_id>/organizers/<int:account_id>/remove", methods=["POST"])
@organizer_required
def admin_organizer_remove(event_id: int, account_id: int):
    event = _admin_event(event_id)
    try:
        services.remove_event_organizer(event, account_id, actor=_actor(), origin=request_origin())
    except DomainError as error:
        return _refuse(str(error.message), error.status)
    db.session.commit()
    flash(_("Removed from this event's organizers."), "success")
    if not services.runs_event(current_user, event.id):  # they took themselves off the team
        return redirect(url_for("events.admin_index"))
    return redirect(url_for("events.admin_organizers", event_id=event.id))


@bp.route("/admin/events/<int:event_id>")
@organizer_required
def admin_dashboard(event_id: int):
    return _dashboard_page(_admin_event(event_id))


def _dashboard_page(event: Event, status: int = 200):
    mix = services.sector_mix(event)
    unit, over_time = services.registrations_over_time(event)
    status_form = StatusForm(formdata=None, status=event.status)
    return render_template(
        "events/admin/dashboard.html", event=event, seats=services.seat_counts(event), mix=mix,
        per_day=[(_("Week of %(day)s", day=format_date(day, "long")) if unit == "week" else format_date(day, "long"),
                  count) for day, count in over_time],
        per_week=unit == "week",
        status_form=status_form, tallies=services.answer_tallies(event),
        checked_in=sum(checked for _sector, checked, _total in services.check_in_counts(event)),
        sector_chart=bar_chart([(sector.name(current_language()), confirmed) for sector, confirmed, _w in mix],
                               title_id="sector-chart-title"),
        day_chart=bar_chart([(format_date(day, "d MMM"), count) for day, count in over_time],
                            title_id="day-chart-title"),
    ), status


def _filter_form(event: Event) -> AttendeeFilterForm:
    form = AttendeeFilterForm(request.args)
    form.status.choices = [SelectChoice("", _("Any status"))] + [
        SelectChoice(s.value, _(s.value.capitalize())) for s in RegistrationStatus]
    form.sector.choices = [SelectChoice("", _("Any sector"))] + [
        SelectChoice(s.slug, s.name(current_language())) for s in list_sectors()]
    form.community.choices = [SelectChoice("", _("Any community"))] + [
        SelectChoice(c, c) for c in services.communities(event)]
    return form


@bp.route("/admin/events/<int:event_id>/attendees")
@organizer_required
def admin_attendees(event_id: int):
    event = _admin_event(event_id)
    form = _filter_form(event)
    if not form.validate():
        return render_template("events/admin/attendees.html", event=event, form=form, rows=[], total=None,
                               page=1, pages=1, args={}, places={}), 400
    filters = services.AttendeeFilter(
        status=form.status.data or "", sector=form.sector.data or "", community=form.community.data or "",
        search=form.q.data or "", sort=form.sort.data or "registered", descending=form.order.data == "desc")
    # Paging comes from links, or from a hand-edited address: keep it within range.
    per_page = min(max(request.args.get("per_page", 50, type=int), 1), ATTENDEES_PER_PAGE_MAX)
    page = min(max(request.args.get("page", 1, type=int), 1), 100_000)
    # Audit first: committing afterwards would expire the loaded rows (one query per row).
    audit_page_view("events.attendees.viewed", f"event:{event.id}", page=page)
    rows, total = services.attendee_page(event, filters, page, per_page)
    pages = max((total + per_page - 1) // per_page, 1)
    if page > pages:  # past the end: show the last page
        page = pages
        rows, total = services.attendee_page(event, filters, page, per_page)
    args = form.link_args()
    if "per_page" in request.args:
        args["per_page"] = str(per_page)
    places = services.waitlist_places(event, rows)
    return render_template("events/admin/attendees.html", event=event, form=form, rows=rows, total=total,
                           page=page, pages=pages, args=args, places=places)


@bp.route("/admin/events/<int:event_id>/attendees/new", methods=["GET", "POST"])
@organizer_required
def admin_add_registration(event_id: int):
    """An organizer registers someone (by phone, a speaker); the seat rules still apply."""
    event = _admin_event(event_id)
    form = added_registration_form(services.question_shapes(event.questions), list_sectors(),
                                   language=current_language())
    status = 200
    if form.validate_on_submit():
        details = services.RegistrationDetails(
            email=form.email.data, name=form.name.data, organization=form.organization.data,
            sector_slug=form.sector.data, community=form.community.data, job_title=form.job_title.data or "",
            accessibility_needs=form.accessibility_needs.data or "", dietary_needs=form.dietary_needs.data or "",
            answers=form.answers(), language=form.language.data)
        try:
            outcome = services.register_for_event(event.id, details, form_version=event.questions_version,
                                                  added_by=_actor(), origin=request_origin())
        except DomainError as error:
            db.session.rollback()
            if error.field in form:
                form[error.field].errors = list(form[error.field].errors) + [str(error.message)]
            else:  # about the event, not a field (a draft or finished event, changed questions)
                form.form_errors.append(str(error.message))
            status = error.status
        else:
            registration_id, name, place = outcome.registration.id, outcome.registration.person.name, outcome.place
            db.session.commit()
            said = (_("%(name)s is registered and was emailed a confirmation.", name=name) if place is None else
                    _("%(name)s is on the waitlist, number %(place)d in line, and was emailed so.", name=name,
                      place=place))
            if outcome.saved_details_kept:  # typing never changes someone's saved details
                said += " " + _("The portal already knew this address: where what you typed differs, the name, "
                                "details and email language saved for it were kept.")
            flash(said, "success")
            return redirect(url_for("events.admin_registration", event_id=event.id, registration_id=registration_id))
    elif request.method == "POST":
        status = 400
    return render_template("events/admin/add_registration.html", event=event, form=form), status


@bp.route("/admin/events/<int:event_id>/attendees/<int:registration_id>", methods=["GET", "POST"])
@organizer_required
def admin_registration(event_id: int, registration_id: int):
    event, registration = _admin_registration(event_id, registration_id)
    form = NeedsForm(obj=registration if request.method == "GET" else None)
    status = 200
    if form.validate_on_submit():
        try:
            services.update_needs(registration, accessibility_needs=form.accessibility_needs.data or "",
                                  dietary_needs=form.dietary_needs.data or "", actor=_actor(),
                                  origin=request_origin())
        except DomainError as error:
            db.session.rollback()
            flash(str(error.message), "error")
            status = error.status
        else:
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("events.admin_registration", event_id=event.id, registration_id=registration.id))
    elif request.method == "POST":
        status = 400
    return _registration_page(event, registration, status, needs_form=form)


def _registration_page(event: Event, registration: Registration, status: int = 200, *,
                       needs_form: NeedsForm | None = None, details_form=None, move_form: MoveForm | None = None):
    """The attendee's page; its reading is on record (a GET's in a short writer transaction)."""
    if request.method == "GET":
        audit_page_view("events.registration.viewed", f"registration:{registration.id}")
    else:
        record_audit("events.registration.viewed", actor=_actor(), subject=f"registration:{registration.id}",
                     origin=request_origin())
        db.session.commit()
    if needs_form is None:
        needs_form = NeedsForm(obj=registration, formdata=None)
    if details_form is None:
        details_form = attendee_details_form(registration, list_sectors(), posted=False)
    movable = (registration.status != "cancelled" and not registration.checked_in_at and registration.person
               and not event.is_over)
    if move_form is None and movable:
        move_form = _move_form(registration, posted=False)
    # A refused move says why, even when the refusal is that it can no longer move (a second
    # click once it has moved, a check-in meanwhile).
    shown_move_form = move_form if movable or (move_form is not None and move_form.errors) else None
    moved_to = db.session.get(Registration, registration.moved_to_id) if registration.moved_to_id else None
    return render_template("events/admin/registration.html", event=event, registration=registration,
                           form=needs_form, details_form=details_form, cancel_form=CancelForm(),
                           seat_form=ActionForm(), move_form=shown_move_form, moved_to=moved_to,
                           runs_moved_to=moved_to is not None and services.runs_event(current_user, moved_to.event_id),
                           seats=services.seat_counts(event) if registration.status == "waitlisted" else None,
                           place=services.waitlist_place(registration)), status


@bp.route("/admin/events/<int:event_id>/attendees/<int:registration_id>/details", methods=["POST"])
@organizer_required
def admin_registration_details(event_id: int, registration_id: int):
    """Correct what the registrant typed (a misspelt name for the badge, the wrong sector)."""
    event, registration = _admin_registration(event_id, registration_id)
    form = attendee_details_form(registration, list_sectors(), posted=True)
    if not form.validate_on_submit():
        return _registration_page(event, registration, 400, details_form=form)
    try:
        outcome = services.correct_attendee_details(
            registration, name=form.name.data, organization=form.organization.data,
            sector_slug=form.sector.data, community=form.community.data, job_title=form.job_title.data or "",
            actor=_actor(), origin=request_origin())
    except DomainError as error:
        db.session.rollback()
        if error.field in form:
            form[error.field].errors.append(str(error.message))
        else:  # about the registration itself (anonymized), not what was typed
            flash(str(error.message), "error")
        return _registration_page(event, registration, error.status, details_form=form)
    promoted = _promoted_said(outcome.promoted)
    db.session.commit()
    said = _("Their details were corrected.") if outcome.changed else _("Nothing changed.")
    if outcome.beyond_sector_share:
        said += " " + _("Their new sector now holds more than its share of seats; they keep their seat.")
    flash(" ".join(filter(None, [said, promoted])), "success")
    return redirect(url_for("events.admin_registration", event_id=event.id, registration_id=registration.id))


def _move_form(registration: Registration, *, posted: bool) -> MoveForm:
    form = MoveForm(formdata=None if not posted else request.form)
    form.event.choices = [SelectChoice("", _("Choose an event"))] + [
        SelectChoice(str(target.id), f"{in_language(target, 'title', current_language())} · "
                                      f"{format_date(target.starts_at.astimezone(ZoneInfo(target.timezone)), 'medium', rebase=False)}")
        for target in services.events_to_move_to(registration, current_user)]
    return form


@bp.route("/admin/events/<int:event_id>/attendees/<int:registration_id>/move", methods=["POST"])
@organizer_required
def admin_registration_move(event_id: int, registration_id: int):
    """Move the attendee to another event the organizer runs (services.move_registration)."""
    event, registration = _admin_registration(event_id, registration_id)
    form = _move_form(registration, posted=True)
    if not form.validate_on_submit():
        return _registration_page(event, registration, 400, move_form=form)
    try:
        outcome = services.move_registration(registration, int(form.event.data), actor=_actor(),
                                             origin=request_origin())
    except DomainError as error:
        db.session.rollback()
        form.event.errors = list(form.event.errors) + [str(error.message)]
        return _registration_page(event, _get_or_404(Registration, registration_id), error.status, move_form=form)
    moved = outcome.registration
    target = moved.event
    title = in_language(target, "title", current_language())
    said = [_("Moved to %(title)s, where they have a seat.", title=title) if outcome.place is None
            else _("Moved to %(title)s, where they are number %(place)d on the waitlist.", title=title,
                   place=outcome.place),
            _("They were emailed about both events."), _promoted_said(outcome.promoted)]
    if target.questions:
        said.append(_("Their answers stayed with the event they left; this event's questions are unanswered."))
    target_id, moved_id = target.id, moved.id
    db.session.commit()
    flash(" ".join(filter(None, said)), "success")
    # Where they are now: the new event's attendee page (this one reads "cancelled, moved").
    return redirect(url_for("events.admin_registration", event_id=target_id, registration_id=moved_id))


@bp.route("/admin/events/<int:event_id>/attendees/<int:registration_id>/cancel", methods=["POST"])
@organizer_required
def admin_registration_cancel(event_id: int, registration_id: int):
    def cancel(registration: Registration) -> str:
        promoted = services.cancel_registration(registration, by="organizer", actor=_actor(), origin=request_origin())
        return " ".join(filter(None, [_("Registration cancelled."), _promoted_said(promoted)]))

    return _act_on_registration(event_id, registration_id, cancel)


def _act_on_registration(event_id: int, registration_id: int, act) -> Response:
    """An organizer's button on an attendee's page (cancel, undo a check-in, give a seat): do
    `act(registration)`, which returns what to tell them (read before the commit expires
    the rows), or flash the refusal; back to the attendee's page either way. The CSRF token
    is checked for every POST (CSRFProtect)."""
    event, registration = _admin_registration(event_id, registration_id)
    try:
        said = act(registration)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "error")
    else:
        db.session.commit()
        flash(said, "success")
    return redirect(url_for("events.admin_registration", event_id=event.id, registration_id=registration_id))


def _promoted_said(promoted: list[Registration]) -> str:
    """Who the waitlist gave a seat to, by name (the organizer may be asked about them)."""
    if not promoted:
        return ""
    names = ", ".join(r.person.name if r.person else _("Anonymized registration") for r in promoted)
    return ngettext("The freed seat went to %(names)s, who was emailed.",
                    "The freed seats went to %(names)s, who were emailed.", len(promoted), names=names)


@bp.route("/admin/events/<int:event_id>/attendees/<int:registration_id>/check-in/undo", methods=["POST"])
@organizer_required
def admin_undo_check_in(event_id: int, registration_id: int):
    def undo(registration: Registration) -> str:
        services.undo_check_in(registration, actor=_actor(), origin=request_origin())
        return _("The check-in was taken back.")

    return _act_on_registration(event_id, registration_id, undo)


@bp.route("/admin/events/<int:event_id>/attendees/<int:registration_id>/seat", methods=["POST"])
@organizer_required
def admin_give_seat(event_id: int, registration_id: int):
    def give_seat(registration: Registration) -> str:
        services.give_seat_by_hand(registration, actor=_actor(), origin=request_origin())
        return _("They have a seat now and were emailed their confirmation.")

    return _act_on_registration(event_id, registration_id, give_seat)


@bp.route("/admin/events/<int:event_id>/attendees.csv")
@organizer_required
def admin_export_csv(event_id: int):
    event = _admin_event(event_id)
    audit_page_view("events.attendees.exported", f"event:{event.id}", format="csv")
    event_id, language = event.id, current_language()
    return _csv_download(lambda: services.export_csv_chunks(db.get_or_404(Event, event_id), language),
                         f"{_export_file(event)}.csv")


@bp.route("/admin/events/<int:event_id>/attendees.xlsx")
@organizer_required
def admin_export_xlsx(event_id: int):
    event = _admin_event(event_id)
    audit_page_view("events.attendees.exported", f"event:{event.id}", format="xlsx")
    return _xlsx_download(services.export_xlsx(event, current_language()), f"{_export_file(event)}.xlsx")


@bp.route("/admin/events/<int:event_id>/name-list.csv")
@organizer_required
def admin_name_list_csv(event_id: int):
    event = _admin_event(event_id)
    audit_page_view("events.name_list.exported", f"event:{event.id}", format="csv")
    language = current_language()
    event_id = event.id
    return _csv_download(lambda: services.name_list_csv_chunks(db.get_or_404(Event, event_id), language),
                         f"{_name_list_file(event)}.csv")


@bp.route("/admin/events/<int:event_id>/name-list.xlsx")
@organizer_required
def admin_name_list_xlsx(event_id: int):
    event = _admin_event(event_id)
    audit_page_view("events.name_list.exported", f"event:{event.id}", format="xlsx")
    return _xlsx_download(services.name_list_xlsx(event, current_language()), f"{_name_list_file(event)}.xlsx")


def _export_file(event: Event) -> str:
    # TRANSLATORS: part of a downloaded file's name: lower-case ASCII letters and hyphens only.
    name = _("registrations")
    return f"{event.slug}-{name}-{date.today().isoformat()}"


def _name_list_file(event: Event) -> str:
    # TRANSLATORS: part of a downloaded file's name: lower-case ASCII letters and hyphens only.
    name = _("name-list")
    return f"{event.slug}-{name}-{date.today().isoformat()}"


def _csv_download(chunks: Callable[[], Iterable[str]], filename: str) -> Response:
    """A CSV streamed as `chunks()` makes it: called while the response streams, so it reads
    the database in the session that is live then (memory stays flat)."""
    def encoded():
        for chunk in chunks():
            yield chunk.encode("utf-8")

    return Response(stream_with_context(encoded()), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _xlsx_download(content: bytes, filename: str) -> Response:
    return Response(content, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/admin/events/<int:event_id>/check-in")
@organizer_required
def admin_check_in(event_id: int):
    event = _admin_event(event_id)
    search = CheckInSearchForm(request.args)
    status = 200
    rows: list[Registration] = []
    total = 0
    if not search.validate():
        status = 400
    elif search.q.data:
        # Everyone registered, not only seat holders: the desk tells a person who cancelled
        # or waits why they are not on the list, rather than "no one matches".
        rows, total = services.attendee_page(
            event, services.AttendeeFilter(search=search.q.data, sort="name"), 1, CHECK_IN_ROWS)
    return render_template("events/admin/check_in.html", event=event, search=search, rows=rows,
                           total=total, scan_form=ScanForm(), action_form=ActionForm(),
                           counts=services.check_in_counts(event, current_language())), status


#: Rows the check-in search shows; a search matching more says so.
CHECK_IN_ROWS = 30


def _checked_in_said(registration: Registration, changed: bool) -> tuple[str, str]:
    """What the desk is told after a check-in, and how (a second check-in is a warning: a
    forwarded code, or two people with one name)."""
    name = registration.person.name if registration.person else ""
    if changed:
        return _("%(name)s is checked in.", name=name), "success"
    return _("%(name)s was already checked in, at %(time)s: make sure this is them.", name=name,
             time=short_time_in(registration.checked_in_at, registration.event.timezone)), "warning"


@bp.route("/admin/events/<int:event_id>/check-in/<int:registration_id>", methods=["POST"])
@organizer_required
def admin_check_in_post(event_id: int, registration_id: int):
    event, registration = _admin_registration(event_id, registration_id)
    back = url_for("events.admin_check_in", event_id=event.id, q=request.args.get("q", "")[:200] or None)
    try:
        changed = services.check_in(registration, actor=_actor(), origin=request_origin())
    except DomainError as error:
        # Back to the desk with the search kept (a list left open may show someone cancelled
        # since): the volunteer reads why there and goes on, as after a bad scan.
        db.session.rollback()
        name = registration.person.name if registration.person else ""
        flash(_("%(name)s: %(reason)s", name=name, reason=str(error.message)), "error")
        return redirect(back)
    db.session.commit()
    flash(*_checked_in_said(registration, changed))
    return redirect(back)


@bp.route("/admin/events/<int:event_id>/check-in/scan", methods=["POST"])
@organizer_required
def admin_check_in_scan(event_id: int):
    event = _admin_event(event_id)
    form = ScanForm()
    if form.validate_on_submit():
        try:
            registration, changed = services.check_in_by_code(event, form.code.data, actor=_actor(),
                                                               origin=request_origin())
        except DomainError as error:
            db.session.rollback()
            form.code.errors = list(form.code.errors) + [
                _("This code is not a valid check-in code for this event.") if error.status == 404
                else str(error.message)]
        else:
            db.session.commit()
            flash(*_checked_in_said(registration, changed))
            return redirect(url_for("events.admin_check_in", event_id=event.id))
    # The box is emptied (the error beside it says what went wrong), so the next scan
    # types into an empty box rather than after the bad code.
    form.code.data = ""
    return render_template("events/admin/check_in.html", event=event, search=CheckInSearchForm(formdata=None),
                           rows=[], total=0, scan_form=form, action_form=ActionForm(),
                           counts=services.check_in_counts(event, current_language())), 400


@bp.route("/admin/events/<int:event_id>/message", methods=["GET", "POST"])
@organizer_required
def admin_message(event_id: int):
    event = _admin_event(event_id)
    form = MessageForm()
    status = 200
    previews = audience = None
    if form.validate_on_submit():
        message = services.AttendeeMessage(form.subject.data, form.body.data, form.subject_fr.data or "",
                                           form.body_fr.data or "")
        try:
            if request.form.get("action") == "preview":
                audience = services.message_audience(event, form.recipients.data)
                previews = {language: services.preview_attendee_message(event, message, language)
                            for language in ("en", "fr")}
            elif request.form.get("action") == "send":
                count = services.message_attendees(event, statuses=form.recipients.data, message=message,
                                                   batch=form.batch.data, actor=_actor(), origin=request_origin())
            else:
                abort(400)  # neither of the form's two buttons
        except DomainError as error:
            db.session.rollback()
            form.recipients.errors = list(form.recipients.errors) + [str(error.message)]
            status = error.status
        else:
            if previews is None:
                db.session.commit()
                flash(ngettext("Your message is queued for %(num)d person.",
                              "Your message is queued for %(num)d people.", count), "success")
                return redirect(url_for("events.admin_dashboard", event_id=event.id))
    elif request.method == "POST":
        status = 400
    return render_template("events/admin/message.html", event=event, form=form, previews=previews,
                           audience=audience), status
