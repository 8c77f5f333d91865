"""The in-process rate-limit storage: limits like limits' own, without starting threads."""
from __future__ import annotations

import threading

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
