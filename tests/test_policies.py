"""Policies are validated when built, and equal when their settings are."""

from __future__ import annotations

import math

from collections import OrderedDict
from datetime import timedelta

import pytest

from lapse import LRU, TTL, Idle


@pytest.mark.parametrize("policy", [TTL, Idle])
def test_lifetime_conversion(policy: type[TTL | Idle]) -> None:
    """Seconds may be int, float or timedelta; all become float seconds."""
    assert policy(300) == policy(300.0) == policy(timedelta(minutes=5))
    assert policy(timedelta(minutes=5)).seconds == 300.0
    assert policy(math.inf).seconds == math.inf


@pytest.mark.parametrize("policy", [TTL, Idle])
@pytest.mark.parametrize(
    ("seconds", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (math.nan, ValueError),
        (timedelta(0), ValueError),
        ("300", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_bad_lifetimes(policy: type[TTL | Idle], seconds: object, error: type[Exception]) -> None:
    """Zero, negative, NaN and non-numbers are refused with the argument named."""
    with pytest.raises(error, match="seconds"):
        policy(seconds)  # type: ignore[arg-type]


def test_policies_are_frozen() -> None:
    """A policy cannot be changed after it is built."""
    policy = TTL(1)
    with pytest.raises(AttributeError):
        policy.seconds = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_size": 0}, ValueError, "at least 1"),
        ({"max_size": -3}, ValueError, "at least 1"),
        ({"max_size": 1.5}, TypeError, "int"),
        ({"max_size": True}, TypeError, "int"),
        ({}, ValueError, "needs"),
        ({"max_weight": 10}, ValueError, "together"),
        ({"max_size": 5, "weigher": len}, ValueError, "together"),
        ({"max_weight": 0, "weigher": len}, ValueError, "at least 1"),
        ({"max_weight": 10, "weigher": 3}, TypeError, "callable"),
    ],
)
def test_lru_validation(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    """LRU needs a positive bound and a weigher exactly when it has a weight bound."""
    with pytest.raises(error, match=match):
        LRU(**kwargs)  # type: ignore[arg-type]


def test_lru_weigh_checks_the_weigher() -> None:
    """A weigher returning a non-int or a negative number is reported, naming the key."""
    assert LRU(3).weigh("k", object()) == 1
    assert LRU(max_weight=5, weigher=lambda k, v: 2).weigh("k", None) == 2
    with pytest.raises(ValueError, match=r"negative weight .* 'k'"):
        LRU(max_weight=5, weigher=lambda k, v: -1).weigh("k", None)
    with pytest.raises(TypeError, match="must return an int"):
        LRU(max_weight=5, weigher=lambda k, v: 1.0).weigh("k", None)  # type: ignore[arg-type,return-value]


def test_lru_evictor_tracks_weight() -> None:
    """The evictor's total weight follows adds, replacements and removals."""
    order: OrderedDict[str, object] = OrderedDict()
    evictor = LRU(max_weight=10, weigher=lambda k, v: 1).evictor(order)
    for key, weight in [("a", 4), ("b", 4), ("a", 7)]:
        order[key] = None  # the store adds the key, then tells the evictor
        evictor.add(key, weight)
    assert list(order) == ["b", "a"]
    assert evictor.weight == 11
    assert evictor.victim() == "b"
    del order["b"]
    evictor.remove("b")
    assert evictor.weight == 7
    assert evictor.victim() is None
