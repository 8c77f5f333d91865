"""Registration throughput: the portal against a one-row-insert baseline, same server, same database.

    .venv/bin/python bench/register.py                     # SQLite and PostgreSQL
    .venv/bin/python bench/register.py --backend sqlite --requests 400

For each backend: a fresh database with one published event (capacity = half the requests),
then gunicorn (same workers for both apps) serves first the portal, then a minimal Flask +
SQLAlchemy app whose POST inserts one row. 32 clients each fetch a form (CSRF token, cookie)
untimed, then all POST at once; we time only the POSTs. Prints registrations/s, p50 and p99
for both, the CPU the gunicorn workers spent per request (read from /proc), the ratio, and
checks that no seat was overbooked (exactly `capacity` confirmed, the rest waitlisted with
distinct tickets).

PostgreSQL: the server in PORTAL_BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres); a scratch database is created and dropped.
"""
from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --- the baseline: the least a Flask + SQLAlchemy endpoint can do -----------------------

def create_baseline_app(url: str | None = None, *, with_form: bool = False):
    """POST /register inserts one row and answers 201. Nothing else.

    `with_form` adds what any form page has before it does anything (`bench/register_cpu.py`
    measures it as a second reference): a Flask-WTF form with a CSRF token and validators for
    the registration's fields, the session cookie, and a redirect.
    """
    from flask import Flask, redirect, request, session
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy import event as sa_event
    from sqlalchemy import Integer, String
    from sqlalchemy.orm import DeclarativeBase, mapped_column

    from config import database_url

    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)

    class BenchRow(db.Model):
        __tablename__ = "bench_row"
        id = mapped_column(Integer, primary_key=True)
        email = mapped_column(String(320))

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(url or os.environ["DATABASE_URL"])
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40)
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            # The same connection settings as the portal, so the comparison is fair.
            @sa_event.listens_for(db.engine, "connect")
            def _pragmas(connection, _record):
                connection.isolation_level = None
                cursor = connection.cursor()
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

            @sa_event.listens_for(db.engine, "begin")
            def _begin(connection):
                connection.exec_driver_sql("BEGIN IMMEDIATE")

    if not with_form:
        @app.post("/register")
        def register():
            db.session.add(BenchRow(email=request.form.get("email", "")))
            db.session.commit()
            return "", 201

        return app

    from flask_wtf import FlaskForm
    from flask_wtf.csrf import generate_csrf
    from wtforms import BooleanField, SelectField, StringField, TextAreaField
    from wtforms.validators import DataRequired, Email, Length, Optional

    class RegistrationForm(FlaskForm):
        name = StringField(validators=[DataRequired(), Length(max=200)])
        email = StringField(validators=[DataRequired(), Email(), Length(max=320)])
        organization = StringField(validators=[DataRequired(), Length(max=200)])
        sector = SelectField(choices=["police", "health-care", "education", "housing", "mental-health"])
        community = StringField(validators=[DataRequired(), Length(max=120)])
        job_title = StringField(validators=[Optional(), Length(max=200)])
        accessibility_needs = TextAreaField(validators=[Optional(), Length(max=2000)])
        dietary_needs = TextAreaField(validators=[Optional(), Length(max=1000)])
        privacy = BooleanField(validators=[DataRequired()])
        announcements = BooleanField()

    @app.route("/register", methods=["GET", "POST"])
    def register_with_form():
        form = RegistrationForm()
        if form.validate_on_submit():
            db.session.add(BenchRow(email=form.email.data))
            db.session.commit()
            session["outcome"] = {"kind": "confirmed"}
            return redirect("/registered")
        return (f'<input name="csrf_token" type="hidden" value="{generate_csrf()}">',
                400 if request.method == "POST" else 200)

    return app


# --- driving a server -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the POST's own answer is what we time
        return None


class Client:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect())
        self.token = ""

    def fetch_token(self, path: str) -> None:
        with self.opener.open(self.base + path, timeout=60) as response:
            page = response.read().decode()
        self.token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)

    def post(self, path: str, data: dict) -> tuple[int, float]:
        body = urllib.parse.urlencode(data).encode()
        started = time.perf_counter()
        try:
            with self.opener.open(self.base + path, data=body, timeout=120) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        return status, time.perf_counter() - started


def start_server(target: str, url: str, workers: int, instance: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": secrets.token_urlsafe(40),
           "PORTAL_INSTANCE_PATH": instance, "PORTAL_ENV": "development", "MAIL_SERVER": "",
           "EVENTS_REGISTER_RATE_LIMIT": "1000000/minute", "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--backlog", "2048", "--log-level", "warning", target],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(1.0)  # let every worker finish booting
            return server, base
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"{target} did not start")


def server_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) used so far by gunicorn's workers, the children of `pid`;
    None where /proc is not there to read it."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # fields after the name: state, ppid, ..., utime (11), stime (12)
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def timed_load(server: subprocess.Popen, clients: list, path: str, forms: list[dict], concurrency: int) -> dict:
    """`run_load`, plus the workers' CPU milliseconds per request."""
    before = server_cpu_seconds(server.pid)
    figures = run_load(clients, path, forms, concurrency)
    after = server_cpu_seconds(server.pid)
    figures["cpu_ms"] = None if before is None or after is None else (after - before) / len(forms) * 1000
    return figures


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def run_load(clients: list[Client], path: str, forms: list[dict], concurrency: int) -> dict:
    """All POSTs from `concurrency` threads; returns throughput and latency figures."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    work = list(zip(clients, forms))
    index = iter(range(len(work)))

    def worker() -> None:
        while True:
            with lock:
                position = next(index, None)
            if position is None:
                return
            client, form = work[position]
            status, latency = client.post(path, form | ({"csrf_token": client.token} if client.token else {}))
            with lock:
                latencies.append(latency)
                statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(worker)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "statuses": statuses,
    }


# --- one backend ------------------------------------------------------------------------

def prepare_database(backend: str, workdir: Path) -> tuple[str, callable]:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'bench.sqlite3'}", lambda: None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from config import database_url

    server_url = make_url(database_url(os.environ.get(
        "PORTAL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")))
    name = f"portal_bench_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return server_url.set(database=name).render_as_string(hide_password=False), drop


def bench_backend(backend: str, requests: int, concurrency: int, workers: int) -> dict:
    from portal import create_app
    from portal.core.clock import now
    from portal.events.models import Event, Registration
    from portal.extensions import db

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, drop = prepare_database(backend, workdir)
        try:
            capacity = requests // 2
            app = create_app({"SQLALCHEMY_DATABASE_URI": url, "PORTAL_INSTANCE_PATH": str(workdir)})
            with app.app_context():
                db.create_all()
                from portal.people.services import seed_sectors

                seed_sectors()
                start = now() + timedelta(days=30)
                db.session.add(Event(slug="bench", title="Bench symposium", starts_at=start,
                                     ends_at=start + timedelta(hours=8), capacity=capacity, status="published"))
                db.session.commit()
                baseline = create_baseline_app(url)
                with baseline.app_context():
                    from flask import current_app

                    current_app.extensions["sqlalchemy"].create_all()
            sectors = ["police", "health-care", "education", "housing", "mental-health"]
            forms = [{"name": f"Bench Person {n}", "email": f"bench{n}@example.ca", "organization": "Org",
                      "sector": sectors[n % len(sectors)], "community": "Toronto", "privacy": "y"}
                     for n in range(requests)]

            server, base = start_server("portal:create_app()", url, workers, str(workdir / "instance"))
            try:
                clients = [Client(base) for _ in range(requests)]
                with ThreadPoolExecutor(max_workers=concurrency) as pool:
                    list(pool.map(lambda c: c.fetch_token("/events/bench/register"), clients))
                portal = timed_load(server, clients, "/events/bench/register", forms, concurrency)
            finally:
                stop(server)

            server, base = start_server("bench.register:create_baseline_app()", url, workers,
                                        str(workdir / "instance"))
            try:
                plain = timed_load(server, [Client(base) for _ in range(requests)], "/register", forms, concurrency)
            finally:
                stop(server)

            # The floor any form page pays before it does its own work (Flask-WTF form and
            # CSRF token, session cookie, redirect, one insert): how much of the gap to the
            # baseline is the registration's own.
            server, base = start_server("bench.register:create_baseline_app(with_form=True)", url, workers,
                                        str(workdir / "instance"))
            try:
                form_clients = [Client(base) for _ in range(requests)]
                with ThreadPoolExecutor(max_workers=concurrency) as pool:
                    list(pool.map(lambda c: c.fetch_token("/register"), form_clients))
                floor = timed_load(server, form_clients, "/register",
                                   [form | {"email": f"floor-{form['email']}"} for form in forms], concurrency)
            finally:
                stop(server)

            with app.app_context():
                rows = db.session.execute(db.select(Registration)).scalars().all()
                confirmed = sum(1 for r in rows if r.status == "confirmed")
                tickets = [r.waitlist_position for r in rows if r.status == "waitlisted"]
                db.session.remove()
                db.engine.dispose()
            overbooked = max(confirmed - capacity, 0)
            ok = (confirmed == capacity and len(tickets) == requests - capacity
                  and sorted(tickets) == list(range(1, len(tickets) + 1)))
            return {"backend": backend, "portal": portal, "baseline": plain, "form+insert": floor, "capacity": capacity,
                    "confirmed": confirmed, "waitlisted": len(tickets), "overbooked": overbooked, "exact": ok}
        finally:
            drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--clients", type=int, default=32)
    # Sync workers doing CPU-bound work: one per CPU. More only add context switches; on a
    # 2-CPU machine -w 4 cost 9.2 ms of worker CPU per registration against 6.7 ms at -w 2.
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    print(f"{args.requests} registrations, {args.clients} concurrent clients, gunicorn -w {args.workers}")
    print(f"{'backend':<11} {'app':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms':>7}  statuses")
    failed = False
    for backend in backends:
        result = bench_backend(backend, args.requests, args.clients, args.workers)
        for label in ("portal", "baseline", "form+insert"):
            figures = result[label]
            cpu = "" if figures["cpu_ms"] is None else f"{figures['cpu_ms']:.2f}"
            print(f"{backend:<11} {label:<9} {figures['rate']:>8.1f} {figures['p50']:>8.1f} {figures['p99']:>8.1f} "
                  f"{cpu:>7}  {figures['statuses']}")
        ratio = result["portal"]["rate"] / result["baseline"]["rate"]
        floor_ratio = result["form+insert"]["rate"] / result["baseline"]["rate"]
        print(f"{backend:<11} ratio     {ratio:>8.2f}   confirmed {result['confirmed']}/{result['capacity']}, "
              f"waitlisted {result['waitlisted']}, overbooked {result['overbooked']}, "
              f"{'exact' if result['exact'] else 'NOT EXACT'}")
        print(f"{backend:<11} (form+insert against the baseline: {floor_ratio:.2f})")
        failed |= result["overbooked"] > 0 or not result["exact"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
