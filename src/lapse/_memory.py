"""`MemoryStore`: the async in-memory store."""

from __future__ import annotations

import itertools
import math
import time

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar, overload

import attrs

from ._clock import Clock, monotonic
from ._engine import OnRemove, TTLArg
from ._loader import Loader, OnStoreError
from ._policies import EvictionPolicy, ExpiryPolicy
from ._store import Stats
from ._sync_store import SyncMemoryStore


T = TypeVar("T")
_INF = math.inf


@attrs.define(kw_only=True, eq=False)
class MemoryStore:
    """An async key-value store in memory, with optional expiry and size bound.

    ```python
    store = MemoryStore(expiry=TTL(300), eviction=LRU(10_000))
    await store.set("user:1", {"name": "Alice"})
    await store.get("user:1")   # {'name': 'Alice'}, for 300 s
    ```

    Values are kept by reference, never copied or serialized: mutating a value you stored
    mutates the stored value. Keys are ``str``.

    Every operation but `get_or_set` is a coroutine that never awaits inside: it takes
    the store's lock, does a bounded amount of work and releases it, so any number of
    asyncio or trio tasks and threads (through `sync`) share one store safely. (A `get`
    that misses, or hits on a store without idle expiry, takes no lock at all: each of its
    steps is atomic on its own.) `get_or_set` awaits only its factory, holding no lock. An expired
    entry is never
    returned or counted; expired entries are removed when touched, a few at a time on
    every write (so memory stays bounded without reads), and all at once by
    `purge_expired`.

    *n* is the number of entries held. Complexities are those of the store's own work;
    a custom policy's methods add their cost.

    Attributes:
        expiry: An expiry policy (`TTL`, `Idle`, or your own `ExpiryPolicy`) or a tuple
            of them, composed: the earliest deadline wins. ``None``: entries never
            expire unless written with a ``ttl``.
        eviction: An `EvictionPolicy` such as `LRU`, or ``None`` for an unbounded store.
        clock: Where time comes from: any ``() -> float`` in seconds. The default reads
            ``time.monotonic()`` on every call, so ``freezegun`` moves it.
        on_remove: ``on_remove(key, value, cause)``, called for every removal with its
            `RemovalCause`, after the store's lock is released and before the operation
            that caused it returns. It may use the store (through `sync`); an exception it
            raises is logged as a warning on the ``lapse`` logger and swallowed.

    Raises:
        TypeError: A policy, *clock* or *on_remove* is of the wrong kind.
    """

    expiry: ExpiryPolicy | tuple[ExpiryPolicy, ...] | None = None
    eviction: EvictionPolicy | None = None
    clock: Clock = monotonic
    on_remove: OnRemove | None = None
    _sync: SyncMemoryStore = attrs.field(init=False, repr=False)
    # The engine's state that get's hit path reads, held here to save attribute hops.
    _data: dict[str, Any] = attrs.field(init=False, repr=False)
    _plain: bool = attrs.field(init=False, repr=False)
    _use: Callable[[str], None] | None = attrs.field(init=False, repr=False)
    _hits: itertools.count[int] = attrs.field(init=False, repr=False)
    _misses: itertools.count[int] = attrs.field(init=False, repr=False)
    _loader: Loader = attrs.field(init=False, repr=False)
    _default_clock: bool = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._sync = engine = SyncMemoryStore(
            expiry=self.expiry, eviction=self.eviction, clock=self.clock, on_remove=self.on_remove
        )
        self._data = engine._data  # noqa: SLF001
        self._plain = not engine._tracks_use  # noqa: SLF001
        self._use = engine._use  # noqa: SLF001
        self._hits = engine._hits  # noqa: SLF001
        self._misses = engine._misses  # noqa: SLF001
        self._loader = engine._loader  # noqa: SLF001
        self._default_clock = engine._default_clock  # noqa: SLF001

    @property
    def sync(self) -> SyncMemoryStore:
        """The same store, with plain methods instead of coroutines.

        ``store.sync.get("k")`` reads the same entries, under the same lock, as
        ``await store.get("k")``: use it from threads and from code that is not async.
        """
        return self._sync

    # -- reads -------------------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """Return the value of *key*, or *default* if it is missing or expired.

        Counts as a use (LRU order and idle deadline) and as a hit or a miss.

        Runtime complexity: `O(1)`; `O(1)` amortized when an idle deadline moves.

        Raises:
            TypeError: *key* is not a ``str``.
        """
        # SyncMemoryStore.get's hit path, inlined: awaiting a coroutine costs enough already.
        try:
            entry = self._data.get(key)
        except TypeError:
            entry = None
        if entry is None:
            if isinstance(key, str):
                next(self._misses)
                return default
        elif self._plain:
            expires = entry[0]
            if expires == _INF or expires > (
                time.monotonic() if self._default_clock else self.clock()
            ):
                use = self._use
                if use is not None:
                    try:  # noqa: SIM105 -- suppress() costs a context manager per hit
                        use(key)
                    except KeyError:
                        pass
                next(self._hits)
                return entry[1]
        return self._sync._get_locked(key, default)  # noqa: SLF001

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return ``{key: value}`` for the keys of *keys* that are live; absent keys are left out.

        Each key counts as a use and as a hit or a miss, as `get` does.

        Runtime complexity: `O(k)` for *k* keys, amortized.

        Raises:
            TypeError: A key is not a ``str`` (checked before anything is read).
        """
        return self._sync.get_many(keys)

    @overload
    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], Awaitable[T]],
        *,
        ttl: TTLArg = None,
        refresh_after: float | None = None,
        on_store_error: OnStoreError = "fail_open",
    ) -> T: ...
    @overload
    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], T],
        *,
        ttl: TTLArg = None,
        refresh_after: float | None = None,
        on_store_error: OnStoreError = "fail_open",
    ) -> T: ...
    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], Any],
        *,
        ttl: TTLArg = None,
        refresh_after: float | None = None,
        on_store_error: OnStoreError = "fail_open",
    ) -> Any:
        """Return the live value of *key*, or call *factory*, store its result and return it.

        *factory* takes no arguments and may be a plain or a coroutine function.
        Concurrent callers of one missing key share a single call of *factory*
        (single-flight), on asyncio and trio; threads share theirs through
        ``store.sync.get_or_set``.

        - If *factory* raises, every caller waiting for it gets the exception (each its
          own copy, with its own traceback) and nothing is stored. A factory that raises
          `asyncio.CancelledError` without being cancelled fails its waiters with
          `lapse.exceptions.LoadError`; it does not cancel them.
        - If the caller running *factory* is cancelled, the others are not: one of them
          calls *factory* again.
        - If *factory* asks this store for *key* while loading it, it gets
          `lapse.exceptions.ReentrantLoadError` instead of waiting for itself forever.
        - A write or delete of *key* made after the load started wins: the load's result
          is returned to its callers but not stored over it (Caffeine's rule).
        - With *refresh_after* (seconds), a value older than that is returned as it is,
          and one background call of *factory* replaces it. If that call fails, the
          failure is logged on the ``lapse`` logger and the old value stays until it
          expires. The age of a value is its lifetime (*ttl*, or the store's `TTL`)
          minus the time it has left, so values are stored as they are, and
          *refresh_after* needs a finite lifetime.
        - *on_store_error* says what a load does when its store fails: ``"fail_open"``
          (the default) logs it and returns the factory's result, ``"fail_closed"``
          raises. A `MemoryStore` never fails; a `lapse.redis.RedisStore` can.

        *ttl* is that of `set`. Loads, failures and the time spent loading are counted in
        `stats`. ``None`` is a value like any other and is stored.

        Runtime complexity: that of `get` for a hit; of `set` plus the factory for a load.

        Raises:
            TypeError: *key* is not a ``str``, or *ttl* is not a number.
            ValueError: *ttl* or *refresh_after* is zero, negative or NaN, or
                *refresh_after* is given without a finite lifetime.
            lapse.exceptions.ReentrantLoadError: *factory* asked for *key* itself.
        """
        return await self._loader.get_or_set(
            self, key, factory, ttl=ttl, refresh_after=refresh_after, on_store_error=on_store_error
        )

    async def has(self, key: str) -> bool:
        """Return whether *key* is live, without counting a use, a hit or a miss.

        Runtime complexity: `O(1)`.
        """
        return self._sync.has(key)

    async def ttl(self, key: str) -> float | None:
        """Return the seconds *key* has left: ``math.inf`` if it never expires, ``None`` if absent.

        Does not count as a use. With an idle policy it is the time left if *key* is not
        used again.

        Runtime complexity: `O(1)`.
        """
        return self._sync.ttl(key)

    async def keys(self) -> AsyncIterator[str]:
        """Iterate over the keys that are live now, in no particular order.

        The keys are copied when iteration starts: writes made while iterating are not
        seen, and a key may expire or be removed before it is reached.

        Runtime complexity: `O(n)` to start, then `O(1)` per key.
        """
        for key in self._sync.keys():
            yield key

    def __len__(self) -> int:
        """Return the number of live entries: ``len(store)``.

        Expired entries that are not purged yet are not counted.

        Runtime complexity: `O(b + log(n))`, *b* the wholly expired buckets not purged yet.
        """
        return len(self._sync)

    def stats(self) -> Stats:
        """Return a frozen snapshot of the store's counters and size.

        Runtime complexity: `O(b + log(n))`, as `len()`.
        """
        return self._sync.stats()

    # -- writes ------------------------------------------------------------------------

    async def set(
        self, key: str, value: Any, *, ttl: TTLArg = None, keep_ttl: bool = False
    ) -> None:
        """Store *value* under *key*, replacing any value and deadline it had.

        The write deadline comes from *ttl* if given (seconds, or a `datetime.timedelta`;
        ``math.inf``: never), else from the expiry policy; an idle policy still applies
        and the earliest deadline wins. With *keep_ttl*, a live *key* keeps its write
        deadline (on a missing key it is a plain set). Counts as a use. May purge a few
        expired entries and evict to stay within the bound.

        Runtime complexity: `O(1)` -- amortized.

        Raises:
            TypeError: *key* is not a ``str``, or *ttl* is not a number or timedelta.
            ValueError: *ttl* is zero, negative or NaN, or the eviction policy refuses
                the value (for example heavier than ``max_weight``).
        """
        self._sync.set(key, value, ttl=ttl, keep_ttl=keep_ttl)

    async def set_many(self, mapping: Mapping[str, Any], *, ttl: TTLArg = None) -> None:
        """Store every item of *mapping*, as `set` would, all or nothing.

        Every key, the *ttl* and every weight are checked before anything is written.

        Runtime complexity: `O(k)` for *k* items -- amortized.
        """
        self._sync.set_many(mapping, ttl=ttl)

    async def add(self, key: str, value: Any, *, ttl: TTLArg = None) -> bool:
        """Store *value* only if *key* is missing or expired; return whether it did.

        A live *key* is left as it is and not counted as used.

        Runtime complexity: `O(1)` -- amortized.
        """
        return self._sync.add(key, value, ttl=ttl)

    async def incr(self, key: str, delta: int = 1) -> int:
        """Add *delta* to the integer at *key* and return the result.

        A missing *key* counts as 0 and gets the policy's lifetime; an existing one keeps
        its write deadline. Counts as a use. Atomic: concurrent increments lose nothing.

        Runtime complexity: `O(1)` -- amortized.

        Raises:
            TypeError: *delta* is not an ``int``, or the value at *key* is not an ``int``
                (the value is left as it is).
        """
        return self._sync.incr(key, delta)

    async def update(
        self,
        key: str,
        fn: Callable[[Any], Any],
        *,
        ttl: TTLArg | Callable[[Any], TTLArg] = None,
        keep_ttl: bool = False,
    ) -> Any:
        """Replace the value of *key* by ``fn(value)``, atomically, and return the new value.

        *fn* gets the live value, or ``None`` if *key* is missing, and returns the new
        value; returning ``None`` deletes *key* (so ``None`` cannot be stored this way).
        No other operation on the store can come between the read and the write: *fn*
        runs under the store's lock, so it must be quick and must not use the store
        (it gets `lapse.exceptions.ReentrantCallError`). If *fn* raises, nothing changes
        and the exception reaches the caller. *ttl* and *keep_ttl* are those of `set`;
        *ttl* may also be a function of the new value that returns its lifetime, called
        (under the lock) only when a value is written, so that a value and the deadline
        it implies are written in one step.
        This is the read-modify-write that sessions use; Redis does it with a compare-and-set
        script.

        Runtime complexity: `O(1)` -- amortized, plus *fn*'s own.
        """
        return self._sync.update(key, fn, ttl=ttl, keep_ttl=keep_ttl)

    async def expire(self, key: str, ttl: float | timedelta) -> bool:
        """Set the write deadline of a live *key* to *ttl* seconds from now.

        Returns ``False`` if *key* is missing. Does not count as a use.

        Runtime complexity: `O(1)` -- amortized.
        """
        return self._sync.expire(key, ttl)

    async def persist(self, key: str) -> bool:
        """Remove the write deadline of a live *key*.

        Returns ``True`` if a deadline was removed, ``False`` if *key* is missing or had
        none. An idle policy still applies to it.

        Runtime complexity: `O(1)` -- amortized.
        """
        return self._sync.persist(key)

    async def touch(self, key: str) -> bool:
        """Count a use of a live *key* (LRU order, idle deadline) without reading it.

        Returns ``False`` if *key* is missing.

        Runtime complexity: `O(1)` -- amortized.
        """
        return self._sync.touch(key)

    # -- removals ----------------------------------------------------------------------

    async def delete(self, key: str) -> bool:
        """Remove *key*; return whether it was live.

        Runtime complexity: `O(1)` -- amortized.
        """
        return self._sync.delete(key)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove every key of *keys*; return how many were live.

        Runtime complexity: `O(k)` for *k* keys -- amortized.
        """
        return self._sync.delete_many(keys)

    async def pop(self, key: str, default: Any = None) -> Any:
        """Remove *key* and return its value, or return *default* if it is missing.

        Runtime complexity: `O(1)` -- amortized.
        """
        return self._sync.pop(key, default)

    async def clear(self) -> None:
        """Remove every entry, reporting each to ``on_remove``.

        Runtime complexity: `O(n)`.
        """
        self._sync.clear()

    async def purge_expired(self) -> int:
        """Remove every expired entry now; return how many.

        There is no need to call it for correctness, and writes already purge a few
        expired entries each; call it to free memory at a moment of your choosing.

        Runtime complexity: `O(k*log(k))` for *k* expired entries.
        """
        return self._sync.purge_expired()

    async def aclose(self) -> None:
        """Stop the store's background work: refreshes started by `get_or_set`.

        The entries stay: a store may be shared, and closing one user's handle must not
        erase the others' data (call `clear` for that). The store stays usable.
        ``async with store:`` calls it on exit.
        """
        await self._loader.aclose()

    async def __aenter__(self) -> MemoryStore:  # noqa: PYI034 -- final in spirit
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
