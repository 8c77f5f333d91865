"""Guidelines, their PDF editions, copy requests, release notices and downloads."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models import Timestamped
from portal.extensions import db
from portal.people.models import Person


class GuidelineStatus(StrEnum):
    DRAFT = "draft"            # being prepared; not public
    SCHEDULED = "scheduled"    # announced as upcoming; released at release_at
    RELEASED = "released"      # public, downloadable; notices queued
    WITHDRAWN = "withdrawn"    # taken down; no release, no downloads


class CopyRequestStatus(StrEnum):
    PENDING = "pending"        # waiting for the person to confirm from the email
    CONFIRMED = "confirmed"    # confirmed: they get the release notice


LANGUAGES = ("en", "fr")


class Guideline(Timestamped, db.Model):
    """One version of a guideline the working group publishes."""

    __tablename__ = "guideline"
    __table_args__ = (
        # The release job polls this: scheduled guidelines by release time.
        Index(
            "ix_guideline_due",
            "release_at",
            postgresql_where=text("status = 'scheduled'"),
            sqlite_where=text("status = 'scheduled'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Title in English.
    title_en: Mapped[str] = mapped_column(String(200))
    #: Title in French.
    title_fr: Mapped[str] = mapped_column(String(200), default="")
    #: Short description in English (markdown).
    summary_en: Mapped[str] = mapped_column(Text, default="")
    #: Short description in French (markdown).
    summary_fr: Mapped[str] = mapped_column(Text, default="")
    #: Version label shown to readers, e.g. "1.0" or "2025".
    version: Mapped[str] = mapped_column(String(20), default="1.0")
    #: draft, scheduled, released or withdrawn.
    status: Mapped[str] = mapped_column(String(12), default=GuidelineStatus.DRAFT.value, index=True)
    #: When it becomes public and notices go out (UTC; organizers enter Toronto time).
    release_at: Mapped[datetime | None]
    #: When it actually became public (may be later than release_at if the scheduler was down).
    released_at: Mapped[datetime | None]
    #: The earlier version this one revises; its recipients are told about this one too.
    revision_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("guideline.id", ondelete="SET NULL"), index=True
    )

    editions: Mapped[list["GuidelineEdition"]] = relationship(
        back_populates="guideline", cascade="all, delete-orphan", order_by="GuidelineEdition.language"
    )
    revision_of: Mapped["Guideline | None"] = relationship(remote_side=[id])

    def title(self, language: str = "en") -> str:
        return (self.title_fr or self.title_en) if language == "fr" else self.title_en

    def summary(self, language: str = "en") -> str:
        return (self.summary_fr or self.summary_en) if language == "fr" else self.summary_en

    def edition(self, language: str) -> "GuidelineEdition | None":
        for edition in self.editions:
            if edition.language == language:
                return edition
        return None

    def edition_for(self, language: str) -> "GuidelineEdition | None":
        """The edition in `language`, or the other one if that language is missing."""
        return self.edition(language) or (self.editions[0] if self.editions else None)


class GuidelineEdition(Timestamped, db.Model):
    """The PDF of a guideline in one language, stored under instance/guidelines/."""

    __tablename__ = "guideline_edition"
    __table_args__ = (UniqueConstraint("guideline_id", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    guideline_id: Mapped[int] = mapped_column(ForeignKey("guideline.id", ondelete="CASCADE"), index=True)
    #: "en" or "fr".
    language: Mapped[str] = mapped_column(String(5))
    #: File name on disk, chosen by the server (never the uploader's name).
    stored_name: Mapped[str] = mapped_column(String(100), unique=True)
    #: The uploaded file's name, made safe; offered as the download name.
    original_name: Mapped[str] = mapped_column(String(200))
    #: SHA-256 of the content, to check the file on disk is the one uploaded.
    sha256: Mapped[str] = mapped_column(String(64))
    #: Size in bytes.
    size_bytes: Mapped[int]

    guideline: Mapped[Guideline] = relationship(back_populates="editions")


class CopyRequest(Timestamped, db.Model):
    """Someone asked to receive a guideline when it is released."""

    __tablename__ = "copy_request"
    __table_args__ = (UniqueConstraint("guideline_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    guideline_id: Mapped[int] = mapped_column(ForeignKey("guideline.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    #: Language of the copy they want: "en" or "fr".
    language: Mapped[str] = mapped_column(String(5), default="en")
    #: They need an accessible alternate format (Ontario's AODA: formats on request).
    accessible_format: Mapped[bool] = mapped_column(default=False)
    #: Which format they need (large print, plain text, braille...), in their words.
    format_details: Mapped[str] = mapped_column(String(300), default="", info={"personal": True})
    #: They ticked the opt-in to the "Guideline releases" list (acted on when they confirm).
    list_opt_in: Mapped[bool] = mapped_column(default=False)
    #: The opt-in's label as the page showed it, and that page's language: what the consent
    #: ledger records when they confirm (CASL: the wording the person actually saw).
    opt_in_wording: Mapped[str] = mapped_column(Text, default="", server_default="")
    opt_in_language: Mapped[str] = mapped_column(String(5), default="", server_default="")
    #: pending until they confirm from the email, then confirmed.
    status: Mapped[str] = mapped_column(String(12), default=CopyRequestStatus.PENDING.value)
    #: When they confirmed.
    confirmed_at: Mapped[datetime | None]
    #: When their release notice (with the download link) was queued.
    notified_at: Mapped[datetime | None]

    guideline: Mapped[Guideline] = relationship()
    person: Mapped[Person] = relationship()


class ReleaseNotice(Timestamped, db.Model):
    """One release notice queued for one person about one guideline version (never two)."""

    __tablename__ = "release_notice"
    __table_args__ = (UniqueConstraint("guideline_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    guideline_id: Mapped[int] = mapped_column(ForeignKey("guideline.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    #: Why they were told: "request", "list" or "revision".
    reason: Mapped[str] = mapped_column(String(12), default="request")


class GuidelineDownload(db.Model):
    """One download of a guideline file, kept for "downloads by sector" (no person stored)."""

    __tablename__ = "guideline_download"

    id: Mapped[int] = mapped_column(primary_key=True)
    guideline_id: Mapped[int] = mapped_column(ForeignKey("guideline.id", ondelete="CASCADE"), index=True)
    #: Which edition: "en" or "fr".
    language: Mapped[str] = mapped_column(String(5))
    #: Sector of the person whose link was used; empty for anonymous public downloads.
    sector_id: Mapped[int | None] = mapped_column(ForeignKey("sector.id", ondelete="SET NULL"), index=True)
    #: "link" (a personal link from a notice) or "public" (the public page).
    via: Mapped[str] = mapped_column(String(10), default="public")
    #: When it was downloaded (UTC).
    at: Mapped[datetime]
