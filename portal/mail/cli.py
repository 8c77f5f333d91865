"""`flask --app portal send-mail`: drain the outbox once, or keep draining with --watch."""
from __future__ import annotations

import signal
import threading

import click

from portal.mail import bp
from portal.mail.delivery import DeliveryReport, drain, watch


def _summary(report: DeliveryReport) -> str:
    line = (f"sent: {report.sent}, retry: {report.retried}, failed: {report.failed}, "
            f"withheld: {report.withheld}")
    if report.unreachable:
        line += " (mail server unreachable; will retry)"
    return line


@bp.cli.command("send-mail")
@click.option("--watch", "keep_watching", is_flag=True,
              help="Keep draining the outbox until stopped (SIGTERM or Ctrl-C).")
@click.option("--interval", type=click.FloatRange(min=0.05, max=3600), default=2.0,
              show_default=True, help="Seconds to wait between passes when nothing is due.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Send at most this many messages (once mode only).")
def send_mail(keep_watching: bool, interval: float, limit: int | None) -> None:
    """Deliver queued mail: over SMTP when MAIL_SERVER is set, else to instance/mailbox/."""
    if not keep_watching:
        click.echo(_summary(drain(limit)))
        return
    stop = threading.Event()

    def request_stop(signum, frame) -> None:  # finish the message in hand, give back the rest
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    click.echo(f"watching the outbox every {interval:g}s", )

    def report(result: DeliveryReport) -> None:
        if result.processed or result.unreachable:
            click.echo(_summary(result))

    watch(interval, stop=stop, on_pass=report)
    click.echo("stopped")
