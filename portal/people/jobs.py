"""Scheduled work the people area owns: the retention purge across every area."""
from __future__ import annotations

import importlib
import logging

from portal.core.clock import now
from portal.core.db import scrub_after_commit, writing
from portal.extensions import db

logger = logging.getLogger(__name__)


def retention_modules() -> list[tuple[str, object]]:
    """Every area's `portal.<area>.retention` module that offers `purge_due(moment)`."""
    from portal import AREAS

    found = []
    for area in AREAS:
        name = f"portal.{area}.retention"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise  # a broken module must not pass for a missing one
            continue
        if callable(getattr(module, "purge_due", None)):
            found.append((area, module))
    return found


def purge_expired_personal_data() -> int:
    """Purge whatever personal data every area's retention rules say is due; returns how
    many people or rows were purged.

    Each area's rules run in their own transaction (the people area's last), so one failing
    area neither blocks nor undoes the others (its failure is logged and it is retried at the
    next run). Idempotent: what was purged no longer matches any rule, so running it twice,
    or late, is harmless.
    """
    moment = now()
    total = 0
    # The people area runs last: its rule erases someone with no record left, which other
    # areas' rules (a membership, a copy request, a subscription purged) decide in this very
    # run. Run first, it would see those records and erase only at the next run, so a
    # second run would still change something.
    modules = sorted(retention_modules(), key=lambda item: item[0] == "people")
    for area, module in modules:
        try:
            with writing():
                purged = int(module.purge_due(moment) or 0)  # type: ignore[attr-defined]
                scrub_after_commit()  # also empties a log an erasure could not (a reader held it)
                db.session.commit()
        except Exception:
            db.session.rollback()
            logger.exception("retention purge failed for area %s", area)
            continue
        if purged:
            logger.info("retention purge: %s purged %d", area, purged)
        total += purged
    return total
