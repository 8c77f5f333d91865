"""Command-line tools of the groups area (`flask --app portal ...`)."""
from __future__ import annotations

import click
from sqlalchemy import select

from portal.groups import bp


@bp.cli.command("create-chair")
@click.argument("email")
@click.argument("group_slug")
@click.option("--name", default="", help="The chair's name, shown in the audit log.")
@click.password_option(help="The chair's password (asked for when not given).")
def create_chair_command(email: str, group_slug: str, name: str, password: str) -> None:
    """Give EMAIL a chair sign-in account that manages the group GROUP_SLUG."""
    from portal.core.db import writing
    from portal.core.errors import DomainError
    from portal.extensions import db
    from portal.groups.models import WorkingGroup
    from portal.groups.services import create_chair_account

    with writing():
        group = db.session.execute(select(WorkingGroup).where(WorkingGroup.slug == group_slug)).scalar_one_or_none()
        if group is None:
            raise click.ClickException(f"No working group with the web address {group_slug!r}.")
        try:
            account = create_chair_account(email, password, group, name=name)
        except DomainError as error:
            raise click.ClickException(str(error.message)) from error
        db.session.commit()
    click.echo(f"{account.email} can now manage {group.name_en} ({account.role}).")


@bp.cli.command("send-term-reminders")
def send_term_reminders_command() -> None:
    """Email the chairs about members whose term ends within 30 days (safe to run again)."""
    from portal.groups.jobs import send_term_end_reminders

    click.echo(f"Reminded about {send_term_end_reminders()} membership(s).")
