"""Mail the guidelines area queues: request confirmations and release notices (outbox rows only)."""
from __future__ import annotations

import importlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from email.utils import formataddr

from flask import current_app, has_request_context, url_for
from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.core.tokens import issue_token
from portal.extensions import db
from portal.guidelines.models import CopyRequest, Guideline, GuidelineStatus
from portal.mail.models import MessageCategory
from portal.mail.services import already_queued, hourly_key, queue_email
from portal.people.models import Person

CONFIRM_PURPOSE = "guidelines.confirm_request"
DOWNLOAD_PURPOSE = "guidelines.download"
#: Purpose of the outbox rows of a release; the organizer's progress view counts these.
RELEASE_NOTICE_PURPOSE = "guidelines.release_notice"
CONFIRM_VALID_FOR = timedelta(days=14)
#: A personal download link works this long after the notice.
DOWNLOAD_VALID_FOR = timedelta(days=90)


def release_key(guideline_id: int, person_id: int) -> str:
    """The outbox idempotency key of a release notice: one per guideline version and person."""
    return f"guidelines.release:{guideline_id}:{person_id}"


def path_for(endpoint: str, **values) -> str:
    """A site-relative URL, also from jobs (no request): mail prefixes it with base_url."""
    if has_request_context():
        return url_for(endpoint, **values)
    with current_app.test_request_context("/"):
        return url_for(endpoint, **values)


def notify_copy_request_confirmation(copy_request: CopyRequest) -> None:
    """Queue the double opt-in email: a link the person follows to confirm their request."""
    raw = issue_token(
        CONFIRM_PURPOSE,
        person_id=copy_request.person_id,
        subject_id=copy_request.id,
        valid_for=CONFIRM_VALID_FOR,
    )
    # A new key each time: asking again is a new action and deserves a fresh link.
    queue_email(
        key=f"guidelines.request_confirmation:{copy_request.id}:{secrets.token_hex(6)}",
        to=copy_request.person,
        template="guidelines/confirm_request",
        purpose="guidelines.request_confirmation",
        context={
            "guideline": copy_request.guideline,
            "confirm_path": path_for("guidelines.confirm_request", token=raw),
        },
    )


def notify_request_stands(copy_request: CopyRequest) -> None:
    """Someone asked again for a copy already confirmed: tell the owner of the address that
    the request stands, with their link (the confirmation link) to ask for an accessible
    format. At most one such message per request and hour: the form is open to anyone."""
    key = hourly_key(f"guidelines.request_stands:{copy_request.id}")
    if already_queued(key):
        return
    raw = issue_token(CONFIRM_PURPOSE, person_id=copy_request.person_id, subject_id=copy_request.id,
                      valid_for=CONFIRM_VALID_FOR)
    guideline = copy_request.guideline
    queue_email(
        key=key, to=copy_request.person, template="guidelines/request_stands",
        purpose="guidelines.request_stands",
        context={"guideline": guideline, "request_path": path_for("guidelines.confirm_request", token=raw),
                 "released": guideline.status == GuidelineStatus.RELEASED,
                 "accessible_format": copy_request.accessible_format},
    )


def notify_request_withdrawn(copy_request: CopyRequest) -> None:
    """The guideline they asked for (and confirmed) was withdrawn before its release."""
    queue_email(
        key=f"guidelines.request_withdrawn:{copy_request.id}", to=copy_request.person,
        template="guidelines/request_withdrawn", purpose="guidelines.request_withdrawn",
        context={"guideline": copy_request.guideline},
    )


def list_context_for(subscription):
    """The List-* headers for a subscriber's notice, built by the lists area."""
    try:
        builder = importlib.import_module("portal.lists.notifications").list_context_for
    except (ModuleNotFoundError, AttributeError):
        return None
    return builder(subscription)


def notify_release(guideline: Guideline, person: Person, reason: str, link_path_template: str,
                   subscription=None, *, key: str | None = None) -> bool:
    """Queue one release notice with a personal download link; False if already queued.

    `link_path_template` is the download-link path with "TOKEN" in place of the token, built
    once per release so thousands of notices need no URL building each. `key`: another
    message than the release notice (a copy asked for after the person's notice went).
    """
    raw = issue_token(
        DOWNLOAD_PURPOSE, person_id=person.id, subject_id=guideline.id, valid_for=DOWNLOAD_VALID_FOR
    )
    # Someone told only because they subscribe gets list mail (List-Unsubscribe...); someone
    # who asked for the guideline gets a transactional notice.
    list_context = list_context_for(subscription) if reason == "list" and subscription is not None else None
    message = queue_email(
        key=key or release_key(guideline.id, person.id),
        to=person,
        template="guidelines/release_notice",
        purpose=RELEASE_NOTICE_PURPOSE,
        context={
            "guideline": guideline,
            "download_path": link_path_template.replace("TOKEN", raw),
            "reason": reason,
            "valid_days": DOWNLOAD_VALID_FOR.days,
        },
        category=MessageCategory.LIST if list_context is not None else MessageCategory.TRANSACTIONAL,
        list_context=list_context,
    )
    return message is not None


# --- a release to many people at once -----------------------------------------------------------
#
# `queue_email` renders two templates and runs four statements per message: fine for one
# confirmation, but a release to thousands holds the database's write lock (SQLite) for the
# whole transaction. So a release renders each (language, kind) variant once with markers
# where the name and the personal links go, substitutes per person, and inserts the outbox
# rows, tokens included, a chunk per statement. The rows are the ones `queue_email` would
# write (a test compares them field by field); keys and ON CONFLICT DO NOTHING keep it
# idempotent.

_NAME = "\ue000name\ue000"
_TOKEN = "\ue000token\ue000"
_UNSUBSCRIBE = "\ue000unsubscribe\ue000"
_MAILTO_TOKEN = "\ue000mailto\ue000"


@dataclass(frozen=True)
class NoticeRecipient:
    person: Person
    reason: str
    subscription: object | None = None


class _StandIn:
    """What templates see as `recipient` while rendering a variant."""

    def __init__(self, language: str) -> None:
        self.name = _NAME
        self.language = language
        self.email = ""


def queue_release_notices_bulk(guideline: Guideline, recipients: list[NoticeRecipient],
                               link_path_template: str) -> int:
    """Queue a release notice to each recipient (their language, their own download link);
    returns how many outbox rows were new."""
    from markupsafe import escape

    from portal.core.clock import now
    from portal.core.tokens import AccessToken, hash_token, new_raw_token
    from portal.mail.models import OutboxMessage, OutboxState
    from portal.mail.services import default_sender, message_id_for, render_email

    if not recipients:
        return 0
    config = current_app.config
    moment = now()
    variants: dict[tuple[str, str], tuple[str, str, str]] = {}
    token_rows: list[dict] = []
    outbox_rows: list[dict] = []
    for recipient in recipients:
        person = recipient.person
        language = person.language or "en"
        list_context = None
        if recipient.reason == "list" and recipient.subscription is not None:
            list_context = list_context_for(recipient.subscription)
        kind = "list" if list_context is not None else "transactional"
        # The template varies by language, list or not, and revision or not: one render each.
        variant = (language, kind, recipient.reason == "revision")
        if variant not in variants:
            context = {
                "guideline": guideline,
                "download_path": link_path_template.replace("TOKEN", _TOKEN),
                "reason": recipient.reason,
                "valid_days": DOWNLOAD_VALID_FOR.days,
                "recipient": _StandIn(language),
            }
            if kind == "list":
                context["unsubscribe_url"] = _UNSUBSCRIBE
            variants[variant] = render_email("guidelines/release_notice", language, **context)
        subject, text, html = variants[variant]

        raw = new_raw_token()
        token_rows.append({
            "token_hash": hash_token(raw), "purpose": DOWNLOAD_PURPOSE, "person_id": person.id,
            "subject_id": guideline.id, "expires_at": moment + DOWNLOAD_VALID_FOR, "use_count": 0,
            "created_at": moment,
        })
        unsubscribe_url = list_context.unsubscribe_url if list_context else ""
        body_text = text.replace(_NAME, person.name or person.email).replace(_TOKEN, raw).replace(_UNSUBSCRIBE, unsubscribe_url)
        body_html = (html.replace(_NAME, str(escape(person.name or person.email))).replace(_TOKEN, raw)
                     .replace(_UNSUBSCRIBE, str(escape(unsubscribe_url))))
        headers = {"Auto-Submitted": "auto-generated"}
        sender = default_sender(language)
        if list_context is not None:
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
        key = release_key(guideline.id, person.id)
        outbox_rows.append({
            "idempotency_key": key,
            "purpose": RELEASE_NOTICE_PURPOSE,
            "category": (MessageCategory.LIST if list_context else MessageCategory.TRANSACTIONAL).value,
            "person_id": person.id,
            "list_id": list_context.list_id if list_context else None,
            "to_address": formataddr((person.name, person.email)) if person.name else person.email,
            "from_address": sender,
            "reply_to": config.get("MAIL_REPLY_TO") or "",
            "language": language,
            "subject": subject.replace(_NAME, person.name or person.email)[:400],
            "body_text": body_text,
            "body_html": body_html,
            "message_id": message_id_for(key),
            "headers": headers,
            "state": OutboxState.QUEUED.value,
            "attempts": 0,
            "next_attempt_at": moment,
            "claimed_by": "",
            "last_error": "",
            "created_at": moment,
        })
    db.session.execute(insert(AccessToken), token_rows)
    dialect_insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = db.session.execute(
        dialect_insert(OutboxMessage).values(outbox_rows)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(OutboxMessage.id)
    )
    return len(result.all())
