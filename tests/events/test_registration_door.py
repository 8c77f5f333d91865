"""A worker keeps each event's registration door (questions, whether registration looks open)
for a few seconds. These tests change the event behind a kept door, as an organizer working
through another worker would, and check that nothing the door no longer says gets through."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from portal.events import services
from portal.events.models import Event, EventQuestion, Registration
from portal.extensions import db
from portal.people.models import Person
from tests.events.conftest import register


def _behind_the_door(app, event_id: int, *, status: str | None = None, question: dict | None = None) -> None:
    """Change the event in the database only: this worker's kept door is left as it was."""
    with app.app_context():
        if question is not None:
            db.session.add(EventQuestion(event_id=event_id, position=1, **question))
            db.session.execute(update(Event).where(Event.id == event_id)
                               .values(questions_version=Event.questions_version + 1))
        if status is not None:
            db.session.execute(update(Event).where(Event.id == event_id).values(status=status))
        db.session.commit()


def _counts(app, event_id: int) -> tuple[int, int]:
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Registration)
                                  .where(Registration.event_id == event_id)),
                db.session.scalar(select(func.count()).select_from(Person)))


def test_a_kept_door_saves_reading_the_event_on_every_registration(app, client, make_event):
    make_event(capacity=5)
    assert register(client, "symposium-1", email="a@example.ca").status_code == 302
    with app.app_context():
        door = services.registration_door("symposium-1")
        assert services.registration_door("symposium-1") is door  # kept, not read again
        assert services.registration_door("symposium-1", fresh=True) is not door


def test_answers_checked_against_old_questions_are_checked_again_against_the_new(app, client, make_event):
    event_id = make_event(capacity=5)
    assert register(client, "symposium-1", email="a@example.ca").status_code == 302  # door kept
    _behind_the_door(app, event_id, question=dict(label="Which workshop?", kind="short_text", required=True))

    response = register(client, "symposium-1", email="b@example.ca")

    assert response.status_code == 400
    assert "Which workshop?" in response.get_data(as_text=True)
    assert _counts(app, event_id) == (1, 1)  # b was not written, not even as a person


def test_answers_that_fit_the_new_questions_register_without_asking_again(app, client, make_event):
    event_id = make_event(capacity=5)
    assert register(client, "symposium-1", email="a@example.ca").status_code == 302
    _behind_the_door(app, event_id, question=dict(label="Anything else?", kind="short_text", required=False))

    assert register(client, "symposium-1", email="b@example.ca").status_code == 302
    assert _counts(app, event_id) == (2, 2)


def test_the_service_refuses_answers_to_an_older_form(app, make_event):
    event_id = make_event(capacity=5)
    with app.app_context():
        details = services.RegistrationDetails(email="c@example.ca", name="C", organization="Org",
                                               sector_slug="police", community="Toronto")
        with pytest.raises(services.FormChanged):
            services.register_for_event(event_id, details, form_version=7)
        db.session.rollback()
    assert _counts(app, event_id) == (0, 0)


def test_questions_changed_by_an_organizer_here_take_effect_at_once(app, client, make_event):
    event_id = make_event(capacity=5)
    assert register(client, "symposium-1", email="a@example.ca").status_code == 302
    with app.app_context():
        event = db.session.get(Event, event_id)
        services.add_question(event, label="Your role?", kind=services.QuestionKind.SHORT_TEXT, required=True)
        db.session.commit()
        assert services.registration_door("symposium-1").questions[0][2] == "Your role?"


def test_an_event_closed_behind_a_kept_door_refuses_and_writes_nothing(app, client, make_event):
    event_id = make_event(capacity=5)
    assert register(client, "symposium-1", email="a@example.ca").status_code == 302
    _behind_the_door(app, event_id, status="closed")

    response = register(client, "symposium-1", email="b@example.ca")

    assert response.status_code == 409
    assert "Registration for this event is not open." in response.get_data(as_text=True)
    assert _counts(app, event_id) == (1, 1)


def test_an_event_reopened_behind_a_door_kept_closed_takes_registrations(app, client, make_event):
    event_id = make_event(capacity=5, status="closed")
    assert register(client, "symposium-1", email="a@example.ca").status_code == 409  # door kept: closed
    _behind_the_door(app, event_id, status="published")

    assert register(client, "symposium-1", email="b@example.ca").status_code == 302
    assert _counts(app, event_id) == (1, 1)


def test_a_form_wide_error_is_listed_in_the_error_summary(app, make_event):
    from flask import render_template

    from portal.events.forms import registration_form
    from portal.people.services import list_sectors

    event_id = make_event()
    with app.test_request_context("/events/symposium-1/register", method="POST"):
        form = registration_form((), list_sectors())
        form.form_errors.append(str(services.FormChanged.message))
        page = render_template("events/register.html", event=db.session.get(Event, event_id), form=form)
    assert "The organizers changed this registration form while you were filling it in." in page
    assert 'href="#None"' not in page
