"""`flask seed-demo`: realistic demo content, created idempotently.

Each feature area may offer `portal.<area>.demo.seed_demo()`; this command runs them in
order after the foundation's own demo data.
"""
from __future__ import annotations

import importlib

import click
from flask import Flask

DEMO_ORGANIZER_EMAIL = "organizer@owg.example.ca"
DEMO_ORGANIZER_PASSWORD = "symposium-2014"
DEMO_AREAS = ("lists", "events", "groups", "guidelines")


def seed_foundation() -> None:
    from sqlalchemy import select

    from portal.auth.models import OrganizerAccount
    from portal.auth.services import create_organizer
    from portal.extensions import db
    from portal.people.services import seed_sectors

    seed_sectors()
    exists = db.session.execute(
        select(OrganizerAccount).where(OrganizerAccount.email == DEMO_ORGANIZER_EMAIL)
    ).scalar_one_or_none()
    if exists is None:
        create_organizer(DEMO_ORGANIZER_EMAIL, DEMO_ORGANIZER_PASSWORD, name="Demo Organizer", admin=True)


def seed_demo() -> list[str]:
    """Seed every area; returns the areas that contributed."""
    from portal.core.db import writing
    from portal.extensions import db

    seeded = ["foundation"]
    with writing():
        seed_foundation()
        for area in DEMO_AREAS:
            try:
                module = importlib.import_module(f"portal.{area}.demo")
            except ModuleNotFoundError as error:
                if error.name != f"portal.{area}.demo":
                    raise
                continue
            module.seed_demo()
            seeded.append(area)
        db.session.commit()
    return seeded


def register_demo_command(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo_command() -> None:
        """Create demo content (safe to run again) and print the demo organizer's login."""
        if app.config.get("PORTAL_ENV") == "production":
            # Its admin's password is printed in the README, and its registrations mail people.
            raise click.ClickException("seed-demo is for development and demonstration only: it creates an "
                                       "admin whose password is public. Refused with PORTAL_ENV=production.")
        seeded = seed_demo()
        click.echo(f"Demo data ready ({', '.join(seeded)}).")
        click.echo(f"Demo organizer: {DEMO_ORGANIZER_EMAIL} / {DEMO_ORGANIZER_PASSWORD}")
