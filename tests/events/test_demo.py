"""The demo symposium seeds once, published, with questions and registrations."""
from __future__ import annotations

from sqlalchemy import func, select

from portal.events.demo import DEMO_SLUG, seed_demo
from portal.events.models import Event, Registration
from portal.extensions import db


def test_demo_symposium_is_seeded_once(app_context):
    seed_demo()
    seed_demo()
    event = db.session.execute(select(Event).where(Event.slug == DEMO_SLUG)).scalar_one()
    assert event.title == "Collaborating for Community Safety and Well-being"
    assert event.venue_name == "Toronto Police College" and event.capacity == 250
    assert event.status == "published" and len(event.questions) == 3
    assert db.session.execute(select(func.count()).select_from(Registration)).scalar_one() == 6
