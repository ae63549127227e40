"""Clocks: where a store reads the time."""

from __future__ import annotations

import time

from collections.abc import Callable
from datetime import timedelta
from typing import TypeAlias


Clock: TypeAlias = Callable[[], float]
"""Any callable returning the current time in seconds, as a float.

Only differences between two readings matter, so a monotonic clock is the right one.
"""


def monotonic() -> float:
    """Return ``time.monotonic()``, looked up at call time.

    A default of ``clock=time.monotonic`` would be captured when the store is created and
    silently escape ``freezegun``; this function looks the name up on every call instead.
    """
    return time.monotonic()


def as_seconds(value: object, *, what: str) -> float:
    """Convert a lifetime to seconds, or raise naming *what* was wrong.

    Accepts an ``int``, a ``float`` or a ``datetime.timedelta`` that is greater than zero;
    ``math.inf`` means "never". Booleans, NaN, zero and negative values are refused.

    Raises:
        TypeError: *value* is not a number or a timedelta.
        ValueError: *value* is NaN, zero or negative, or an ``int`` beyond float range.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond float range
            msg = f"{what} is beyond float range; use math.inf for no limit"
            raise ValueError(msg) from None
    else:
        msg = f"{what} must be an int, a float or a timedelta, not {type(value).__name__}"
        raise TypeError(msg)
    if not seconds > 0:  # also catches NaN
        msg = f"{what} must be greater than zero, got {value!r}"
        raise ValueError(msg)
    return seconds
