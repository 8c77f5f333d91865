"""Fixtures for the lists tests: lists, subscribers with consent, and delivering the outbox."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate

import pytest
from sqlalchemy import select

from portal.core.clock import now
from portal.extensions import db


@pytest.fixture
def public_list(app):
    """A public list "Symposium announcements"; returns its id."""
    from portal.lists.services import save_public_list

    with app.app_context():
        mailing_list = save_public_list(None, slug="symposium-announcements", name_en="Symposium announcements",
                                        name_fr="Annonces du symposium", description_en="Dates and programme.")
        db.session.commit()
        return mailing_list.id


def add_subscriber(app, list_id: int, email: str, *, status: str = "active", consent: str | None = "express",
                   language: str = "en"):
    """A subscription in the given state, with a consent row of `consent` kind (or none).

    Returns (subscription id, person id, raw unsubscribe token)."""
    from portal.lists.models import MailingList, SubscriptionStatus
    from portal.lists.services import _new_subscription, unsubscribe_token
    from portal.people.models import ConsentKind
    from portal.people.services import get_or_create_person, record_consent

    with app.app_context():
        mailing_list = db.session.get(MailingList, list_id)
        person = get_or_create_person(email, name=email.split("@")[0], language=language)
        db.session.flush()
        subscription = _new_subscription(mailing_list, person, SubscriptionStatus(status), "test")
        if consent:
            record_consent(person, purpose=mailing_list.consent_purpose, kind=ConsentKind(consent),
                           source="test", method="test", implied_from="transaction")
        if status == "unsubscribed":
            record_consent(person, purpose=mailing_list.consent_purpose, kind=ConsentKind.WITHDRAWN,
                           source="test", method="test")
            subscription.unsubscribed_at = now()
        db.session.commit()
        return subscription.id, person.id, unsubscribe_token(subscription)


def outbox(app, purpose: str | None = None):
    from portal.mail.models import OutboxMessage

    with app.app_context():
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if purpose:
            query = query.where(OutboxMessage.purpose == purpose)
        rows = list(db.session.execute(query).scalars())
        for row in rows:
            db.session.expunge(row)
        return rows


def deliver_outbox(app) -> int:
    """Send queued outbox rows to the app's SMTP server.

    Uses the mail area's `portal.mail.delivery.deliver_due` when it exists; until then a
    plain smtplib sender that honours the same rules (List-* headers as queued, a Message-ID,
    list mail withheld when the subscription is no longer active).
    """
    try:
        from portal.mail.delivery import deliver_due  # type: ignore[import-not-found]
    except ImportError:
        deliver_due = None
    with app.app_context():
        if deliver_due is not None:
            return deliver_due()
        return _fallback_deliver(app)


def _fallback_deliver(app) -> int:
    from portal.lists.models import Subscription, SubscriptionStatus
    from portal.mail.models import OutboxMessage, OutboxState

    sent = 0
    rows = list(db.session.execute(
        select(OutboxMessage).where(OutboxMessage.state == OutboxState.QUEUED.value).order_by(OutboxMessage.id)
    ).scalars())
    with smtplib.SMTP(app.config["MAIL_SERVER"], app.config["MAIL_PORT"], timeout=10) as smtp:
        for row in rows:
            if row.list_id is not None:
                active = db.session.execute(select(Subscription.id).where(
                    Subscription.list_id == row.list_id, Subscription.person_id == row.person_id,
                    Subscription.status == SubscriptionStatus.ACTIVE.value)).first()
                if not active:
                    row.state = OutboxState.WITHHELD.value
                    continue
            message = EmailMessage()
            message["From"] = row.from_address
            message["To"] = row.to_address
            message["Subject"] = row.subject
            message["Date"] = formatdate(localtime=False)
            message["Message-ID"] = row.message_id
            for name, value in row.headers.items():
                message[name] = value
            message.set_content(row.body_text)
            if row.body_html:
                message.add_alternative(row.body_html, subtype="html")
            smtp.send_message(message)
            row.state = OutboxState.SENT.value
            row.sent_at = now()
            sent += 1
    db.session.commit()
    return sent
