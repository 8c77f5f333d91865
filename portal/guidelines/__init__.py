"""Guidelines."""
from flask import Blueprint

bp = Blueprint("guidelines", __name__, cli_group=None)

from portal.guidelines import views  # noqa: E402,F401
