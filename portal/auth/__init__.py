"""Organizer accounts: login, logout, roles, the limits of a login session, password changes."""
from flask import Blueprint

bp = Blueprint("auth", __name__, cli_group=None)

from portal.auth import cli, views  # noqa: E402,F401
