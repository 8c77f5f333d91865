"""CPU per registration, in one process: where `bench/register.py`'s server time goes.

    .venv/bin/python bench/register_cpu.py                 # SQLite, 300 registrations x 4 rounds
    .venv/bin/python bench/register_cpu.py --postgres      # also on PostgreSQL
    .venv/bin/python bench/register_cpu.py --profile 40    # and the 40 costliest functions

No HTTP server and no concurrency: registrations go through Flask's test client, one after
another, on a fresh database with one published event (large enough that every registration
gets a seat: tokens, calendar file, confirmation). The baseline is the
one-row-insert app of `bench/register.py` driven the same way, in the same run. Prints
process CPU milliseconds per request (best round) for both, their ratio, and the SQL
statements one registration runs.

PostgreSQL: the server in PORTAL_BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres); a scratch database is created and dropped.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import re
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("PORTAL_ENV", "development")
os.environ.setdefault("SECRET_KEY", "bench-" + "k" * 40)
os.environ["MAIL_SERVER"] = ""
os.environ["EVENTS_REGISTER_RATE_LIMIT"] = "1000000/minute"

from bench.register import create_baseline_app, prepare_database  # noqa: E402

SECTORS = ["police", "health-care", "education", "housing", "mental-health"]


def _form(n: int) -> dict:
    return {"name": f"Bench Person {n}", "email": f"bench{n}@example.ca", "organization": "Org",
            "sector": SECTORS[n % len(SECTORS)], "community": "Toronto", "privacy": "y"}


def _best_round(post, rounds: int, per_round: int, first: int) -> float:
    """Best of `rounds` rounds: CPU milliseconds per call of `post(n)`."""
    best = float("inf")
    n = first
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(per_round):
            post(n)
            n += 1
        best = min(best, (time.process_time() - started) / per_round * 1000)
    return best


def bench_backend(backend: str, rounds: int, per_round: int, profile: int) -> None:
    from sqlalchemy import event as sa_event

    from portal import create_app
    from portal.core.clock import now
    from portal.events.models import Event
    from portal.extensions import db
    from portal.people.services import seed_sectors

    with tempfile.TemporaryDirectory() as tmp:
        url, drop = prepare_database(backend, Path(tmp))
        try:
            app = create_app({"SQLALCHEMY_DATABASE_URI": url, "PORTAL_INSTANCE_PATH": tmp})
            statements: list[str] = []
            with app.app_context():
                db.create_all()
                seed_sectors()
                start = now() + timedelta(days=30)
                db.session.add(Event(slug="bench", title="Bench symposium", starts_at=start,
                                     ends_at=start + timedelta(hours=8), capacity=1_000_000,
                                     status="published"))
                db.session.commit()

                def count_statement(_conn, _cursor, statement, *_args) -> None:
                    statements.append(statement)

                sa_event.listen(db.engine, "before_cursor_execute", count_statement)
            client = app.test_client()
            page = client.get("/events/bench/register").get_data(as_text=True)
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)

            def register(n: int) -> None:
                response = client.post("/events/bench/register", data=_form(n) | {"csrf_token": token})
                assert response.status_code == 302, response.status_code

            for n in range(50):  # warm caches (templates, compiled statements)
                register(n)
            gc.freeze()  # as gunicorn.conf.py does in each web worker once the app is loaded
            statements.clear()
            register(10**8)
            one_registration = list(statements)
            with app.app_context():
                sa_event.remove(db.engine, "before_cursor_execute", count_statement)
            portal_ms = _best_round(register, rounds, per_round, 1000)

            baseline = create_baseline_app(url)
            with baseline.app_context():
                from flask import current_app

                current_app.extensions["sqlalchemy"].create_all()
            plain = baseline.test_client()

            def insert_one(n: int) -> None:
                assert plain.post("/register", data=_form(n)).status_code == 201

            for n in range(50):
                insert_one(n)
            baseline_ms = _best_round(insert_one, rounds, per_round, 1000)

            floor = create_baseline_app(url, with_form=True).test_client()
            floor_page = floor.get("/register").get_data(as_text=True)
            floor_token = re.search(r'value="([^"]+)"', floor_page).group(1)

            def form_and_insert(n: int) -> None:
                response = floor.post("/register", data=_form(n + 10**6) | {"csrf_token": floor_token})
                assert response.status_code == 302, response.get_data(as_text=True)

            for n in range(50):
                form_and_insert(n)
            floor_ms = _best_round(form_and_insert, rounds, per_round, 1000)

            print(f"{backend:<11} portal {portal_ms:6.2f} ms   baseline (one insert) {baseline_ms:5.2f} ms, "
                  f"ratio {baseline_ms / portal_ms:4.2f}   form + insert {floor_ms:5.2f} ms, "
                  f"ratio {floor_ms / portal_ms:4.2f}   statements per registration {len(one_registration)}")
            if profile:
                for statement in one_registration:
                    print("    " + " ".join(statement.split())[:110])
                profiler = cProfile.Profile()
                profiler.enable()
                for n in range(10**7, 10**7 + per_round):
                    register(n)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
            with baseline.app_context():
                current_app.extensions["sqlalchemy"].engine.dispose()
        finally:
            drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N costliest functions (cumulative) of one round")
    args = parser.parse_args()
    print(f"CPU per request, best of {args.rounds} rounds of {args.per_round}, one process, test client")
    for backend in ["sqlite"] + (["postgresql"] if args.postgres else []):
        bench_backend(backend, args.rounds, args.per_round, args.profile)


if __name__ == "__main__":
    main()
