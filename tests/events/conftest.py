"""Fixtures for events: a published event factory and a registration helper through the form."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from portal.core.clock import now
from portal.extensions import db


class EventFactory:
    def __init__(self, app) -> None:
        self.app = app
        self.count = 0

    def __call__(self, *, capacity: int = 10, sector_cap_percent: int | None = None,
                 status: str = "published", questions: list[dict] | None = None,
                 starts_in: timedelta = timedelta(days=30), run_by_organizers: bool = True, **values) -> int:
        """Create and commit an event; returns its id. Every organizer account that exists
        already runs it, unless `run_by_organizers` is False (then only admins do)."""
        from sqlalchemy import select

        from portal.auth.models import OrganizerAccount, Role
        from portal.events.models import Event, EventOrganizer, EventQuestion

        self.count += 1
        with self.app.app_context():
            starts = now() + starts_in
            event = Event(
                slug=values.pop("slug", f"symposium-{self.count}"),
                title=values.pop("title", f"Symposium {self.count}"),
                summary="A day together.", description="**Bold** plans.",
                starts_at=starts, ends_at=starts + timedelta(hours=8),
                venue_name="Toronto Police College", venue_address="70 Birmingham Street, Toronto",
                venue_accessibility="Step-free entrance.",
                capacity=capacity, sector_cap_percent=sector_cap_percent, status=status, **values,
            )
            db.session.add(event)
            db.session.flush()
            for position, question in enumerate(questions or []):
                db.session.add(EventQuestion(event_id=event.id, position=position, **question))
            if run_by_organizers:
                organizers = select(OrganizerAccount.id).where(OrganizerAccount.role == Role.ORGANIZER.value)
                db.session.add_all(EventOrganizer(event_id=event.id, account_id=account_id)
                                   for account_id in db.session.execute(organizers).scalars())
            db.session.commit()
            return event.id


@pytest.fixture
def make_event(app) -> EventFactory:
    return EventFactory(app)


@pytest.fixture(autouse=True)
def _lift_register_limit(app):
    # Most tests register many people from one address; the limit has its own test.
    app.config["EVENTS_REGISTER_RATE_LIMIT"] = "10000/minute"


def form_data(client, slug: str, **overrides) -> dict:
    """A valid registration form, with a fresh CSRF token from the real page."""
    from tests.conftest import csrf_token

    data = {
        "csrf_token": csrf_token(client, f"/events/{slug}/register"),
        "name": "Ada Lovelace", "email": "ada@example.ca", "organization": "City of Toronto",
        "sector": "police", "community": "Toronto", "privacy": "y",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def register(client, slug: str, **overrides):
    return client.post(f"/events/{slug}/register", data=form_data(client, slug, **overrides))


def manage_link(body: str) -> str:
    match = re.search(r"(/events/manage/[A-Za-z0-9_-]{40,})", body)
    assert match, body
    return match.group(1)
