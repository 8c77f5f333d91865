"""JSON endpoints (none yet)."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api", cli_group=None)
