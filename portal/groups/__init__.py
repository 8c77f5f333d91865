"""Groups."""
from flask import Blueprint

bp = Blueprint("groups", __name__, cli_group=None)

from portal.groups import cli, views  # noqa: E402,F401
