"""The portal's clock.

Everything that asks "what time is it" asks here, so tests move time instead of sleeping.
A test (or a subprocess started by one) sets `PORTAL_FAKE_NOW` or calls `set_now`.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_frozen: datetime | None = None
_offset: timedelta = timedelta(0)


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    if _frozen is not None:
        return _frozen
    env = os.environ.get("PORTAL_FAKE_NOW")
    if env:
        return datetime.fromisoformat(env).astimezone(UTC)
    return datetime.now(UTC) + _offset


def set_now(moment: datetime | None) -> None:
    """Freeze the clock at `moment` (aware), or unfreeze it with None."""
    global _frozen
    if moment is not None and moment.tzinfo is None:
        raise ValueError("set_now needs an aware datetime")
    _frozen = moment.astimezone(UTC) if moment else None


def advance(delta: timedelta) -> datetime:
    """Move a frozen clock forward (or a running one, by offset)."""
    global _frozen, _offset
    if _frozen is not None:
        _frozen = _frozen + delta
        return _frozen
    _offset += delta
    return now()


def reset() -> None:
    global _frozen, _offset
    _frozen = None
    _offset = timedelta(0)


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    previous = _frozen
    set_now(moment)
    try:
        yield
    finally:
        set_now(previous)


def portal_zone(name: str = "America/Toronto") -> ZoneInfo:
    return ZoneInfo(name)


def local_today() -> date:
    """Today's date where the portal is (PORTAL_TIMEZONE), not in UTC: at 9:30 PM in Toronto
    UTC is already tomorrow, and a term approved then starts today."""
    from flask import current_app

    return now().astimezone(ZoneInfo(current_app.config["PORTAL_TIMEZONE"])).date()
