"""Pages of the lists area: subscribing, confirming, unsubscribing, preferences, archive,
and the organizer's lists, subscribers, imports and posts."""
from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.orm import contains_eager

from portal.core.db import fold, folded
from portal.core.errors import DomainError
from portal.core.forms import without_control_characters
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
from portal.extensions import csrf, db, limiter
from portal.lists import bp
from portal.lists.forms import (
    ActionForm,
    ConfirmForm,
    ImportForm,
    ListForm,
    PostForm,
    PreferencesForm,
    PreferencesRequestForm,
    ScheduleForm,
    SubscribeForm,
    SubscriberFilterForm,
)
from portal.lists import services
from portal.lists.models import ImportJob, ImportStatus, ListPost, MailingList, PostStatus, Subscription
from portal.people.models import Person
from portal.people.privacy import value_in_words
from wtforms.fields.choices import SelectChoice



def _public_list(slug: str) -> MailingList:
    mailing_list = services.get_list_by_slug(slug)
    if not mailing_list.is_public:
        raise services.ListNotFound()
    return mailing_list



def _subscribe_ip_limit() -> str:
    return current_app.config.get("LISTS_SUBSCRIBE_LIMIT_PER_IP", "10/minute;60/hour")


# --- public pages ----------------------------------------------------------------------



@bp.route("/lists/")
def index():
    return render_template("lists/index.html", lists=services.public_lists(), language=current_language())


@bp.route("/lists/<slug>/subscribe", methods=["GET", "POST"])
@limiter.limit(_subscribe_ip_limit, methods=["POST"])
@limiter.limit("6/hour", key_func=per_typed_address("lists-subscribe"), methods=["POST"], deduct_when=form_accepted)
def subscribe(slug: str):
    mailing_list = _public_list(slug)
    form = SubscribeForm()
    language = current_language()
    if request.method == "GET":
        form.language.data = language
    wording = services.subscribe_wording(mailing_list, language)
    form.consent.label.text = wording  # the checkbox's label IS the recorded wording
    status = 200
    if form.validate_on_submit():
        try:
            services.request_subscription(
                mailing_list, form.email.data, form.name.data or "", form.language.data,
                wording, services.SUBSCRIBE_WORDING_VERSION, request_origin(), user_agent(), shown_in=language,
            )
        except DomainError as error:
            db.session.rollback()
            if error.status == 429:
                raise
            form.email.errors.append(str(error.message))
            status = error.status
        else:
            db.session.commit()
            return redirect(url_for("lists.check_email", slug=mailing_list.slug))
    elif request.method == "POST":
        status = 400
    return render_template("lists/subscribe.html", form=form, mailing_list=mailing_list,
                           wording=wording, language=language), status


@bp.route("/lists/<slug>/check-email")
def check_email(slug: str):
    # The same page whether the address was new, pending or already subscribed.
    return render_template("lists/check_email.html", mailing_list=_public_list(slug), language=current_language())


@bp.route("/lists/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    subscription = services.confirmation_for(token)
    speak_the_language_of(subscription.person)
    form = ConfirmForm()
    if form.validate_on_submit():
        subscription = services.confirm_subscription(token, shown_in=current_language(), confirm_ip=request_origin(),
                                                     confirm_user_agent=user_agent())
        db.session.commit()
        return render_template("lists/confirmed.html", subscription=subscription,
                               mailing_list=subscription.mailing_list, language=current_language())
    if request.method == "POST":
        abort(400)
    return render_template("lists/confirm.html", form=form, subscription=subscription,
                           mailing_list=subscription.mailing_list, language=current_language())


@bp.route("/lists/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def one_click_unsubscribe(token: str):
    """RFC 8058: a POST with `List-Unsubscribe=One-Click` (no cookie, no CSRF token)
    unsubscribes and answers 200 without redirect; a GET only shows the button."""
    subscription = services.subscription_for_unsubscribe_token(token)
    speak_the_language_of(subscription.person)
    mailing_list = subscription.mailing_list
    if request.method == "POST":
        if request.form.get("List-Unsubscribe") != "One-Click":
            abort(400)
        services.unsubscribe(subscription, method="one-click unsubscribe", ip=request_origin(),
                             user_agent=user_agent())
        db.session.commit()
        return render_template("lists/unsubscribed.html", mailing_list=mailing_list, language=current_language())
    return render_template("lists/unsubscribe.html", mailing_list=mailing_list, subscription=subscription,
                           token=token, language=current_language())


@bp.route("/lists/<slug>/archive")
def archive(slug: str):
    mailing_list = _public_list(slug)
    return render_template("lists/archive.html", mailing_list=mailing_list,
                           posts=services.list_posts(mailing_list), language=current_language())


@bp.route("/lists/<slug>/archive/<int:post_id>")
def archive_post(slug: str, post_id: int):
    mailing_list = _public_list(slug)
    post = db.get_or_404(ListPost, post_id)
    if post.list_id != mailing_list.id or post.status != PostStatus.SENT:
        abort(404)
    return render_template("lists/archive_post.html", mailing_list=mailing_list, post=post, language=current_language())


@bp.route("/lists/preferences", methods=["GET", "POST"])
@limiter.limit(_subscribe_ip_limit, methods=["POST"])
def preferences_request():
    form = PreferencesRequestForm()
    outcome = submit_form(form, lambda: services.request_preferences_link(form.email.data, ip=request_origin()),
                          error_field="email", redirect_to=url_for("lists.preferences_sent"))
    if isinstance(outcome, Response):
        return outcome
    return render_template("lists/preferences_request.html", form=form), outcome


@bp.route("/lists/preferences-sent")
def preferences_sent():
    return render_template("lists/preferences_sent.html")


@bp.route("/lists/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str):
    person = services.person_for_preferences(token)
    speak_the_language_of(person)
    lines = services.preference_lines(person)
    language = current_language()
    form = PreferencesForm()
    form.lists.choices = [SelectChoice(line.mailing_list.id, line.mailing_list.name(language)) for line in lines]
    if request.method == "GET":
        form.language.data = person.language if person.language in ("en", "fr") else "en"
        form.lists.data = [line.mailing_list.id for line in lines if line.subscribed]
    status = 200
    if form.validate_on_submit():
        result = services.update_preferences(
            person, language=form.language.data, wanted_list_ids=set(form.lists.data or []),
            wording=services.preferences_wording(language), ip=request_origin(), user_agent=user_agent(),
            shown_in=language,
        )
        db.session.commit()
        with force_locale(person.language or "en"):  # the next page speaks the language just chosen
            flash(_("Your choices are saved (%(joined)s joined, %(left)s left).",
                    joined=result["joined"], left=result["left"]), "success")
        return redirect(url_for("lists.preferences", token=token))
    if request.method == "POST":
        status = 400
    return render_template("lists/preferences.html", form=form, person=person, lines=lines,
                           memberships=services.group_memberships(person, language),
                           wording=services.preferences_wording(language), language=language), status


# --- organizer pages -------------------------------------------------------------------


def _local_to_utc(value: datetime) -> datetime:
    zone = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    return value.replace(tzinfo=zone).astimezone(ZoneInfo("UTC"))


@bp.route("/admin/lists/")
@organizer_required
def admin_index():
    lists = services.all_lists()
    counts = {mailing_list.id: services.count_subscribers(mailing_list) for mailing_list in lists}
    return render_template("lists/admin/index.html", lists=lists, counts=counts)


@bp.route("/admin/lists/new", methods=["GET", "POST"])
@organizer_required
def admin_new_list():
    return _edit_list(None)


@bp.route("/admin/lists/<int:list_id>/edit", methods=["GET", "POST"])
@organizer_required
def admin_edit_list(list_id: int):
    mailing_list = db.get_or_404(MailingList, list_id)
    if not mailing_list.is_public:
        abort(404)  # a group's list follows its group (groups area)
    return _edit_list(mailing_list)


def _edit_list(mailing_list: MailingList | None):
    form = ListForm(obj=mailing_list)
    if mailing_list is not None:
        del form.slug  # fixed once the list exists (save_public_list says why)

    def save():
        return services.save_public_list(
            mailing_list, slug=mailing_list.slug if mailing_list else form.slug.data, name_en=form.name_en.data,
            name_fr=form.name_fr.data or "",
            description_en=form.description_en.data or "", description_fr=form.description_fr.data or "",
            announce_only=form.announce_only.data, retention_months=form.retention_months.data,
            actor=current_user,
        )

    outcome = submit_form(form, save, error_field="slug", success=_("The list is saved."),
                          redirect_to=lambda saved: url_for("lists.admin_subscribers", list_id=saved.id))
    if isinstance(outcome, Response):
        return outcome
    return render_template("lists/admin/edit_list.html", form=form, mailing_list=mailing_list), outcome


@bp.route("/admin/lists/<int:list_id>")
@organizer_required
def admin_subscribers(list_id: int):
    mailing_list = db.get_or_404(MailingList, list_id)
    audit_page_view("lists.subscribers.viewed", f"list:{mailing_list.id}")
    filters = SubscriberFilterForm(request.args)
    filters.validate()
    query = (select(Subscription).join(Person, Person.id == Subscription.person_id)
             .options(contains_eager(Subscription.person))  # one query for the page's people
             .where(Subscription.list_id == mailing_list.id).order_by(Person.email))
    if filters.status.data and not filters.status.errors:
        query = query.where(Subscription.status == filters.status.data)
    if filters.q.data and not filters.q.errors:
        needle = f"%{fold(filters.q.data.strip())}%"
        query = query.where(or_(Person.email.like(needle), folded(Person.name).like(needle)))
    page = db.paginate(query, page=1 if filters.page.errors else filters.page.data or 1,
                       per_page=50, error_out=False, max_per_page=50)
    return render_template("lists/admin/subscribers.html", mailing_list=mailing_list, page=page,
                           filters=filters, counts=services.count_subscribers(mailing_list), in_words=value_in_words)


@bp.route("/admin/lists/<int:list_id>/subscribers/<int:subscription_id>")
@organizer_required
def admin_subscriber(list_id: int, subscription_id: int):
    subscription = db.get_or_404(Subscription, subscription_id)
    if subscription.list_id != list_id:
        abort(404)
    audit_page_view("lists.subscriber.viewed", f"subscription:{subscription.id}", person=subscription.person_id)
    return render_template("lists/admin/subscriber.html", subscription=subscription,
                           mailing_list=subscription.mailing_list, in_words=value_in_words,
                           history=services.consent_history(subscription.person, subscription.mailing_list),
                           other_history=[r for r in services.consent_history(subscription.person)
                                          if r.purpose != subscription.mailing_list.consent_purpose])


@bp.route("/admin/lists/<int:list_id>/export.csv")
@organizer_required
def admin_export(list_id: int):
    mailing_list = db.get_or_404(MailingList, list_id)
    audit_page_view("lists.subscribers.exported", f"list:{mailing_list.id}",
                    rows=services.subscriber_export_size(mailing_list))
    slug = mailing_list.slug

    def chunks():
        # Runs while the response streams: load afresh in the session that is live then.
        for chunk in services.subscriber_csv_chunks(db.get_or_404(MailingList, list_id)):
            yield chunk.encode("utf-8")

    return Response(stream_with_context(chunks()), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{slug}-subscribers.csv"'})


def _run_import_in_background(app, job_id: int) -> None:
    from portal.lists.jobs import process_import_job

    with app.app_context():
        try:
            process_import_job(job_id)
        finally:
            db.session.remove()


@bp.route("/admin/lists/<int:list_id>/import", methods=["GET", "POST"])
@organizer_required
def admin_import(list_id: int):
    from portal.lists.imports import INLINE_ROW_LIMIT, create_import_job, decode_upload
    from portal.lists.jobs import process_import_job

    mailing_list = db.get_or_404(MailingList, list_id)
    if not mailing_list.is_public:
        abort(404)  # a group's list is its members (groups area); create_import_job refuses too
    form = ImportForm()
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        try:
            text = decode_upload(upload.read())
            # The browser's name for the file: a forged one may hold NUL (PostgreSQL refuses it).
            filename = without_control_characters(upload.filename or "") or "upload.csv"
            job = create_import_job(mailing_list, text, filename=filename,
                                    ask_unconfirmed=form.ask_unconfirmed.data, actor=current_user)
        except DomainError as error:
            db.session.rollback()
            form.file.errors.append(str(error.message))
            status = error.status
        else:
            db.session.commit()
            job_id = job.id
            if job.total_rows <= INLINE_ROW_LIMIT:
                process_import_job(job_id)
            elif current_app.config.get("LISTS_IMPORT_IN_THREAD", True):
                # The job row is the truth: if this thread dies, process_pending_imports
                # takes the import over when its lease ends.
                threading.Thread(target=_run_import_in_background,
                                 args=(current_app._get_current_object(), job_id), daemon=True).start()
            return redirect(url_for("lists.admin_import_job", job_id=job_id))
    elif request.method == "POST":
        status = 400
    return render_template("lists/admin/import.html", form=form, mailing_list=mailing_list), status


@bp.route("/admin/lists/imports/<int:job_id>")
@organizer_required
def admin_import_job(job_id: int):
    from portal.lists.imports import refusal_in_words, row_problem

    job = db.get_or_404(ImportJob, job_id)
    return render_template("lists/admin/import_job.html", job=job, mailing_list=job.mailing_list,
                           finished=job.status not in (ImportStatus.PENDING, ImportStatus.RUNNING),
                           row_problem=row_problem,
                           refusal=refusal_in_words(job.report) if (job.report or {}).get("error") else "")


@bp.route("/admin/lists/<int:list_id>/posts")
@organizer_required
def admin_posts(list_id: int):
    mailing_list = db.get_or_404(MailingList, list_id)
    posts = db.session.execute(
        select(ListPost).where(ListPost.list_id == mailing_list.id).order_by(ListPost.created_at.desc(), ListPost.id.desc())
    ).scalars().all()
    return render_template("lists/admin/posts.html", mailing_list=mailing_list, posts=posts,
                           recipients=services.recipient_count(mailing_list))


@bp.route("/admin/lists/<int:list_id>/posts/new", methods=["GET", "POST"])
@organizer_required
def admin_new_post(list_id: int):
    mailing_list = db.get_or_404(MailingList, list_id)
    form = PostForm()
    outcome = submit_form(
        form,
        lambda: services.save_post(mailing_list, None, subject=form.subject.data, body=form.body.data,
                                   author=current_user, language=form.language.data),
        error_field="subject", success=_("Draft saved. Check the preview below."),
        redirect_to=lambda post: url_for("lists.admin_post", post_id=post.id),
    )
    if isinstance(outcome, Response):
        return outcome
    return render_template("lists/admin/edit_post.html", form=form, mailing_list=mailing_list, post=None), outcome


def _post_page(post: ListPost, form: PostForm, status: int = 200, schedule_form: ScheduleForm | None = None):
    from portal.lists.notifications import post_context
    from portal.mail.services import render_email

    mailing_list = post.mailing_list
    # As a subscriber reading the page's language receives it (footer, list name included).
    language = current_language()
    context = post_context(post, language)
    context["unsubscribe_url"] = current_app.config["PORTAL_BASE_URL"].rstrip("/") + "/lists/unsubscribe/…"
    subject, text, _html = render_email("lists/post", language, recipient=None, **context)
    editable = post.status in (PostStatus.DRAFT, PostStatus.SCHEDULED)
    if not editable:
        # A post already sent has no form on its page: a refused save's message (chiefly that
        # it can no longer be changed) would be on a field nobody sees, so it goes above the page.
        refusals = [*form.errors.values(), *(schedule_form.errors.values() if schedule_form else ())]
        for message in dict.fromkeys(str(m) for messages in refusals for m in messages):
            flash(message, "error")
    return render_template(
        "lists/admin/edit_post.html", form=form, mailing_list=mailing_list, post=post,
        preview_subject=subject, preview_text=text.partition(post.body) if post.body and post.body in text else (text, "", ""),
        action_form=ActionForm(),
        schedule_form=schedule_form or ScheduleForm(), recipients=services.recipient_count(mailing_list),
        editable=editable,
    ), status


@bp.route("/admin/lists/posts/<int:post_id>", methods=["GET", "POST"])
@organizer_required
def admin_post(post_id: int):
    post = db.get_or_404(ListPost, post_id)
    form = PostForm(obj=post)
    # Editing takes a scheduled post back to draft (what was scheduled is not what goes out):
    # say so, rather than let it silently never go.
    saved = (_("Draft saved. It is no longer scheduled: schedule it again when it is ready.")
             if post.status == PostStatus.SCHEDULED else _("Draft saved."))
    outcome = submit_form(
        form,
        lambda: services.save_post(post.mailing_list, post, subject=form.subject.data, body=form.body.data,
                                   author=current_user, language=form.language.data),
        error_field="subject", success=saved,
        redirect_to=url_for("lists.admin_post", post_id=post.id),
    )
    if isinstance(outcome, Response):
        return outcome
    # A refused save was rolled back, which expired the post: read it again (a 404 if it has
    # gone meanwhile); otherwise this is the same object, with no query.
    return _post_page(db.get_or_404(ListPost, post_id), form, outcome)


def _post_action(post_id: int, action) -> Response:
    post = db.get_or_404(ListPost, post_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        message = action(post)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "error")
        return redirect(url_for("lists.admin_post", post_id=post_id))
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("lists.admin_post", post_id=post_id))


@bp.route("/admin/lists/posts/<int:post_id>/test", methods=["POST"])
@organizer_required
def admin_post_test(post_id: int):
    def action(post):
        services.send_post_test(post, current_user, current_language())
        return _("A test copy is on its way to %(email)s.", email=current_user.email)

    return _post_action(post_id, action)


@bp.route("/admin/lists/posts/<int:post_id>/send", methods=["POST"])
@organizer_required
def admin_post_send(post_id: int):
    def action(post):
        count = services.send_post_now(post, actor=current_user)
        return _("The post is on its way to %(count)s subscribers.", count=count)

    return _post_action(post_id, action)


@bp.route("/admin/lists/posts/<int:post_id>/unschedule", methods=["POST"])
@organizer_required
def admin_post_unschedule(post_id: int):
    def action(post):
        services.unschedule_post(post, actor=current_user)
        return _("The post is back to draft; it will not be sent.")

    return _post_action(post_id, action)


@bp.route("/admin/lists/posts/<int:post_id>/schedule", methods=["POST"])
@organizer_required
def admin_post_schedule(post_id: int):
    post = db.get_or_404(ListPost, post_id)
    schedule_form = ScheduleForm()
    outcome = submit_form(
        schedule_form,
        lambda: services.schedule_post(post, _local_to_utc(schedule_form.send_at.data), actor=current_user),
        error_field="send_at", success=_("The post is scheduled."),
        redirect_to=url_for("lists.admin_post", post_id=post_id),
    )
    if isinstance(outcome, Response):
        return outcome
    # As in admin_post: a refused schedule expired the post, so it is read again.
    post = db.get_or_404(ListPost, post_id)
    return _post_page(post, PostForm(obj=post, formdata=None), outcome, schedule_form)
