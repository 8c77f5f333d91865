"""The in-process rate-limit storage: limits like limits' own, without starting threads."""
from __future__ import annotations

import os
import threading

import pytest
from limits import parse, storage, strategies

from portal.core import rate_limits
from portal.extensions import limiter


def test_the_portal_counts_in_the_swept_memory_storage(app):
    assert isinstance(limiter.storage, rate_limits.SweptMemoryStorage)


def test_a_limit_is_enforced_and_no_thread_is_started(monkeypatch):
    counters = storage.storage_from_string("swept-memory://")
    limiter_ = strategies.FixedWindowRateLimiter(counters)
    started = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self))
    five_a_minute = parse("5/minute")
    assert [limiter_.hit(five_a_minute, "203.0.113.9") for _ in range(6)] == [True] * 5 + [False]
    assert limiter_.hit(five_a_minute, "198.51.100.4")  # another address has its own count
    assert started == []


def test_expired_counters_are_swept_on_a_later_hit(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(rate_limits.time, "monotonic", lambda: clock[0])
    counters = rate_limits.SweptMemoryStorage()
    counters.incr("gone", expiry=1)
    counters.expirations["gone"] = 0  # its window ended long ago
    counters.incr("stays", expiry=60)
    assert "gone" in counters.storage  # nothing swept within the second
    clock[0] += rate_limits.SWEEP_EVERY_SECONDS
    counters.incr("stays", expiry=60)
    assert "gone" not in counters.storage and counters.storage["stays"] == 2


REDIS_URLS = [url for url in [os.environ.get("PORTAL_TEST_REDIS_URL")] if url]


# Runs where a Redis server is given (CI: this machine's, PORTAL_TEST_REDIS_URL in .ci/run).
@pytest.mark.parametrize("redis_url", REDIS_URLS)
def test_several_workers_share_their_counts_in_redis(tmp_path, redis_url):
    """Found by an operator pass: the README told operators with several web workers to use
    redis://, and the portal then failed to start ('redis' prerequisite not available); each
    worker's memory counted alone, so 3 workers allowed 3 times the login limit."""
    from portal import create_app

    prefix = f"portal-test-{os.getpid()}-{tmp_path.name}"
    settings = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db", "RATELIMIT_STORAGE_URI": redis_url,
                "RATELIMIT_KEY_PREFIX": prefix, "PORTAL_INSTANCE_PATH": str(tmp_path)}
    app = create_app(settings)
    assert type(limiter.storage).__name__ == "RedisStorage"
    # What another worker sees: the same server's counters, through their own connection.
    another_worker = strategies.FixedWindowRateLimiter(storage.storage_from_string(redis_url))
    five_a_minute = parse("5/minute")
    key = f"{prefix}/shared-count"
    assert [another_worker.hit(five_a_minute, key) for _ in range(3)] == [True] * 3
    with app.app_context():
        first_worker = strategies.FixedWindowRateLimiter(limiter.storage)
        assert [first_worker.hit(five_a_minute, key) for _ in range(3)] == [True, True, False]


def test_operators_can_list_every_limit(tmp_path):
    """`flask limiter limits` is in `flask --help` (a plugin command of Flask's CLI); without
    Flask-Limiter's cli extra it failed."""
    import subprocess
    import sys

    env = {**os.environ, "PORTAL_INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
           "PORTAL_ENV": "development", "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "portal", "limiter", "limits"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "auth.login: /login" in result.stdout and "20 per 1 minute" in result.stdout
