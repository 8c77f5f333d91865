"""Scheduled work of the guidelines area: releasing guidelines whose time has come."""
from __future__ import annotations

import logging

from sqlalchemy import select

from portal.core.clock import now
from portal.core.db import writing
from portal.extensions import db
from portal.guidelines.models import Guideline, GuidelineStatus
from portal.guidelines.services import claim_release, queue_release_notices

log = logging.getLogger(__name__)


def release_due_guidelines() -> int:
    """Release every scheduled guideline whose release time has passed; returns how many.

    Late policy: a release missed while the scheduler was down happens as soon as a
    scheduler runs again, whatever the delay, unless it was withdrawn or rescheduled first.

    Each release is one transaction: the guarded claim (status and release time as read)
    and the queueing of every notice commit together, so a crash leaves either a released
    guideline with all its notices or a scheduled one with none, and the next run redoes it.
    Running this twice, or in two processes at once, releases each guideline once.
    """
    moment = now()
    due = db.session.execute(
        select(Guideline.id, Guideline.release_at)
        .where(Guideline.status == GuidelineStatus.SCHEDULED.value, Guideline.release_at <= moment)
        .order_by(Guideline.release_at, Guideline.id)
    ).all()
    db.session.rollback()  # end the read; each release below is its own write transaction
    released = 0
    for guideline_id, release_at in due:
        try:
            with writing():
                guideline = claim_release(guideline_id, release_at, moment)
                if guideline is None:
                    db.session.rollback()
                    continue
                log.info("releasing guideline %s (late by %s): queueing notices",
                         guideline_id, moment - release_at)
                queued = queue_release_notices(guideline)
                db.session.commit()
            log.info("released guideline %s: %s notices queued", guideline_id, queued)
            released += 1
        except Exception:
            db.session.rollback()
            log.exception("releasing guideline %s failed; it stays scheduled and is retried", guideline_id)
    return released
