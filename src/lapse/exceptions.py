"""Exceptions that lapse raises, beyond the built-in `TypeError` and `ValueError`."""

from __future__ import annotations


class LapseError(Exception):
    """The base class of lapse's own exceptions."""


class ReentrantLoadError(LapseError, RuntimeError):
    """A factory asked its own store for the key it is loading.

    Waiting would never end: the load waits for the factory, which would wait for the
    load. Raised instead of a deadlock, in the factory's own call.
    """


class ReentrantCallError(LapseError, RuntimeError):
    """A weigher or an expiry policy used the store that was calling it.

    A store calls them while it holds its lock, in the middle of a write; using the store
    from there would deadlock or see a half-made change. Raised instead, and the write
    changes nothing. (``on_remove`` runs after the lock is released and may use the store.)
    """


class LoadError(LapseError):
    """A load failed in a way its waiters cannot re-raise as it is.

    Callers waiting for another caller's load get the load's own exception (a copy, with
    a traceback of their own). When that exception cannot be copied, or is not an
    `Exception` (a factory that raised `asyncio.CancelledError` without being cancelled),
    they get this instead, with the original as its ``__cause__``.
    """


class StoreError(LapseError):
    """A store's backend failed: a Redis server down, refusing or answering garbage.

    Chained (``__cause__``) to the driver's own error. A write that raised it may or may
    not have reached the server, but it is never reported as done.
    """


class StoreTimeoutError(StoreError, TimeoutError):
    """A store's backend did not answer within the store's timeout."""


class SessionUnavailableError(StoreError):
    """The session store failed, so this request's session cannot be used.

    Raised when a handler touches ``request.session`` after the store failed to load it
    (and, with ``on_store_error="fail_open"``, only when it writes). `SessionMiddleware`
    answers it with ``503 Service Unavailable``.
    """


class UnserializableError(LapseError, TypeError):
    """A value the store's serializer cannot encode; nothing was written."""


class CorruptValueError(LapseError, ValueError):
    """Bytes under a key that the store's serializer cannot decode (the key is named)."""


__all__ = [
    "CorruptValueError",
    "LapseError",
    "LoadError",
    "ReentrantCallError",
    "ReentrantLoadError",
    "SessionUnavailableError",
    "StoreError",
    "StoreTimeoutError",
    "UnserializableError",
]
