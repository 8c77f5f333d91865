"""Events, their registration questions, and registrations (seats and the waitlist)."""
from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models import Timestamped
from portal.extensions import db
from portal.people.models import Person, Sector


class EventStatus(StrEnum):
    DRAFT = "draft"            # only organizers see it
    PUBLISHED = "published"    # listed; registration follows the window
    CLOSED = "closed"          # listed, no more registrations
    CANCELLED = "cancelled"    # called off; every registrant was told


class RegistrationStatus(StrEnum):
    CONFIRMED = "confirmed"    # holds a seat
    WAITLISTED = "waitlisted"  # waiting for a seat, in order of arrival
    CANCELLED = "cancelled"    # gave the seat (or place in line) back

    @classmethod
    def active(cls) -> tuple[str, str]:
        return (cls.CONFIRMED.value, cls.WAITLISTED.value)


class QuestionKind(StrEnum):
    SHORT_TEXT = "short_text"
    LONG_TEXT = "long_text"
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    CHECKBOX = "checkbox"


_ACTIVE_SQL = "status IN ('confirmed', 'waitlisted')"


def seats_per_sector(cap_percent: int | None, capacity: int) -> int | None:
    """Seats one sector may hold under a cap of `cap_percent` (None: no cap). Never below one:
    a small share of a small room (10% of 5 seats) still lets each sector in, instead of nobody."""
    if cap_percent is None:
        return None
    return max((cap_percent * capacity) // 100, 1)


def registration_window_open(status: str, opens_at: datetime | None, closes_at: datetime | None,
                             starts_at: datetime, moment: datetime, ends_at: datetime | None = None) -> bool:
    """Registration is open while the event is published, from its opening (if set) until its
    closing (if set, otherwise its start), and never once the event is over."""
    if status != EventStatus.PUBLISHED:
        return False
    if opens_at is not None and moment < opens_at:
        return False
    if ends_at is not None and moment >= ends_at:
        return False
    return moment < (closes_at or starts_at)


class Event(Timestamped, db.Model):
    """A symposium or other gathering people register for."""

    __tablename__ = "event"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Used in the event's public address and the export command.
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    #: Title as shown everywhere.
    title: Mapped[str] = mapped_column(String(200))
    #: One or two sentences for the list of events.
    summary: Mapped[str] = mapped_column(String(500), default="")
    #: Full description (markdown, sanitized when shown).
    description: Mapped[str] = mapped_column(Text, default="")
    #: The same in French, shown to French readers (the English text when left empty).
    title_fr: Mapped[str] = mapped_column(String(200), default="", server_default="")
    summary_fr: Mapped[str] = mapped_column(String(500), default="", server_default="")
    description_fr: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: When it starts (UTC; shown in the portal's zone).
    starts_at: Mapped[datetime]
    #: When it ends (UTC).
    ends_at: Mapped[datetime]
    #: The zone the event happens in, for the calendar file (IANA name).
    timezone: Mapped[str] = mapped_column(String(60), default="America/Toronto")
    #: Venue name, e.g. "Toronto Police College".
    venue_name: Mapped[str] = mapped_column(String(200), default="")
    #: Street address of the venue.
    venue_address: Mapped[str] = mapped_column(String(300), default="")
    #: How to get in and around: step-free access, washrooms, quiet room, transit.
    venue_accessibility: Mapped[str] = mapped_column(Text, default="")
    #: The same in French (the English text when left empty).
    venue_accessibility_fr: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: Seats available; confirmed registrations never exceed it.
    capacity: Mapped[int] = mapped_column(default=100)
    #: Largest share of seats (percent) one sector may hold; empty means no cap.
    sector_cap_percent: Mapped[int | None]
    #: Registration opens at this moment (empty: as soon as it is published).
    registration_opens_at: Mapped[datetime | None]
    #: Registration closes at this moment (empty: when the event starts).
    registration_closes_at: Mapped[datetime | None]
    #: draft, published, closed or cancelled.
    status: Mapped[str] = mapped_column(String(12), default=EventStatus.DRAFT.value, index=True)
    #: Days before the start that confirmed people get a reminder (0: none).
    reminder_days: Mapped[int] = mapped_column(default=2)
    #: Days after the end that attendees' personal data is kept before it is anonymized.
    retention_days: Mapped[int] = mapped_column(default=365)
    #: When accessibility and dietary answers were cleared (30 days after the end).
    needs_purged_at: Mapped[datetime | None]
    #: When registrations were anonymized (retention_days after the end).
    personal_data_purged_at: Mapped[datetime | None]
    #: Goes up whenever a question is added, changed or removed: a registration checked
    #: against an older form is refused (see services.registration_door).
    questions_version: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Goes up whenever the event's time or place changes: the SEQUENCE of its calendar
    #: files, so a calendar replaces the entry it has with the new one.
    schedule_version: Mapped[int] = mapped_column(default=0, server_default="0")

    questions: Mapped[list["EventQuestion"]] = relationship(
        back_populates="event", cascade="all, delete-orphan",
        order_by="(EventQuestion.position, EventQuestion.id)",
    )

    @property
    def seat_cap_per_sector(self) -> int | None:
        """Seats one sector may hold, or None without a cap."""
        return seats_per_sector(self.sector_cap_percent, self.capacity)

    def registration_is_open(self, moment: datetime) -> bool:
        return registration_window_open(self.status, self.registration_opens_at,
                                        self.registration_closes_at, self.starts_at, moment, self.ends_at)

    @property
    def is_over(self) -> bool:
        """The event has ended (by the portal's clock)."""
        from portal.core.clock import now

        return now() >= self.ends_at

    @property
    def tokens_valid_until(self) -> datetime:
        """Links sent about this event work until 60 days after it ends."""
        return self.ends_at + timedelta(days=60)


class EventQuestion(db.Model):
    """A question an organizer added to an event's registration form."""

    __tablename__ = "event_question"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    #: Order on the form.
    position: Mapped[int] = mapped_column(default=0)
    #: The question as asked.
    label: Mapped[str] = mapped_column(String(300))
    #: Help text under the question.
    hint: Mapped[str] = mapped_column(String(500), default="")
    #: short_text, long_text, single_choice, multiple_choice or checkbox.
    kind: Mapped[str] = mapped_column(String(20), default=QuestionKind.SHORT_TEXT.value)
    #: The options for choice questions, one per line.
    choices_text: Mapped[str] = mapped_column(Text, default="")
    #: Whether an answer is needed to register.
    required: Mapped[bool] = mapped_column(default=False)
    #: The question, its help text and its options in French (the English where left empty).
    #: French options are labels only: answers are stored as the English option they stand for.
    label_fr: Mapped[str] = mapped_column(String(300), default="", server_default="")
    hint_fr: Mapped[str] = mapped_column(String(500), default="", server_default="")
    choices_fr_text: Mapped[str] = mapped_column(Text, default="", server_default="")

    event: Mapped[Event] = relationship(back_populates="questions")

    @property
    def choices(self) -> list[str]:
        return [line.strip() for line in self.choices_text.splitlines() if line.strip()]

    @property
    def choices_fr(self) -> list[str]:
        return [line.strip() for line in self.choices_fr_text.splitlines() if line.strip()]

    def option_label(self, answer: str, language: str) -> str:
        """How a stored answer (always the English option) reads in `language`: the French
        option it stands for, or the answer as given (free text, or no French options)."""
        if language == "fr":
            english, french = self.choices, self.choices_fr
            if len(english) == len(french) and answer in english:
                return french[english.index(answer)]
        return answer


class EventOrganizer(Timestamped, db.Model):
    """An organizer account that runs one event: its attendee list, the needs people told
    us about, check-in, exports and messages. Admins run every event without a row here.

    The privacy notice promises registrants that only that event's organizers see their
    list entry and their accessibility and dietary needs; this row is what "that event's
    organizers" means.
    """

    __tablename__ = "event_organizer"
    __table_args__ = (UniqueConstraint("event_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("organizer_account.id", ondelete="CASCADE"), index=True)


class Registration(Timestamped, db.Model):
    """One person's place at an event: a seat, a place in line, or a cancelled one."""

    __tablename__ = "registration"
    __table_args__ = (
        # One active registration per person and event: the database refuses a second seat.
        Index(
            "uq_registration_active_person", "event_id", "person_id", unique=True,
            postgresql_where=text(_ACTIVE_SQL), sqlite_where=text(_ACTIVE_SQL),
        ),
        # Waitlist tickets are handed out once per event, so the order is never ambiguous.
        UniqueConstraint("event_id", "waitlist_position", name="uq_registration_waitlist_ticket"),
        Index("ix_registration_event_status", "event_id", "status", "sector_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    #: The registrant (empty once the registration was anonymized after the event).
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), index=True
    )
    #: confirmed, waitlisted or cancelled.
    status: Mapped[str] = mapped_column(String(12))
    #: The sector the person registered under (counts toward that sector's cap).
    sector_id: Mapped[int | None] = mapped_column(ForeignKey("sector.id"), index=True)
    #: Ticket number in the waitlist (kept after promotion); order of arrival.
    waitlist_position: Mapped[int | None]
    #: Accessibility needs (health information: organizers of this event only).
    accessibility_needs: Mapped[str] = mapped_column(Text, default="", info={"personal": True})
    #: Dietary needs (may be health information: organizers of this event only).
    dietary_needs: Mapped[str] = mapped_column(Text, default="", info={"personal": True})
    #: Answers to the event's own questions, by question id.
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, info={"personal": True})
    #: When the seat was confirmed (directly or by promotion).
    confirmed_at: Mapped[datetime | None]
    #: When the person was promoted from the waitlist, if they were.
    promoted_at: Mapped[datetime | None]
    #: When the registration was cancelled.
    cancelled_at: Mapped[datetime | None]
    #: Who cancelled it: "registrant", "organizer", "event", or "moved" (an organizer moved it
    #: to another event: `moved_to_id`).
    cancelled_by: Mapped[str] = mapped_column(String(20), default="")
    #: The registration a moved one became, at the other event.
    moved_to_id: Mapped[int | None] = mapped_column(ForeignKey("registration.id", ondelete="SET NULL"))
    #: When the person arrived at the event.
    checked_in_at: Mapped[datetime | None]
    #: The organizer who checked them in.
    checked_in_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizer_account.id", ondelete="SET NULL")
    )
    #: When the reminder before the event was queued (once per registration).
    reminder_sent_at: Mapped[datetime | None]

    event: Mapped[Event] = relationship()
    person: Mapped[Person | None] = relationship()
    sector: Mapped[Sector | None] = relationship()
