"""Events."""
from flask import Blueprint

bp = Blueprint("events", __name__, cli_group=None)

from portal.events import cli, views  # noqa: E402,F401
