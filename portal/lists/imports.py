"""Importing subscribers from CSV, all or nothing, with a report by line number.

Columns (header row required; only `email` is mandatory):
  email, name, language (en/fr),
  consent_date (YYYY-MM-DD or ISO time), consent_source, consent_wording,
  consent_kind (express, default; or implied: lapses 2 years after consent_date).
A row with consent_date and consent_source is evidence of consent: it becomes an active
subscription with a consent-ledger row (method "import"). A row without evidence gets a
pending subscription and a confirmation request (or is left out), never a list post.

Every row is checked before anything is written; one bad row rejects the whole file, so an
import is never half done. Large files run in the background as an `ImportJob`.
"""
from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.core.audit import record_audit
from portal.core.clock import now
from portal.core.errors import DomainError
from portal.core.forms import EARLIEST_YEAR, LATEST_YEAR, has_control_characters, one_line_breaks
from portal.core.tokens import hash_token, issue_token
from portal.extensions import db
from portal.lists.models import ImportJob, ImportStatus, MailingList, Subscription, SubscriptionStatus
from portal.people.models import ConsentKind, ConsentRecord, Person
from portal.people.services import IMPLIED_AFTER_TRANSACTION, InvalidEmail, normalize_email

#: Files with more rows than this are imported in the background.
INLINE_ROW_LIMIT = 2000
#: Refuse files larger than this many rows outright.
MAX_ROWS = 200_000
_CHUNK = 900  # stays under SQLite's bound-parameter limit


class ImportRefused(DomainError):
    message = _l("The file could not be read as CSV.")
    status = 400


#: A background import that stopped on an error it did not expect.
IMPORT_STOPPED = _l("An error stopped the import; nothing was imported.")


def refusal_record(message: Any) -> dict[str, Any]:
    """What a background import keeps of why it failed: the message's English words and
    their values, not a sentence in one language, so the job's page can say it in whichever
    language its reader reads (`refusal_in_words`). `message` is an `ImportRefused`'s lazy
    message (`_l("words", value=...)`, which keeps its words and values until shown)."""
    words, values = getattr(message, "_args", ()), getattr(message, "_kwargs", {})
    if len(words) == 1 and isinstance(words[0], str):
        return {"error": words[0], "error_values": dict(values)}
    return {"error": str(message), "error_values": {}}


def refusal_in_words(report: dict[str, Any]) -> str:
    """A failed import's reason (`refusal_record`) in the reader's language; a reason kept
    before the words were (an English sentence) reads as it was kept."""
    values = report.get("error_values") or {}
    return gettext(report["error"], **values) if values else gettext(report["error"])


@dataclass
class ImportRow:
    line: int
    email: str
    name: str
    language: str
    consent_at: datetime | None
    consent_source: str
    consent_wording: str
    consent_kind: str

    @property
    def has_evidence(self) -> bool:
        return self.consent_at is not None and bool(self.consent_source)


#: Why a row is refused. The report keeps the code and the row's value (kept in the job as
#: data), and each page words it in its reader's language (`row_problem`).
ROW_PROBLEMS = {
    "address": _l("invalid address: %(value)s"),
    "name": _l("name longer than 200 characters"),
    "language": _l("language must be en or fr: %(value)s"),
    "consent_date": _l("consent_date is not a past date: %(value)s"),
    "consent_kind": _l("consent_kind must be express or implied: %(value)s"),
    "consent_source": _l("consent_source longer than 100 characters"),
    "consent_wording": _l("consent_wording longer than 5000 characters"),
    "control": _l("invisible control characters in the %(value)s column"),
    "lines": _l("a line break in the %(value)s column"),
}


def row_problem(code: str, value: str = "") -> str:
    """A refused row's reason, in the current language; a reason kept as text by an older
    version of the portal is shown as it is."""
    wording = ROW_PROBLEMS.get(code)
    if wording is None:
        return code
    return str(wording) % {"value": value} if "%(value)s" in str(wording) else str(wording)


@dataclass
class ImportReport:
    """What happened to each row; line numbers count the header as line 1."""

    total: int = 0
    imported: list[int] = field(default_factory=list)
    already_there: list[int] = field(default_factory=list)
    #: (line, problem code, the row's value): see ROW_PROBLEMS.
    invalid: list[tuple[int, str, str]] = field(default_factory=list)
    without_evidence: list[int] = field(default_factory=list)
    confirmation_requested: list[int] = field(default_factory=list)
    previously_unsubscribed: list[int] = field(default_factory=list)
    #: Implied consent whose two years (CASL) had run out before the import: no consent.
    consent_expired: list[int] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return bool(self.invalid)

    def as_dict(self) -> dict:
        return {
            "total": self.total,
            "imported": self.imported,
            "already_there": self.already_there,
            "invalid": [list(item) for item in self.invalid],
            "without_evidence": self.without_evidence,
            "confirmation_requested": self.confirmation_requested,
            "previously_unsubscribed": self.previously_unsubscribed,
            "consent_expired": self.consent_expired,
        }

    def summary(self) -> str:
        if self.rejected:
            return (f"Nothing imported: {len(self.invalid)} invalid row(s) out of {self.total}. "
                    "Fix them and import the file again.")
        return (f"{self.total} rows: {len(self.imported)} imported, {len(self.already_there)} already there, "
                f"{len(self.without_evidence)} without consent evidence "
                f"({len(self.confirmation_requested)} asked to confirm), "
                f"{len(self.previously_unsubscribed)} previously unsubscribed (left out), "
                f"{len(self.consent_expired)} with implied consent already expired (left out).")


def decode_upload(data: bytes) -> str:
    """Bytes of an uploaded CSV as text (UTF-8, with or without BOM), or `ImportRefused`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportRefused(_l("Save the file as CSV in UTF-8 and try again.")) from error
    if "\x00" in text:
        raise ImportRefused(_l("The file contains characters that are not text. Save it as CSV in UTF-8."))
    return text


def count_rows(text: str) -> int:
    """Rows after the header (an estimate for a file too broken to parse; the import says why)."""
    try:
        return max(0, sum(1 for _ in csv.reader(io.StringIO(text, newline=""))) - 1)
    except csv.Error:
        return max(0, text.count("\n") - 1)


def _parse_date(raw: str) -> datetime | None:
    raw = raw.strip()
    try:
        if len(raw) == 10:
            value = datetime.combine(datetime.strptime(raw, "%Y-%m-%d").date(), time(12), tzinfo=UTC)
        else:
            value = datetime.fromisoformat(raw)
        if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            return None  # a typo; near year 1 or 9999, moving to UTC overflows
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _delimiter(text: str) -> str:
    """Commas, or semicolons when the header row uses them and no comma (Excel saves "CSV"
    with semicolons where the decimal mark is a comma, as in French)."""
    header = text.split("\n", 1)[0]
    return ";" if ";" in header and "," not in header else ","


def parse_rows(text: str, report: ImportReport,
               progress: Callable[[int], None] | None = None) -> list[ImportRow]:
    """Check every row; invalid ones go to `report.invalid` with their line number."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRefused(_l("The file is empty.")) from None
    except csv.Error as error:
        raise ImportRefused() from error
    columns = [name.strip().lower() for name in header]
    if "email" not in columns:
        raise ImportRefused(_l("The first row must name the columns, including “email”."))
    index = {name: position for position, name in enumerate(columns)}
    rows: list[ImportRow] = []
    moment = now()

    def cell(values: list[str], name: str) -> str:
        position = index.get(name)
        return values[position].strip() if position is not None and position < len(values) else ""

    try:
        ended_on = reader.line_num
        for values in reader:
            # The line the row starts on, as a spreadsheet shows it (a quoted cell may span lines).
            line, ended_on = ended_on + 1, reader.line_num
            if not any(v.strip() for v in values):
                continue
            report.total += 1
            if progress and report.total % 5000 == 0:
                progress(report.total)
            if report.total > MAX_ROWS:
                raise ImportRefused(_l("The file has too many rows (at most 200,000)."))
            raw_email = cell(values, "email")
            try:
                # The rule every form applies: an address the outbox can send to.
                email = normalize_email(raw_email)
            except InvalidEmail:
                report.invalid.append((line, "address", raw_email[:80]))
                continue
            # What no form field may hold (PortalForm), an imported cell may not either.
            garbled = next((column for column in ("name", "consent_source", "consent_wording")
                            if has_control_characters(cell(values, column))), None)
            if garbled:
                report.invalid.append((line, "control", garbled))
                continue
            name = cell(values, "name")
            if one_line_breaks(name):  # a name greets the person on one line of every email
                report.invalid.append((line, "lines", "name"))
                continue
            if len(name) > 200:
                report.invalid.append((line, "name", ""))
                continue
            language = cell(values, "language").lower() or "en"
            if language not in ("en", "fr"):
                report.invalid.append((line, "language", language[:20]))
                continue
            consent_at = None
            raw_date = cell(values, "consent_date")
            if raw_date:
                consent_at = _parse_date(raw_date)
                if consent_at is None or consent_at > moment:
                    report.invalid.append((line, "consent_date", raw_date[:40]))
                    continue
            kind = cell(values, "consent_kind").lower() or "express"
            if kind not in ("express", "implied"):
                report.invalid.append((line, "consent_kind", kind[:20]))
                continue
            source = cell(values, "consent_source")
            if len(source) > 100:
                report.invalid.append((line, "consent_source", ""))
                continue
            wording = cell(values, "consent_wording")
            if len(wording) > 5000:
                report.invalid.append((line, "consent_wording", ""))
                continue
            rows.append(ImportRow(line, email, name, language, consent_at, source, wording, kind))
    except csv.Error as error:
        raise ImportRefused(_l("The file could not be read as CSV (line %(line)s).", line=reader.line_num)) from error
    return rows


def import_subscribers(
    mailing_list: MailingList,
    text: str,
    *,
    ask_unconfirmed: bool = True,
    actor=None,
    filename: str = "",
    progress: Callable[[int], None] | None = None,
    parsed: tuple[list[ImportRow], ImportReport] | None = None,
) -> ImportReport:
    """Import a CSV of subscribers into `mailing_list`, all or nothing.

    Returns the report. When any row is invalid nothing is written (`report.rejected`).
    Otherwise, in the caller's transaction: new people are created, rows with consent
    evidence become active subscriptions with an "import" consent row, rows without it get a
    pending subscription and one confirmation request (if `ask_unconfirmed`), people who
    unsubscribed earlier are left out, and existing subscriptions are left alone.
    Raises `ImportRefused` for a file that is not a usable CSV. `parsed` passes rows already
    checked by `parse_rows` (the background job checks them before taking the write lock).
    """
    from portal.lists.notifications import notify_confirmation_requested
    from portal.lists.services import (
        CONFIRM_PAGE_WORDING_VERSION,
        CONFIRM_PURPOSE,
        CONFIRMATION_VALID_FOR,
        _derive_unsubscribe_token,
    )

    if parsed is not None:
        rows, report = parsed
    else:
        report = ImportReport()
        rows = parse_rows(text, report, progress)
    if report.rejected:
        return report

    # Imports into one list take turns, and the list's subscribe form waits for an import
    # under way (it holds the list's row in share mode: request_subscription): two imports
    # with addresses in common, or an address subscribed from the form meanwhile, made the
    # later insert meet the first's rows and the whole import fail.
    db.session.execute(select(MailingList.id).where(MailingList.id == mailing_list.id).with_for_update(key_share=True))
    moment = now()
    addresses = sorted({row.email for row in rows})
    people: dict[str, int] = {}
    for start in range(0, len(addresses), _CHUNK):
        chunk = addresses[start:start + _CHUNK]
        people.update(db.session.execute(select(Person.email, Person.id).where(Person.email.in_(chunk))).tuples().all())
    def lapsed(row: ImportRow) -> bool:
        return row.has_evidence and row.consent_kind == "implied" and row.consent_at + IMPLIED_AFTER_TRANSACTION <= moment

    def standing(row: ImportRow) -> int:
        return 0 if lapsed(row) else 2 if row.has_evidence else 1

    # The row each address is imported from: its first with consent that holds, else its
    # first without lapsed consent. A file may name someone twice, first without evidence
    # and then with it: the evidence must not be dropped as a duplicate of the row without,
    # and a new person takes their name and language from that row too.
    chosen: dict[str, ImportRow] = {}
    for row in rows:
        if row.email not in chosen or standing(row) > standing(chosen[row.email]):
            chosen[row.email] = row
    new_people = [
        {"email": email, "name": chosen[email].name, "language": chosen[email].language,
         "organization": "", "community": "", "job_title": "", "created_at": moment}
        for email in addresses if email not in people
    ]
    # Unless there by now: someone may have become a person meanwhile by another door (a
    # registration, a copy request); they are looked up below like the others.
    add_person = (pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert)(
        Person.__table__).on_conflict_do_nothing(index_elements=["email"])
    for start in range(0, len(new_people), 2000):
        db.session.execute(add_person, new_people[start:start + 2000])
    if new_people:
        # One pass over the rows stamped with this import's moment: looking the new rows up by
        # address in chunks would scan the table each time (the planner has no statistics for
        # rows inserted in this transaction), and RETURNING many rows is slow in psycopg.
        wanted = set(addresses)
        people.update((email, person_id) for email, person_id in db.session.execute(
            select(Person.email, Person.id).where(Person.created_at == moment)).tuples() if email in wanted)
        late = [email for email in addresses if email not in people]
        for start in range(0, len(late), _CHUNK):
            people.update(db.session.execute(
                select(Person.email, Person.id).where(Person.email.in_(late[start:start + _CHUNK]))).tuples().all())

    existing: dict[int, str] = {}
    person_ids = sorted(set(people.values()))
    for start in range(0, len(person_ids), _CHUNK):
        chunk = person_ids[start:start + _CHUNK]
        existing.update(db.session.execute(
            select(Subscription.person_id, Subscription.status)
            .where(Subscription.list_id == mailing_list.id, Subscription.person_id.in_(chunk))
        ).tuples().all())

    subscriptions: list[dict] = []
    consents: list[dict] = []
    pending_people: list[tuple[int, ImportRow]] = []
    source_label = f"import:{filename}"[:60] if filename else "import"
    for row in rows:
        person_id = people[row.email]
        if existing.get(person_id) in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING):
            report.already_there.append(row.line)
            continue
        if existing.get(person_id) == SubscriptionStatus.UNSUBSCRIBED:
            # They withdrew here; an old list elsewhere is no new consent.
            report.previously_unsubscribed.append(row.line)
            continue
        if lapsed(row):
            # Consent that has lapsed is none: not a subscriber, and not someone to email
            # asking for consent either (that request would itself be a message needing it).
            report.consent_expired.append(row.line)
            continue
        if chosen[row.email] is not row:
            # Another row of the file names them: they are imported from that one. This row
            # reads as that address's outcome: on the list, or left out for want of evidence.
            if chosen[row.email].has_evidence or ask_unconfirmed:
                report.already_there.append(row.line)
            else:
                report.without_evidence.append(row.line)
            continue
        if not row.has_evidence:
            report.without_evidence.append(row.line)
            if not ask_unconfirmed:
                continue
            status = SubscriptionStatus.PENDING
            pending_people.append((person_id, row))
            report.confirmation_requested.append(row.line)
        else:
            status = SubscriptionStatus.ACTIVE
            report.imported.append(row.line)
            implied = row.consent_kind == "implied"
            consents.append({
                "person_id": person_id, "purpose": mailing_list.consent_purpose,
                "kind": (ConsentKind.IMPLIED if implied else ConsentKind.EXPRESS).value,
                "wording": row.consent_wording, "wording_version": "",
                "source": f"{source_label}: {row.consent_source}"[:120], "method": "import",
                "ip": "", "user_agent": "", "language": row.language,
                "expires_at": row.consent_at + IMPLIED_AFTER_TRANSACTION if implied else None,
                "created_at": row.consent_at,
            })
        salt = secrets.token_hex(16)
        subscriptions.append({
            "list_id": mailing_list.id, "person_id": person_id, "status": status.value,
            "unsubscribe_salt": salt, "unsubscribe_token_hash": hash_token(_derive_unsubscribe_token(salt)),
            "source": source_label, "requested_at": moment if status == SubscriptionStatus.PENDING else None,
            "requested_wording": "", "requested_wording_version": "", "requested_ip": "",
            "requested_user_agent": "", "requested_language": row.language,
            "confirmed_at": moment if status == SubscriptionStatus.ACTIVE else None,
            "unsubscribed_at": None, "created_at": moment,
        })
    for start in range(0, len(subscriptions), 2000):
        db.session.execute(insert(Subscription), subscriptions[start:start + 2000])
    for start in range(0, len(consents), 2000):
        db.session.execute(insert(ConsentRecord), consents[start:start + 2000])

    if pending_people:
        pending_ids = {person_id for person_id, _ in pending_people}
        by_person = {subscription.person_id: subscription for subscription in db.session.execute(
            select(Subscription).where(Subscription.list_id == mailing_list.id,
                                       Subscription.status == SubscriptionStatus.PENDING.value,
                                       Subscription.created_at == moment)).scalars()
            if subscription.person_id in pending_ids}
        for person_id, row in pending_people:
            subscription = by_person[person_id]
            # No evidence of consent came with them: pressing the confirmation page's button
            # will be the consent, so the ledger will keep that page's words as it showed
            # them (confirm_subscription), under this version.
            subscription.requested_wording = ""
            subscription.requested_wording_version = CONFIRM_PAGE_WORDING_VERSION
            raw = issue_token(CONFIRM_PURPOSE, person_id=person_id, subject_id=subscription.id,
                              valid_for=CONFIRMATION_VALID_FOR)
            db.session.flush()
            notify_confirmation_requested(subscription, raw)
    record_audit("lists.subscribers.imported", actor=actor, subject=f"list:{mailing_list.id}",
                 imported=len(report.imported), pending=len(report.confirmation_requested))
    db.session.flush()
    return report


# --- background imports ---------------------------------------------------------------


class MembersOnlyList(DomainError):
    message = _l("A working group's list follows the group's members: add people to the group instead.")
    status = 409


def create_import_job(mailing_list: MailingList, text: str, *, filename: str, ask_unconfirmed: bool,
                      actor=None) -> ImportJob:
    """Keep an uploaded CSV as a pending job (checked and imported by `process_import_job`).
    Only public lists take imports: a group's list is exactly its members (MembersOnlyList)."""
    if not mailing_list.is_public:
        raise MembersOnlyList()
    job = ImportJob(list_id=mailing_list.id, account_id=getattr(actor, "id", None), filename=filename[:200],
                    content=text, ask_unconfirmed=ask_unconfirmed, total_rows=count_rows(text),
                    status=ImportStatus.PENDING.value, report={})
    db.session.add(job)
    db.session.flush()
    record_audit("lists.import.uploaded", actor=actor, subject=f"list:{mailing_list.id}", rows=job.total_rows)
    return job
