from __future__ import annotations

import sys

import click

from portal.auth import bp
from portal.auth.services import account_with_address, create_organizer, reset_account
from portal.core.errors import DomainError
from portal.extensions import db


@bp.cli.command("create-organizer")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Give the account the admin role.")
@click.option("--name", default="", help="Name shown on posts and in the audit log.")
@click.option("--reset", is_flag=True,
              help="The account exists: give it this password and role, and sign it out everywhere.")
def create_organizer_command(email: str, admin: bool, name: str, reset: bool) -> None:
    """Create an organizer account; the password comes from a prompt or standard input.
    An existing account is changed only with --reset (a forgotten password, a new role)."""
    try:
        existing = account_with_address(email)
    except DomainError as error:
        raise click.ClickException(str(error.message)) from error
    if existing is not None and not reset:
        # Quietly resetting it would take away its role and sign-in without a word.
        raise click.ClickException(
            f"An account for {existing.email} exists already ({existing.role}). To give it a new "
            "password and this role, and sign it out everywhere, add --reset.")
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        if existing is not None:
            ended = reset_account(existing, password, admin=admin, name=name)
            account = existing
        else:
            account = create_organizer(email, password, name=name, admin=admin)
    except DomainError as error:
        raise click.ClickException(str(error.message)) from error
    db.session.commit()
    kind = "Admin" if account.is_admin else "Organizer"
    if existing is not None:
        click.echo(f"{kind} account reset: {account.email} ({ended} signed-in session(s) ended)")
    else:
        click.echo(f"{kind} account ready: {account.email}")
