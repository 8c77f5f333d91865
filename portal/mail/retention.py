"""Retention for the outbox: a message's content and address go some time after it is done.

Called by the privacy area's purge job (`portal.people.jobs.purge_expired_personal_data`),
which runs every area's `purge_due` in its own transaction; `forecast` feeds the organizers'
"what is purged, and when" page.

Rule (the period is the setting `MAIL_RETENTION_DAYS`, 90 unless set otherwise): a message
that is done (sent, failed for good, or withheld) is emptied that long after it was sent, or
after it was queued if it never went: its address, subject, text, headers and the server's
last reply are blanked and its attachments (calendar files, QR codes) deleted. The row
itself stays, as erasure leaves it: its key is what stops the same notice being queued a
second time, and counts by purpose stay true.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.extensions import db
from portal.mail.delivery import forget_mailbox_copies
from portal.mail.models import OutboxAttachment, OutboxMessage, OutboxState

DEFAULT_RETENTION_DAYS = 90

#: States a message does not leave again (a failed one leaves only if an organizer retries it,
#: which is not possible once it is emptied; the outbox page says so by showing no address).
DONE = (OutboxState.SENT.value, OutboxState.FAILED.value, OutboxState.WITHHELD.value)


def retention_days() -> int:
    """The setting `MAIL_RETENTION_DAYS` (at least 1), 90 by default."""
    try:
        days = int(current_app.config.get("MAIL_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))
    except (TypeError, ValueError):
        days = DEFAULT_RETENTION_DAYS
    return max(days, 1)


def _done_at():
    return func.coalesce(OutboxMessage.sent_at, OutboxMessage.created_at)


def _still_holding():
    """Done messages not emptied yet (every message has a text part; erasure empties it too,
    leaving only the anonymous placeholder address)."""
    return OutboxMessage.state.in_(DONE) & (OutboxMessage.body_text != "")


def purge_due(moment: datetime) -> int:
    """Empty every done message whose time has come; returns how many were emptied.

    Idempotent: an emptied message no longer matches. Flushes; the caller commits.
    """
    cutoff = moment - timedelta(days=retention_days())
    due = select(OutboxMessage.id).where(_still_holding(), _done_at() <= cutoff)
    ids = list(db.session.execute(due).scalars())
    empty_messages(ids)
    return len(ids)


def empty_messages(ids: list[int], *, detach: bool = False) -> None:
    """Blank these messages' address, subject, text, headers and last reply and delete their
    attachments; the rows and their keys stay (nothing is queued twice). `detach` also
    unties them from the person (another area's record of them was just anonymized, and the
    row must not lead back) and withholds any not yet sent. Flushes; the caller commits."""
    outbox = OutboxMessage.__table__
    attachments = OutboxAttachment.__table__
    values = dict(to_address="", subject="", body_text="", body_html="", headers={}, last_error="")
    if detach:
        values["person_id"] = None
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        db.session.execute(attachments.delete().where(attachments.c.message_id.in_(chunk)))
        db.session.execute(outbox.update().where(outbox.c.id.in_(chunk)).values(**values))
        if detach:
            db.session.execute(outbox.update().where(
                outbox.c.id.in_(chunk),
                outbox.c.state.in_([OutboxState.QUEUED.value, OutboxState.RETRY.value]),
            ).values(state=OutboxState.WITHHELD.value))
    db.session.flush()
    db.session.expire_all()  # Core writes: no stale outbox objects for the rest of the transaction
    forget_mailbox_copies(ids)


def forecast(moment: datetime) -> list:
    """What the rule empties now and over the next 90 days, by day. Changes nothing."""
    from portal.people.retention import FORECAST_HORIZON, Forecast, _by_day

    kept = timedelta(days=retention_days())
    moments = [done + kept for done in db.session.execute(
        select(_done_at()).where(_still_holding(), _done_at() <= moment + FORECAST_HORIZON - kept)
    ).scalars()]
    due, upcoming = _by_day(moments, moment)
    return [Forecast(
        "mail.sent_messages",
        _l("Messages the portal sent (address, subject, text, attached calendar files and QR codes) "
           "are emptied; that a message of a kind went out is kept, so it is never sent twice."),
        _l("%(days)s days after it was sent (or queued, if it never went)", days=retention_days()),
        due, upcoming,
    )]
