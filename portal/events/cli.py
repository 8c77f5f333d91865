"""`flask --app portal export-registrations EVENT_SLUG`: the organizers' CSV on stdout."""
from __future__ import annotations

import sys

import click
from flask_babel import force_locale
from sqlalchemy import select

from portal.core.audit import record_audit
from portal.core.db import writing
from portal.events import bp
from portal.events.models import Event
from portal.events.services import export_csv_chunks
from portal.extensions import db


@bp.cli.command("export-registrations")
@click.argument("slug")
@click.option("--language", type=click.Choice(["en", "fr"]), default="en", show_default=True,
              help="Language of the header, statuses, sectors and yes/no (the organizers' download's).")
def export_registrations(slug: str, language: str) -> None:
    """Write every registration of the event EVENT_SLUG as CSV (UTF-8 with BOM) to stdout."""
    event = db.session.execute(select(Event).where(Event.slug == slug[:80])).scalar_one_or_none()
    if event is None:
        raise click.ClickException(f"No event with the address {slug!r}.")
    out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
    with force_locale(language):
        for chunk in export_csv_chunks(event, language):
            if out is not None:
                out.write(chunk.encode("utf-8"))
            else:
                click.echo(chunk, nl=False)
    if out is not None:
        out.flush()
    db.session.rollback()
    with writing():
        record_audit("events.attendees.exported", actor_label="command line", subject=f"event:{event.id}",
                     format="csv-cli", language=language)
        db.session.commit()
