"""Exceptions that lapse raises, beyond the built-in `TypeError` and `ValueError`."""

from __future__ import annotations


class LapseError(Exception):
    """The base class of lapse's own exceptions.

    Added in 0.1.
    """


class ReentrantLoadError(LapseError, RuntimeError):
    """A factory asked its own store for the key it is loading.

    Waiting would never end: the load waits for the factory, which would wait for the
    load. Raised instead of a deadlock, in the factory's own call.

    Added in 0.1.
    """


__all__ = ["LapseError", "ReentrantLoadError"]
