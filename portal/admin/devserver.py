"""`flask run-dev`: the development server `make run` starts.

It also runs, in this one process, what production runs as separate processes: the
scheduler (so a newcomer sees a guideline release happen) and outbox delivery (to the local
mailbox under instance/ when no MAIL_SERVER is set). The reloader is off on purpose: it would
start every background worker twice.
"""
from __future__ import annotations

import importlib

import click
from flask import Flask


def _start(app: Flask, dotted: str) -> bool:
    module_name, _, function_name = dotted.rpartition(".")
    try:
        starter = getattr(importlib.import_module(module_name), function_name)
    except (ModuleNotFoundError, AttributeError):
        app.logger.warning("%s is not available; skipping it", dotted)
        return False
    starter(app)
    return True


def register_dev_command(app: Flask) -> None:
    @app.cli.command("run-dev")
    @click.option("--host", default="127.0.0.1")
    @click.option("--port", default=5000, type=int)
    def run_dev(host: str, port: int) -> None:
        """Serve the portal with the scheduler and mail delivery in-process."""
        from flask import current_app

        application = current_app._get_current_object()
        # The scheduler runs every fixed job, outbox delivery included; without it, deliver
        # mail on a thread of our own so confirmations still arrive.
        if not _start(application, "portal.scheduler.runner.start_in_process_scheduler"):
            _start(application, "portal.mail.delivery.start_background_delivery")
        click.echo(f"Serving the portal at http://{host}:{port} (Ctrl+C to stop)")
        # Not app.run(): Flask ignores it inside a `flask` command (FLASK_RUN_FROM_CLI), and
        # no reloader, which would start a second scheduler in its child process.
        from werkzeug.serving import run_simple

        run_simple(host, port, application, use_reloader=False, use_debugger=False, threaded=True)
