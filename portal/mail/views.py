"""The organizer's Mail page: the outbox's state, every message as its recipient sees it."""
from __future__ import annotations

from email.header import decode_header, make_header

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from portal.core.logging import mask_secrets
from portal.core.permissions import mail_reader_required
from portal.core.web import audit_page_view, request_origin
from portal.extensions import db
from portal.mail import bp
from portal.mail.forms import STATE_LABELS, OutboxFilterForm, RetryFailedForm, RetryMessageForm
from portal.mail.models import OutboxMessage, OutboxState
from portal.mail.services import count_by_state, recent_errors, retry_failed, retry_message

PER_PAGE = 50

#: The message's own HTML is shown in a sandboxed frame under a policy that allows nothing
#: to run or load: no scripts, no remote images (tracking pixels), no forms.
HTML_PREVIEW_POLICY = "sandbox; default-src 'none'; frame-ancestors 'self'"


@bp.app_template_filter("decoded_header")
def decoded_header(value: str | None) -> str:
    """A header value as the recipient's mail program shows it (RFC 2047 words decoded)."""
    try:
        return str(make_header(decode_header(value or "")))
    except (ValueError, LookupError, UnicodeDecodeError):
        return value or ""


@bp.app_template_filter("keys_hidden")
def keys_hidden(text: str | None) -> str:
    """A message's text with the recipient's own keys masked (manage, unsubscribe, my-data and
    download links, check-in codes): whoever reads the outbox must not be able to act as the
    recipient. In the local mailbox (no MAIL_SERVER) this page is where messages arrive, so
    their links stay usable there."""
    if not text or not current_app.config.get("MAIL_SERVER"):
        return text or ""
    return mask_secrets(text)


def _load(message_id: int) -> OutboxMessage:
    """The message, or the 404 page (ids past the database's integer range included)."""
    if not 0 < message_id < 2**63:
        abort(404)
    return db.get_or_404(OutboxMessage, message_id)


@bp.route("/admin/mail")
@mail_reader_required
def admin_outbox():
    form = OutboxFilterForm(request.args)
    if request.args and not form.validate():
        return render_template(
            "mail/outbox.html", form=form, counts=count_by_state(), errors=recent_errors(),
            pagination=None, retry_form=RetryFailedForm(), labels=STATE_LABELS,
        ), 400
    # Addresses and subjects of everyone's mail: reading them is on record, as other lists are.
    audit_page_view("mail.outbox.viewed", "outbox", **({"state": form.state.data} if form.state.data else {}))
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if form.state.data:
        query = query.where(OutboxMessage.state == form.state.data)
    pagination = db.paginate(query, page=form.page.data or 1, per_page=PER_PAGE, error_out=False)
    return render_template(
        "mail/outbox.html", form=form, counts=count_by_state(), errors=recent_errors(),
        pagination=pagination, retry_form=RetryFailedForm(), labels=STATE_LABELS,
        state=form.state.data or "",
    )


@bp.route("/admin/mail/retry", methods=["POST"])
@mail_reader_required
def admin_retry_failed():
    if not RetryFailedForm().validate_on_submit():
        abort(400)  # only a missing CSRF token gets here, and CSRFProtect answers that first
    count = retry_failed(actor=current_user, origin=request_origin())
    db.session.commit()
    flash(ngettext("%(num)d failed message was queued again.",
                   "%(num)d failed messages were queued again.", count), "success")
    return redirect(url_for("mail.admin_outbox"))


@bp.route("/admin/mail/<int:message_id>")
@mail_reader_required
def admin_message(message_id: int):
    message = _load(message_id)
    audit_page_view("mail.message.viewed", f"outbox_message:{message.id}", person=message.person_id)
    return render_template(
        "mail/message.html", message=message, labels=STATE_LABELS,
        retry_form=RetryMessageForm(), can_retry=message.state == OutboxState.FAILED.value,
    )


@bp.route("/admin/mail/<int:message_id>/html")
@mail_reader_required
def admin_message_html(message_id: int):
    message = _load(message_id)
    audit_page_view("mail.message.viewed", f"outbox_message:{message.id}", person=message.person_id, part="html")
    response = Response(keys_hidden(message.body_html), mimetype="text/html")
    response.headers["Content-Security-Policy"] = HTML_PREVIEW_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/admin/mail/<int:message_id>/retry", methods=["POST"])
@mail_reader_required
def admin_retry_message(message_id: int):
    message = _load(message_id)
    form = RetryMessageForm()
    if form.validate_on_submit() and retry_message(message, actor=current_user, origin=request_origin()):
        db.session.commit()
        flash(_("The message was queued again."), "success")
    else:
        flash(_("Only a failed message can be queued again."), "error")
    return redirect(url_for("mail.admin_message", message_id=message.id))
