"""`flask --app portal export-registrations EVENT_SLUG`: the organizers' CSV on stdout."""
from __future__ import annotations

import sys

import click
from sqlalchemy import select

from portal.core.audit import record_audit
from portal.core.db import writing
from portal.events import bp
from portal.events.models import Event
from portal.events.services import export_csv_chunks
from portal.extensions import db


@bp.cli.command("export-registrations")
@click.argument("slug")
def export_registrations(slug: str) -> None:
    """Write every registration of the event EVENT_SLUG as CSV (UTF-8 with BOM) to stdout."""
    event = db.session.execute(select(Event).where(Event.slug == slug[:80])).scalar_one_or_none()
    if event is None:
        raise click.ClickException(f"No event with the address {slug!r}.")
    out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
    for chunk in export_csv_chunks(event):
        if out is not None:
            out.write(chunk.encode("utf-8"))
        else:
            click.echo(chunk, nl=False)
    if out is not None:
        out.flush()
    db.session.rollback()
    with writing():
        record_audit("events.attendees.exported", actor_label="command line", subject=f"event:{event.id}",
                     format="csv-cli")
        db.session.commit()
