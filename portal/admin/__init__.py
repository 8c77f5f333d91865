"""Organizer back office: dashboard, and the demo data command."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin", cli_group=None)

from portal.admin import views  # noqa: E402,F401
