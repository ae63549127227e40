"""The `Store` protocol and the vocabulary every store shares."""

from __future__ import annotations

import enum
import sys

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

import attrs


if sys.platform == "mypyc":  # pragma: no cover -- never at run time
    # The compiled build type-checks with ``--platform mypyc`` (see pyproject.toml).
    Key: TypeAlias = object
    Int: TypeAlias = object
    Bool: TypeAlias = object
else:
    Key: TypeAlias = str
    """The type of a key on the compiled engine's entry points: ``str`` to type checkers.

    mypyc checks every ``str``, ``int`` or ``bool`` argument of a compiled function at the call and
    raises its own `TypeError`. Built with mypyc, these are ``object``, so that lapse's
    own check runs and its message names the problem.
    """
    Int: TypeAlias = int
    Bool: TypeAlias = bool


def bad_key(key: object) -> TypeError:
    """The error for a *key* that is not a ``str``."""
    return TypeError(f"key must be a str, not {type(key).__name__}")


def check_key(key: object) -> None:
    """Raise `TypeError` unless *key* is a ``str``."""
    if not isinstance(key, str):
        raise bad_key(key)


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


@runtime_checkable
class FullStore(Store, Protocol):
    """The whole store API, as `MemoryStore` and `lapse.redis.RedisStore` implement it.

    `Store` is what lapse needs of a backend; this is what the two shipped stores give,
    with one meaning on both. `MemoryStore`'s docstrings describe each method in full;
    `lapse.testing.FullStoreContract` states each rule as a test and runs on
    `MemoryStore`, `RedisStore` and a Redis Cluster. Where Redis cannot do the same, the
    method raises a clear error rather than behave differently (a lifetime past what
    Redis can keep, an ``incr`` past 64 bits).

    Lifetimes (*ttl*) are seconds or a `datetime.timedelta`, ``math.inf`` for none;
    zero, negative and NaN raise `ValueError`. Keys are ``str``.
    """

    async def has(self, key: str) -> bool:
        """Whether *key* is live, counting no use."""
        ...

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The live values of *keys*, by key; missing and expired keys are left out."""
        ...

    async def set_many(self, mapping: Mapping[str, Any], *, ttl: Any = None) -> None:
        """Store every item, with one *ttl*; nothing is written if one is refused."""
        ...

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove *keys*; return how many were live."""
        ...

    async def add(self, key: str, value: Any, *, ttl: Any = None) -> bool:
        """Store *value* only if *key* is missing; return whether it did."""
        ...

    async def pop(self, key: str, default: Any = None) -> Any:
        """Remove *key* and return its value, or *default*."""
        ...

    async def incr(self, key: str, delta: int = 1) -> int:
        """Add *delta* to the int at *key* (0 if missing), keeping its deadline."""
        ...

    async def ttl(self, key: str) -> float | None:
        """Seconds left: ``math.inf`` for no deadline, ``None`` if missing."""
        ...

    async def expire(self, key: str, ttl: float | timedelta) -> bool:
        """Give *key* a new deadline (``math.inf``: none); ``False`` if missing."""
        ...

    async def persist(self, key: str) -> bool:
        """Remove the deadline of *key*; ``True`` if it had one."""
        ...

    async def touch(self, key: str) -> bool:
        """Count a use of *key* (restarting an idle lifetime); ``False`` if missing."""
        ...

    async def update(
        self, key: str, fn: Callable[[Any], Any], *, ttl: Any = None, keep_ttl: bool = False
    ) -> Any:
        """Replace the value by ``fn(value)`` atomically (``None`` deletes); return it."""
        ...

    def keys(self) -> AsyncIterator[str]:
        """Iterate over the live keys, in no particular order."""
        ...

    async def clear(self) -> None:
        """Remove every key of this store."""
        ...

    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], Any],
        *,
        ttl: Any = None,
        refresh_after: float | None = None,
        on_store_error: Literal["fail_open", "fail_closed"] = "fail_open",
    ) -> Any:
        """The live value of *key*, or *factory*'s, loaded once for concurrent callers."""
        ...

    def stats(self) -> Stats:
        """A snapshot of this object's counters."""
        ...

    async def aclose(self) -> None:
        """Stop background work and release connections."""
        ...


class RemovalCause(enum.Enum):
    """Why an entry left a store, as passed to an ``on_remove`` callback."""

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
