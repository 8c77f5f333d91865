"""A person's data, found generically: export (see, take) and erasure (forget).

Nothing here names the feature tables. A table holds a person's records when it has a
foreign key to `person.id`; its children (tables whose only way to a person is a
cascading foreign key to such a table, e.g. outbox attachments or registration answers)
belong to the same person. Columns declared with `info={"personal": True}` hold personal data
and are blanked on erasure. So a model added later is covered without touching this file.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import JSON, LargeBinary, String, Table, Text, and_, cast, func, or_, select
from sqlalchemy.sql.schema import Column

from portal.core.audit import AuditEntry, record_audit, scrub_audit_entries
from portal.core.audit_actions import action_in_words
from portal.core.clock import now
from portal.core.db import scrub_after_commit
from portal.core.errors import DomainError
from portal.core.spreadsheets import CSV_BOM, csv_row
from portal.extensions import db
from portal.people.models import ConsentRecord, Person

PERSON_TABLE = "person"

#: Human names for tables people will recognize; any other table is named from its own name.
TABLE_LABELS: dict[str, Any] = {
    "person": _l("Your details"),
    "registration": _l("Event registrations"),
    "registration_answer": _l("Answers you gave when registering"),
    "group_membership": _l("Working-group memberships"),
    "group_chair": _l("Working groups you chair"),
    "subscription": _l("Mailing-list subscriptions"),
    "consent_record": _l("Consent history"),
    "copy_request": _l("Copy requests"),
    "download": _l("Downloads"),
    "release_notice": _l("Guideline release notices you asked for"),
    "outbox_message": _l("Messages sent to you"),
    "outbox_attachment": _l("Files attached to those messages"),
    "access_token": _l("Links sent to you"),
    "privacy_request": _l("Your privacy requests"),
}

#: Columns never shown in an export: secrets (even hashed) and delivery internals, not data
#: about the person. A message's text is shown (its links and codes masked); its HTML twin
#: says the same again.
HIDDEN_COLUMNS: dict[str, set[str]] = {
    "outbox_message": {
        "body_html", "headers", "idempotency_key", "message_id", "claimed_by",
        "lease_until", "from_address", "reply_to", "next_attempt_at", "attempts", "last_error",
    },
    "outbox_attachment": {"content"},
    # What the unsubscribe link is derived from (with the secret key): an internal, not data.
    "subscription": {"unsubscribe_salt"},
}

#: Codes shown in words on the my-data page, by (table, column); "*" for any table.
_VALUE_LABELS: dict[tuple[str, str], dict[str, Any]] = {
    ("*", "language"): {"en": _l("English"), "fr": _l("French")},
    ("registration", "status"): {"confirmed": _l("Confirmed"), "waitlisted": _l("Waitlisted"),
                                 "cancelled": _l("Cancelled")},
    ("subscription", "status"): {"active": _l("Active"), "unsubscribed": _l("Unsubscribed"),
                                 "pending": _l("Waiting for confirmation")},
    ("copy_request", "status"): {"pending": _l("Waiting for confirmation"), "confirmed": _l("Confirmed")},
    ("outbox_message", "category"): {"transactional": _l("about something you did"),
                                     "list": _l("a mailing list's message")},
    ("registration", "cancelled_by"): {"registrant": _l("you"), "organizer": _l("an organizer"),
                                       "event": _l("the event's cancellation"),
                                       "moved": _l("an organizer, who moved you to another event")},
    ("group_membership", "status"): {"unconfirmed": _l("Applied, not yet confirmed"), "applied": _l("Applied"), "invited": _l("Invited"), "active": _l("Active"),
                                     "declined": _l("Declined"), "left": _l("Left the group")},
    ("consent_record", "kind"): {"express": lazy_pgettext("consent", "Express"),
                                 "implied": lazy_pgettext("consent", "Implied"),
                                 "withdrawn": lazy_pgettext("consent", "Withdrawn")},
    ("privacy_request", "kind"): {"access": _l("access"), "erasure": _l("erasure")},
    ("privacy_request", "state"): {"open": _l("open"), "completed": _l("completed"), "refused": _l("refused")},
    ("outbox_message", "state"): {"queued": _l("Queued"), "sent": _l("Sent"), "failed": _l("Failed"),
                                  "withheld": _l("Withheld"), "sending": _l("Sending")},
}

#: What each kind of link opens, in words (a person's links are on their my-data page).
_VALUE_LABELS[("access_token", "purpose")] = {
    "events.manage": _l("managing your registration"), "events.check_in": _l("your check-in code at the door"),
    "people.my_data": _l("this page (your data)"), "people.preferences": _l("your email preferences"),
    "guidelines.download": _l("downloading a guideline"), "guidelines.confirm_request": _l("confirming a copy request"),
    "lists.confirm": _l("confirming a subscription"), "groups.member": _l("the working group's members' pages"),
    "groups.invite": _l("accepting an invitation to a working group"),
    "groups.application": _l("confirming an application to a working group"),
}

#: What each message was about, in words.
_VALUE_LABELS[("outbox_message", "purpose")] = {
    "events.confirmation": _l("your seat's confirmation"), "events.waitlisted": _l("your place on the waitlist"),
    "events.promoted": _l("a seat that opened up for you"), "events.cancelled": _l("your cancellation"),
    "events.changed": _l("a change of time or place"), "events.event_cancelled": _l("the event's cancellation"),
    "events.manage_link": _l("a link to your registration"), "events.message": _l("a message from the organizers"),
    "events.reminder": _l("a reminder before the event"),
    "groups.application_received": _l("your application to a working group"),
    "groups.application_confirm": _l("the link to confirm your application to a working group"),
    "groups.application_approved": _l("your application's approval"),
    "groups.application_declined": _l("your application's answer"),
    "groups.applications_waiting": _l("applications waiting for a decision"),
    "groups.invitation": _l("an invitation to a working group"), "groups.member_added": _l("being added to a working group"),
    "groups.member_link": _l("your link to the members' pages"), "groups.term_end_reminder": _l("a term ending"),
    "guidelines.request_confirmation": _l("confirming your copy request"),
    "guidelines.request_stands": _l("your copy request"), "guidelines.request_withdrawn": _l("a withdrawn guideline"),
    "guidelines.release_notice": _l("a guideline's release"), "lists.confirmation": _l("confirming a subscription"),
    "lists.post": _l("a mailing list's message"), "lists.post_test": _l("a test copy of a list message"),
    "lists.preferences": _l("your email preferences"), "people.erasure_received": _l("your erasure request"),
    "people.erasure_refused": _l("the answer to your erasure request"), "people.my_data_link": _l("a link to your data"),
}

#: Attachments the sender draws when it sends the message.
_VALUE_LABELS[("outbox_attachment", "generated")] = {"qr-code": _l("the check-in QR code")}

#: A membership's role (portal.groups.models.ROLE_WORDS: people must not import groups).
_VALUE_LABELS[("group_membership", "role")] = {
    "chair": _l("Chair"), "co-chair": _l("Co-chair"), "member": _l("Member"), "secretariat": _l("Secretariat"),
    "observer": _l("Observer")}

#: How consent was given or withdrawn, in words (the ledger keeps the code).
_VALUE_LABELS[("consent_record", "method")] = {
    "web form": _l("ticked on a web form"), "double opt-in": _l("confirmed from an emailed link"),
    "added by organizer": _l("added by the organizers"), "group membership": _l("joined a working group"),
    "membership ended": _l("left a working group"), "my data page": _l("on your my-data page"),
    "email unsubscribe": _l("unsubscribed by email"), "one-click unsubscribe": _l("one-click unsubscribe"),
    "preference centre": _l("the preference centre"),
    "preference centre (emailed link)": _l("the preference centre (from an emailed link)"),
    "unsubscribed from the group's list": _l("unsubscribed from the working group's list"),
    "import": _l("imported by the organizers"),
    "erased at their request": _l("erased at their request"),
    "left the group": _l("left the working group"), "removed from the group": _l("removed from the working group"),
    "application declined": _l("application to the working group declined"),
}

#: Where consent came from: "<form>" or "<form>:<what>", in words.
_SOURCE_LABELS: dict[str, Any] = {
    "events.registration": _l("the registration form of the event “%(what)s”"),
    "lists.subscribe-form": _l("the list's sign-up form"),
    "lists.preferences": _l("the preference centre"),
    "people.my_data": _l("your my-data page"),
    "people.erasure": _l("your request to erase your data"),
    "groups.apply": _l("your application to the working group “%(what)s”"),
    "groups.invitation": _l("an invitation to the working group “%(what)s”"),
    "groups.admin.add": _l("the organizers, adding you to the working group “%(what)s”"),
    "groups.membership": _l("a working group's membership"),
    "groups.retention": _l("the end of a working-group membership"),
    "guidelines.request_copy": _l("your request for a copy of a guideline"),
    "mailto": _l("an unsubscribe email"),
    "lists.unsubscribe": _l("an unsubscribe link"),
}


def _source_in_words(source: str) -> str | None:
    form, _, what = source.partition(":")
    label = _SOURCE_LABELS.get(form)
    if label is None:
        return None
    return str(label) % {"what": what} if "%(what)s" in str(label) else str(label)


def _purpose_in_words(purpose: str) -> str | None:
    """"list:<slug>": the emails of that list, by its name in the reader's language."""
    from portal.lists.models import MailingList  # people must not import lists at load time

    kind, _, slug = purpose.partition(":")
    if kind != "list" or not slug:
        return None
    mailing_list = db.session.execute(select(MailingList).where(MailingList.slug == slug)).scalar_one_or_none()
    name = mailing_list.name(str(get_locale() or "en")) if mailing_list is not None else slug
    return gettext("emails of the list “%(list)s”", list=name)


#: How a column reads on the my-data page (the JSON and CSV keep the column's own name).
COLUMN_LABELS: dict[str, Any] = {
    "email": _l("Email"), "name": _l("Name"), "organization": _l("Organization"), "sector_id": _l("Sector"),
    "community": _l("Community"), "job_title": _l("Job title"), "language": _l("Language"),
    "created_at": _l("Recorded"), "erased_at": _l("Erased"), "event_id": _l("Event"),
    "group_id": _l("Working group"), "list_id": _l("Mailing list"), "guideline_id": _l("Guideline"),
    "status": _l("Status"), "state": _l("State"), "kind": _l("Kind"), "purpose": _l("Purpose"),
    "wording": _l("Wording you agreed to"), "method": _l("How"), "source": _l("Where"),
    "expires_at": _l("Expires"), "confirmed_at": _l("Confirmed"), "cancelled_at": _l("Cancelled"),
    "checked_in_at": _l("Checked in"), "answers": _l("Your answers"), "accessibility_needs": _l("Accessibility needs"),
    "dietary_needs": _l("Dietary needs"), "waitlist_position": _l("Waitlist ticket"), "sent_at": _l("Sent"),
    "subject": _l("Subject"), "to_address": _l("To"), "category": _l("Kind of message"),
    "role": _l("Role"), "why": _l("Why you applied"), "applied_at": _l("Applied"), "left_at": _l("Left"),
    "term_start": _l("Term start"), "term_end": _l("Term end"), "unsubscribed_at": _l("Unsubscribed"),
    "requested_at": _l("Asked"), "due_at": _l("Due"), "handled_at": _l("Answered"), "reason": _l("Reason"),
    "format_details": _l("Format asked for"), "accessible_format": _l("Accessible format"),
    "filename": _l("File name"), "ip": _l("IP address"), "user_agent": _l("Browser"),
    "at": _l("When"), "action": _l("Action"), "who": _l("Who"), "succeeded": _l("Succeeded"),
    "origin": _l("From (IP address)"), "body_text": _l("What it said"),
    "id": _l("Record number"), "subject_id": _l("What it opens (record number)"), "revoked_at": _l("Revoked"),
    "used_at": _l("Last used"), "use_count": _l("Times used"), "wording_version": _l("Version of the wording"),
    "list_opt_in": _l("Also asked for news of releases"), "notified_at": _l("Told of the release"),
    "opt_in_language": _l("Language the box was shown in"), "opt_in_wording": _l("Wording of the box you ticked"),
    "decided_at": _l("Decided"), "show_email": _l("Email shown to other members"),
    "show_organization": _l("Organization shown to other members"),
    "term_reminder_sent_for": _l("Chair reminded of the term ending on"),
    "tor_acknowledged_at": _l("Terms of reference acknowledged"),
    "tor_acknowledged_version": _l("Version of the terms acknowledged"), "content_type": _l("File type"),
    "generated": _l("Made when sent"), "message_id": _l("Message (record number)"),
    "handled_by_id": _l("Answered by (organizer number)"), "refusal_reason": _l("Why it was refused"),
    "cancelled_by": _l("Cancelled by"), "checked_in_by_id": _l("Checked in by (organizer number)"),
    "moved_to_id": _l("Moved to (registration number)"),
    "promoted_at": _l("Moved up from the waitlist"), "reminder_sent_at": _l("Reminder sent"),
    "requested_ip": _l("IP address when you asked"), "requested_language": _l("Language you asked in"),
    "requested_message_language": _l("Language you asked for messages in"),
    "requested_user_agent": _l("Browser when you asked"), "requested_wording": _l("Wording shown when you asked"),
    "requested_wording_version": _l("Version of that wording"),
}

#: Tables the erasure's address sweep leaves alone: organizer accounts are a separate role
#: an organizer gives up by having an admin deactivate the account, not by erasure.
SWEEP_SKIPS = {"organizer_account", "person"}

#: Columns that identify a row for a reader, used to name what a foreign key points at.
_LABEL_COLUMNS = ("title_en", "title", "name_en", "name", "slug")
_FRENCH_LABEL_COLUMNS = ("title_fr", "name_fr")


def reader_language() -> str:
    """The language the person reads their data in: the page's ("en" outside a request)."""
    from flask import has_request_context

    from portal.core.web import current_language

    return current_language() if has_request_context() else "en"


def erased_address(person_id: int) -> str:
    return f"erased-{person_id}@erased.invalid"


@dataclass(frozen=True)
class PersonLink:
    """One way rows of `table` reach a person: `column` points at person.id (direct), or at
    `via`, a table that does (a child)."""

    table: Table
    column: Column
    via: "PersonLink | None" = None
    #: For a child, the parent's column its foreign key points at.
    parent_key: Column | None = None
    #: False for a second reference in the same table (e.g. "approved_by"): those rows are
    #: someone else's, so only the reference is theirs, not the row's personal columns.
    primary: bool = True

    @property
    def name(self) -> str:
        return self.table.name


def _is_hidden(table: str, column: Column) -> bool:
    name = column.name
    return (
        name in HIDDEN_COLUMNS.get(table, set())
        or name.endswith("_hash")
        or name == "token"
    )


def person_links() -> list[PersonLink]:
    """Every table that holds a person's rows, in dependency order, read from the metadata."""
    direct: list[PersonLink] = []
    for table in db.metadata.sorted_tables:
        if table.name == PERSON_TABLE:
            continue
        columns = sorted(
            (fk.parent for fk in table.foreign_keys if fk.column.table.name == PERSON_TABLE),
            key=lambda c: (c.name != "person_id", c.name),
        )
        for position, column in enumerate(columns):
            direct.append(PersonLink(table, column, primary=position == 0))
    owners = {link.table.name: link for link in direct if link.primary}
    children: list[PersonLink] = []
    for table in db.metadata.sorted_tables:
        if table.name in owners or table.name == PERSON_TABLE:
            continue
        for fk in table.foreign_keys:
            parent = owners.get(fk.column.table.name)
            # Only cascading children: a row that dies with its parent belongs to it
            # (a mailing list does not belong to one subscriber; an attachment does
            # belong to its message).
            if parent is not None and (fk.ondelete or "").upper() == "CASCADE":
                children.append(PersonLink(table, fk.parent, via=parent, parent_key=fk.column))
                break
    return direct + children


def _owned_by(link: PersonLink, person_id: int):
    """The condition that picks the person's rows of `link.table`."""
    if link.via is None:
        return link.column == person_id
    owned = select(link.parent_key).where(link.via.column == person_id)
    return link.column.in_(owned)


def _rows_query(link: PersonLink, person_id: int):
    return select(link.table).where(_owned_by(link, person_id))


# --- Export ---------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a column value."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": len(bytes(value))}
    return value


def _same(value: Any) -> Any:
    return value


def _shown(value: Any) -> Any:
    # Binary content is described, never shown; everything else stays a Python value so the
    # page can format times in the reader's zone (the JSON and CSV make it plain text).
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": len(bytes(value))}
    return value


def _reference_labels(table: Table, rows: list[Any]) -> list[dict[str, str]]:
    """For each row, what each of its foreign keys (other than to the person) points at, in
    words: one query per foreign key for all the rows (a person with a thousand messages
    once cost a thousand queries)."""
    labels: list[dict[str, str]] = [{} for _ in rows]
    for fk in table.foreign_keys:
        target = fk.column.table
        if target.name == PERSON_TABLE:
            continue
        label_column = next((target.c[n] for n in _LABEL_COLUMNS if n in target.c), None)
        if label_column is None:
            continue
        # A French reader reads the French name where there is one (title_fr, name_fr).
        french = next((target.c[n] for n in _FRENCH_LABEL_COLUMNS if n in target.c), None)
        if french is None or reader_language() != "fr":
            french = label_column
        values = {getattr(row, fk.parent.name) for row in rows} - {None}
        found: dict[Any, Any] = {}
        ordered = sorted(values)
        for start in range(0, len(ordered), 900):
            found.update((key, french_label or label) for key, french_label, label in db.session.execute(
                select(fk.column, french, label_column).where(fk.column.in_(ordered[start:start + 900]))
            ).tuples().all())
        for row, row_labels in zip(rows, labels):
            label = found.get(getattr(row, fk.parent.name))
            if label:
                row_labels[fk.parent.name] = str(label)
    return labels


@dataclass
class ExportSection:
    """The rows of one table, ready to show or serialize."""

    table: str
    label: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    references: list[dict[str, str]] = field(default_factory=list)

    def column_label(self, column: str) -> str:
        return str(COLUMN_LABELS.get(column) or column.replace("_", " ").capitalize())

    def value_label(self, column: str, value: Any) -> Any:
        return value_in_words(self.table, column, value)


def value_in_words(table: str, column: str, value: Any) -> Any:
    """A stored code in words where there are words for it ("confirmed", "express", "fr",
    a consent's method and source), in the reader's language; anything else as it is."""
    if not isinstance(value, str):
        return value
    if table in ("consent_record", "subscription") and column == "source":
        return _source_in_words(value) or value
    if table == "consent_record" and column == "purpose":
        return _purpose_in_words(value) or value
    label = _VALUE_LABELS.get((table, column), {}).get(value) or _VALUE_LABELS.get(("*", column), {}).get(value)
    return str(label) if label is not None else value


def collect_personal_data(person: Person) -> list[ExportSection]:
    """Everything the portal holds on `person`: their Person row, then every row of every
    table that references them (directly or as a cascading child), by table.

    Only rows reached through this person's id are included, so no one else's data is.
    """
    sections: list[ExportSection] = []
    person_table: Table = Person.__table__  # type: ignore[assignment]
    person_row = db.session.execute(
        select(person_table).where(person_table.c.id == person.id)
    ).one()
    sections.append(_section(person_table, [person_row]))
    for link in person_links():
        rows = db.session.execute(
            _rows_query(link, person.id).order_by(*link.table.primary_key.columns)
        ).all()
        if rows:
            sections.append(_section(link.table, rows, others=not link.primary))
    sections.extend(_records_about(person))
    return sections


#: Rows that belong to one person, as the audit log names them ("<name>:<id>"), by table: a
#: membership is "membership:<id>" in the log, its table group_membership.
_PERSONS_OWN_ROWS = {"registration": "registration", "subscription": "subscription",
                     "membership": "group_membership", "copy_request": "copy_request",
                     "privacy_request": "privacy_request"}


def audit_subjects_of(person: Person) -> list[str]:
    """How the audit log names the person and their own rows ("person:7", "registration:12")."""
    subjects = [f"person:{person.id}"]
    for name, table_name in _PERSONS_OWN_ROWS.items():
        table = db.metadata.tables.get(table_name)
        if table is not None:
            subjects += [f"{name}:{row_id}" for row_id in db.session.execute(
                select(table.c.id).where(table.c.person_id == person.id)).scalars()]
    return subjects


def _records_about(person: Person) -> list[ExportSection]:
    """The audit record of what was done with their data, and sign-in attempts typed with
    their address: neither links to the person by id, so the sweep above misses them. Who
    acted is said by role, not by an organizer's address."""
    from portal.auth.models import LoginAttempt

    own = audit_subjects_of(person)
    entries = db.session.execute(
        select(AuditEntry).where(or_(AuditEntry.subject.in_(own), AuditEntry.actor_label == person.email))
        .order_by(AuditEntry.at, AuditEntry.id)
    ).scalars().all()
    sections: list[ExportSection] = []
    if entries:
        section = ExportSection(table="audit_entry", label=str(_l("What was done with your data")),
                                columns=["at", "action", "subject", "who"])
        for entry in entries:
            who = (_l("an organizer") if entry.actor_id is not None
                   else _l("you") if entry.actor_label in (person.email, "the person (my data)") or not entry.actor_label
                   else _l("the portal"))
            section.rows.append({"at": entry.at, "action": action_in_words(entry.action), "subject": entry.subject,
                                 "who": str(who)})
            section.references.append({})
        sections.append(section)
    attempts = db.session.execute(
        select(LoginAttempt.at, LoginAttempt.succeeded, LoginAttempt.origin)
        .where(LoginAttempt.email == person.email).order_by(LoginAttempt.at)
    ).all()
    if attempts:
        section = ExportSection(table="login_attempt", label=str(_l("Sign-in attempts with your address")),
                                columns=["at", "succeeded", "origin"])
        for at, succeeded, origin in attempts:
            section.rows.append({"at": at, "succeeded": succeeded, "origin": origin})
            section.references.append({})
        sections.append(section)
    return sections


def _answers_by_question(answers: Any) -> Any:
    """A registration's answers are kept by question id; the person reads them by question
    ("Which workshop?"), in their language where the question has one; two questions worded
    alike keep their ids ("Other (q12)", "Other (q13)") so neither answer is lost. A question
    since removed keeps its id alone ("q12")."""
    questions = db.metadata.tables.get("event_question")
    if not isinstance(answers, dict) or not answers or questions is None:
        return answers
    ids = [int(key) for key in answers if str(key).isdigit()]
    french = reader_language() == "fr" and "label_fr" in questions.c
    labels = {question_id: (french and label_fr) or label for question_id, label, label_fr in db.session.execute(
        select(questions.c.id, questions.c.label, questions.c.label_fr if french else questions.c.label)
        .where(questions.c.id.in_(ids))
    ).tuples().all()} if ids else {}
    named = {key: labels.get(int(key)) if str(key).isdigit() else None for key in answers}
    repeated = {label for label in named.values() if label and list(named.values()).count(label) > 1}
    return {(f"{named[key]} (q{key})" if named[key] in repeated else named[key] or f"q{key}"): _answer_in_words(answer)
            for key, answer in answers.items()}


def _answer_in_words(answer: Any) -> Any:
    """A ticked box is stored as true: the person reads "yes"."""
    if isinstance(answer, bool):
        return str(_l("yes") if answer else _l("no"))
    return answer


def _address_decoded(address: Any) -> Any:
    """"=?utf-8?q?Jos=C3=A9e?= <josee@...>" as the person reads it: "Josée <josee@...>"."""
    if not isinstance(address, str) or "=?" not in address:
        return address
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(address)))
    except (ValueError, LookupError):
        return address


def _links_masked(text: Any) -> Any:
    """A message as sent, with its working links and codes masked: a downloaded copy must not
    let whoever finds the file act as the person."""
    from portal.core.logging import mask_secrets

    return mask_secrets(text) if isinstance(text, str) else text


#: Columns whose stored form a person could not read, and how to show them.
_READABLE = {("registration", "answers"): _answers_by_question,
             ("outbox_message", "body_text"): _links_masked,
             ("outbox_message", "to_address"): _address_decoded}


def _section(table: Table, rows: Iterable[Any], *, others: bool = False) -> ExportSection:
    columns = [
        c.name for c in table.columns
        if not _is_hidden(table.name, c) and not (others and c.info.get("personal"))
    ]
    label = TABLE_LABELS.get(table.name) or table.name.replace("_", " ").capitalize()
    section = ExportSection(table=table.name, label=str(label), columns=columns)
    rows = list(rows)
    for row in rows:
        section.rows.append({name: _shown(_READABLE.get((table.name, name), _same)(getattr(row, name)))
                             for name in columns})
    section.references = _reference_labels(table, rows)
    return section


def export_json(person: Person) -> str:
    """The whole export as one JSON document: {"exported_at", "tables": {table: [rows]}}."""
    sections = collect_personal_data(person)
    document = {
        "exported_at": now().isoformat(),
        "person_id": person.id,
        "tables": {
            s.table: {
                "label": s.label,
                "rows": [
                    {**{k: _plain(v) for k, v in row.items()}, **({"refers_to": refs} if refs else {})}
                    for row, refs in zip(s.rows, s.references)
                ],
            }
            for s in sections
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)


def export_csv(person: Person) -> str:
    """The whole export as ONE CSV in long form: table, row, column, value.

    One file (rather than a zip of one CSV per table) opens directly in any spreadsheet and
    keeps tables with different columns together; filter on `table` to see one of them.
    """
    buffer = io.StringIO()
    buffer.write(CSV_BOM)  # a spreadsheet then reads the accents as UTF-8
    writer = csv.writer(buffer)
    writer.writerow(["table", "label", "row", "column", "value"])
    for section in collect_personal_data(person):
        for number, (row, references) in enumerate(zip(section.rows, section.references), start=1):
            # The JSON export's "refers_to" (which event, group, list or guideline a row is
            # about), as one more cell per row, so the CSV says as much.
            cells = [*((column, row[column]) for column in section.columns),
                     *((("refers_to", references),) if references else ())]
            for column, raw in cells:
                value = _plain(raw)
                if isinstance(value, (dict, list)):
                    value = json.dumps(value, ensure_ascii=False)
                elif value is None:
                    value = ""
                writer.writerow(csv_row([section.table, section.label, number, column, str(value)]))
    return buffer.getvalue()


def count_personal_rows(person_id: int) -> dict[str, int]:
    """How many rows of each table reference the person (for organizers deciding a request)."""
    counts: dict[str, int] = {}
    for link in person_links():
        number = db.session.execute(
            select(func.count()).select_from(_rows_query(link, person_id).subquery())
        ).scalar_one()
        if number:
            counts[link.name] = counts.get(link.name, 0) + number
    return counts


# --- Erasure --------------------------------------------------------------------------


class AlreadyErased(DomainError):
    message = _l("This person's data has already been erased.")
    status = 409


def _blank_value(column: Column) -> Any:
    """What a personal column becomes: NULL where allowed, else an empty value of its type."""
    if column.nullable and not column.primary_key:
        return None
    if isinstance(column.type, JSON):
        return {}
    if isinstance(column.type, (String, Text)):
        return ""
    if isinstance(column.type, LargeBinary):
        return b""
    return _KEEP


_KEEP = object()


def _personal_columns(table: Table) -> list[Column]:
    return [c for c in table.columns if c.info.get("personal")]


def _text_columns(table: Table) -> list[Column]:
    return [c for c in table.columns if isinstance(c.type, (String, Text, JSON)) and not c.primary_key]


def _replace_in(value: Any, pattern: re.Pattern[str], replacement: str) -> Any:
    if isinstance(value, str):
        return pattern.sub(replacement, value)
    if isinstance(value, dict):
        return {
            _replace_in(k, pattern, replacement): _replace_in(v, pattern, replacement)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_replace_in(v, pattern, replacement) for v in value]
    return value


def _sweep(table: Table, needles: list[tuple[str, str]], where=None) -> int:
    """Replace every occurrence of each needle (case-insensitive) in the text and JSON
    columns of `table` (restricted by `where`). Returns how many rows changed."""
    columns = _text_columns(table)
    if not columns or not needles or not list(table.primary_key.columns):
        return 0
    conditions = []
    for column in columns:
        text = cast(column, Text) if isinstance(column.type, JSON) else column
        for needle, _ in needles:
            conditions.append(func.lower(text, type_=Text).contains(needle.casefold(), autoescape=True))
    query = select(table).where(or_(*conditions))
    if where is not None:
        query = query.where(where)
    patterns = [(re.compile(re.escape(n), re.IGNORECASE), r) for n, r in needles]
    changed = 0
    for row in db.session.execute(query).all():
        values: dict[str, Any] = {}
        for column in columns:
            original = getattr(row, column.name)
            value = original
            for pattern, replacement in patterns:
                value = _replace_in(value, pattern, replacement)
            if value != original:
                values[column.name] = value
        if values:
            key = and_(*(c == getattr(row, c.name) for c in table.primary_key.columns))
            db.session.execute(table.update().where(key).values(**values))
            changed += 1
    return changed


def _leave_groups_and_lists(person: Person) -> None:
    """An erased person is in no working group and on no list: a placeholder left active
    would be listed to chairs and members, counted and exported (to no one's use, since
    nothing is sent to it). The groups and lists areas do it their way, when installed; the
    sweep below then removes their address from what that writes."""
    try:
        from portal.groups.services import end_memberships_of
    except ImportError:
        pass
    else:
        end_memberships_of(person)
    try:
        from portal.lists.models import Subscription, SubscriptionStatus
        from portal.lists.services import unsubscribe
    except ImportError:
        return
    for subscription in db.session.execute(
        select(Subscription).where(Subscription.person_id == person.id,
                                   Subscription.status != SubscriptionStatus.UNSUBSCRIBED.value)
    ).scalars().all():
        unsubscribe(subscription, "erased at their request", source="people.erasure")


def erase_person(person: Person, actor: Any = None, reason: str = "", *, origin: str = "") -> Person:
    """Remove or anonymize `person` everywhere, in the caller's transaction.

    Guarantees, once the caller commits:
    - the Person row stays as an anonymous placeholder (address "erased-<id>@erased.invalid",
      name, organization, community, job title blank, `erased_at` set); the sector stays, so
      sector statistics stay true;
    - every row that references the person stays (counts stay true: a registration becomes an
      anonymous seat) but each of its `info={"personal": True}` columns is blanked;
    - outbox rows keep that a message was sent, not to whom or what; their attachments are
      deleted and unsent ones are withheld;
    - the consent ledger keeps only purpose, kind and date;
    - the person's links (access tokens) are deleted;
    - they are on no list and in no working group (applications and invitations included);
    - no text or JSON column anywhere (audit entries, login attempts included) still holds
      their address, and no row of theirs or audit entry holds their name.
    Raises AlreadyErased for a person erased before. Writes one audit entry.
    """
    # Lock the person first, so two organizers erasing at once cannot both go ahead.
    locked = db.session.execute(
        select(Person.erased_at).where(Person.id == person.id).with_for_update()
    ).one()
    if locked.erased_at is not None or person.erased_at is not None:
        raise AlreadyErased()
    _leave_groups_and_lists(person)
    moment = now()
    old_email = person.email
    old_name = (person.name or "").strip()
    anonymous = erased_address(person.id)
    scrub_after_commit()

    person.email = anonymous
    person.name = ""
    person.organization = ""
    person.community = ""
    person.job_title = ""
    person.erased_at = moment
    db.session.flush()

    # Write through Core statements below: the ORM copies of these rows in the session
    # would otherwise go stale, so expire them afterwards.
    from portal.core.tokens import AccessToken
    from portal.mail.models import OutboxAttachment, OutboxMessage, OutboxState

    from portal.mail.delivery import forget_mailbox_copies

    outbox = OutboxMessage.__table__
    forget_mailbox_copies(list(db.session.execute(select(outbox.c.id).where(outbox.c.person_id == person.id)).scalars()))
    db.session.execute(
        OutboxAttachment.__table__.delete().where(
            OutboxAttachment.__table__.c.message_id.in_(
                select(outbox.c.id).where(outbox.c.person_id == person.id)
            )
        )
    )
    db.session.execute(
        outbox.update().where(outbox.c.person_id == person.id).values(
            to_address=anonymous, subject="", body_text="", body_html="", headers={}, last_error="",
        )
    )
    # Anything not yet sent would now go nowhere useful: withhold it.
    db.session.execute(
        outbox.update().where(
            outbox.c.person_id == person.id,
            outbox.c.state.in_([OutboxState.QUEUED.value, OutboxState.RETRY.value, OutboxState.SENDING.value]),
        ).values(state=OutboxState.WITHHELD.value)
    )
    consent = ConsentRecord.__table__
    db.session.execute(
        consent.update().where(consent.c.person_id == person.id).values(
            wording="", ip="", user_agent="", source=""
        )
    )
    tokens = AccessToken.__table__
    db.session.execute(tokens.delete().where(tokens.c.person_id == person.id))

    needles = [(old_email, anonymous)]
    if len(old_name) >= 3:
        needles.append((old_name, "[erased]"))
    for link in person_links():
        blanks = {}
        for column in _personal_columns(link.table) if link.primary else []:
            value = _blank_value(column)
            if value is not _KEEP:
                blanks[column.name] = value
        mine = _owned_by(link, person.id)
        if blanks:
            db.session.execute(link.table.update().where(mine).values(**blanks))
        # Free text the person typed may repeat their name or address outside a column
        # marked personal: sweep their own rows for both.
        _sweep(link.table, needles, where=mine)

    # Where they came from (an IP address) on what they did themselves: public actions are
    # audited with no account, about them or their own rows, or under their address.
    own_subjects = audit_subjects_of(person)
    audit = AuditEntry.__table__
    with scrub_audit_entries():
        for start in range(0, len(own_subjects), 500):
            db.session.execute(audit.update().where(
                audit.c.actor_id.is_(None), audit.c.subject.in_(own_subjects[start:start + 500])).values(origin=""))
        db.session.execute(audit.update().where(audit.c.actor_label == old_email).values(origin=""))
    login_attempts = db.metadata.tables.get("login_attempt")
    if login_attempts is not None:
        db.session.execute(login_attempts.update().where(login_attempts.c.email == old_email).values(origin=""))

    # Their address anywhere else (a login attempt typed with it, a note, an audit entry).
    with scrub_audit_entries():
        for table in db.metadata.sorted_tables:
            if table.name in SWEEP_SKIPS:
                continue
            if table.name == AuditEntry.__tablename__:
                _sweep(table, needles)
            else:
                _sweep(table, needles[:1])
        db.session.expire_all()
        record_audit(
            "people.person.erased",
            actor=actor,
            actor_label=None if actor is not None else "portal",
            subject=f"person:{person.id}",
            origin=origin,
            **({"reason": reason} if reason else {}),
        )
        db.session.flush()
    return person
