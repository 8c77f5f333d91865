"""Least privilege in reports: counts below 5 are never shown."""
from __future__ import annotations

from portal.people.services import suppress_small_counts


def test_small_counts_are_hidden_and_zero_and_large_ones_shown(app_context):
    shown = suppress_small_counts({"police": 12, "health-care": 4, "housing": 0, "education": 1}, protect_total=False)
    assert shown == {"police": 12, "health-care": "fewer than 5", "housing": 0, "education": "fewer than 5"}
    assert list(shown) == ["police", "health-care", "housing", "education"]


def test_a_single_hidden_count_cannot_be_worked_out_from_the_total(app_context):
    shown = suppress_small_counts({"police": 12, "health-care": 3, "housing": 7, "education": 0})
    # 3 alone would be total minus the rest: the next smallest (7) is hidden too.
    assert shown == {"police": 12, "health-care": "fewer than 5", "housing": "fewer than 5", "education": 0}


def test_the_threshold_can_be_raised(app_context):
    assert suppress_small_counts({"a": 9, "b": 10, "c": 30}, threshold=10) == {
        "a": "fewer than 10", "b": "fewer than 10", "c": 30}
    assert suppress_small_counts({}) == {}
