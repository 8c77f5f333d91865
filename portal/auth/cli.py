from __future__ import annotations

import sys

import click

from portal.auth import bp
from portal.auth.services import create_organizer
from portal.core.errors import DomainError
from portal.extensions import db


@bp.cli.command("create-organizer")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Give the account the admin role.")
@click.option("--name", default="", help="Name shown on posts and in the audit log.")
def create_organizer_command(email: str, admin: bool, name: str) -> None:
    """Create an organizer account; the password comes from a prompt or standard input."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        account = create_organizer(email, password, name=name, admin=admin)
    except DomainError as error:
        raise click.ClickException(str(error.message)) from error
    db.session.commit()
    click.echo(f"{'Admin' if account.is_admin else 'Organizer'} account ready: {account.email}")
