"""Property test of the registration service: whatever people and organizers do (register,
cancel, add or remove seats), the rules hold."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal.core.clock import now
from portal.events import services
from portal.events.models import Event, EventStatus, Registration, seats_per_sector
from portal.extensions import db

SECTORS = ["police", "health-care", "education", "housing"]

operation = st.one_of(
    st.tuples(st.just("register"), st.integers(0, 11), st.sampled_from(SECTORS)),
    st.tuples(st.just("cancel"), st.integers(0, 11), st.just("")),
    st.tuples(st.just("capacity"), st.integers(-3, 3), st.just("")),
    st.tuples(st.just("share"), st.integers(10, 100), st.just("")),
)


def event_registrations(event: Event) -> list[Registration]:
    return list(db.session.execute(select(Registration).where(Registration.event_id == event.id)).scalars())


def _check(event: Event) -> None:
    rows = event_registrations(event)
    confirmed = [r for r in rows if r.status == "confirmed"]
    waiting = [r for r in rows if r.status == "waitlisted"]
    assert len(confirmed) <= event.capacity
    active_people = [r.person_id for r in rows if r.status in ("confirmed", "waitlisted")]
    assert len(active_people) == len(set(active_people)), "someone holds two places"
    per_sector = Counter(r.sector_id for r in confirmed)
    cap = event.seat_cap_per_sector
    if cap is not None:
        assert all(count <= cap for count in per_sector.values()), "a sector is over its cap"
    tickets = [r.waitlist_position for r in rows if r.waitlist_position is not None]
    assert len(tickets) == len(set(tickets))
    for w in waiting:
        # Nobody waits while a seat they are allowed to take is free.
        full = len(confirmed) >= event.capacity
        capped = cap is not None and per_sector[w.sector_id] >= cap
        assert full or capped, "a waitlisted person could have had a free seat"
        for p in confirmed:
            # First come, first served: a later ticket only goes first past a capped sector.
            if p.promoted_at is not None and (cap is None or p.sector_id == w.sector_id):
                assert p.waitlist_position < w.waitlist_position, "promotion skipped the line"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(capacity=st.integers(1, 5), cap=st.one_of(st.none(), st.integers(20, 60)),
       operations=st.lists(operation, min_size=1, max_size=25))
def test_registration_service_keeps_its_promises(app_context, capacity, cap, operations):
    start = now() + timedelta(days=10)
    event = Event(slug=f"prop-{id(operations)}-{len(operations)}", title="Property", starts_at=start,
                  ends_at=start + timedelta(hours=3), capacity=capacity, sector_cap_percent=cap,
                  status=EventStatus.PUBLISHED.value)
    db.session.add(event)
    db.session.flush()
    try:
        for kind, number, sector in operations:
            if kind == "register":
                services.register_for_event(event.id, services.RegistrationDetails(
                    email=f"p{number}@example.ca", name=f"P {number}", organization="Org",
                    sector_slug=sector, community="Toronto"))
            elif kind == "cancel":
                person_regs = db.session.execute(
                    select(Registration).join(Registration.person)
                    .where(Registration.event_id == event.id,
                           Registration.status.in_(("confirmed", "waitlisted")))
                    .order_by(Registration.id)
                ).scalars().all()
                if person_regs:
                    services.cancel_registration(person_regs[number % len(person_regs)])
            else:
                # The organizer adds or removes seats, or changes the sector share.
                seats = max(event.capacity + number, 1) if kind == "capacity" else event.capacity
                share = number if kind == "share" else event.sector_cap_percent
                held = Counter(r.sector_id for r in event_registrations(event) if r.status == "confirmed")
                before = (event.capacity, event.sector_cap_percent)
                try:
                    services.update_event(event, actor=None, capacity=seats, sector_cap_percent=share)
                except services.CapacityBelowConfirmed:
                    assert seats < sum(held.values())
                    assert (event.capacity, event.sector_cap_percent) == before
                except services.SectorOverCap:
                    assert max(held.values()) > seats_per_sector(share, seats)
                    assert (event.capacity, event.sector_cap_percent) == before
            _check(event)
    finally:
        db.session.rollback()
