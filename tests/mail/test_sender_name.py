"""Who a message says it is from, in the reader's language."""
from __future__ import annotations

from sqlalchemy import select


def test_french_readers_see_the_groups_french_name_as_the_sender(app_context):
    """A French reviewer found every French message 'From: Ontario Working Group'."""
    from portal.extensions import db
    from portal.mail.models import OutboxMessage
    from portal.mail.services import queue_email
    from portal.people.services import get_or_create_person

    french = get_or_create_person("lea@example.ca", name="Léa", language="fr")
    english = get_or_create_person("ann@example.ca", name="Ann", language="en")
    db.session.flush()
    for person in (french, english):
        queue_email(key=f"test:sender:{person.id}", to=person, template="people/my_data_link", purpose="test",
                    context={"my_data_path": "/my-data/x", "valid_days": 7})
    senders = dict(db.session.execute(select(OutboxMessage.language, OutboxMessage.from_address)).tuples().all())
    assert senders == {"fr": "Groupe de travail de l'Ontario <no-reply@owg.example.ca>",
                       "en": "Ontario Working Group <no-reply@owg.example.ca>"}
