from __future__ import annotations

from flask import render_template

from portal.admin import bp
from portal.core.permissions import organizer_required


@bp.route("/")
@organizer_required
def dashboard():
    return render_template("admin/dashboard.html")
