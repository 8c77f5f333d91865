"""Scheduled work for lists: send posts that are due, run uploaded imports.

Both poll the database, claim rows with a guarded UPDATE (checked by row count), commit
their own work and are harmless when run twice, late, or from two processes.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from portal.core.audit import record_audit
from portal.core.clock import now
from portal.core.db import writing
from portal.extensions import db
from portal.lists.models import ImportJob, ImportStatus, ListPost, PostStatus

#: A running import belongs to its worker for this long past its last sign of life (each
#: 5,000 rows checked, and the start of the import itself); then the list-imports job takes
#: it over. So a web worker restarted mid-import strands it for two minutes, not more.
IMPORT_LEASE = timedelta(minutes=2)


class ImportTakenOver(Exception):
    """This worker's lease ran out and another took the import over: stop, change nothing."""


def send_due_posts() -> int:
    """Fan out every scheduled post whose time has come; returns how many were sent.

    Each post is claimed (scheduled -> sending) and queued to its recipients in ONE
    transaction, so a crash leaves it scheduled and nothing queued, and a second run finds
    nothing to claim.
    """
    from portal.lists.services import claim_post, fan_out_post

    due = list(db.session.execute(
        select(ListPost.id).where(ListPost.status == PostStatus.SCHEDULED.value, ListPost.send_at <= now())
        .order_by(ListPost.send_at)
    ).scalars())
    db.session.rollback()
    sent = 0
    for post_id in due:
        with writing():
            try:
                if not claim_post(post_id, due_only=True):
                    db.session.rollback()
                    continue
                post = db.session.get(ListPost, post_id)
                count = fan_out_post(post)
                record_audit("lists.post.sent", actor_label="scheduler", subject=f"list_post:{post_id}",
                             recipients=count)
                db.session.commit()
                sent += 1
            except Exception:
                db.session.rollback()
                current_app.logger.exception("list post %s could not be sent", post_id)
    return sent


def process_import_job(job_id: int) -> bool:
    """Claim one uploaded import and run it; False if someone else has it or it is done.

    Progress is committed while rows are checked; the import itself is one transaction
    together with the job's final state, so it is all or nothing.
    """
    from portal.lists.imports import (
        IMPORT_STOPPED,
        ImportRefused,
        ImportReport,
        import_subscribers,
        parse_rows,
        refusal_record,
    )

    # The lease's end is also this worker's mark on the job: every renewal and the import
    # itself go ahead only while it is still the one we set.
    held = now() + IMPORT_LEASE
    with writing():
        claimed = db.session.execute(
            update(ImportJob).where(
                ImportJob.id == job_id,
                or_(ImportJob.status == ImportStatus.PENDING.value,
                    (ImportJob.status == ImportStatus.RUNNING.value) & (ImportJob.lease_until < now())),
            ).values(status=ImportStatus.RUNNING.value, lease_until=held, processed_rows=0)
            .execution_options(synchronize_session=False)
        ).rowcount == 1
        db.session.commit()
    if not claimed:
        return False

    job = db.session.get(ImportJob, job_id)
    text, list_id, account_id = job.content, job.list_id, job.account_id
    ask, filename = job.ask_unconfirmed, job.filename
    db.session.rollback()

    def renew(values: dict) -> None:
        nonlocal held
        renewed = now() + IMPORT_LEASE
        with db.engine.begin() as connection:  # a short transaction of its own: the page sees it
            if connection.execute(
                update(ImportJob).where(ImportJob.id == job_id, ImportJob.lease_until == held,
                                        ImportJob.status == ImportStatus.RUNNING.value)
                .values(lease_until=renewed, **values)
            ).rowcount != 1:
                raise ImportTakenOver()
        held = renewed

    failure = None
    report = ImportReport()
    try:
        # Checking rows takes no database lock, so progress commits meanwhile.
        rows = parse_rows(text, report, lambda checked: renew({"processed_rows": checked}))
    except ImportRefused as error:
        failure = error.message
    except ImportTakenOver:
        return False
    with writing():
        # Still ours? This also locks the job row until the import commits, so no one can
        # take it over while it runs, however long it takes.
        if db.session.execute(
            update(ImportJob).where(ImportJob.id == job_id, ImportJob.lease_until == held,
                                    ImportJob.status == ImportStatus.RUNNING.value)
            .values(lease_until=now() + IMPORT_LEASE).execution_options(synchronize_session=False)
        ).rowcount != 1:
            db.session.rollback()
            return False
        try:
            if failure is not None:
                raise ImportRefused(failure)
            from portal.auth.models import OrganizerAccount
            from portal.lists.models import MailingList

            mailing_list = db.session.get(MailingList, list_id)
            actor = db.session.get(OrganizerAccount, account_id) if account_id else None
            report = import_subscribers(mailing_list, text, ask_unconfirmed=ask, actor=actor,
                                        filename=filename, parsed=(rows, report))
            job = db.session.get(ImportJob, job_id)
            job.status = (ImportStatus.REJECTED if report.rejected else ImportStatus.DONE).value
            job.report = report.as_dict()
            job.processed_rows = report.total
        except ImportRefused as error:
            db.session.rollback()
            job = db.session.get(ImportJob, job_id)
            job.status = ImportStatus.FAILED.value
            job.report = refusal_record(error.message)
        except Exception:
            db.session.rollback()
            current_app.logger.exception("import %s failed", job_id)
            job = db.session.get(ImportJob, job_id)
            job.status = ImportStatus.FAILED.value
            job.report = refusal_record(IMPORT_STOPPED)
        job.content = ""
        job.finished_at = now()
        job.lease_until = None
        db.session.commit()
    return True


def process_pending_imports() -> int:
    """Run every uploaded import waiting (or abandoned by a crashed worker); returns how many."""
    waiting = list(db.session.execute(
        select(ImportJob.id).where(or_(
            ImportJob.status == ImportStatus.PENDING.value,
            (ImportJob.status == ImportStatus.RUNNING.value) & (ImportJob.lease_until < now()),
        )).order_by(ImportJob.id)
    ).scalars())
    db.session.rollback()
    return sum(1 for job_id in waiting if process_import_job(job_id))
