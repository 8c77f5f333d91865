"""Helpers for guideline tests: guidelines with real PDF files, requesters and subscribers."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from portal.core.clock import now
from portal.extensions import db
from portal.guidelines import storage
from portal.guidelines.demo import minimal_pdf
from portal.guidelines.models import (
    CopyRequest,
    CopyRequestStatus,
    Guideline,
    GuidelineEdition,
    GuidelineStatus,
)
from portal.people.models import Person


def create_guideline(
    *,
    status: GuidelineStatus = GuidelineStatus.SCHEDULED,
    release_at: datetime | None = None,
    title: str = "Situation Table Guidance",
    revision_of_id: int | None = None,
    version: str = "1.0",
) -> Guideline:
    """A guideline with English and French PDFs on disk (inside an app context; flushed)."""
    guideline = Guideline(
        title_en=title, title_fr=f"{title} (FR)", summary_en="Summary.", summary_fr="Résumé.",
        version=version, status=status.value, revision_of_id=revision_of_id,
        release_at=release_at if release_at is not None else (now() + timedelta(hours=1)),
        released_at=now() if status == GuidelineStatus.RELEASED else None,
    )
    db.session.add(guideline)
    for language in ("en", "fr"):
        stored = storage.store_bytes(minimal_pdf(f"{title} {language}"), f"guide-{language}.pdf")
        db.session.add(GuidelineEdition(guideline=guideline, language=language, stored_name=stored.stored_name,
                                        original_name=stored.original_name, sha256=stored.sha256,
                                        size_bytes=stored.size_bytes))
    db.session.flush()
    return guideline


def releases_list():
    from portal.lists.models import MailingList

    mailing_list = db.session.execute(
        select(MailingList).where(MailingList.slug == "guideline-releases")
    ).scalar_one_or_none()
    if mailing_list is None:
        mailing_list = MailingList(slug="guideline-releases", name_en="Guideline releases",
                                   name_fr="Parutions des lignes directrices")
        db.session.add(mailing_list)
        db.session.flush()
    return mailing_list


def subscribe(person_ids: int | list[int], status: str = "active") -> None:
    """Subscribers of "Guideline releases" with express consent, inserted in bulk."""
    from portal.core.tokens import hash_token
    from portal.lists.models import Subscription
    from portal.people.models import ConsentRecord

    ids = [person_ids] if isinstance(person_ids, int) else list(person_ids)
    list_id = releases_list().id
    rows = []
    for pid in ids:
        salt = secrets.token_hex(16)
        probe = Subscription(unsubscribe_salt=salt)
        try:
            from portal.lists.services import unsubscribe_token

            token_hash = hash_token(unsubscribe_token(probe))
        except ImportError:
            token_hash = secrets.token_hex(32)
        rows.append({"list_id": list_id, "person_id": pid, "status": status, "unsubscribe_salt": salt,
                     "unsubscribe_token_hash": token_hash, "confirmed_at": now(), "created_at": now()})
    db.session.execute(insert(Subscription), rows)
    db.session.execute(insert(ConsentRecord), [
        {"person_id": pid, "purpose": "list:guideline-releases", "kind": "express", "wording": "Yes",
         "method": "double opt-in", "created_at": now()} for pid in ids
    ])
    db.session.flush()


def add_people(count: int, prefix: str = "bulk", language: str = "en") -> list[int]:
    """Insert many people quickly (one statement); returns their ids."""
    db.session.execute(insert(Person), [
        {"email": f"{prefix}{i}@example.ca", "name": f"{prefix.title()} {i}", "language": language,
         "created_at": now()} for i in range(count)
    ])
    return list(db.session.execute(
        select(Person.id).where(Person.email.like(f"{prefix}%@example.ca")).order_by(Person.id)
    ).scalars())


def confirmed_requests(guideline_id: int, person_ids: list[int]) -> None:
    db.session.execute(insert(CopyRequest), [
        {"guideline_id": guideline_id, "person_id": pid, "language": "en",
         "status": CopyRequestStatus.CONFIRMED.value, "confirmed_at": now(), "created_at": now()}
        for pid in person_ids
    ])


@pytest.fixture
def pdf_bytes() -> bytes:
    return minimal_pdf("Test guideline")
