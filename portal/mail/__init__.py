"""Mail: the database outbox, rendering, and delivery over SMTP or to the local mailbox."""
from flask import Blueprint

bp = Blueprint("mail", __name__, cli_group=None)

from portal.mail import cli, views  # noqa: E402,F401
