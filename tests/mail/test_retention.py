"""Outbox retention: done messages are emptied after the period, once; their keys stay."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from portal.core import clock
from portal.extensions import db
from portal.mail.models import OutboxAttachment, OutboxMessage, OutboxState
from portal.mail.retention import purge_due
from portal.mail.services import Attachment, queue_email
from portal.people.models import Person
from tests.retention import purge_at
from tests.conftest import forecast_day

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _seed(app, outbox) -> dict[str, int]:
    """Four messages queued at T0: one sent (with an attachment), one failed, one withheld,
    one still queued."""
    clock.set_now(T0)
    sent, failed, withheld, queued = (
        outbox.queue(f"{name}@example.ca", key_prefix=f"test.{name}",
                     attachments=[Attachment("event.ics", "text/calendar", b"BEGIN:VCALENDAR")])[0]
        for name in ("sent", "failed", "withheld", "queued")
    )
    with app.app_context():
        for message_id, state in ((sent, OutboxState.SENT), (failed, OutboxState.FAILED),
                                  (withheld, OutboxState.WITHHELD)):
            message = db.session.get(OutboxMessage, message_id)
            message.state = state.value
            message.last_error = "550 no such user failed@example.ca" if state == OutboxState.FAILED else ""
        db.session.get(OutboxMessage, sent).sent_at = T0 + 2 * DAY
        db.session.commit()
    return {"sent": sent, "failed": failed, "withheld": withheld, "queued": queued}


def _purge(app, at: datetime) -> int:
    return purge_at(app, purge_due, at)


def _holding(app) -> dict[int, tuple[str, int]]:
    """Each message's address and how many attachments it still has."""
    with app.app_context():
        return {
            message.id: (message.to_address, db.session.execute(
                select(func.count()).where(OutboxAttachment.message_id == message.id)).scalar_one())
            for message in db.session.execute(select(OutboxMessage)).scalars()
        }


def test_done_messages_are_emptied_after_the_period_and_only_once(app, outbox):
    ids = _seed(app, outbox)
    assert _purge(app, T0 + 89 * DAY) == 0
    assert _purge(app, T0 + 91 * DAY) == 2  # failed and withheld: 90 days after they were queued
    held = _holding(app)
    assert held[ids["failed"]] == ("", 0) and held[ids["withheld"]] == ("", 0)
    assert "sent@example.ca" in held[ids["sent"]][0]  # sent two days later: not yet
    assert _purge(app, T0 + 93 * DAY) == 1
    held = _holding(app)
    assert held[ids["sent"]] == ("", 0)
    assert "queued@example.ca" in held[ids["queued"]][0] and held[ids["queued"]][1] == 1  # never touched
    with app.app_context():
        failed = db.session.get(OutboxMessage, ids["failed"])
        assert (failed.subject, failed.body_text, failed.body_html, failed.last_error) == ("", "", "", "")
        assert failed.state == OutboxState.FAILED and failed.purpose == "mail.test_notice"
    assert _purge(app, T0 + 400 * DAY) == 0  # a second run changes nothing


def test_an_emptied_message_still_stops_the_same_notice_being_queued_again(app, outbox):
    ids = _seed(app, outbox)
    _purge(app, T0 + 100 * DAY)
    with app.app_context():
        message = db.session.get(OutboxMessage, ids["sent"])
        person = db.session.get(Person, message.person_id)
        again = queue_email(key=message.idempotency_key, to=person, template="mail/notice",
                            purpose="mail.test_notice", context={"title": "Again", "paragraphs": []})
        db.session.commit()
    assert again is None


def test_the_period_is_a_setting(app, outbox):
    _seed(app, outbox)
    app.config["MAIL_RETENTION_DAYS"] = 10
    assert _purge(app, T0 + 9 * DAY) == 0
    assert _purge(app, T0 + 13 * DAY) == 3


def test_organizers_see_when_messages_are_emptied(app, outbox, client, auth, organizer):
    _seed(app, outbox)
    clock.set_now(T0 + 30 * DAY)
    auth.login(organizer)
    html = client.get("/admin/privacy/retention").get_data(as_text=True)
    assert '<h2 id="area-mail">Messages sent</h2>' in html
    assert "90 days after it was sent" in html
    assert f"{forecast_day(T0 + 90 * DAY)}: 2" in html
    assert f"{forecast_day(T0 + 92 * DAY)}: 1" in html


def test_the_local_mailbox_copy_goes_with_the_message(app, outbox):
    """With no MAIL_SERVER the sender writes instance/mailbox/<row>.eml: emptying the row by
    the rule, or erasing its person, deletes that copy too."""
    from portal.mail.delivery import deliver_due, mailbox_directory
    from portal.people.privacy import erase_person

    clock.set_now(T0)
    kept, erased = outbox.queue("kept@example.ca")[0], outbox.queue("erased@example.ca")[0]
    with app.app_context():
        deliver_due()
        directory = mailbox_directory()
        assert {p.name for p in directory.glob("*.eml")} == {f"{kept:010d}.eml", f"{erased:010d}.eml"}
        erase_person(db.session.execute(select(Person).where(Person.email == "erased@example.ca")).scalar_one())
        db.session.commit()
        assert {p.name for p in directory.glob("*.eml")} == {f"{kept:010d}.eml"}
    assert _purge(app, T0 + 91 * DAY) == 1
    with app.app_context():
        assert list(mailbox_directory().glob("*.eml")) == []
