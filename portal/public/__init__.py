"""The public front door: home page, language choice, privacy notice."""
from flask import Blueprint

bp = Blueprint("public", __name__, cli_group=None)

from portal.public import views  # noqa: E402,F401
