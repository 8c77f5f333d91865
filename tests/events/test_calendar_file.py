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
