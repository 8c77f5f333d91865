"""Values a worker keeps for a while instead of reading or building them on every request.

Each app has its own (tests make many apps), each kind of value its own shelf: sectors, the
registration doors of events, the shared parts of merged mail. A value is kept for the
seconds its caller says (the callers say why that is safe); a shelf that grows past its limit
starts over rather than growing with whatever keys arrive. A loader that raises keeps nothing.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from flask import current_app

Value = TypeVar("Value")

_EXTENSION = "portal.kept"


def _shelf(name: str) -> dict[Hashable, tuple[float, object]]:
    return current_app.extensions.setdefault(_EXTENSION, {}).setdefault(name, {})


def kept(name: str, key: Hashable, seconds: float, load: Callable[[], Value], *,
         fresh: bool = False, limit: int = 256) -> Value:
    """`load()`'s value for `key` on the `name` shelf, kept for `seconds` (math.inf: until
    forgotten); `fresh` loads again and keeps the new value."""
    shelf = _shelf(name)
    now = time.monotonic()
    found = None if fresh else shelf.get(key)
    if found is not None and found[0] > now:
        return found[1]  # type: ignore[return-value]
    value = load()
    if len(shelf) >= limit:
        shelf.clear()
    shelf[key] = (now + seconds, value)
    return value


def forget(name: str, key: Hashable | None = None) -> None:
    """Drop one kept value (or the whole shelf): the next ask loads it."""
    shelf = _shelf(name)
    if key is None:
        shelf.clear()
    else:
        shelf.pop(key, None)


def how_many_kept(name: str) -> int:
    return len(_shelf(name))
