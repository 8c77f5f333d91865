"""Guidelines: editing, editions, scheduling, copy requests, releases and downloads.

The release itself is `claim_release` + `queue_release_notices`, run by the scheduler job in
one transaction: the guideline turns public and every notice is queued together, or neither.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from portal.core.audit import record_audit
from portal.core.clock import now
from portal.core.errors import DomainError, InvalidToken, NotFound, RateLimited
from portal.core.tokens import AccessToken, hash_token, resolve_token, revoke_tokens
from portal.extensions import db
from portal.guidelines import notifications, storage
from portal.guidelines.models import (
    LANGUAGES,
    CopyRequest,
    CopyRequestStatus,
    Guideline,
    GuidelineDownload,
    GuidelineEdition,
    GuidelineStatus,
    ReleaseNotice,
)
from portal.mail.models import OutboxMessage, OutboxState
from portal.people.models import ConsentKind, Person, Sector
from portal.people.services import get_or_create_person, record_consent, take_turns_for

log = logging.getLogger(__name__)

#: The public list whose active subscribers hear about every release.
RELEASES_LIST_SLUG = "guideline-releases"
RELEASES_CONSENT_PURPOSE = "list:guideline-releases"
OPT_IN_WORDING_VERSION = "guidelines-opt-in-1"
OPT_IN_WORDING = (
    "Yes, also send me news of future guideline releases by email (the \"Guideline releases\" "
    "list of the Ontario Working Group). I can unsubscribe at any time with the link in every message."
)
#: Counts below this are shown as "fewer than 5" so a small sector cannot be singled out.
SUPPRESS_BELOW = 5


class GuidelineNotAvailable(DomainError):
    message = _l("This guideline is not open for requests.")
    status = 404


class GuidelineWithdrawn(DomainError):
    message = _l("This guideline was withdrawn, so there is nothing to send. Your request was not confirmed.")
    status = 410


class LinkToWithdrawnGuideline(DomainError):
    message = _l("This guideline was withdrawn by the working group, so its download links no longer work.")
    status = 410


class RevisionRefused(DomainError):
    """The earlier version chosen for a guideline cannot be one."""

    message = _l("Choose an existing guideline for the earlier version.")
    field = "revision_of"


class CannotSchedule(DomainError):
    message = _l("This guideline cannot be scheduled.")
    status = 409


# --- editing -----------------------------------------------------------------------------------

def create_guideline(*, actor: Any = None, origin: str = "", **fields: Any) -> Guideline:
    """Create a draft guideline (title, summary, version, optional revision_of_id)."""
    revision_of_id = fields.pop("revision_of_id", None)
    if revision_of_id is not None and db.session.get(Guideline, revision_of_id) is None:
        raise RevisionRefused()
    guideline = Guideline(status=GuidelineStatus.DRAFT.value, revision_of_id=revision_of_id, **fields)
    db.session.add(guideline)
    db.session.flush()
    record_audit("guidelines.guideline.created", actor=actor, subject=f"guideline:{guideline.id}", origin=origin)
    return guideline


def update_guideline(guideline: Guideline, *, actor: Any = None, origin: str = "", **fields: Any) -> Guideline:
    """Change a guideline's texts; a withdrawn one is closed for edits.

    Versions form chains, never loops: a guideline cannot be a revision of itself nor of one
    of its own later versions (`RevisionRefused`). In a loop each would replace the other,
    and the public list, which shows only the latest of each chain, would show neither.
    """
    if guideline.status == GuidelineStatus.WITHDRAWN:
        raise DomainError(_l("A withdrawn guideline cannot be edited."))
    revision_of_id = fields.pop("revision_of_id", guideline.revision_of_id)
    if revision_of_id == guideline.id:
        raise RevisionRefused(_l("A guideline cannot be a revision of itself."))
    earlier = db.session.get(Guideline, revision_of_id) if revision_of_id is not None else None
    if revision_of_id is not None and earlier is None:
        raise RevisionRefused()
    if earlier is not None and guideline.id in _earlier_versions(earlier):
        raise RevisionRefused(_l("This guideline is an earlier version of the one chosen: choose another."))
    guideline.revision_of_id = revision_of_id
    for name, value in fields.items():
        setattr(guideline, name, value)
    db.session.flush()
    record_audit("guidelines.guideline.updated", actor=actor, subject=f"guideline:{guideline.id}", origin=origin)
    return guideline


def add_edition(
    guideline: Guideline, language: str, stream: BinaryIO, filename: str, *, actor: Any = None, origin: str = ""
) -> GuidelineEdition:
    """Check and store the PDF for one language, replacing any earlier file for it.

    Raises `storage.UploadRefused` (not a PDF, empty, too large). Released or withdrawn
    guidelines keep their files: publish a revision instead.
    """
    if language not in LANGUAGES:
        raise DomainError(_l("Choose English or French."))
    if guideline.status in (GuidelineStatus.RELEASED, GuidelineStatus.WITHDRAWN):
        raise DomainError(_l("A released or withdrawn guideline keeps its files; create a revision instead."))
    stored = storage.check_and_store(stream, filename)
    edition = guideline.edition(language)
    if edition is None:
        edition = GuidelineEdition(guideline=guideline, language=language)
        db.session.add(edition)
    storage.replaced_in_this_transaction(edition.stored_name, stored.stored_name)
    edition.stored_name = stored.stored_name
    edition.original_name = stored.original_name
    edition.sha256 = stored.sha256
    edition.size_bytes = stored.size_bytes
    db.session.flush()
    record_audit("guidelines.edition.uploaded", actor=actor, subject=f"guideline:{guideline.id}",
                 origin=origin, language=language, sha256=stored.sha256, size=stored.size_bytes)
    return edition


def schedule_release(guideline: Guideline, release_at: datetime, *, actor: Any = None, origin: str = "") -> Guideline:
    """Schedule (or reschedule) the release at `release_at` (aware).

    Moving the time changes `release_at`, which the release job's claim compares, so a job
    that read the old time cannot release at it.
    """
    if release_at.tzinfo is None:
        raise ValueError("release_at must be aware")
    if guideline.status not in (GuidelineStatus.DRAFT, GuidelineStatus.SCHEDULED):
        raise CannotSchedule(_l("Only a draft or scheduled guideline can be scheduled."))
    if release_at <= now():
        raise CannotSchedule(_l("Choose a release time in the future."))
    missing = [lang for lang in LANGUAGES if guideline.edition(lang) is None]
    if missing:
        raise CannotSchedule(_l("Upload the English and French PDF before scheduling the release."))
    previous = guideline.release_at
    guideline.status = GuidelineStatus.SCHEDULED.value
    guideline.release_at = release_at
    db.session.flush()
    record_audit(
        "guidelines.release.rescheduled" if previous else "guidelines.release.scheduled",
        actor=actor, subject=f"guideline:{guideline.id}", origin=origin,
        release_at=release_at.isoformat(), previous=previous.isoformat() if previous else None,
    )
    return guideline


def withdraw_guideline(guideline: Guideline, *, actor: Any = None, origin: str = "") -> Guideline:
    """Withdraw: a scheduled release will not happen, download links stop working, and
    release notices still waiting in the outbox (queued or retrying) are withheld.

    A notice a sender has already claimed (state "sending") may still go out; its link is
    revoked here, so it opens the "link no longer works" page, never the file.
    """
    if guideline.status == GuidelineStatus.WITHDRAWN:
        raise DomainError(_l("This guideline is already withdrawn."))
    was_scheduled = guideline.status == GuidelineStatus.SCHEDULED
    guideline.status = GuidelineStatus.WITHDRAWN.value
    revoked = revoke_tokens(notifications.DOWNLOAD_PURPOSE, subject_id=guideline.id)
    withheld = db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.purpose == notifications.RELEASE_NOTICE_PURPOSE,
            OutboxMessage.idempotency_key.like(f"guidelines.release:{guideline.id}:%"),
            OutboxMessage.state.in_([OutboxState.QUEUED.value, OutboxState.RETRY.value]),
        )
        .values(state=OutboxState.WITHHELD.value, last_error="guideline withdrawn", lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount or 0
    told = 0
    if was_scheduled:
        # They confirmed and wait for a copy that will never come: say so (about their request).
        for copy_request in db.session.execute(
            select(CopyRequest).where(CopyRequest.guideline_id == guideline.id,
                                      CopyRequest.status == CopyRequestStatus.CONFIRMED.value,
                                      CopyRequest.notified_at.is_(None))
        ).scalars():
            if copy_request.person is not None and copy_request.person.erased_at is None:
                notifications.notify_request_withdrawn(copy_request)
                told += 1
    db.session.flush()
    record_audit("guidelines.guideline.withdrawn", actor=actor, subject=f"guideline:{guideline.id}",
                 origin=origin, links_revoked=revoked, notices_withheld=withheld, requesters_told=told)
    return guideline


# --- public listing ----------------------------------------------------------------------------

def released_guidelines() -> list[tuple[Guideline, list[Guideline]]]:
    """What the public page lists: the latest released version of each guideline, newest
    first, each with the earlier released versions it replaced (newest first). A revision
    takes the place of what it revises; the earlier files stay downloadable, for anyone who
    needs to see what changed or cites an older version."""
    released = list(db.session.execute(
        select(Guideline).where(Guideline.status == GuidelineStatus.RELEASED)
        .order_by(Guideline.released_at.desc(), Guideline.id.desc())
    ).scalars())
    by_id = {guideline.id: guideline for guideline in released}
    replaced = {g.revision_of_id for g in released if g.revision_of_id in by_id}
    listing = []
    for guideline in released:
        if guideline.id in replaced:
            continue
        earlier: list[Guideline] = []
        seen = {guideline.id}
        previous = by_id.get(guideline.revision_of_id)
        while previous is not None and previous.id not in seen:
            earlier.append(previous)
            seen.add(previous.id)
            previous = by_id.get(previous.revision_of_id)
        listing.append((guideline, earlier))
    return listing


def upcoming_guidelines() -> list[Guideline]:
    return list(db.session.execute(
        select(Guideline).where(Guideline.status == GuidelineStatus.SCHEDULED)
        .order_by(Guideline.release_at, Guideline.id)
    ).scalars())


def public_guideline(guideline_id: int) -> Guideline:
    """A guideline the public may see (scheduled or released), else `NotFound`."""
    guideline = db.session.get(Guideline, guideline_id)
    if guideline is None or guideline.status not in (GuidelineStatus.SCHEDULED, GuidelineStatus.RELEASED):
        raise NotFound()
    return guideline


# --- copy requests -----------------------------------------------------------------------------

def request_copy(
    guideline: Guideline,
    *,
    email: str,
    name: str,
    organization: str = "",
    sector_id: int | None = None,
    language: str = "en",
    accessible_format: bool = False,
    format_details: str = "",
    list_opt_in: bool = False,
    opt_in_wording: str = "",
    shown_in: str = "",
    origin: str = "",
) -> CopyRequest:
    """Record a request for a copy and queue the confirmation email (double opt-in).

    `opt_in_wording` and `shown_in`: the list opt-in's label as the page showed it and the
    page's language, recorded as the consent's wording when the person confirms.

    Nothing else happens until the person confirms from the email: not the copy, and not the
    list opt-in. Asking again while pending sends a fresh confirmation; a confirmed request is
    left as it is (the form is open to anyone, so it must not change a confirmed request):
    its owner is emailed (at most once an hour) that it stands, with their link to ask for
    an accessible format there (`set_accessible_format`).
    """
    if guideline.status not in (GuidelineStatus.SCHEDULED, GuidelineStatus.RELEASED):
        raise GuidelineNotAvailable()
    if language not in LANGUAGES:
        raise DomainError(_l("Choose English or French."))
    if sector_id is not None and db.session.get(Sector, sector_id) is None:
        raise DomainError(_l("Choose a sector from the list."))
    person = get_or_create_person(email, name=name, organization=organization, sector_id=sector_id,
                                  language=language)
    copy_request = _find_request(guideline.id, person.id)
    if copy_request is None:
        try:
            with db.session.begin_nested():
                copy_request = CopyRequest(guideline_id=guideline.id, person_id=person.id)
                db.session.add(copy_request)
                db.session.flush()
        except IntegrityError:  # the same person asked at the same moment in another request
            copy_request = _find_request(guideline.id, person.id)
            assert copy_request is not None
    if copy_request.status == CopyRequestStatus.CONFIRMED:
        notifications.notify_request_stands(copy_request)
        return copy_request
    copy_request.language = language
    copy_request.accessible_format = accessible_format
    copy_request.format_details = (format_details or "").strip()[:300] if accessible_format else ""
    copy_request.list_opt_in = list_opt_in
    copy_request.opt_in_wording = (opt_in_wording or OPT_IN_WORDING) if list_opt_in else ""
    copy_request.opt_in_language = (shown_in if shown_in in LANGUAGES else language) if list_opt_in else ""
    db.session.flush()
    if _confirmations_this_hour(person) >= CONFIRMATIONS_PER_ADDRESS_PER_HOUR:
        raise RateLimited()
    record_audit("guidelines.request.received", subject=f"copy_request:{copy_request.id}", origin=origin,
                 guideline=guideline.id, accessible_format=accessible_format)
    notifications.notify_copy_request_confirmation(copy_request)
    return copy_request


#: Confirmation links one address may be sent in an hour, whatever the guideline: the form's
#: own per-address limit only counts requests once answered, so ones at the same moment all
#: passed it; this is counted in the transaction, under the person's lock.
CONFIRMATIONS_PER_ADDRESS_PER_HOUR = 6


def _confirmations_this_hour(person: Person) -> int:
    take_turns_for(person)
    return db.session.execute(
        select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.person_id == person.id, OutboxMessage.purpose == "guidelines.request_confirmation",
            OutboxMessage.created_at > now() - timedelta(hours=1))
    ).scalar_one()


def set_accessible_format(copy_request: CopyRequest, *, accessible_format: bool, format_details: str,
                          origin: str = "") -> CopyRequest:
    """Change the accessible format a request asks for, from the requester's own emailed link
    (organizers see it in the requests list, accessible formats first)."""
    if copy_request.guideline.status == GuidelineStatus.WITHDRAWN:
        raise GuidelineWithdrawn()
    copy_request.accessible_format = accessible_format
    copy_request.format_details = format_details.strip()[:300] if accessible_format else ""
    db.session.flush()
    record_audit("guidelines.request.format_changed", subject=f"copy_request:{copy_request.id}", origin=origin,
                 accessible_format=accessible_format)
    return copy_request


def _find_request(guideline_id: int, person_id: int) -> CopyRequest | None:
    return db.session.execute(
        select(CopyRequest).where(CopyRequest.guideline_id == guideline_id, CopyRequest.person_id == person_id)
    ).scalar_one_or_none()


def copy_request_for_token(raw: str | None) -> CopyRequest:
    """The request a confirmation link is for, or `InvalidToken`; `GuidelineWithdrawn` when
    there is nothing left to confirm (confirm_copy_request checks again under the lock)."""
    token = resolve_token(notifications.CONFIRM_PURPOSE, raw)
    copy_request = db.session.get(CopyRequest, token.subject_id) if token.subject_id else None
    if copy_request is None or copy_request.person_id != token.person_id:
        raise InvalidToken()
    if copy_request.guideline.status == GuidelineStatus.WITHDRAWN:
        raise GuidelineWithdrawn()
    return copy_request


def confirm_copy_request(raw: str | None, *, origin: str = "", user_agent: str = "") -> CopyRequest:
    """Confirm a request from its emailed link (safe to repeat).

    If the guideline is already released the copy is queued at once. The guideline row is
    locked first, so a confirmation racing the release job either lands before the release
    (and the job includes this person) or after it (and is sent here): never neither.
    """
    copy_request = copy_request_for_token(raw)
    guideline = db.session.execute(
        select(Guideline).where(Guideline.id == copy_request.guideline_id).with_for_update()
        # Read afresh: the guideline loaded with the request may predate the release just committed.
        .execution_options(populate_existing=True)
    ).scalar_one()
    db.session.refresh(copy_request)
    if guideline.status == GuidelineStatus.WITHDRAWN:
        # Nothing will ever be released: confirming would promise a copy that never comes.
        raise GuidelineWithdrawn()
    if copy_request.status == CopyRequestStatus.PENDING:
        copy_request.status = CopyRequestStatus.CONFIRMED.value
        copy_request.confirmed_at = now()
        person = copy_request.person
        if copy_request.list_opt_in:
            _opt_in_to_release_list(person, copy_request, origin=origin, user_agent=user_agent)
        record_audit("guidelines.request.confirmed", subject=f"copy_request:{copy_request.id}", origin=origin)
    if guideline.status == GuidelineStatus.RELEASED and copy_request.notified_at is None:
        link_template = notifications.path_for("guidelines.download_link", token="TOKEN")
        if _insert_notice(guideline.id, copy_request.person_id, "request"):
            notifications.notify_release(guideline, copy_request.person, "request", link_template)
        else:
            # Told already (as a subscriber of the releases list), yet they asked for it: the
            # copy they asked for goes too, rather than a page saying it is on its way. Its key
            # is one of this release's (a withdrawal holds it back, the progress counts it),
            # and they are now told as someone who asked (revisions reach them).
            notifications.notify_release(
                guideline, copy_request.person, "request", link_template,
                key=f"{notifications.release_key(guideline.id, copy_request.person_id)}:request:{copy_request.id}")
            db.session.execute(
                update(ReleaseNotice)
                .where(ReleaseNotice.guideline_id == guideline.id, ReleaseNotice.person_id == copy_request.person_id)
                .values(reason="request").execution_options(synchronize_session=False))
        copy_request.notified_at = now()
    db.session.flush()
    return copy_request


def _opt_in_to_release_list(person: Person, copy_request: CopyRequest, *, origin: str, user_agent: str) -> None:
    """Record the express consent the person gave (proven by their confirmation), and ask
    the lists area to subscribe them if it offers `request_subscription`."""
    # The wording the person saw beside the box (requests from before it was kept: ours).
    wording = copy_request.opt_in_wording or OPT_IN_WORDING
    shown_in = copy_request.opt_in_language or copy_request.language
    record_consent(
        person,
        purpose=RELEASES_CONSENT_PURPOSE,
        kind=ConsentKind.EXPRESS,
        wording=wording,
        wording_version=OPT_IN_WORDING_VERSION,
        source=f"guidelines.request_copy:guideline:{copy_request.guideline_id}",
        method="double opt-in",
        ip=origin,
        user_agent=user_agent,
        language=shown_in,
    )
    try:
        request_subscription = importlib.import_module("portal.lists.services").request_subscription
    except (ModuleNotFoundError, AttributeError):
        return
    from portal.lists.models import MailingList

    mailing_list = db.session.execute(
        select(MailingList).where(MailingList.slug == RELEASES_LIST_SLUG)
    ).scalar_one_or_none()
    if mailing_list is None:
        log.warning("the %s list does not exist; consent recorded, no subscription", RELEASES_LIST_SLUG)
        return
    # The lists area runs its own double opt-in (one confirmation email); a refusal there
    # (e.g. too many requests) must not undo the confirmation of the copy request.
    try:
        with db.session.begin_nested():
            request_subscription(mailing_list, person.email, person.name, copy_request.language,
                                 wording, OPT_IN_WORDING_VERSION, origin, user_agent, shown_in=shown_in)
    except DomainError as error:
        log.info("list subscription for copy request %s not requested: %s", copy_request.id, error)


def requests_for(guideline: Guideline) -> list[CopyRequest]:
    """Copy requests, accessible-format requests first (organizers act on those)."""
    return list(db.session.execute(
        select(CopyRequest).where(CopyRequest.guideline_id == guideline.id)
        .order_by(CopyRequest.accessible_format.desc(), CopyRequest.created_at, CopyRequest.id)
    ).scalars())


# --- release -----------------------------------------------------------------------------------

def claim_release(guideline_id: int, release_at: datetime, moment: datetime) -> Guideline | None:
    """Atomically mark a due guideline released; None if someone else did, or it changed.

    The guarded UPDATE checks the status and the exact release time that was read: a
    withdrawn or rescheduled guideline, or one another scheduler already claimed, updates no
    row. On PostgreSQL the UPDATE row-locks the guideline until the transaction ends; on
    SQLite the job runs the transaction under BEGIN IMMEDIATE.
    """
    result = db.session.execute(
        update(Guideline)
        .where(
            Guideline.id == guideline_id,
            Guideline.status == GuidelineStatus.SCHEDULED.value,
            Guideline.release_at == release_at,
        )
        .values(status=GuidelineStatus.RELEASED.value, released_at=moment)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    guideline = db.session.get(Guideline, guideline_id)
    db.session.refresh(guideline)
    return guideline


def _earlier_versions(guideline: Guideline) -> list[int]:
    ids: list[int] = []
    current = guideline.revision_of
    while current is not None and current.id not in ids and current.id != guideline.id:
        ids.append(current.id)
        current = current.revision_of
    return ids


def _release_list_subscriptions() -> dict[int, Any]:
    """Active subscribers of "Guideline releases" with live consent: person id -> subscription."""
    from portal.lists.models import MailingList, Subscription, SubscriptionStatus

    mailing_list = db.session.execute(
        select(MailingList).where(MailingList.slug == RELEASES_LIST_SLUG)
    ).scalar_one_or_none()
    if mailing_list is None:
        return {}
    try:
        # The lists area's rule: active, not erased, consent still live (CASL).
        list_recipients = importlib.import_module("portal.lists.services").recipients
    except (ModuleNotFoundError, AttributeError):
        list_recipients = None
    if list_recipients is not None:
        return {s.person_id: s for s in list_recipients(mailing_list)}
    return {s.person_id: s for s in db.session.execute(
        select(Subscription).where(Subscription.list_id == mailing_list.id,
                                   Subscription.status == SubscriptionStatus.ACTIVE.value)
    ).scalars()}


def release_recipients(guideline: Guideline) -> dict[int, str]:
    """Who gets a notice: person id -> reason ("request", "list" or "revision").

    Confirmed requesters, active subscribers of the "Guideline releases" list, and for a
    revision everyone who asked for a copy of an earlier version (told because they asked,
    or of a revision of what they asked for); a person in several groups counts once (a
    requester's notice is transactional). Someone told of an earlier version only as a
    list subscriber hears of the revision through the list or not at all: having left it,
    they gave no consent for more (CASL). Erased people are left out.
    """
    recipients: dict[int, str] = {}
    earlier = _earlier_versions(guideline)
    if earlier:
        for person_id in db.session.execute(
            select(ReleaseNotice.person_id).where(ReleaseNotice.guideline_id.in_(earlier),
                                                  ReleaseNotice.reason.in_(("request", "revision")))
        ).scalars():
            recipients[person_id] = "revision"
    for person_id in _release_list_subscriptions():
        recipients[person_id] = "list"
    for person_id in db.session.execute(
        select(CopyRequest.person_id).where(
            CopyRequest.guideline_id == guideline.id,
            CopyRequest.status == CopyRequestStatus.CONFIRMED.value,
        )
    ).scalars():
        recipients[person_id] = "request"  # asked for it: a transactional notice
    if recipients:
        erased = set(db.session.execute(
            select(Person.id).where(Person.erased_at.is_not(None))
        ).scalars())
        for person_id in erased:
            recipients.pop(person_id, None)
    return recipients


def _insert_notice(guideline_id: int, person_id: int, reason: str) -> bool:
    """Record that this person is told about this version; False if they already were."""
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = db.session.execute(
        insert(ReleaseNotice)
        .values(guideline_id=guideline_id, person_id=person_id, reason=reason, created_at=now())
        .on_conflict_do_nothing(index_elements=["guideline_id", "person_id"])
        .returning(ReleaseNotice.id)
    )
    return result.scalar_one_or_none() is not None


def queue_release_notices(guideline: Guideline, *, chunk: int = 500) -> int:
    """Queue one notice per recipient, in the caller's transaction; returns how many were new.

    Per chunk of recipients: one INSERT of their release-notice rows (ON CONFLICT DO NOTHING
    returns only those not told yet), then one outbox row each with its own download link;
    the outbox key "guidelines.release:<guideline>:<person>" makes any repeat a no-op.
    """
    recipients = release_recipients(guideline)
    subscriptions = _release_list_subscriptions() if "list" in recipients.values() else {}
    link_template = notifications.path_for("guidelines.download_link", token="TOKEN")
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    moment = now()
    queued = 0
    ids = sorted(recipients)
    for start in range(0, len(ids), chunk):
        batch = ids[start:start + chunk]
        new_ids = set(db.session.execute(
            insert(ReleaseNotice)
            .values([{"guideline_id": guideline.id, "person_id": pid, "reason": recipients[pid],
                      "created_at": moment} for pid in batch])
            .on_conflict_do_nothing(index_elements=["guideline_id", "person_id"])
            .returning(ReleaseNotice.person_id)
        ).scalars())
        if not new_ids:
            continue
        people = db.session.execute(select(Person).where(Person.id.in_(new_ids))).scalars().all()
        queued += notifications.queue_release_notices_bulk(
            guideline,
            [notifications.NoticeRecipient(p, recipients[p.id], subscriptions.get(p.id)) for p in people],
            link_template,
        )
    db.session.execute(
        update(CopyRequest)
        .where(
            CopyRequest.guideline_id == guideline.id,
            CopyRequest.status == CopyRequestStatus.CONFIRMED.value,
            CopyRequest.notified_at.is_(None),
        )
        .values(notified_at=now())
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    return queued


# --- downloads and reports ---------------------------------------------------------------------

@dataclass(frozen=True)
class LinkAccess:
    token: AccessToken
    guideline: Guideline
    person: Person | None


def open_download_link(raw: str | None) -> LinkAccess:
    """The guideline a personal link gives access to (counts the use); `InvalidToken` for an
    unknown, expired or revoked link, or a guideline no longer released."""
    try:
        token = resolve_token(notifications.DOWNLOAD_PURPOSE, raw)
    except InvalidToken:
        # Withdrawal revokes the links; someone holding a real one is told why it stopped.
        if raw and len(raw) <= 200 and db.session.execute(
            select(AccessToken.id).join(Guideline, Guideline.id == AccessToken.subject_id)
            .where(AccessToken.token_hash == hash_token(raw),
                   AccessToken.purpose == notifications.DOWNLOAD_PURPOSE,
                   Guideline.status == GuidelineStatus.WITHDRAWN.value)
        ).first():
            raise LinkToWithdrawnGuideline() from None
        raise
    guideline = db.session.get(Guideline, token.subject_id) if token.subject_id else None
    if guideline is not None and guideline.status == GuidelineStatus.WITHDRAWN:
        raise LinkToWithdrawnGuideline()
    if guideline is None or guideline.status != GuidelineStatus.RELEASED:
        raise InvalidToken()
    person = db.session.get(Person, token.person_id) if token.person_id else None
    return LinkAccess(token=token, guideline=guideline, person=person)


def record_download(guideline: Guideline, language: str, *, sector_id: int | None, via: str) -> None:
    db.session.add(GuidelineDownload(guideline_id=guideline.id, language=language, sector_id=sector_id,
                                     via=via, at=now()))
    db.session.flush()


def release_progress(guideline: Guideline) -> dict[str, int]:
    """Release notices by outbox state: queued (incl. retrying, sending), sent, failed."""
    rows = db.session.execute(
        select(OutboxMessage.state, func.count())
        .where(
            OutboxMessage.purpose == notifications.RELEASE_NOTICE_PURPOSE,
            OutboxMessage.idempotency_key.like(f"guidelines.release:{guideline.id}:%"),
        )
        .group_by(OutboxMessage.state)
    ).all()
    progress = {"queued": 0, "sent": 0, "failed": 0, "withheld": 0}
    for state, count in rows:
        if state in (OutboxState.QUEUED, OutboxState.RETRY, OutboxState.SENDING):
            progress["queued"] += count
        elif state == OutboxState.SENT:
            progress["sent"] += count
        elif state == OutboxState.WITHHELD:
            progress["withheld"] += count
        else:
            progress["failed"] += count
    progress["total"] = sum(progress.values())
    return progress


@dataclass(frozen=True)
class SectorCount:
    label: str
    count: int | None  # None: fewer than SUPPRESS_BELOW, not shown


def downloads_by_sector(guideline: Guideline, language: str = "en") -> list[SectorCount]:
    """Downloads grouped by the downloader's sector; small counts suppressed."""
    rows = db.session.execute(
        select(GuidelineDownload.sector_id, func.count())
        .where(GuidelineDownload.guideline_id == guideline.id)
        .group_by(GuidelineDownload.sector_id)
    ).all()
    sectors = {s.id: s for s in db.session.execute(select(Sector)).scalars()}
    result: list[SectorCount] = []
    for sector_id, count in sorted(rows, key=lambda r: (r[0] is None, sectors[r[0]].position if r[0] in sectors else 0)):
        label = sectors[sector_id].name(language) if sector_id in sectors else str(_l("Not known (public page or no sector)"))
        result.append(SectorCount(label=label, count=count if count >= SUPPRESS_BELOW else None))
    return result
