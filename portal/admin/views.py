"""The organizer dashboard and the audit log viewer."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app, render_template, request
from sqlalchemy import func, select

from portal.admin import bp
from portal.admin.forms import AuditFilterForm
from portal.core.audit import AuditEntry
from portal.core.permissions import admin_required, organizer_required
from portal.core.web import audit_page_view
from portal.extensions import db

AUDIT_PAGE_SIZE = 50


@bp.route("/")
@organizer_required
def dashboard():
    return render_template("admin/dashboard.html")


def _start_of_local_day(day, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


@bp.route("/audit")
@admin_required
def audit_log():
    """Who did what with personal data, newest first, filterable; read-only by design."""
    form = AuditFilterForm(request.args)
    if request.args and not form.validate():
        return render_template("admin/audit.html", form=form, page=None), 400
    query = select(AuditEntry)
    if form.action.data:
        action = form.action.data.strip()
        # "people." shows a whole area; a full name shows one action.
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if form.actor.data:
        query = query.where(
            func.lower(AuditEntry.actor_label).contains(form.actor.data.strip().casefold(), autoescape=True)
        )
    zone = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    if form.date_from.data:
        query = query.where(AuditEntry.at >= _start_of_local_day(form.date_from.data, zone))
    if form.date_to.data:
        query = query.where(AuditEntry.at < _start_of_local_day(form.date_to.data + timedelta(days=1), zone))
    page = db.paginate(
        query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()),
        page=form.page.data or 1, per_page=AUDIT_PAGE_SIZE, error_out=False,
    )
    # Reading the log (login addresses, who was erased) is itself on record.
    filters = form.link_args("page")
    html = render_template("admin/audit.html", form=form, page=page, filters=filters)
    audit_page_view("admin.audit.viewed", "")
    return html
