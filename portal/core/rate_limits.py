"""Rate-limit counters kept in the worker's memory, without a thread per request.

limits' `MemoryStorage` starts a `threading.Timer` (a new OS thread) whenever its previous
one has finished, which under steady traffic is every request or two, only to drop expired
counters. Its reads already ignore an expired counter, so that sweep is housekeeping: here
it runs inline, at most once a second. Starting those threads was 5% of a registration's
CPU (py-spy on bench/register_cpu.py). Use it as RATELIMIT_STORAGE_URI="swept-memory://";
with several web workers, use redis:// instead (counters are per worker otherwise).
"""
from __future__ import annotations

import time

from limits.storage import MemoryStorage

SWEEP_EVERY_SECONDS = 1.0


class SweptMemoryStorage(MemoryStorage):
    STORAGE_SCHEME = ["swept-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.timer.cancel()  # the one timer the parent starts; no other is ever started
        self._next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.timer.cancel()

    # MemoryStorage calls this (name-mangled) before every counter change.
    def _MemoryStorage__schedule_expiry(self) -> None:
        moment = time.monotonic()
        if moment >= self._next_sweep:
            self._next_sweep = moment + SWEEP_EVERY_SECONDS
            self._MemoryStorage__expire_events()
