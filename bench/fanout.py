"""Fan-out benchmark: how fast the outbox drains release notices, against a plain smtplib loop.

    .venv/bin/python bench/fanout.py [--count 20000] [--connections 4] [--postgres [URL]]

For each database (SQLite always; PostgreSQL with --postgres or PORTAL_BENCH_DATABASE_URL) it
queues N release notices to N distinct subscribers of one list through `queue_email`, then a
separate sender process drains them with the portal's delivery code to an aiosmtpd server on
loopback (another process). In the same run a plain smtplib loop sends the same number of
messages of the same size over one connection to the same server. It prints messages per
second for both (medians of alternating rounds, as the machine's load drifts), their ratio,
and the sender's peak memory (max RSS of the sender process).
PostgreSQL gets its own database, created and dropped here.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENDER = "Ontario Working Group <no-reply@owg.example.ca>"
#: Paragraphs of a release notice (the text the guidelines feature sends, at its usual length).
NOTICE = [
    "“Collaborative risk-driven intervention: a guideline for situation tables” (version 2.1) "
    "is released. It replaces version 2.0 and reflects what eleven communities reported in the "
    "past year about privacy, consent and information sharing at situation tables.",
    "Download it, in English or French, from your personal link (it works for 60 days). The "
    "summary for frontline staff and the facilitator's checklist are included.",
    "Need an accessible format? Reply to owg@owg.example.ca and we will provide it.",
]


# --------------------------------------------------------------------------- SMTP server


SERVER_CODE = r"""
import sys
from aiosmtpd.controller import Controller

class Counting:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Counting.count += 1
        return "250 OK"

controller = Controller(Counting(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "count":
        print(Counting.count, flush=True)
    elif line.strip() == "reset":
        Counting.count = 0
        print("ok", flush=True)
controller.stop()
"""


class Server:
    """aiosmtpd in its own process, so it never competes with the sender for the GIL."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER_CODE, str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def ask(self, command: str) -> str:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def count(self) -> int:
        return int(self.ask("count"))

    def reset(self) -> None:
        self.ask("reset")

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- child modes


def make_app(database_url: str, instance: str, extra: dict | None = None):
    os.environ["PORTAL_INSTANCE_PATH"] = instance
    from portal import create_app

    return create_app({
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "bench-secret-key-not-for-production-use",
        "MAIL_DEFAULT_SENDER": SENDER,
        "PORTAL_BASE_URL": "https://portal.owg.example.ca",
        **(extra or {}),
    })


def child_drain(args) -> None:
    """The sender: drain the outbox with the portal's delivery code; report time and memory."""
    app = make_app(args.database, args.instance, {
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": args.port,
        "MAIL_CONNECTIONS": args.connections, "MAIL_RATE_PER_SECOND": 0,
    })
    from portal.mail.delivery import drain

    with app.app_context():
        started = time.perf_counter()
        report = drain()
        elapsed = time.perf_counter() - started
    print(json.dumps({
        "elapsed": elapsed, "sent": report.sent, "failed": report.failed + report.retried,
        "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


def child_baseline(args) -> None:
    """The plain loop: one connection, `sendmail` per message, nothing else."""
    import smtplib

    data = Path(args.sample).read_bytes()
    connection = smtplib.SMTP("127.0.0.1", args.port)
    started = time.perf_counter()
    for n in range(args.count):
        connection.sendmail("no-reply@owg.example.ca", [f"reader{n}@example.ca"], data)
    elapsed = time.perf_counter() - started
    connection.quit()
    print(json.dumps({"elapsed": elapsed, "sent": args.count,
                      "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def run_child(mode: str, **options) -> dict:
    command = [sys.executable, __file__, f"--child={mode}"]
    for key, value in options.items():
        command.append(f"--{key.replace('_', '-')}={value}")
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- setup


def queue_notices(database_url: str, instance: str, count: int) -> tuple[float, Path]:
    """Create N subscribers and queue one release notice each; returns (seconds, sample .eml)."""
    import hashlib

    from sqlalchemy import insert, select, text

    from portal.extensions import db
    from portal.lists.models import MailingList, Subscription
    from portal.mail.models import MessageCategory, OutboxMessage
    from portal.mail.services import ListContext, queue_email
    from portal.mail.wire import WireMessage, render_wire
    from portal.people.models import Person

    app = make_app(database_url, instance)
    with app.app_context():
        db.drop_all()
        db.create_all()
        mailing_list = MailingList(slug="guideline-releases", name_en="Guideline releases")
        db.session.add(mailing_list)
        db.session.commit()
        list_id = mailing_list.id
        started = time.perf_counter()
        for first in range(0, count, 1000):
            numbers = range(first, min(count, first + 1000))
            db.session.execute(insert(Person), [
                {"email": f"reader{n}@example.ca", "name": f"Reader {n}", "language": "en"} for n in numbers
            ])
            people = db.session.execute(
                select(Person).where(Person.email.in_([f"reader{n}@example.ca" for n in numbers]))
            ).scalars().all()
            tokens = {}
            rows = []
            for person in people:
                raw = secrets.token_urlsafe(32)
                tokens[person.id] = raw
                rows.append({"list_id": list_id, "person_id": person.id, "status": "active",
                             "unsubscribe_token_hash": hashlib.sha256(raw.encode()).hexdigest()})
            db.session.execute(insert(Subscription), rows)
            for person in people:
                queue_email(
                    key=f"guidelines.release:1:{person.id}", to=person, template="mail/notice",
                    purpose="guidelines.release_notice",
                    context={"title": "Released: “Collaborative risk-driven intervention” 2.1",
                             "paragraphs": NOTICE,
                             "link_path": f"/guidelines/download/{secrets.token_urlsafe(32)}",
                             "link_label": "Download the guideline"},
                    category=MessageCategory.LIST,
                    list_context=ListContext(
                        list_id=list_id,
                        list_id_header="Guideline releases <guideline-releases.owg.example.ca>",
                        unsubscribe_url=f"https://portal.owg.example.ca/lists/unsubscribe/{tokens[person.id]}",
                        unsubscribe_mailto="unsubscribe@owg.example.ca",
                    ),
                )
            db.session.commit()
            db.session.expunge_all()
        queued = time.perf_counter() - started
        if db.engine.dialect.name == "postgresql":
            # What autovacuum does soon after a bulk insert; the claim plan depends on it.
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        row = db.session.execute(select(OutboxMessage).limit(1)).scalar_one()
        sample = render_wire(WireMessage(
            from_address=row.from_address, to_address=row.to_address, reply_to=row.reply_to,
            subject=row.subject, body_text=row.body_text, body_html=row.body_html,
            message_id=row.message_id, headers=row.headers, date=row.created_at,
        ))
        db.session.remove()
        db.engine.dispose()
    path = Path(instance) / "sample.eml"
    path.write_bytes(sample)
    return queued, path


def requeue(database_url: str) -> None:
    """Put every message back in the queue for another round."""
    from sqlalchemy import create_engine, update

    from portal.core.clock import now
    from portal.mail.models import OutboxMessage

    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(update(OutboxMessage).values(
            state="queued", attempts=0, next_attempt_at=now(), claimed_by="", lease_until=None,
            sent_at=None,
        ))
    engine.dispose()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def bench_backend(label: str, database_url: str, count: int, connections: int, server: Server,
                  rounds: int) -> dict:
    """Alternate baseline and outbox rounds (the machine's load drifts); report medians."""
    with tempfile.TemporaryDirectory(prefix="fanout-") as instance:
        queued, sample = queue_notices(database_url, instance, count)
        size = sample.stat().st_size
        baseline_rates, outbox_rates, peaks = [], [], []
        for round_number in range(rounds):
            if round_number:
                requeue(database_url)
            server.reset()
            baseline = run_child("baseline", port=server.port, count=count, sample=sample)
            assert server.count() == count
            server.reset()
            outbox = run_child("drain", port=server.port, database=database_url, instance=instance,
                               connections=connections)
            received = server.count()
            if received != count or outbox["sent"] != count:
                raise SystemExit(f"{label}: {outbox['sent']} marked sent, {received} received, "
                                 f"{count} queued")
            baseline_rates.append(count / baseline["elapsed"])
            outbox_rates.append(count / outbox["elapsed"])
            peaks.append(outbox["peak_kib"] / 1024)
            print(f"  {label} round {round_number + 1}: outbox {outbox_rates[-1]:.0f}/s, "
                  f"smtplib {baseline_rates[-1]:.0f}/s", flush=True)
    result = {
        "backend": label,
        "count": count,
        "size_bytes": size,
        "queue_per_s": count / queued,
        "outbox_per_s": median(outbox_rates),
        "smtplib_per_s": median(baseline_rates),
        "sender_peak_mb": max(peaks),
        "connections": connections,
    }
    result["ratio"] = result["outbox_per_s"] / result["smtplib_per_s"]
    return result


def postgres_database(server_url: str):
    """Create a throwaway database on the server; returns (url, drop function)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from config import database_url as normalize

    base = make_url(normalize(server_url))
    name = f"portal_fanout_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000, help="messages per backend (default 20000)")
    parser.add_argument("--connections", type=int, default=4,
                        help="MAIL_CONNECTIONS for the outbox sender (default 4)")
    parser.add_argument("--postgres", nargs="?", const="postgresql://postgres@127.0.0.1:5432/postgres",
                        default=os.environ.get("PORTAL_BENCH_DATABASE_URL"),
                        help="also run on PostgreSQL (server URL; a database is created and dropped)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of both senders; medians are reported (default 3)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--instance", help=argparse.SUPPRESS)
    parser.add_argument("--sample", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "drain":
        return child_drain(args)
    if args.child == "baseline":
        return child_baseline(args)

    server = Server(free_port())
    results = []
    try:
        if not args.no_sqlite:
            with tempfile.TemporaryDirectory(prefix="fanout-db-") as folder:
                results.append(bench_backend("sqlite", f"sqlite:///{folder}/bench.sqlite3",
                                             args.count, args.connections, server, args.rounds))
        if args.postgres:
            url, drop = postgres_database(args.postgres)
            try:
                results.append(bench_backend("postgresql", url, args.count, args.connections, server, args.rounds))
            finally:
                drop()
    finally:
        server.stop()

    print(f"\nFan-out of {args.count} release notices ({results[0]['size_bytes']} bytes each), "
          f"outbox sender with MAIL_CONNECTIONS={args.connections}, aiosmtpd on loopback:")
    print(f"{'backend':<11} {'outbox msg/s':>12} {'smtplib msg/s':>13} {'ratio':>6} "
          f"{'sender peak MB':>15} {'queue msg/s':>12}")
    for r in results:
        print(f"{r['backend']:<11} {r['outbox_per_s']:>12.0f} {r['smtplib_per_s']:>13.0f} "
              f"{r['ratio']:>6.2f} {r['sender_peak_mb']:>15.1f} {r['queue_per_s']:>12.0f}")
    goal = all(r["ratio"] >= 0.8 and r["sender_peak_mb"] < 250 for r in results)
    print("goal (ratio >= 0.8, peak < 250 MB):", "met" if goal else "NOT met")


if __name__ == "__main__":
    main()
