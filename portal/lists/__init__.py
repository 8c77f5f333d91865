"""Mailing lists: subscriptions with consent, posts, one-click unsubscribe."""
from flask import Blueprint

bp = Blueprint("lists", __name__, cli_group=None)

from portal.lists import cli, views  # noqa: E402,F401
