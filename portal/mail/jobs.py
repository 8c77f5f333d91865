"""The scheduler's mail job: the same drain as `flask send-mail`."""
from __future__ import annotations

from portal.mail.delivery import deliver_due


def deliver_outbox() -> int:
    """Deliver every due outbox message; returns how many were processed.

    Harmless to run twice or late: claims are exclusive and only due rows are taken.
    """
    return deliver_due()
