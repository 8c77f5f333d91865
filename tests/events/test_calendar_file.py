"""The .ics a confirmation carries: its VTIMEZONE must place each clock change where the
zone's rules do, for calendars (Outlook) that read the block rather than their own zone data."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from portal.events.notifications import _vtimezone

UTC = ZoneInfo("UTC")


def _observances(tzid: str, year: int) -> list[icalendar.cal.Component]:
    block = icalendar.Calendar.from_ical(b"BEGIN:VCALENDAR\r\n" + _vtimezone(tzid, year) + b"END:VCALENDAR\r\n")
    (timezone,) = block.walk("VTIMEZONE")
    assert timezone["TZID"] == tzid
    return [c for c in timezone.subcomponents if c.name in ("STANDARD", "DAYLIGHT")]


@pytest.mark.parametrize("tzid", ["America/Toronto", "America/Winnipeg", "America/St_Johns",
                                  "Europe/Paris", "Australia/Lord_Howe", "America/Regina"])
def test_each_onset_is_its_local_time_in_the_offset_before_it(tzid):
    zone = ZoneInfo(tzid)
    observances = _observances(tzid, 2027)
    for observance in observances[1:]:  # the first says what is in force when the block begins
        before = observance["TZOFFSETFROM"].td
        after = observance["TZOFFSETTO"].td
        onset = (observance["DTSTART"].dt - before).replace(tzinfo=UTC)  # RFC 5545 3.6.5
        assert (onset - timedelta(seconds=1)).astimezone(zone).utcoffset() == before
        assert onset.astimezone(zone).utcoffset() == after
        assert (observance.name == "DAYLIGHT") == bool(onset.astimezone(zone).dst())
    changes = {2026, 2027, 2028} if tzid != "America/Regina" else set()
    assert {o["DTSTART"].dt.year for o in observances[1:]} == changes


def test_toronto_springs_forward_at_two_and_falls_back_at_two():
    onsets = {(o.name, o["DTSTART"].dt) for o in _observances("America/Toronto", 2027)}
    assert ("DAYLIGHT", datetime(2027, 3, 14, 2, 0)) in onsets
    assert ("STANDARD", datetime(2027, 11, 7, 2, 0)) in onsets
    first = _observances("America/Toronto", 2027)[0]
    assert (first.name, first["DTSTART"].dt, first["TZOFFSETTO"].td) == (
        "STANDARD", datetime(2026, 1, 1, 0, 0), timedelta(hours=-5))


def test_each_copy_is_stamped_when_made_so_a_later_confirmation_outranks_a_cancellation(app, client, make_event):
    """With an equal SEQUENCE calendars keep the copy with the later DTSTAMP (RFC 5546
    2.1.5): registering again after cancelling must not carry the morning's stamp."""
    from sqlalchemy import select

    from portal.core import clock
    from portal.extensions import db
    from portal.mail.models import OutboxAttachment, OutboxMessage
    from tests.conftest import csrf_token
    from tests.events.conftest import manage_link, register

    def entry(purpose: str):
        with app.app_context():
            message = db.session.execute(select(OutboxMessage).where(OutboxMessage.purpose == purpose)
                                         .order_by(OutboxMessage.id.desc())).scalars().first()
            (ics,) = [a for a in db.session.execute(select(OutboxAttachment).where(
                OutboxAttachment.message_id == message.id)).scalars() if a.filename.endswith(".ics")]
            (found,) = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
            return found, message.body_text

    make_event()
    start = clock.now()
    clock.set_now(start)
    register(client, "symposium-1", email="ada@example.ca")
    first, body = entry("events.confirmation")
    clock.set_now(start + timedelta(minutes=5))
    link = manage_link(body)
    client.post(link + "/cancel", data={"csrf_token": csrf_token(client, link)})
    cancelled, _ = entry("events.cancelled")
    clock.set_now(start + timedelta(minutes=10))
    register(client, "symposium-1", email="ada@example.ca")
    again, _ = entry("events.confirmation")
    clock.reset()
    assert str(again["uid"]) == str(cancelled["uid"]) == str(first["uid"])
    assert int(again["sequence"]) == int(cancelled["sequence"])
    assert first.decoded("dtstamp") < cancelled.decoded("dtstamp") < again.decoded("dtstamp")
