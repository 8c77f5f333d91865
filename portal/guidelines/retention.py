"""Retention for guidelines: who asked for a copy, and who was told of a release, goes after
a set time; the anonymous download counts stay.

Called by the privacy area's purge job (`portal.people.jobs.purge_expired_personal_data`),
which runs every area's `purge_due` in its own transaction; `forecast` feeds the organizers'
"what is purged, and when" page.

Rules (a month counts 30 days, as the groups and lists areas do; the period is the setting
`GUIDELINE_RETENTION_MONTHS`, 24 unless set otherwise):
- a confirmed copy request (language, accessible format asked for and its details, the
  opt-in ticked) is deleted that long after the guideline was released. A request for a
  guideline withdrawn before release is deleted that long after it was confirmed. While the
  guideline waits for its release, the request stays: it is what the release acts on;
- a release notice row (this person was told of this version, which also tells them of a
  later revision) is deleted that long after the notice was queued. After that, a revision
  reaches them only if they asked again or are on the "Guideline releases" list;
- unchanged and not here: requests never confirmed go 30 days after they were asked for,
  and download links (90 days valid) 30 days after they expired (both the people area's
  rules). Download records hold no person, only the sector, so "downloads by sector" stays
  true.
Once nothing else is left, the people area erases the person 24 months after their last
consent ended.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.core.db import delete_by_ids
from portal.extensions import db
from portal.guidelines.models import CopyRequest, CopyRequestStatus, Guideline, GuidelineStatus, ReleaseNotice

#: Months count 30 days.
MONTH = timedelta(days=30)
DEFAULT_RETENTION_MONTHS = 24


def retention_months() -> int:
    """The setting `GUIDELINE_RETENTION_MONTHS` (at least 1), 24 by default."""
    try:
        months = int(current_app.config.get("GUIDELINE_RETENTION_MONTHS", DEFAULT_RETENTION_MONTHS))
    except (TypeError, ValueError):
        months = DEFAULT_RETENTION_MONTHS
    return max(months, 1)


def _kept() -> timedelta:
    return MONTH * retention_months()


def _confirmed_requests() -> list[tuple[int, datetime]]:
    """(copy request id, moment it falls due) for every confirmed request that has a due
    moment: its guideline was released, or withdrawn without a release."""
    kept = _kept()
    rows = db.session.execute(
        select(CopyRequest.id, CopyRequest.confirmed_at, CopyRequest.created_at,
               Guideline.status, Guideline.released_at)
        .join(Guideline, Guideline.id == CopyRequest.guideline_id)
        .where(CopyRequest.status == CopyRequestStatus.CONFIRMED.value)
        .order_by(CopyRequest.id)
    ).all()
    found = []
    for rid, confirmed_at, created_at, status, released_at in rows:
        if released_at is not None:
            found.append((rid, released_at + kept))
        elif status == GuidelineStatus.WITHDRAWN:
            found.append((rid, (confirmed_at or created_at) + kept))
    return found


def _notices() -> list[tuple[int, datetime]]:
    kept = _kept()
    return [(nid, created_at + kept) for nid, created_at in db.session.execute(
        select(ReleaseNotice.id, ReleaseNotice.created_at).order_by(ReleaseNotice.id)
    ).all()]


def purge_due(moment: datetime) -> int:
    """Delete the confirmed copy requests and the release notices whose time has come.

    Idempotent: a deleted row is not found again. Flushes; the caller commits. Returns how
    many rows were deleted.
    """
    requests = [rid for rid, due_at in _confirmed_requests() if due_at <= moment]
    notices = [nid for nid, due_at in _notices() if due_at <= moment]
    count = delete_by_ids(CopyRequest, requests, CopyRequest.status == CopyRequestStatus.CONFIRMED.value)
    count += delete_by_ids(ReleaseNotice, notices)
    db.session.flush()
    db.session.expire_all()  # bulk deletes: no stale objects for the rest of the transaction
    return count


def forecast(moment: datetime) -> list:
    """What the rules purge now and over the next 90 days, by day. Changes nothing."""
    from portal.people.retention import Forecast, _by_day

    months = retention_months()
    due, upcoming = _by_day([due_at for _rid, due_at in _confirmed_requests()], moment)
    notice_due, notice_upcoming = _by_day([due_at for _nid, due_at in _notices()], moment)
    return [
        Forecast(
            "guidelines.copy_requests",
            _l("Confirmed copy requests (language, accessible format and its details) are deleted. "
               "Download counts by sector hold no one's identity and are kept."),
            _l("%(months)s months after the guideline's release (or after the request was confirmed, "
               "for a guideline withdrawn before release)", months=months),
            due, upcoming,
        ),
        Forecast(
            "guidelines.release_notices",
            _l("The record that someone was told of a guideline release (it also tells them of a later "
               "revision) is deleted."),
            _l("%(months)s months after the notice was queued", months=months),
            notice_due, notice_upcoming,
        ),
    ]
