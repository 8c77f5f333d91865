"""Delivery against a real SMTP server (aiosmtpd): outcomes, retries, headers, consent."""
from __future__ import annotations

import email.utils
from datetime import timedelta

from sqlalchemy import update

from portal.core import clock
from portal.extensions import db
from portal.lists.models import Subscription, SubscriptionStatus
from portal.mail.delivery import deliver_due, drain, retry_delay
from portal.mail.attachments import QR_CODE
from portal.mail.models import OutboxMessage, OutboxState
from portal.mail.services import Attachment, queue_email
from portal.people.services import get_or_create_person
from tests.conftest import free_port
from tests.qr import read_qr_code

LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Post")


def deliver(app, limit=None):
    with app.app_context():
        return drain(limit)


def test_message_queued_in_a_rolled_back_transaction_is_never_sent(app, smtp_server, outbox):
    committed = outbox.queue("kept@example.ca")
    with app.app_context():
        person = get_or_create_person("rolled-back@example.ca", name="Rolled Back")
        queue_email(key="test.rollback:1", to=person, template="mail/notice", purpose="mail.test",
                    context={"title": "Never", "paragraphs": ["x"]})
        db.session.rollback()

    report = deliver(app)

    assert report.sent == 1
    assert [m["To"].addresses[0].addr_spec for m in smtp_server.messages] == ["kept@example.ca"]
    assert [r.id for r in outbox.rows()] == committed


def test_queueing_the_same_key_twice_sends_one_message(app, smtp_server):
    with app.app_context():
        person = get_or_create_person("twice@example.ca", name="Twice")
        for _ in range(2):
            queue_email(key="test.twice:1", to=person, template="mail/notice", purpose="mail.test",
                        context={"title": "Once", "paragraphs": ["x"]})
            db.session.commit()
    deliver(app)
    assert len(smtp_server.messages) == 1


def test_server_down_then_up_delivers_after_the_backoff(app, outbox):
    from tests.smtp import SMTPServer

    port = free_port()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    start = clock.now()
    clock.set_now(start)
    [message_id] = outbox.queue("patient@example.ca")

    report = deliver(app)  # nothing listens on the port: connection refused
    row = outbox.row(message_id)
    assert report.unreachable and report.retried == 1
    assert row.state == OutboxState.RETRY and row.attempts == 1
    assert "cannot connect" in row.last_error
    assert start + timedelta(seconds=40) <= row.next_attempt_at <= start + timedelta(seconds=80)

    server = SMTPServer(port=port)
    server.start()
    try:
        assert deliver(app).processed == 0  # not due yet: the backoff is respected
        assert server.messages == []
        clock.advance(timedelta(minutes=2))
        assert deliver(app).sent == 1
        assert len(server.wait_for(1)) == 1
    finally:
        server.stop()
    row = outbox.row(message_id)
    assert row.state == OutboxState.SENT and row.attempts == 2 and row.last_error == ""


def test_temporary_failure_then_250_delivers_exactly_once(app, smtp_server, outbox):
    clock.set_now(clock.now())
    [message_id] = outbox.queue("later@example.ca")
    smtp_server.reply_next_with("451 4.3.0 Try later")

    assert deliver(app).retried == 1
    row = outbox.row(message_id)
    assert row.state == OutboxState.RETRY and row.last_error == "451 4.3.0 Try later"

    clock.advance(timedelta(minutes=5))
    assert deliver(app).sent == 1
    clock.advance(timedelta(days=1))
    assert deliver(app).processed == 0
    assert len(smtp_server.messages) == 1
    assert outbox.row(message_id).state == OutboxState.SENT


def test_permanent_failure_is_failed_and_its_reply_shown_to_admins(
    app, smtp_server, outbox, client, auth, admin
):
    [message_id] = outbox.queue("nobody@example.ca")
    smtp_server.reply_next_with("550 5.1.1 No such mailbox here")

    report = deliver(app)

    assert report.failed == 1 and smtp_server.messages == []
    row = outbox.row(message_id)
    assert row.state == OutboxState.FAILED and row.last_error == "550 5.1.1 No such mailbox here"
    auth.login(admin)
    page = client.get("/admin/mail").get_data(as_text=True)
    assert "550 5.1.1 No such mailbox here" in page
    detail = client.get(f"/admin/mail/{message_id}").get_data(as_text=True)
    assert "550 5.1.1 No such mailbox here" in detail


def test_gives_up_after_the_maximum_number_of_attempts(app, smtp_server, outbox):
    app.config["MAIL_MAX_ATTEMPTS"] = 3
    clock.set_now(clock.now())
    [message_id] = outbox.queue("flaky@example.ca")
    smtp_server.reply_next_with(*["452 4.2.2 Mailbox full"] * 3)
    for _ in range(3):
        deliver(app)
        clock.advance(timedelta(hours=1))
    row = outbox.row(message_id)
    assert row.state == OutboxState.FAILED and row.attempts == 3
    assert "452 4.2.2 Mailbox full" in row.last_error
    assert deliver(app).processed == 0 and smtp_server.messages == []


def test_backoff_grows_exponentially_with_jitter():
    first = [retry_delay(1) for _ in range(50)]
    assert all(timedelta(seconds=48) <= d <= timedelta(seconds=72) for d in first)
    assert len(set(first)) > 1  # jitter
    assert timedelta(minutes=6.4) <= retry_delay(4) <= timedelta(minutes=9.6)
    assert retry_delay(30) <= timedelta(hours=7.2)


def test_list_mail_carries_exact_list_headers_and_transactional_mail_none(app, smtp_server, outbox):
    list_id = outbox.make_list()
    [list_row] = outbox.queue("subscriber@example.ca", mailing_list=list_id)
    [plain_row] = outbox.queue("registrant@example.ca")
    unsubscribe_url = outbox.row(list_row).headers["List-Unsubscribe"].split(">")[0][1:]

    deliver(app)

    [list_mail] = smtp_server.to("subscriber@example.ca")
    [plain_mail] = smtp_server.to("registrant@example.ca")
    assert list_mail["List-Id"] == "Guideline releases <guideline-releases.owg.example.ca>"
    assert list_mail["List-Unsubscribe"] == f"<{unsubscribe_url}>, <mailto:unsubscribe@owg.example.ca>"
    assert unsubscribe_url.startswith("https://") and len(unsubscribe_url.rsplit("/", 1)[1]) >= 43
    assert list_mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert list_mail["List-Post"] == "NO"
    for name in LIST_HEADERS:
        assert plain_mail[name] is None, name
    for mail in (list_mail, plain_mail):
        assert mail["Auto-Submitted"] == "auto-generated"
        assert email.utils.parsedate_to_datetime(mail["Date"]).tzinfo is not None
        assert mail["From"].addresses[0].display_name == "Ontario Working Group"
    # the footer: organization, postal address, contact; list mail also a visible unsubscribe link
    config = app.config
    for mail in (list_mail, plain_mail):
        for part in ("plain", "html"):
            body = mail.get_body((part,)).get_content()
            assert config["PORTAL_ORG_NAME"] in body
            assert config["PORTAL_ORG_ADDRESS"] in body
            assert config["PORTAL_ORG_CONTACT"] in body
    assert unsubscribe_url in list_mail.get_body(("plain",)).get_content()
    assert f'href="{unsubscribe_url}"' in list_mail.get_body(("html",)).get_content()
    assert unsubscribe_url not in plain_mail.as_string()


def test_every_message_id_is_unique_and_matches_its_row(app, smtp_server, outbox):
    ids = outbox.queue(count=12)
    deliver(app)
    received = smtp_server.wait_for(12)
    message_ids = [m["Message-ID"] for m in received]
    assert len(set(message_ids)) == 12
    assert sorted(message_ids) == sorted(outbox.row(i).message_id for i in ids)
    assert all(mid.startswith("<") and mid.endswith("@owg.example.ca>") for mid in message_ids)


def test_reply_to_attachments_and_french_text_survive_the_trip(app, smtp_server):
    app.config["MAIL_REPLY_TO"] = "Secrétariat OWG <secretariat@owg.example.ca>"
    with app.app_context():
        person = get_or_create_person("eloise@example.ca", name="Éloïse Côté-Tremblay", language="fr")
        queue_email(
            key="test.ics:1", to=person, template="mail/notice", purpose="mail.test",
            context={"title": "Inscription confirmée : symposium régional « Sécurité »",
                     "paragraphs": ["Voici l’invitation.\n.Une ligne qui commence par un point."]},
            attachments=[Attachment("symposium-été.ics", "text/calendar", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")],
        )
        db.session.commit()
    deliver(app)
    [mail] = smtp_server.wait_for(1)
    assert mail["Subject"] == "Inscription confirmée : symposium régional « Sécurité »"
    assert mail["To"].addresses[0].display_name == "Éloïse Côté-Tremblay"
    assert mail["Reply-To"].addresses[0].addr_spec == "secretariat@owg.example.ca"
    assert mail["Reply-To"].addresses[0].display_name == "Secrétariat OWG"
    text = mail.get_body(("plain",)).get_content()
    assert "Voici l’invitation." in text and "\n.Une ligne qui commence par un point." in text
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "symposium-été.ics"
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_payload(decode=True) == b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"


def test_a_qr_code_attachment_is_stored_as_its_text_and_sent_as_a_picture_of_it(app, smtp_server):
    with app.app_context():
        person = get_or_create_person("door@example.ca", name="At The Door")
        message_id = queue_email(
            key="test.qr:1", to=person, template="mail/notice", purpose="mail.test",
            context={"title": "Your code", "paragraphs": ["Show this at the door."]},
            attachments=[Attachment("check-in-code.svg", "image/svg+xml", b"CHECK-IN-4711", generated=QR_CODE)],
            repeatable=False,
        )
        db.session.commit()
        [stored] = db.session.get(OutboxMessage, message_id).attachments
        assert stored.content == b"CHECK-IN-4711"  # the picture is drawn only when sent
    deliver(app)
    [mail] = smtp_server.wait_for(1)
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "check-in-code.svg"
    assert attachment.get_content_type() == "image/svg+xml"
    assert read_qr_code(attachment.get_payload(decode=True)) == "CHECK-IN-4711"


def test_list_mail_is_withheld_when_the_person_unsubscribed_before_it_went_out(app, smtp_server, outbox):
    list_id = outbox.make_list()
    [gone] = outbox.queue("gone@example.ca", mailing_list=list_id)
    [stays] = outbox.queue("stays@example.ca", mailing_list=list_id)
    with app.app_context():
        person_id = outbox.row(gone).person_id
        db.session.execute(
            update(Subscription)
            .where(Subscription.person_id == person_id)
            .values(status=SubscriptionStatus.UNSUBSCRIBED.value, unsubscribed_at=clock.now())
        )
        db.session.commit()

    report = deliver(app)

    assert report.withheld == 1 and report.sent == 1
    assert [m["To"].addresses[0].addr_spec for m in smtp_server.messages] == ["stays@example.ca"]
    assert outbox.row(gone).state == OutboxState.WITHHELD
    assert outbox.row(stays).state == OutboxState.SENT


def test_without_a_mail_server_messages_go_to_the_local_mailbox(app, outbox):
    from email import policy
    from email.parser import BytesParser
    from pathlib import Path

    assert not app.config["MAIL_SERVER"]
    ids = outbox.queue(count=3)
    with app.app_context():
        assert deliver_due() == 3
        assert deliver_due() == 0
    files = sorted((Path(app.instance_path) / "mailbox").glob("*.eml"))
    assert [f.name for f in files] == [f"{i:010d}.eml" for i in ids]
    parsed = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    assert parsed["Message-ID"] == outbox.row(ids[0]).message_id
    assert "The symposium programme is out." in parsed.get_body(("plain",)).get_content()
    assert all(row.state == OutboxState.SENT for row in outbox.rows())


def test_a_connection_is_reused_and_renewed_every_n_messages(app, smtp_server, outbox):
    sessions: list[str] = []
    handler = smtp_server.handler

    async def handle_EHLO(server, session, envelope, hostname, responses):
        sessions.append(hostname)
        session.host_name = hostname
        return responses

    handler.handle_EHLO = handle_EHLO
    app.config["MAIL_RECONNECT_EVERY"] = 3
    outbox.queue(count=7)
    assert deliver(app).sent == 7
    assert len(smtp_server.messages) == 7
    assert len(sessions) == 3  # 3 + 3 + 1


def test_parallel_connections_deliver_each_message_once(app, smtp_server, outbox):
    import asyncio

    handler = smtp_server.handler
    accept = handler.handle_DATA
    sessions: set[int] = set()

    async def handle_EHLO(server, session, envelope, hostname, responses):
        sessions.add(id(session))
        session.host_name = hostname
        return responses

    async def accept_once_every_connection_is_open(server, session, envelope):
        # Hold the first messages until all three connections are open, so the test shows
        # MAIL_CONNECTIONS really opens that many (not that the threads happened to overlap).
        for _ in range(1000):
            if len(sessions) >= 3:
                break
            await asyncio.sleep(0.01)
        return await accept(server, session, envelope)

    handler.handle_EHLO = handle_EHLO
    handler.handle_DATA = accept_once_every_connection_is_open
    app.config.update(MAIL_CONNECTIONS=3, MAIL_BATCH_SIZE=4)
    ids = outbox.queue(count=30)
    report = deliver(app)
    assert report.sent == 30
    received = smtp_server.wait_for(30)
    assert len(received) == 30 and len({m["Message-ID"] for m in received}) == 30
    assert len(sessions) == 3
    assert len({row.claimed_by for row in outbox.rows()}) == 3
    assert all(outbox.row(i).state == OutboxState.SENT for i in ids)


def test_the_rate_limit_paces_sending(app, smtp_server, outbox):
    import time

    app.config["MAIL_RATE_PER_SECOND"] = 40
    outbox.queue(count=9)
    started = time.monotonic()
    assert deliver(app).sent == 9
    assert time.monotonic() - started >= 8 / 40 * 0.9


def test_a_limit_sends_only_that_many(app, smtp_server, outbox):
    outbox.queue(count=5)
    with app.app_context():
        assert deliver_due(limit=2) == 2
        assert deliver_due() == 3
    assert len(smtp_server.messages) == 5


def test_an_expired_lease_is_claimed_again_but_a_live_one_is_not(app, smtp_server, outbox):
    clock.set_now(clock.now())
    [message_id] = outbox.queue("leased@example.ca")
    with app.app_context():
        db.session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message_id).values(
                state=OutboxState.SENDING.value, claimed_by="dead-host:1:abcd",
                lease_until=clock.now() + timedelta(seconds=300),
            )
        )
        db.session.commit()
    assert deliver(app).processed == 0
    clock.advance(timedelta(seconds=301))
    assert deliver(app).sent == 1
    assert len(smtp_server.messages) == 1
    assert outbox.row(message_id).state == OutboxState.SENT


def test_the_scheduler_job_and_the_background_thread_deliver(app, smtp_server, outbox):
    from portal.mail.delivery import start_background_delivery
    from portal.mail.jobs import deliver_outbox

    outbox.queue(count=2)
    with app.app_context():
        assert deliver_outbox() == 2
    outbox.queue(count=1)
    thread = start_background_delivery(app, interval=0.05)
    try:
        smtp_server.wait_for(3)
    finally:
        thread.stop()
    assert not thread.is_alive() and thread.daemon
    assert len(smtp_server.messages) == 3


def test_send_mail_command_prints_counts(app, smtp_server, outbox, runner):
    outbox.queue(count=2)
    smtp_server.reply_next_with("554 5.7.1 Rejected")
    result = runner.invoke(args=["send-mail"])
    assert result.exit_code == 0, result.output
    assert "sent: 1, retry: 0, failed: 1, withheld: 0" in result.output


def test_a_connection_the_server_dropped_is_reopened_without_losing_or_doubling(app, smtp_server, outbox):
    import asyncio

    handler = smtp_server.handler
    accept = handler.handle_DATA

    async def accept_then_hang_up(server, session, envelope):
        reply = await accept(server, session, envelope)
        asyncio.get_running_loop().call_soon(server.transport.close)  # after the 250 is written
        return reply

    sessions: list[str] = []

    async def handle_EHLO(server, session, envelope, hostname, responses):
        sessions.append(hostname)
        session.host_name = hostname
        return responses

    handler.handle_DATA = accept_then_hang_up
    handler.handle_EHLO = handle_EHLO
    ids = outbox.queue(count=4)
    report = deliver(app)
    assert report.sent == 4 and report.retried == 0
    received = smtp_server.wait_for(4)
    assert len(received) == 4 and len({m["Message-ID"] for m in received}) == 4
    assert all(outbox.row(i).state == OutboxState.SENT for i in ids)
    assert len(sessions) == 4  # each message after the first found its connection gone


def test_a_server_that_stops_answering_is_a_timeout_and_retried(app, smtp_server, outbox):
    import asyncio

    handler = smtp_server.handler
    accept = handler.handle_DATA

    async def too_slow(server, session, envelope):
        await asyncio.sleep(3)
        return "451 4.3.0 Too late anyway"

    handler.handle_DATA = too_slow
    app.config["MAIL_TIMEOUT_SECONDS"] = 0.5
    clock.set_now(clock.now())
    [message_id] = outbox.queue("slow@example.ca")

    report = deliver(app)
    row = outbox.row(message_id)
    assert report.retried == 1 and report.sent == 0
    assert row.state == OutboxState.RETRY and row.attempts == 1
    assert "timed out" in row.last_error

    handler.handle_DATA = accept
    clock.advance(timedelta(minutes=2))
    assert deliver(app).sent == 1
    assert [m["Message-ID"] for m in smtp_server.wait_for(1)] == [row.message_id]
    assert outbox.row(message_id).state == OutboxState.SENT


def test_each_recipient_reads_the_message_in_their_own_language(app, smtp_server, outbox):
    list_id = outbox.make_list()
    with app.app_context():
        get_or_create_person("camille@example.ca", name="Camille", language="fr")
        get_or_create_person("casey@example.ca", name="Casey", language="en")
        db.session.commit()
    outbox.queue("camille@example.ca", mailing_list=list_id)
    outbox.queue("casey@example.ca", mailing_list=list_id)

    deliver(app)

    [french] = smtp_server.to("camille@example.ca")
    [english] = smtp_server.to("casey@example.ca")
    french_text = french.get_body(("plain",)).get_content()
    english_text = english.get_body(("plain",)).get_content()
    assert french_text.startswith("Bonjour Camille,") and "Contact :" in french_text
    assert "Se désabonner :" in french_text and "Hello" not in french_text
    assert english_text.startswith("Hello Casey,") and "Unsubscribe:" in english_text
    assert '<html lang="fr">' in french.get_body(("html",)).get_content()
    assert '<html lang="en">' in english.get_body(("html",)).get_content()


def test_list_mail_can_have_its_own_sender_and_only_automatic_notices_say_so(app, smtp_server, outbox):
    app.config["MAIL_LIST_SENDER"] = "OWG announcements <lists@owg.example.ca>"
    list_id = outbox.make_list()
    outbox.queue("subscriber@example.ca", mailing_list=list_id)
    outbox.queue("registrant@example.ca")
    with app.app_context():
        person = get_or_create_person("written@example.ca", name="Written By Hand")
        queue_email(key="test.manual:1", to=person, template="mail/notice", purpose="mail.test",
                    context={"title": "A personal reply", "paragraphs": ["x"]}, automatic=False)
        db.session.commit()

    deliver(app)
    smtp_server.wait_for(3)

    [list_mail] = smtp_server.to("subscriber@example.ca")
    [plain_mail] = smtp_server.to("registrant@example.ca")
    [manual_mail] = smtp_server.to("written@example.ca")
    assert str(list_mail["From"]) == "OWG announcements <lists@owg.example.ca>"
    assert str(plain_mail["From"]) == "Ontario Working Group <no-reply@owg.example.ca>"
    envelopes = dict((to[0], sender) for sender, to in smtp_server.handler.envelopes)
    assert envelopes["subscriber@example.ca"] == "lists@owg.example.ca"
    assert envelopes["registrant@example.ca"] == "no-reply@owg.example.ca"
    assert list_mail["Auto-Submitted"] == plain_mail["Auto-Submitted"] == "auto-generated"
    assert manual_mail["Auto-Submitted"] is None


def test_mail_to_an_erased_person_is_withheld(app, smtp_server, outbox):
    [erased] = outbox.queue("erased@example.ca")
    [kept] = outbox.queue("kept@example.ca")
    with app.app_context():
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == erased).values(person_id=None))
        db.session.commit()

    report = deliver(app)

    assert report.withheld == 1 and report.sent == 1
    assert [m["To"].addresses[0].addr_spec for m in smtp_server.messages] == ["kept@example.ca"]
    row = outbox.row(erased)
    assert row.state == OutboxState.WITHHELD and row.last_error == "The recipient was erased."
    assert outbox.row(kept).state == OutboxState.SENT


def test_a_hanging_server_ends_the_pass_after_one_message(app, smtp_server, outbox):
    """Each message would wait out the timeout and lose an attempt: one does, and the rest
    go back, unattempted, for the next pass (as when the server refuses connections)."""
    import asyncio

    async def hangs(server, session, envelope):
        await asyncio.sleep(3)
        return "250 too late"

    smtp_server.handler.handle_DATA = hangs
    app.config["MAIL_TIMEOUT_SECONDS"] = 0.5
    clock.set_now(clock.now())
    ids = outbox.queue(count=4)
    report = deliver(app)
    assert report.unreachable and report.retried == 1 and report.released == 3
    rows = [outbox.row(message_id) for message_id in ids]
    assert sorted((r.state, r.attempts) for r in rows) == [("queued", 0)] * 3 + [("retry", 1)]


def test_a_slow_server_never_gets_a_message_twice_from_two_senders(app, smtp_server, outbox):
    """Each message takes the server 100 s (of the portal's clock): the first sender's
    300 s claim would run out part-way. It renews its claim as it goes, so a second sender
    started meanwhile finds nothing to take, and every message goes out once."""
    import threading

    accept = smtp_server.handler.handle_DATA

    async def slow(server, session, envelope):
        import asyncio

        clock.advance(timedelta(seconds=100))
        await asyncio.sleep(0.2)  # and slow enough in real time for the second sender to start
        return await accept(server, session, envelope)

    smtp_server.handler.handle_DATA = slow
    app.config.update(MAIL_LEASE_SECONDS=300, MAIL_TIMEOUT_SECONDS=30)
    clock.set_now(clock.now())
    ids = outbox.queue(count=8)
    first = threading.Thread(target=deliver, args=(app,))
    first.start()
    smtp_server.wait_for(4)  # 400 s on: past the first claim's end
    second = deliver(app)
    first.join(timeout=60)
    assert not first.is_alive()
    assert second.sent == 0
    received = [str(m["To"]) for m in smtp_server.messages]
    assert len(received) == len(set(received)) == 8
    assert {outbox.row(message_id).state for message_id in ids} == {OutboxState.SENT}


def _dribbling_smtp_server(stop, *, on: bytes = b"DATA"):
    """An SMTP server (a bare socket) that answers the end of DATA (or QUIT, `on`) one byte
    every 0.1 s: each read is quick, the whole reply takes 20 s."""
    import socket
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def dribble(connection, reply: bytes) -> None:
        for byte in reply + b" " + b"x" * 200 + b"\r\n":
            if stop.is_set():
                return
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(0.1)

    def serve_one(connection) -> None:
        lines = connection.makefile("rb")
        connection.sendall(b"220 drip ready\r\n")
        while not stop.is_set():
            command = lines.readline()[:4].upper()
            if command in (b"EHLO", b"HELO"):
                connection.sendall(b"250 drip\r\n")
            elif command in (b"MAIL", b"RCPT", b"RSET"):
                connection.sendall(b"250 ok\r\n")
            elif command == b"DATA":
                connection.sendall(b"354 go on\r\n")
                while lines.readline() not in (b".\r\n", b""):
                    pass
                if on == b"DATA":
                    dribble(connection, b"250")
                else:
                    connection.sendall(b"250 stored\r\n")
            elif command == b"QUIT" and on == b"QUIT":
                dribble(connection, b"221")
                break
            else:
                break
        connection.close()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=serve_one, args=(connection,), daemon=True).start()
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def test_a_server_dribbling_its_reply_is_cut_off_within_the_claims_lease(app, outbox):
    """A review: a server sending its final 250 a byte at a time kept one message for as long
    as it liked (smtplib's timeout bounds each read, not the exchange); the claim ran out
    meanwhile and a second sender sent the message too, though no process had died. The
    exchange is now cut off after twelve timeouts, well inside the lease, and the message
    waits for a retry like any timed-out one."""
    import threading
    import time

    stop = threading.Event()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=_dribbling_smtp_server(stop), MAIL_TIMEOUT_SECONDS=0.3)
    clock.set_now(clock.now())
    [message_id] = outbox.queue("dribbled@example.ca")
    started = time.monotonic()
    try:
        report = deliver(app)
    finally:
        stop.set()
    elapsed = time.monotonic() - started
    row = outbox.row(message_id)
    assert report.retried == 1 and report.sent == 0 and report.unreachable
    assert row.state == OutboxState.RETRY and "connection cut" in row.last_error
    assert elapsed < 12 * 0.3 + 2.5  # twelve timeouts and the watchdog's look, not the 20 s reply


def test_a_quit_dribbled_before_reconnecting_is_cut_off_too(app, outbox):
    """A review: the QUIT that closes a connection before the next one (every
    MAIL_RECONNECT_EVERY messages) ran outside the exchange's limit, so a server dribbling its
    goodbye held the next message as long as it liked."""
    import threading
    import time

    stop = threading.Event()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=_dribbling_smtp_server(stop, on=b"QUIT"),
                      MAIL_TIMEOUT_SECONDS=0.3, MAIL_RECONNECT_EVERY=1)
    clock.set_now(clock.now())
    first, second = outbox.queue(count=2)
    started = time.monotonic()
    try:
        report = deliver(app)
    finally:
        stop.set()
    assert time.monotonic() - started < 2 * (12 * 0.3 + 1.5)  # each QUIT cut off, not 20 s each
    assert report.sent == 1 and report.retried == 1
    assert outbox.row(first).state == OutboxState.SENT and outbox.row(second).state == OutboxState.RETRY


def test_a_relay_saying_try_later_is_retried_for_days_not_hours(app):
    from portal.mail.delivery import RETRY_BASE, RETRY_CAP

    attempts = app.config["MAIL_MAX_ATTEMPTS"]
    # The least the backoff (jitter at most -20 %) adds up to before the last attempt.
    span = sum((min(RETRY_CAP, RETRY_BASE * 2 ** (n - 1)) * 0.8 for n in range(1, attempts)), timedelta())
    assert span >= timedelta(days=3)


def test_a_message_slower_than_half_the_claim_still_goes_out_once(app, smtp_server, outbox):
    """The worst single message (a dropped connection, a reconnect with TLS and AUTH, each
    reply just under the timeout) can take a long while: the claim is renewed before it and
    outlasts it, so a second sender meanwhile takes nothing."""
    import asyncio
    import threading

    accept = smtp_server.handler.handle_DATA
    durations = [130, 175]  # seconds of the portal's clock each of the first two takes
    second_may_run = threading.Event()
    calls: list[int] = []

    async def slow(server, session, envelope):
        index = len(calls)
        calls.append(index)
        if index < len(durations):
            clock.advance(timedelta(seconds=durations[index]))
        if index == 1:
            second_may_run.set()  # the first sender is mid-message, 305 s after its claim
            await asyncio.sleep(1.5)
        return await accept(server, session, envelope)

    smtp_server.handler.handle_DATA = slow
    app.config.update(MAIL_LEASE_SECONDS=300, MAIL_TIMEOUT_SECONDS=30)
    clock.set_now(clock.now())
    outbox.queue(count=4)
    first = threading.Thread(target=deliver, args=(app,))
    first.start()
    assert second_may_run.wait(10)
    assert deliver(app).sent == 0
    first.join(timeout=30)
    received = [str(m["To"]) for m in smtp_server.messages]
    assert len(received) == len(set(received)) == 4


def test_a_server_closing_a_reused_connection_with_421_costs_nothing(app, smtp_server, outbox):
    """Servers answer the next command on a connection idle too long (or past their messages
    per connection) with 421 and close it. Nothing was handed over: the message goes at once
    on a fresh connection, and the pass goes on."""
    seen: list[str] = []

    async def handle_MAIL(server, session, envelope, address, options):
        seen.append(address)
        if len(seen) == 2:  # the second MAIL, on the reused connection
            return "421 4.4.2 mail.example Error: timeout exceeded"
        envelope.mail_from = address
        return "250 OK"

    smtp_server.handler.handle_MAIL = handle_MAIL
    clock.set_now(clock.now())
    ids = outbox.queue(count=4)
    report = deliver(app)
    assert report.sent == 4 and report.retried == 0 and not report.unreachable
    assert {outbox.row(message_id).attempts for message_id in ids} == {1}


def _self_signed_tls(tmp_path):
    """A server-side TLS context with a throwaway self-signed certificate (openssl)."""
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


def test_mail_goes_through_starttls_and_implicit_tls_to_a_server_it_trusts(app, outbox, tmp_path):
    """A review: connecting in two steps (so the watchdog can cut a slow greeting) left
    smtplib without the server's name, and every STARTTLS or SSL connection failed before
    sending anything. And smtplib's own TLS checked no certificate: a server that is not the
    relay's (an interception) got the mail; now its certificate must check out."""
    from tests.conftest import free_port
    from tests.smtp import SMTPServer

    context, certificate = _self_signed_tls(tmp_path)
    server = SMTPServer(free_port(), tls_context=context)
    server.start()
    try:
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, MAIL_USE_TLS=True, MAIL_TLS_CA_FILE="")
        [untrusted] = outbox.queue("untrusted@example.ca")
        report = deliver(app)
        assert report.sent == 0 and report.unreachable
        assert "certificate verify failed" in outbox.row(untrusted).last_error and server.messages == []
    finally:
        server.stop()
    app.config["MAIL_TLS_CA_FILE"] = str(certificate)  # the relay's own authority, trusted
    clock.set_now(clock.now() + timedelta(hours=1))  # past the retry's wait
    for setting, server in (("MAIL_USE_TLS", SMTPServer(free_port(), tls_context=context)),
                            ("MAIL_USE_SSL", SMTPServer(free_port(), ssl_context=context))):
        server.start()
        try:
            app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, MAIL_USE_TLS=False, MAIL_USE_SSL=False)
            app.config[setting] = True
            [message_id] = outbox.queue(f"{setting.lower()}@example.ca")
            deliver(app)
            assert outbox.row(message_id).state == OutboxState.SENT, (setting, outbox.row(message_id).last_error)
            assert "mail_use_" in str(server.wait_for(1)[-1]["To"])
        finally:
            server.stop()
