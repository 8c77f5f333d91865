"""Merged messages: the shared part rendered once, each person's values filled in, and the
result exactly what rendering the message for that person alone gives."""
from __future__ import annotations

import pytest

from portal.events.models import Event
from portal.events.notifications import EventFacts, event_facts, path_for
from portal.extensions import db
from portal.people.models import Person
from portal.core.kept import forget, how_many_kept
from portal.mail.services import MERGED_PARTS, merge_field, render_email, render_merged_email
from tests.events.conftest import EventFactory

HOSTILE_NAME = 'Zoë "Z" <O\'Brien & Sons>'


@pytest.fixture
def event(app, app_context) -> Event:
    event_id = EventFactory(app)(title="Sécurité & <bien-être>", slug="merge-day")
    return db.session.get(Event, event_id)


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("template, personal", [
    ("events/confirmation", {"manage_path": "/events/manage/tok&en<1>", "check_in_code": "CODE-1"}),
    ("events/promoted", {"manage_path": "/events/manage/token-2", "check_in_code": "CODE-2"}),
    ("events/waitlisted", {"manage_path": "/events/manage/token-3", "waitlist_place": "17"}),
])
def test_a_merged_seat_message_reads_as_if_rendered_for_the_person_alone(event, template, personal, language):
    shared = {"event": event_facts(event), "event_path": path_for("events.detail", slug=event.slug)}

    merged = render_merged_email(template, language, shared, personal | {"recipient_name": HOSTILE_NAME})

    alone = render_email(
        template, language, event=event, event_path=shared["event_path"],
        recipient=Person(name=HOSTILE_NAME, email="zoe@example.ca", language=language), **personal,
    )
    assert merged == alone
    subject, text, html = merged
    assert HOSTILE_NAME in text and "Zoë &#34;Z&#34; &lt;O&#39;Brien &amp; Sons&gt;" in html
    assert personal["manage_path"] in text
    assert "\x1a" not in subject + text + html


def test_the_shared_part_is_rendered_once_per_event_version_and_language(event):
    forget(MERGED_PARTS)
    shared = {"event": event_facts(event), "event_path": "/events/merge-day"}
    for number in range(5):
        _, text, _ = render_merged_email(
            "events/waitlisted", "en", shared,
            {"recipient_name": f"Person {number}", "manage_path": f"/m/{number}", "waitlist_place": str(number)},
        )
        assert f"Hello Person {number}," in text and f"number {number} in line" in text
    assert how_many_kept(MERGED_PARTS) == 1

    moved = shared | {"event": EventFacts(**(vars(shared["event"]) | {"venue_name": "City Hall"}))}
    _, text, _ = render_merged_email(
        "events/waitlisted", "en", moved,
        {"recipient_name": "Person", "manage_path": "/m/x", "waitlist_place": "1"},
    )
    assert "City Hall" in text  # new details, new shared part: nothing stale is sent
    assert how_many_kept(MERGED_PARTS) == 2


def test_a_value_that_looks_like_a_marker_is_printed_not_expanded(event):
    shared = {"event": event_facts(event), "event_path": "/events/merge-day"}
    _, text, html = render_merged_email(
        "events/waitlisted", "en", shared,
        {"recipient_name": merge_field("manage_path"), "manage_path": "/m/secret", "waitlist_place": "3"},
    )
    assert text.count("/m/secret") == 1
    assert "Hello \x1amanage_path\x1a," in text


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_merged_organizer_message_reads_as_if_rendered_for_the_person_alone(event, language):
    """The organizer's message to attendees is queued merged (one render per language for a
    whole event): it must read exactly as the message rendered for one person."""
    words = {"message_subject": "Parking & <access>", "message_body": "Use the east lot.\n\nBring ID & a badge.",
             "message_language": "en"}
    shared = {"event": event_facts(event), "event_path": path_for("events.detail", slug=event.slug)} | words
    personal = {"manage_path": "/events/manage/tok&en<9>"}

    merged = render_merged_email("events/message", language, shared, personal | {"recipient_name": HOSTILE_NAME})

    alone = render_email(
        "events/message", language, event=event, event_path=shared["event_path"],
        recipient=Person(name=HOSTILE_NAME, email="zoe@example.ca", language=language), **personal, **words)
    assert merged == alone
