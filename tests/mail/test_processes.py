"""Sender processes: several drain one outbox, and one killed mid-drain loses nothing."""
from __future__ import annotations

import collections
import os
import signal
import time
from datetime import timedelta

from portal.core import clock
from portal.mail.models import OutboxState


def _received_ids(smtp_server) -> collections.Counter:
    return collections.Counter(m["Message-ID"] for m in smtp_server.messages)


def test_two_sender_processes_deliver_every_message_exactly_once(app, smtp_server, outbox, sender):
    # Both processes watch an empty outbox first, so they really drain it at the same time.
    senders = [sender.start("--watch", "--interval", "0.05", MAIL_BATCH_SIZE="10") for _ in range(2)]
    try:
        for process in senders:
            assert process.stdout.readline().startswith("watching the outbox")
        ids = outbox.queue(count=240)
        smtp_server.wait_for(240, timeout=60)
        expected = {outbox.row(i).message_id for i in ids}
        # Wait until every row is marked (each right after its 250), then stop both.
        deadline = time.monotonic() + 60
        while any(row.state != OutboxState.SENT for row in outbox.rows()):
            assert time.monotonic() < deadline, "the senders never marked every row sent"
            time.sleep(0.02)
    finally:
        for process in senders:
            process.send_signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=30) for process in senders]
    for process, (out, err) in zip(senders, outputs):
        assert process.returncode == 0, err
        assert out.rstrip().endswith("stopped")
    received = _received_ids(smtp_server)
    assert set(received) == expected
    assert max(received.values()) == 1, "a message was delivered twice"
    assert len(smtp_server.messages) == 240
    pids = {row.claimed_by.split(":")[1] for row in outbox.rows()}
    assert pids == {str(p.pid) for p in senders}, "both processes should have sent part of the outbox"


def test_a_sender_killed_mid_drain_loses_nothing_after_its_lease_expires(app, smtp_server, outbox, sender):
    start = clock.now().replace(microsecond=0)
    clock.set_now(start)
    ids = outbox.queue(count=120)
    expected = {outbox.row(i).message_id for i in ids}

    victim = sender.start(MAIL_BATCH_SIZE="50", MAIL_RATE_PER_SECOND="60",
                          MAIL_LEASE_SECONDS="300", PORTAL_FAKE_NOW=start.isoformat())
    smtp_server.wait_for(20, timeout=30)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=10)
    delivered_before = len(smtp_server.messages)
    assert delivered_before < 120, "the sender finished before it could be killed"
    stranded = [row for row in outbox.rows() if row.state == OutboxState.SENDING]
    assert stranded, "the killed sender left no claimed rows"

    # While the dead sender's lease runs, a new sender leaves its rows alone...
    out = sender.run(PORTAL_FAKE_NOW=(start + timedelta(seconds=10)).isoformat())
    assert {row.id for row in outbox.rows() if row.state == OutboxState.SENDING} == {r.id for r in stranded}
    # ...and once it has expired, takes them over (a lease is at least twenty SMTP timeouts).
    from portal.mail.delivery import sending_lease

    lease = sending_lease({"MAIL_LEASE_SECONDS": 300, "MAIL_TIMEOUT_SECONDS": 30})
    out = sender.run(PORTAL_FAKE_NOW=(start + lease + timedelta(seconds=1)).isoformat())
    assert out.startswith("sent: ")

    assert all(row.state == OutboxState.SENT for row in outbox.rows())
    received = _received_ids(smtp_server)
    assert set(received) == expected, "a message was lost"
    doubled = [mid for mid, n in received.items() if n > 1]
    assert len(doubled) <= 1, f"only the message in flight at the kill may be doubled: {doubled}"
