"""People: one Person per email address, their sector, and the consent they gave."""
from flask import Blueprint

bp = Blueprint("people", __name__, cli_group=None)

from portal.people import views  # noqa: E402,F401
