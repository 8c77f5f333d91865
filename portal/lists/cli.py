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
    from portal.lists.imports import decode_upload, import_subscribers
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
    for line, reason in report.invalid:
        click.echo(f"  line {line}: {reason}")
    for label, lines in (("without consent evidence", report.without_evidence),
                         ("already there", report.already_there),
                         ("previously unsubscribed", report.previously_unsubscribed)):
        if lines:
            shown = ", ".join(str(n) for n in lines[:50]) + (" …" if len(lines) > 50 else "")
            click.echo(f"  {label}: lines {shown}")
    click.echo(f"Took {time.perf_counter() - started:.1f} s.")
    if report.rejected:
        raise SystemExit(1)


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
