"""Running an area's retention purge the way the purge job does, at a chosen moment."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from portal.core import clock
from portal.core.db import writing
from portal.extensions import db


def purge_at(app, purge_due: Callable[[datetime], int], at: datetime) -> int:
    """Move the clock to `at`, run `purge_due(at)` as one writer transaction, commit; returns
    how many rows it purged."""
    clock.set_now(at)
    with app.app_context(), writing():
        count = purge_due(at)
        db.session.commit()
    return count
