"""The `Store` protocol and the vocabulary every store shares."""

from __future__ import annotations

import enum

from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

import attrs


def check_key(key: object) -> None:
    """Raise `TypeError` unless *key* is a ``str``."""
    if not isinstance(key, str):
        msg = f"key must be a str, not {type(key).__name__}"
        raise TypeError(msg)


@runtime_checkable
class Store(Protocol):
    """The least a store must do to work with everything in lapse.

    It is Harpia's three-method store plus a lifetime: an async ``get``, ``set`` and
    ``delete`` on ``str`` keys. Anything in lapse that takes a store takes any object with
    these three coroutine methods; `MemoryStore` and `lapse.redis.RedisStore` have many more.

    The contract, which `lapse.testing.StoreContract` checks:

    - Keys are ``str``; any other key raises `TypeError` and changes nothing.
    - ``set`` replaces the value and the deadline of the key (Redis semantics).
    - An expired key behaves exactly like a missing one.

    Added in 0.1.
    """

    async def get(self, key: str, default: Any = None) -> Any:
        """Return the live value of *key*, or *default* when it is missing or expired."""
        ...

    async def set(self, key: str, value: Any, *, ttl: float | timedelta | None = None) -> None:
        """Store *value* under *key*.

        *ttl* is the entry's lifetime in seconds (or a `datetime.timedelta`); ``None``
        leaves it to the store's default, ``math.inf`` means it never expires. A *ttl*
        that is zero, negative or NaN raises `ValueError`, one of a wrong type
        `TypeError`, and nothing is stored.
        """
        ...

    async def delete(self, key: str) -> bool:
        """Remove *key*; return whether it was there (live)."""
        ...


class RemovalCause(enum.Enum):
    """Why an entry left a store, as passed to an ``on_remove`` callback.

    Added in 0.1.
    """

    EXPLICIT = "explicit"
    """Removed by the caller: ``delete``, ``delete_many``, ``pop`` or ``clear``."""
    REPLACED = "replaced"
    """Its value was overwritten by ``set``, ``set_many`` or ``incr``."""
    EXPIRED = "expired"
    """Its deadline passed."""
    EVICTED = "evicted"
    """Removed to keep the store within its size or weight bound."""


@attrs.frozen
class Stats:
    """A snapshot of a store's counters, as returned by ``stats()``.

    Counters start at zero when the store is created and only grow.

    Attributes:
        hits: Reads that found a live entry (``get``, ``get_many``, ``incr`` does not count).
        misses: Reads that found nothing, or only an expired entry.
        sets: Entries written (``set``, ``set_many``, a successful ``add``, ``incr``).
        deletes: Entries removed by the caller (cause `RemovalCause.EXPLICIT`).
        evictions: Entries removed to respect the size bound.
        expirations: Expired entries removed, lazily or by a purge.
        size: Live entries at the time of the snapshot.
        loads: Successful calls of a factory by ``get_or_set`` or `lapse.cached`.
        load_failures: Calls of a factory that raised.
        load_time: Seconds spent in factories, in total.

    Added in 0.1.
    """

    hits: int
    misses: int
    sets: int
    deletes: int
    evictions: int
    expirations: int
    size: int
    loads: int = 0
    load_failures: int = 0
    load_time: float = 0.0

    @property
    def hit_ratio(self) -> float:
        """``hits / (hits + misses)``, or ``0.0`` before the first read."""
        reads = self.hits + self.misses
        return self.hits / reads if reads else 0.0
