"""The scheduler process: a clock that runs fixed jobs; the database holds what is due."""
from flask import Blueprint

bp = Blueprint("scheduler", __name__, cli_group=None)

from portal.scheduler import cli  # noqa: E402,F401
