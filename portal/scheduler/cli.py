"""`flask --app portal scheduler`: the scheduler process (one active, others standby)."""
from __future__ import annotations

import logging
import signal
import sys
import threading

import click
from flask import current_app

from portal.scheduler import bp


def _configure_logging(app) -> None:
    from flask.logging import default_handler

    from portal.core.logging import TokenMaskingFilter

    app.logger.removeHandler(default_handler)  # one line per event: the root handler below

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(TokenMaskingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # No line per run, nor for a run skipped because the previous one is still going (the
    # job catches up by itself); missed runs ("was missed by") still show as warnings.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


@bp.cli.command("scheduler")
@click.option("--once", is_flag=True, help="Run every job once, now, and exit (no lock, no loop).")
def scheduler_command(once: bool) -> None:
    """Run the scheduler: fixed jobs on a clock; standby while another scheduler is active."""
    from portal.scheduler.runner import resolve_jobs, run_job, run_scheduler

    app = current_app._get_current_object()
    _configure_logging(app)
    if once:
        for job in resolve_jobs(app):
            run_job(app, job)
        return
    stop = threading.Event()

    def _stop(signum, _frame) -> None:
        logging.getLogger("portal.scheduler").info("signal %s: stopping after running jobs finish", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run_scheduler(app, stop)
