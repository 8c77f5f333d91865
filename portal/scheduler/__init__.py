"""The scheduler process: a clock that runs fixed jobs; the database holds what is due."""
from flask import Blueprint

bp = Blueprint("scheduler", __name__, cli_group=None)
