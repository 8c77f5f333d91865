"""`flask --app portal import-subscribers LIST_SLUG FILE.csv` and the lists' job commands."""
from __future__ import annotations

import time
from pathlib import Path

import click

from portal.core.db import writing
from portal.core.errors import DomainError
from portal.extensions import db
from portal.lists import bp


@bp.cli.command("import-subscribers")
@click.argument("list_slug")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ask-unconfirmed/--skip-unconfirmed", default=True,
              help="Send a confirmation request to rows without consent evidence (default), or leave them out.")
def import_subscribers_command(list_slug: str, csv_file: Path, ask_unconfirmed: bool) -> None:
    """Import subscribers from a CSV file into a list, all or nothing, and print the report."""
    from portal.lists.imports import decode_upload, import_subscribers, row_problem
    from portal.lists.services import get_list_by_slug

    started = time.perf_counter()
    with writing():
        try:
            mailing_list = get_list_by_slug(list_slug)
            report = import_subscribers(mailing_list, decode_upload(csv_file.read_bytes()),
                                        ask_unconfirmed=ask_unconfirmed, filename=csv_file.name)
        except DomainError as error:
            db.session.rollback()
            raise click.ClickException(str(error.message)) from error
        if report.rejected:
            db.session.rollback()
        else:
            db.session.commit()
    click.echo(report.summary())
    for line, code, value in report.invalid:
        click.echo(f"  line {line}: {row_problem(code, value)}")
    for label, lines in (("without consent evidence", report.without_evidence),
                         ("already there", report.already_there),
                         ("previously unsubscribed", report.previously_unsubscribed),
                         ("implied consent already expired", report.consent_expired)):
        if lines:
            shown = ", ".join(str(n) for n in lines[:50]) + (" …" if len(lines) > 50 else "")
            click.echo(f"  {label}: lines {shown}")
    click.echo(f"Took {time.perf_counter() - started:.1f} s.")
    if report.rejected:
        raise SystemExit(1)


@bp.cli.command("receive-unsubscribe-mail")
@click.option("--recipient", "recipients", multiple=True,
              help="The envelope recipient, as the MTA passes it (Postfix: ${recipient}).")
def receive_unsubscribe_mail_command(recipients: tuple[str, ...]) -> None:
    """Read one message on stdin, sent to a subscriber's unsubscribe+TOKEN@ address (the
    mailto in List-Unsubscribe), and take that subscriber off the list. Unknown addresses
    are ignored with exit status 0, so the MTA sends no bounce to a forged sender."""
    import sys
    from email import message_from_binary_file, policy

    from portal.lists.services import unsubscribe_by_mail

    message = message_from_binary_file(sys.stdin.buffer, policy=policy.default)
    # The envelope first; then where MTAs record it, then the visible recipients.
    headers = [str(value) for name in ("Delivered-To", "X-Original-To", "To", "Cc")
               for value in message.get_all(name, [])]
    with writing():
        subscription = unsubscribe_by_mail([*recipients, *headers])
        db.session.commit()
    if subscription is None:
        click.echo("No subscription named by this message's recipients; nothing changed.")
    else:
        click.echo(f"Unsubscribed from {subscription.mailing_list.slug}.")


@bp.cli.command("send-due-posts")
def send_due_posts_command() -> None:
    """Send scheduled list posts whose time has come (the scheduler runs this too)."""
    from portal.lists.jobs import send_due_posts

    click.echo(f"{send_due_posts()} post(s) sent.")


@bp.cli.command("process-imports")
def process_imports_command() -> None:
    """Run uploaded subscriber imports that are waiting."""
    from portal.lists.jobs import process_pending_imports

    click.echo(f"{process_pending_imports()} import(s) processed.")
