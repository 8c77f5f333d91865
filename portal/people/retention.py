"""The people area's written retention rules, and the forecast organizers see.

Each rule says what is purged, when, and why. `purge_due(moment)` applies them (the same
signature every area's `retention` module offers to the purge job); `forecast(moment)` says
what will be purged when, without changing anything.

Rules:
- someone with no record left (no registration, membership, subscription, request...: only
  the consent ledger, if anything) and no consent in force is erased 24 months after their
  last consent ended (or after they first came, if they never consented). This also catches
  people whose registrations an event's own retention has detached;
- a subscription (or copy request) never confirmed is deleted 30 days after it was asked for;
- a link (access token) is deleted 30 days after it expired;
- a login attempt is deleted after one year.
"""
from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Table, delete, exists, func, select

from portal.core.clock import now
from portal.extensions import db
from portal.people.models import ConsentKind, ConsentRecord, Person

CONSENT_ONLY_KEPT = timedelta(days=730)
UNCONFIRMED_KEPT = timedelta(days=30)
EXPIRED_LINK_KEPT = timedelta(days=30)
LOGIN_ATTEMPT_KEPT = timedelta(days=365)

#: How far ahead the forecast looks.
FORECAST_HORIZON = timedelta(days=90)

#: Records that do not, by themselves, keep someone on file: the consent ledger itself,
#: links and messages sent to them, and their own privacy requests.
NOT_A_RECORD = {"consent_record", "access_token", "outbox_message", "outbox_attachment", "privacy_request"}

#: Unconfirmed requests, by (module, model, state attribute, pending value). A model that does
#: not exist (yet) is skipped.
UNCONFIRMED = [
    ("portal.lists.models", "Subscription", "status", "pending"),
    ("portal.guidelines.models", "CopyRequest", "status", "pending"),
]


@dataclass
class Forecast:
    """One rule: what it purges, how many rows are due now, and upcoming counts by day."""

    rule: str
    description: Any
    kept_for: Any
    due_now: int = 0
    upcoming: list[tuple[date, int]] = field(default_factory=list)


def _by_day(moments: list[datetime], moment: datetime) -> tuple[int, list[tuple[date, int]]]:
    due = sum(1 for m in moments if m <= moment)
    horizon = moment + FORECAST_HORIZON
    days = Counter(m.date() for m in moments if moment < m <= horizon)
    return due, sorted(days.items())


# --- consent-ledger-only people ---------------------------------------------------------


def _consent_only_people(moment: datetime) -> list[tuple[Person, datetime]]:
    """People with no record left and no live consent; with the moment they become due."""
    from portal.people.privacy import person_links

    query = select(Person).where(Person.erased_at.is_(None))
    for link in person_links():
        if link.table.name in NOT_A_RECORD or link.via is not None:
            continue
        query = query.where(~exists().where(link.column == Person.id))
    results: list[tuple[Person, datetime]] = []
    people = list(db.session.execute(query).scalars())
    # Their consent rows a chunk of people per query, not a query per person.
    records_of: dict[int, list[ConsentRecord]] = {person.id: [] for person in people}
    for start in range(0, len(people), 900):
        for record in db.session.execute(
            select(ConsentRecord).where(ConsentRecord.person_id.in_([p.id for p in people[start:start + 900]]))
        ).scalars():
            records_of[record.person_id].append(record)
    for person in people:
        latest: dict[str, ConsentRecord] = {}
        for record in sorted(records_of[person.id], key=lambda r: (r.created_at, r.id)):
            latest[record.purpose] = record
        ended: list[datetime] = []
        for record in latest.values():
            if record.kind == ConsentKind.WITHDRAWN:
                ended.append(record.created_at)
            elif record.expires_at is not None:
                ended.append(record.expires_at)  # implied consent lapses on its own
            else:
                break  # live express consent: keep them
        else:
            last = max(ended + [person.created_at])
            results.append((person, last + CONSENT_ONLY_KEPT))
    return results


def purge_consent_only_people(moment: datetime) -> int:
    from portal.people.privacy import erase_person

    count = 0
    for person, due_at in _consent_only_people(moment):
        if due_at <= moment:
            erase_person(person, actor=None, reason="retention: no record and no consent for 24 months")
            count += 1
    return count


# --- unconfirmed requests ---------------------------------------------------------------


def _unconfirmed_models() -> list[tuple[Any, Any]]:
    found = []
    for module_name, model_name, attribute, pending in UNCONFIRMED:
        try:
            model = getattr(importlib.import_module(module_name), model_name)
        except (ImportError, AttributeError):
            continue
        column = getattr(model, attribute, None)
        # Asked again later? The clock runs from the latest request.
        asked = getattr(model, "requested_at", None) or getattr(model, "created_at", None)
        if column is None or asked is None:
            continue
        found.append((model, column == pending, asked))
    return found


def purge_unconfirmed(moment: datetime) -> int:
    count = 0
    for model, pending, asked in _unconfirmed_models():
        result = db.session.execute(
            delete(model)
            .where(pending, func.coalesce(asked, model.created_at) <= moment - UNCONFIRMED_KEPT)
            .execution_options(synchronize_session=False)
        )
        count += result.rowcount or 0
    return count


# --- links and login attempts -------------------------------------------------------------


def _token_table() -> Table:
    from portal.core.tokens import AccessToken

    return AccessToken.__table__  # type: ignore[return-value]


def _attempt_table() -> Table:
    from portal.auth.models import LoginAttempt

    return LoginAttempt.__table__  # type: ignore[return-value]


def purge_expired_links(moment: datetime) -> int:
    tokens = _token_table()
    result = db.session.execute(
        tokens.delete().where(tokens.c.expires_at <= moment - EXPIRED_LINK_KEPT)
    )
    return result.rowcount or 0


def purge_old_login_attempts(moment: datetime) -> int:
    attempts = _attempt_table()
    result = db.session.execute(attempts.delete().where(attempts.c.at <= moment - LOGIN_ATTEMPT_KEPT))
    return result.rowcount or 0


RULES: list[tuple[str, Callable[[datetime], int]]] = [
    ("people.consent_only", purge_consent_only_people),
    ("people.unconfirmed", purge_unconfirmed),
    ("people.expired_links", purge_expired_links),
    ("people.login_attempts", purge_old_login_attempts),
]


def purge_due(moment: datetime | None = None) -> int:
    """Apply every rule at `moment`; returns how many people or rows were purged.

    Idempotent: what a rule purges no longer matches it, so a second run finds nothing.
    The caller commits.
    """
    moment = moment or now()
    total = 0
    for _name, rule in RULES:
        total += rule(moment)
    db.session.flush()
    return total


def forecast(moment: datetime | None = None) -> list[Forecast]:
    """What each rule purges now and over the next 90 days, by day. Changes nothing."""
    moment = moment or now()
    horizon = moment + FORECAST_HORIZON
    results: list[Forecast] = []

    due_dates = [due for _person, due in _consent_only_people(moment)]
    due, upcoming = _by_day(due_dates, moment)
    results.append(Forecast(
        "people.consent_only",
        _l("People with no record left (only the consent ledger, if anything) and no consent in force are erased."),
        _l("24 months after their last consent ended, or after they first came"), due, upcoming))

    moments: list[datetime] = []
    for model, pending, asked in _unconfirmed_models():
        since = func.coalesce(asked, model.created_at)
        moments += [c + UNCONFIRMED_KEPT for c in db.session.execute(
            select(since).where(pending, since <= horizon - UNCONFIRMED_KEPT)
        ).scalars()]
    due, upcoming = _by_day(moments, moment)
    results.append(Forecast(
        "people.unconfirmed",
        _l("Subscriptions and copy requests never confirmed are deleted."),
        _l("30 days after they were asked for"), due, upcoming))

    tokens = _token_table()
    moments = [e + EXPIRED_LINK_KEPT for e in db.session.execute(
        select(tokens.c.expires_at).where(tokens.c.expires_at <= horizon - EXPIRED_LINK_KEPT)
    ).scalars()]
    due, upcoming = _by_day(moments, moment)
    results.append(Forecast(
        "people.expired_links",
        _l("Links sent by email (to manage a registration, see your data...) are deleted."),
        _l("30 days after they expired"), due, upcoming))

    attempts = _attempt_table()
    moments = [a + LOGIN_ATTEMPT_KEPT for a in db.session.execute(
        select(attempts.c.at).where(attempts.c.at <= horizon - LOGIN_ATTEMPT_KEPT)
    ).scalars()]
    due, upcoming = _by_day(moments, moment)
    results.append(Forecast(
        "people.login_attempts",
        _l("Organizer login attempts (address typed, time, origin) are deleted."),
        _l("1 year"), due, upcoming))
    return results
