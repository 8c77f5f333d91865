"""Queueing mail: render once, in the recipient's language, into an outbox row.

Nothing here talks to an SMTP server. A message is written in the same transaction as the
change that caused it, so it exists exactly when that change does; the delivery module sends
it after the commit.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.utils import formataddr, parseaddr
from functools import lru_cache
from itertools import islice
from typing import Any

from flask import current_app
from flask_babel import force_locale, get_translations
from jinja2 import TemplateNotFound, pass_context
from markupsafe import Markup, escape
from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.core.clock import now
from portal.core.db import insert_returning_id
from portal.core.formatting import org_name
from portal.core.kept import kept
from portal.extensions import db
from portal.mail.models import MessageCategory, OutboxAttachment, OutboxMessage, OutboxState
from portal.people.models import Person


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes
    #: "" for a file; `attachments.QR_CODE` for a text drawn as a QR code when sent.
    generated: str = ""


@dataclass(frozen=True)
class ListContext:
    """What list mail needs beyond a transactional message (RFC 2369 / RFC 8058, CASL)."""

    list_id: int
    #: The List-Id value, e.g. "Guideline releases <guideline-releases.owg.example.ca>".
    list_id_header: str
    #: Absolute https URL of the one-click endpoint, with this recipient's opaque token.
    unsubscribe_url: str
    #: mailto: address for unsubscribing by mail.
    unsubscribe_mailto: str = ""
    #: Announce-only lists say `List-Post: NO`.
    announce_only: bool = True


def recipient_address(person: Person) -> str:
    """The To: value for a person, "Name <address>" (non-ASCII names RFC 2047-encoded).

    Code that writes outbox rows in bulk should call this too, so rows match queue_email's.
    """
    return formataddr((person.name, person.email)) if person.name else person.email


def default_sender(language: str) -> str:
    """The From of a transactional message in `language`: French readers see the group's
    French name (MAIL_DEFAULT_SENDER_FR) where one is set."""
    config = current_app.config
    if language == "fr" and config.get("MAIL_DEFAULT_SENDER_FR"):
        return config["MAIL_DEFAULT_SENDER_FR"]
    return config["MAIL_DEFAULT_SENDER"]


def mail_domain() -> str:
    """The domain of the portal's sender address (for Message-IDs and calendar UIDs)."""
    return _domain_of(current_app.config["MAIL_DEFAULT_SENDER"])


@lru_cache(maxsize=8)
def _domain_of(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "portal.local"


def message_id_for(key: str) -> str:
    """A Message-ID derived from the idempotency key: unique, stable across retries."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    return f"<{digest}@{mail_domain()}>"


def _bound_gettext(translations) -> dict[str, Any]:
    """`gettext`/`ngettext` for the templates, bound to one catalogue.

    The same as the callables Flask-Babel installs (Jinja's "newstyle" gettext: autoescaped,
    %-formatted with the keyword arguments), but without looking the catalogue up again
    through the request context for every string: a message's strings all come from the
    recipient's language, fixed for the whole rendering.
    """

    @pass_context
    def gettext(__context, __string: str, **variables: Any) -> str:
        rv = translations.ugettext(__string)
        if __context.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables

    @pass_context
    def ngettext(__context, __singular: str, __plural: str, __num: int, **variables: Any) -> str:
        variables.setdefault("num", __num)
        rv = translations.ungettext(__singular, __plural, __num)
        if __context.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables

    return {"gettext": gettext, "ngettext": ngettext}


def render_email(template: str, language: str, **context: Any) -> tuple[str, str, str]:
    """Render `templates/email/<template>.txt` and `.html` in `language`.

    The subject is the `subject` block of the text template. Returns (subject, text, html).
    """
    config = current_app.config
    context.setdefault("org_name", org_name(language))
    context.setdefault("org_address", config["PORTAL_ORG_ADDRESS"])
    context.setdefault("org_contact", config["PORTAL_ORG_CONTACT"])
    context.setdefault("base_url", config["PORTAL_BASE_URL"].rstrip("/"))
    context["email_language"] = language  # the <html lang>: what it is written in, whoever reads it
    with force_locale(language):
        context.update(_bound_gettext(get_translations()))  # `_()` in templates calls `gettext`
        # Rendered straight from the environment: mail needs none of the page context
        # processors (language switcher, layout values) that `render_template` would run.
        env = current_app.jinja_env
        text_template = env.get_template(f"email/{template}.txt")
        subject = "".join(
            text_template.blocks["subject"](text_template.new_context(dict(context)))
        ).strip() if "subject" in text_template.blocks else ""
        body_text = text_template.render(context)
        try:
            html_template = env.get_template(f"email/{template}.html")
        except TemplateNotFound:  # a message may be text only
            body_html = ""
        else:
            body_html = html_template.render(context)
    return " ".join(subject.split()), body_text.strip() + "\n", body_html


#: Marks a recipient's own value in a message's shared part (see render_merged_email). A
#: control character that no template, translation or escaping produces or changes.
_MERGE_MARK = "\x1a"
_MERGE_FIELD = re.compile(f"{_MERGE_MARK}([a-z_]+){_MERGE_MARK}")
#: How many shared parts an app keeps (template x language x event, say).
MERGED_PARTS_KEPT = 256
MERGED_PARTS = "merged_mail"


def merge_field(name: str) -> str:
    """The marker that stands for the recipient's `name` value while the shared part renders."""
    return f"{_MERGE_MARK}{name}{_MERGE_MARK}"


@dataclass(frozen=True)
class MergeRecipient:
    """`recipient` in a merged message's templates: the name is filled in per person."""

    name: str
    language: str


def render_merged_email(
    template: str, language: str, shared: Mapping[str, Hashable], personal: Mapping[str, str]
) -> tuple[str, str, str]:
    """Render like `render_email`, for messages whose only per-person parts are the plain
    strings in `personal` (a name, a manage link, a place in line).

    The rest, `shared` (hashable values: the same for everyone who gets this message about
    this event), is rendered once per app, template, language and shared values, with each
    personal value a marker; each person's values then replace the markers, HTML-escaped in
    the HTML part. Rendering a confirmation took a tenth of a registration's CPU; filling in
    the markers takes microseconds. Templates must print personal values as they are (no
    filter, no `%d`): tests/mail/test_merge.py checks the result equals `render_email`'s.
    `recipient` is a MergeRecipient whose name comes from `personal["recipient_name"]`.
    """
    def render_shared_part() -> tuple[str, str, str]:
        context = dict(shared)
        context.update((name, merge_field(name)) for name in personal)
        context["recipient"] = MergeRecipient(merge_field("recipient_name"), language)
        return render_email(template, language, **context)

    # Kept until the shelf fills: new event details make a new key, never a stale part.
    key = (template, language, tuple(sorted(shared.items())), tuple(sorted(personal)))
    subject, body_text, body_html = kept(MERGED_PARTS, key, math.inf, render_shared_part,
                                         limit=MERGED_PARTS_KEPT)
    escaped = {name: str(escape(value)) for name, value in personal.items()}

    def fill(part: str, values: Mapping[str, str]) -> str:
        return _MERGE_FIELD.sub(lambda found: values[found.group(1)], part)

    return fill(subject, personal), fill(body_text, personal), fill(body_html, escaped)


def already_queued(key: str) -> bool:
    """Whether a message with this idempotency key exists. For callers that would otherwise
    do work first (issue a link, count recipients) only for queue_email to drop the repeat."""
    return db.session.execute(_EXISTING_KEY, {"key": key}).scalar_one_or_none() is not None


def queued_under(key_prefix: str, *, within: timedelta | None = None) -> bool:
    """Whether a message whose idempotency key starts with `key_prefix` was queued (within
    the past `within`, if given: a sliding limit, where a key's own window would let two go
    out a moment apart across its edge)."""
    query = select(OutboxMessage.id).where(OutboxMessage.idempotency_key.startswith(key_prefix, autoescape=True))
    if within is not None:
        query = query.where(OutboxMessage.created_at > now() - within)
    return db.session.execute(query.limit(1)).first() is not None


def hourly_key(key: str) -> str:
    """`key` for the current hour: a message keyed so goes at most once an hour (a public
    form must not let anyone flood an inbox)."""
    return f"{key}:{now():%Y%m%d%H}"


def _outbox_values(
    *, key: str, to: Person, template: str, purpose: str, context: dict[str, Any] | None,
    category: MessageCategory, list_context: ListContext | None, automatic: bool, not_before,
    personal: Mapping[str, str] | None, language: str | None = None,
) -> dict[str, Any]:
    """The outbox row of one message, rendered (queue_email's and queue_emails' rows alike)."""
    config = current_app.config
    context = dict(context or {})
    language = language or to.language or "en"
    if personal is not None:
        personal = dict(personal, recipient_name=to.name or to.email)  # "Hello ," reads broken
        if list_context is not None:
            personal["unsubscribe_url"] = list_context.unsubscribe_url
        subject, body_text, body_html = render_merged_email(template, language, context, personal)
    else:
        context["recipient"] = to
        if list_context is not None:
            context["unsubscribe_url"] = list_context.unsubscribe_url
        subject, body_text, body_html = render_email(template, language, **context)

    headers: dict[str, str] = {}
    if automatic:
        headers["Auto-Submitted"] = "auto-generated"
    sender = default_sender(language)
    if category == MessageCategory.LIST and list_context is not None:
        sender = config.get("MAIL_LIST_SENDER") or sender
        headers["List-Id"] = list_context.list_id_header
        unsubscribe = f"<{list_context.unsubscribe_url}>"
        if list_context.unsubscribe_mailto:
            unsubscribe += f", <mailto:{list_context.unsubscribe_mailto}>"
        headers["List-Unsubscribe"] = unsubscribe
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if list_context.announce_only:
            headers["List-Post"] = "NO"
        headers["Precedence"] = "list"

    values = dict(
        idempotency_key=key,
        purpose=purpose,
        category=category.value,
        person_id=to.id,
        list_id=list_context.list_id if list_context else None,
        to_address=recipient_address(to),
        from_address=sender,
        reply_to=config.get("MAIL_REPLY_TO") or "",
        language=language,
        subject=subject[:400],
        body_text=body_text,
        body_html=body_html,
        message_id=message_id_for(key),
        headers=headers,
        state=OutboxState.QUEUED.value,
        attempts=0,
        next_attempt_at=not_before or now(),
        claimed_by="",
        last_error="",
        created_at=now(),
    )
    return values


def queue_emails(messages: Iterable[dict[str, Any]], *, chunk: int = 500) -> int:
    """`queue_email` for many messages at once (an organizer's message to a whole event):
    each dict holds queue_email's arguments, without attachments. The rows are the ones
    queue_email writes, rendered and inserted a chunk per statement (only that chunk's
    messages in memory), a repeated key skipped (ON CONFLICT DO NOTHING): ten thousand
    messages are twenty statements, not thirty thousand, and merged messages (`personal`)
    render their shared part once. Returns how many were new."""
    db.session.flush()  # the people (and anything else pending) exist before the rows naming them
    dialect_insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    queued = 0
    pending = iter(messages)
    while rows := [_outbox_values(**{"context": None, "category": MessageCategory.TRANSACTIONAL,
                                     "list_context": None, "automatic": True, "not_before": None,
                                     "personal": None, **message})
                   for message in islice(pending, chunk)]:
        result = db.session.execute(
            dialect_insert(OutboxMessage).values(rows)
            .on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(OutboxMessage.id))
        queued += len(result.all())
    return queued


def queue_email(
    *,
    key: str,
    to: Person,
    template: str,
    purpose: str,
    context: dict[str, Any] | None = None,
    category: MessageCategory = MessageCategory.TRANSACTIONAL,
    list_context: ListContext | None = None,
    attachments: list[Attachment] | None = None,
    automatic: bool = True,
    not_before=None,
    repeatable: bool = True,
    personal: Mapping[str, str] | None = None,
    language: str | None = None,
) -> int | None:
    """Queue one message to `to`, unless a message with the same `key` already exists.

    `key` names purpose + object + recipient (e.g. "events.confirmation:reg:42"), so repeating
    an action never queues a second copy. Returns the new message's id, or None for a repeat.
    `repeatable=False` says the key names something created in this very transaction, so no
    copy can exist yet: the look-up that spares rendering a repeat is skipped (the insert
    still ignores a duplicate key). The caller's transaction owns the commit.
    With `personal`, the message is merged (render_merged_email): `context` then holds only
    what everyone gets alike, as hashable values, and `personal` the recipient's own strings.
    `language` overrides the person's own (a test copy goes in the language its sender reads).
    """
    if repeatable and already_queued(key):
        return None
    values = _outbox_values(key=key, to=to, template=template, purpose=purpose, context=context,
                            category=category, list_context=list_context, automatic=automatic,
                            not_before=not_before, personal=personal, language=language)
    # One statement with the values as parameters, on the session's connection: compiled
    # once, and no ORM bookkeeping for a row nobody reads back here.
    db.session.flush()  # the person (and anything else pending) exists before the row naming it
    message_id = insert_returning_id(OutboxMessage.__table__, values, unless_taken=("idempotency_key",))
    if message_id is None:
        return None
    if attachments:
        db.session.connection().execute(_INSERT_ATTACHMENT, [
            {"message_id": message_id, "filename": attachment.filename,
             "content_type": attachment.content_type, "content": attachment.content,
             "generated": attachment.generated}
            for attachment in attachments
        ])
    return message_id


_EXISTING_KEY = select(OutboxMessage.id).where(OutboxMessage.idempotency_key == bindparam("key"))
_INSERT_ATTACHMENT = insert(OutboxAttachment.__table__)


# --- the organizer's view of the outbox ----------------------------------------------------


def count_by_state() -> dict[str, int]:
    """How many messages are in each state (every state present, zeros included)."""
    from sqlalchemy import func

    counts = {state.value: 0 for state in OutboxState}
    for state, count in db.session.execute(
        select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
    ):
        counts[state] = count
    return counts


def recent_errors(limit: int = 10) -> list[OutboxMessage]:
    """The latest messages that failed or are waiting to retry, with the server's reply."""
    return list(
        db.session.execute(
            select(OutboxMessage)
            .where(
                OutboxMessage.state.in_([OutboxState.FAILED.value, OutboxState.RETRY.value]),
                OutboxMessage.last_error != "",
            )
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        ).scalars()
    )


def _requeue(messages_filter) -> int:
    from sqlalchemy import update

    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.state == OutboxState.FAILED.value, messages_filter)
        .values(state=OutboxState.QUEUED.value, attempts=0, next_attempt_at=now(),
                lease_until=None, claimed_by="")
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    return result.rowcount or 0


def retry_failed(*, actor=None, origin: str = "") -> int:
    """Queue every failed message again (attempts start over); returns how many.

    The last error stays on the row until the next attempt replaces it.
    """
    from portal.core.audit import record_audit

    count = _requeue(OutboxMessage.id.isnot(None))
    record_audit("mail.outbox.retried", actor=actor, subject="outbox:failed", origin=origin, count=count)
    return count


def retry_message(message: OutboxMessage, *, actor=None, origin: str = "") -> bool:
    """Queue one failed message again; False if it was not failed."""
    from portal.core.audit import record_audit

    if not _requeue(OutboxMessage.id == message.id):
        return False
    record_audit("mail.outbox.retried", actor=actor, subject=f"outbox:{message.id}", origin=origin, count=1)
    db.session.refresh(message)
    return True
