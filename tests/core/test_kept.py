"""Values a worker keeps for a while (portal/core/kept.py)."""
from __future__ import annotations

import math

import pytest

from portal.core.kept import forget, how_many_kept, kept


class Loads:
    """A loader that counts its calls and hands out a new value each time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def test_a_kept_value_is_loaded_once_until_it_expires_or_is_asked_fresh(app_context):
    load = Loads()
    assert [kept("t", "a", math.inf, load) for _ in range(3)] == [1, 1, 1]
    assert kept("t", "a", math.inf, load, fresh=True) == 2
    assert kept("t", "a", math.inf, load) == 2
    assert kept("t", "b", 0, load) == 3 and kept("t", "b", 0, load) == 4  # 0 s: never kept long


def test_forgetting_one_key_or_a_whole_shelf(app_context):
    load = Loads()
    kept("t", "a", math.inf, load), kept("t", "b", math.inf, load), kept("other", "a", math.inf, load)
    forget("t", "a")
    assert how_many_kept("t") == 1 and kept("t", "a", math.inf, load) == 4
    forget("t")
    assert how_many_kept("t") == 0 and how_many_kept("other") == 1


def test_a_full_shelf_starts_over_instead_of_growing(app_context):
    for key in range(10):
        kept("t", key, math.inf, lambda: key, limit=4)
    assert how_many_kept("t") <= 4


def test_a_loader_that_raises_keeps_nothing(app_context):
    def missing():
        raise LookupError("no such thing")

    with pytest.raises(LookupError):
        kept("t", "junk", math.inf, missing)
    assert how_many_kept("t") == 0


def test_each_app_keeps_its_own(app):
    from portal import create_app

    other = create_app({k: v for k, v in app.config.items() if k.isupper()})
    with app.app_context():
        kept("t", "a", math.inf, lambda: "first app")
    with other.app_context():
        assert kept("t", "a", math.inf, lambda: "second app") == "second app"
