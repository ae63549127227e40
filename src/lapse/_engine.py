"""The in-memory engine: one lock, one dict, one sorted expiry index.

`SyncMemoryStore` holds all the state and does all the work with plain methods;
`lapse.MemoryStore` is its async face, and ``store.sync`` hands out the engine itself.

Layout of an entry (a tuple, so the expiry index orders entries without a key function):

- ``(expires, key, value)`` when every expiry policy is a `TTL` (or there is none);
- ``(expires, key, value, hard, soft)`` otherwise, where *hard* is the write deadline,
  *soft* the use deadline and ``expires == min(hard, soft)``.

Keys are unique, so ordering two entries never compares their values. Only entries
with a finite deadline are in the index; the rest cost nothing there.

With an eviction policy the dict is an `OrderedDict`, and it is also the evictor's key
order (for `LRU`, the recency order), so the keys are held once.

Locking: every operation that changes anything holds the lock. A `get` that misses, or
hits on a store without use deadlines, takes no lock: it is one dict lookup, one comparison
with the clock, one ``OrderedDict.move_to_end`` and one ``next()`` on an `itertools.count`,
each a single step that is safe between threads; an expired entry goes on under the lock.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, TypeAlias, TypeVar

import attrs

from sortedcontainers import SortedList

from ._clock import Clock, as_seconds, monotonic
from ._loader import Loader
from ._policies import LRU, TTL, EvictionPolicy, Evictor, ExpiryPolicy
from ._store import RemovalCause, Stats, check_key


T = TypeVar("T")
_INF = math.inf
_PURGE_STEP = 2  # expired entries purged by each write: more than one, so backlogs shrink
_log = logging.getLogger("lapse")

Entry: TypeAlias = tuple[Any, ...]
OnRemove: TypeAlias = Callable[[str, Any, RemovalCause], object]
"""``on_remove(key, value, cause)``, called after each removal; its result is ignored."""
TTLArg: TypeAlias = "float | timedelta | None"
_Write: TypeAlias = tuple[str, Any, float, float, int]  # key, value, hard, soft, weight


def _keys(keys: Iterable[str]) -> list[str]:
    keys = list(keys)
    for key in keys:
        check_key(key)
    return keys


def ttl_seconds(ttl: float | timedelta | None) -> float | None:
    if ttl is None:
        return None
    if (ttl.__class__ is float or ttl.__class__ is int) and ttl > 0:  # the common case, fast
        return ttl
    return as_seconds(ttl, what="ttl")


def _count(counter: itertools.count[int]) -> int:
    """Read an `itertools.count` without advancing it."""
    return int(repr(counter)[6:-1])  # "count(42)"


def _check_lifetime(seconds: float, policy: object) -> float:
    if math.isnan(seconds):  # NaN would corrupt the order of the index
        msg = f"{policy!r} returned NaN as a lifetime"
        raise ValueError(msg)
    return seconds


class _CriticalSection:
    """Holds the store's lock; on the way out, reports removals once the lock is released.

    Callbacks run outside the lock, so that they may use the store. Each operation
    reports exactly the removals it made: the list is taken while the lock is held.
    """

    __slots__ = ("_store",)

    def __init__(self, store: SyncMemoryStore) -> None:
        self._store = store

    def __enter__(self) -> None:
        self._store._lock.acquire()  # noqa: SLF001

    def __exit__(self, *exc_info: object) -> None:
        self._store._leave()  # noqa: SLF001


@attrs.define(eq=False)
class SyncMemoryStore:
    """A `MemoryStore`'s operations as plain methods: ``store.sync``.

    It is the same store, not a copy: the same entries, the same lock, the same stats and
    callbacks. Use it from threads or from code that is not async; every method is safe to
    call from any number of threads at once. Each method behaves, costs and raises as the
    `MemoryStore` coroutine of the same name.

    Added in 0.1.
    """

    _expiry: tuple[ExpiryPolicy, ...]
    _eviction: EvictionPolicy | None
    _clock: Clock
    _on_remove: OnRemove | None
    _tracks_use: bool = attrs.field(init=False)
    _default_clock: bool = attrs.field(init=False)
    _fixed_ttl: float | None = attrs.field(init=False)
    _data: dict[str, Entry] = attrs.field(init=False)
    _evictor: Evictor | None = attrs.field(init=False)
    _use: Callable[[str], None] | None = attrs.field(init=False)
    _weigh: Callable[[str, Any], int] | None = attrs.field(init=False)
    _head: float = attrs.field(init=False, default=_INF)  # the earliest deadline indexed
    _index: SortedList[Entry] = attrs.field(init=False, factory=SortedList)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _events: list[tuple[str, Any, RemovalCause]] = attrs.field(init=False, factory=list)
    _hits: itertools.count[int] = attrs.field(init=False, factory=itertools.count)
    _misses: itertools.count[int] = attrs.field(init=False, factory=itertools.count)
    _sets: int = attrs.field(init=False, default=0)
    _deletes: int = attrs.field(init=False, default=0)
    _evictions: int = attrs.field(init=False, default=0)
    _expirations: int = attrs.field(init=False, default=0)
    _critical: _CriticalSection = attrs.field(init=False)
    _loader: Loader = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        # The default clock is read inline on a hit: time.monotonic, looked up at call
        # time as monotonic() does, so freezegun still moves it.
        self._default_clock = self._clock is monotonic
        # TTL policies fold into one constant lifetime; any other policy is asked each time.
        all_ttl = all(type(policy) is TTL for policy in self._expiry)
        self._tracks_use = not all_ttl
        self._fixed_ttl = (
            min((policy.seconds for policy in self._expiry), default=_INF)  # type: ignore[attr-defined]
            if all_ttl
            else None
        )
        eviction = self._eviction
        # LRU without a weigher weighs every entry 1: no call needed.
        unweighted = eviction is None or (type(eviction) is LRU and eviction.weigher is None)
        self._weigh = None if unweighted else eviction.weigh  # type: ignore[union-attr]
        if eviction is None:
            self._data = {}
            self._evictor = self._use = None
        else:
            order: OrderedDict[str, Entry] = OrderedDict()
            self._data = order
            self._evictor = eviction.evictor(order)
            self._use = self._evictor.use
        self._critical = _CriticalSection(self)
        # Our async get never yields, so a load need not read the store again after a miss.
        self._loader = Loader(self._clock, recheck=False)

    # -- primitives, called with the lock held -----------------------------------------

    def _deadlines(
        self, key: str, value: Any, now: float, ttl: float | None
    ) -> tuple[float, float]:
        """Return the (write, use) deadlines of *value* written to *key* at *now*."""
        if ttl is None:
            ttl = self._fixed_ttl
            if ttl is None:
                ttl = _INF
                for policy in self._expiry:
                    ttl = min(ttl, _check_lifetime(policy.after_write(key, value), policy))
        return now + ttl, self._use_deadline(key, value, now)

    def _use_deadline(self, key: str, value: Any, now: float) -> float:
        if not self._tracks_use:
            return _INF
        idle = _INF
        for policy in self._expiry:
            idle = min(idle, _check_lifetime(policy.after_use(key, value), policy))
        return now + idle

    def _entry(self, key: str, value: Any, hard: float, soft: float) -> Entry:
        if self._tracks_use:
            return (min(hard, soft), key, value, hard, soft)
        return (hard, key, value)

    def _write_deadline(self, entry: Entry) -> float:
        deadline: float = entry[3] if self._tracks_use else entry[0]
        return deadline

    def _set_write_deadline(self, entry: Entry, hard: float) -> None:
        soft = entry[4] if self._tracks_use else _INF
        self._swap(entry, self._entry(entry[1], entry[2], hard, soft))

    def _swap(self, old: Entry, new: Entry) -> None:
        """Put *new* where *old* was, in the dict and the index."""
        self._data[new[1]] = new
        self._unindex(old)
        self._index_entry(new)

    def _index_entry(self, entry: Entry) -> None:
        expires = entry[0]
        if expires != _INF:
            self._index.add(entry)
            if expires < self._head:  # noqa: PLR1730 -- min() is a call, this is not
                self._head = expires

    def _unindex(self, entry: Entry) -> None:
        expires = entry[0]
        if expires != _INF:
            index = self._index
            index.remove(entry)
            if expires == self._head:  # the earliest deadline left: find the next one
                self._head = index[0][0] if index else _INF

    def _drop(self, entry: Entry, cause: RemovalCause) -> None:
        key = entry[1]
        del self._data[key]
        self._unindex(entry)
        if self._evictor is not None:
            self._evictor.remove(key)
        if cause is RemovalCause.EXPIRED:
            self._expirations += 1
        elif cause is RemovalCause.EVICTED:
            self._evictions += 1
        elif cause is RemovalCause.EXPLICIT:
            self._deletes += 1
        self._report(key, entry[2], cause)

    def _leave(self) -> None:
        """Release the lock, then report the removals this operation made."""
        events = self._events  # taken under the lock: exactly this operation's
        if events:
            self._events = []
        self._lock.release()
        if events:
            self._notify(events)

    def _notify(self, events: list[tuple[str, Any, RemovalCause]]) -> None:
        """Call on_remove for *events*, outside the lock, so that it may use the store."""
        on_remove = self._on_remove
        for key, value, cause in events:
            try:
                on_remove(key, value, cause)  # type: ignore[misc]
            except Exception:  # noqa: BLE001 -- a callback must never break the store
                _log.warning(
                    "on_remove callback failed for %r (%s)", key, cause.value, exc_info=True
                )

    def _report(self, key: str, value: Any, cause: RemovalCause) -> None:
        if self._on_remove is not None:
            self._events.append((key, value, cause))

    def _live(self, key: str, now: float) -> Entry | None:
        """Return the live entry of *key*, dropping it first if it has expired."""
        check_key(key)
        entry = self._data.get(key)
        if entry is not None and entry[0] <= now:
            self._drop(entry, RemovalCause.EXPIRED)
            return None
        return entry

    def _used(self, entry: Entry, now: float) -> Entry:
        """Count a use of the live *entry*: LRU order and use deadline."""
        key = entry[1]
        if self._tracks_use:
            soft = self._use_deadline(key, entry[2], now)
            new = (min(entry[3], soft), key, entry[2], entry[3], soft)
            self._swap(entry, new)
            entry = new
        if self._use is not None:
            self._use(key)
        return entry

    def _read(self, key: str, now: float) -> Entry | None:
        entry = self._live(key, now)
        if entry is None:
            next(self._misses)
            return None
        next(self._hits)
        return self._used(entry, now)

    def _prepare(
        self, key: str, value: Any, now: float, ttl: float | None, keep_ttl: bool
    ) -> _Write:
        """Check and compute everything a write needs, changing nothing."""
        weight = 1 if self._weigh is None else self._weigh(key, value)
        if keep_ttl and ttl is None:
            current = self._data.get(key)
            if current is not None and current[0] > now:
                hard = self._write_deadline(current)
                return key, value, hard, self._use_deadline(key, value, now), weight
        hard, soft = self._deadlines(key, value, now, ttl)
        return key, value, hard, soft, weight

    def _write(self, write: _Write, now: float) -> None:
        """Store a prepared write, replacing or dropping what was there."""
        key, value, hard, soft, weight = write
        data = self._data
        old = data.get(key)
        if old is not None and old[0] <= now:
            self._drop(old, RemovalCause.EXPIRED)  # a new key now, not a replacement
            old = None
        if self._tracks_use:
            new: Entry = (hard if hard < soft else soft, key, value, hard, soft)  # noqa: FURB136
        else:
            new = (hard, key, value)
        data[key] = new
        if old is not None:
            self._unindex(old)
            if self._on_remove is not None:
                self._events.append((key, old[2], RemovalCause.REPLACED))
        self._index_entry(new)
        if self._evictor is not None:
            self._evictor.add(key, weight)
        self._sets += 1

    def _trim(self, now: float) -> None:
        """Purge a few expired entries, then evict until within the bound."""
        for _ in range(_PURGE_STEP):
            if self._head > now:
                break
            self._drop(self._index[0], RemovalCause.EXPIRED)
        evictor = self._evictor
        if evictor is None:
            return
        while (victim := evictor.victim()) is not None:
            if self._head <= now:  # never evict a live entry before an expired one
                self._drop(self._index[0], RemovalCause.EXPIRED)
            else:
                self._drop(self._data[victim], RemovalCause.EVICTED)

    def _expired_count(self, now: float) -> int:
        return self._index.bisect_left((math.nextafter(now, _INF),))

    # -- reads -------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of *key*, or *default*. See `MemoryStore.get`."""
        # A miss, and a hit on a store without use deadlines: no lock, no allocation.
        # MemoryStore.get inlines the same lines; keep them alike.
        try:
            entry = self._data.get(key)
        except TypeError:  # unhashable: the locked path names the problem
            entry = None
        if entry is None:
            if isinstance(key, str):  # a miss changes nothing but a counter
                next(self._misses)
                return default
        elif not self._tracks_use:
            expires = entry[0]
            if expires == _INF or expires > (
                time.monotonic() if self._default_clock else self._clock()
            ):
                use = self._use
                if use is not None:
                    try:  # noqa: SIM105 -- suppress() costs a context manager per hit
                        use(key)
                    except KeyError:  # removed by another thread since the lookup
                        pass
                next(self._hits)
                return entry[2]
        return self.get_locked(key, default)

    def get_locked(self, key: str, default: Any = None) -> Any:
        """`get`, under the lock: for expired entries, use deadlines and bad keys."""
        with self._critical:
            entry = self._read(key, self._clock())
            return default if entry is None else entry[2]

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return the live values of *keys*. See `MemoryStore.get_many`."""
        keys = _keys(keys)
        with self._critical:
            now = self._clock()
            found = {}
            for key in keys:
                entry = self._read(key, now)
                if entry is not None:
                    found[key] = entry[2]
            return found

    def get_or_set(
        self,
        key: str,
        factory: Callable[[], T],
        *,
        ttl: TTLArg = None,
        refresh_after: float | None = None,
    ) -> T:
        """Return the value of *key*, or load it once for all threads. See `MemoryStore.get_or_set`.

        *factory* must be a plain function here; threads waiting for one key share its
        single call.
        """
        result: T = self._loader.get_or_set_sync(
            self, key, factory, ttl=ttl, refresh_after=refresh_after
        )
        return result

    def has(self, key: str) -> bool:
        """Return whether *key* is live. See `MemoryStore.has`."""
        with self._critical:
            return self._live(key, self._clock()) is not None

    def ttl(self, key: str) -> float | None:
        """Return the seconds *key* has left. See `MemoryStore.ttl`."""
        with self._critical:
            now = self._clock()
            entry = self._live(key, now)
            if entry is None:
                return None
            remaining: float = entry[0] - now
            return remaining

    def keys(self) -> Iterator[str]:
        """Iterate over a snapshot of the live keys. See `MemoryStore.keys`."""
        with self._critical:
            now = self._clock()
            # list() copies in one step: lock-free hits may reorder the dict meanwhile.
            live = [key for key, entry in list(self._data.items()) if entry[0] > now]
        return iter(live)

    def __len__(self) -> int:
        """Return the number of live entries. Runtime complexity: `O(log(n))`."""
        with self._critical:
            return len(self._data) - self._expired_count(self._clock())

    def stats(self) -> Stats:
        """Return a snapshot of the counters. See `MemoryStore.stats`."""
        with self._critical:
            loader = self._loader
            return Stats(
                loads=loader.loads,
                load_failures=loader.load_failures,
                load_time=loader.load_time,
                hits=_count(self._hits),
                misses=_count(self._misses),
                sets=self._sets,
                deletes=self._deletes,
                evictions=self._evictions,
                expirations=self._expirations,
                size=len(self._data) - self._expired_count(self._clock()),
            )

    # -- writes ------------------------------------------------------------------------

    def set(self, key: str, value: Any, *, ttl: TTLArg = None, keep_ttl: bool = False) -> None:
        """Store *value* under *key*. See `MemoryStore.set`."""
        if key.__class__ is not str:
            check_key(key)
        seconds = ttl_seconds(ttl)
        # The critical section written out: set is hot, and a `with` costs a few calls.
        lock = self._lock
        lock.acquire()
        try:
            now = self._clock()
            self._write(self._prepare(key, value, now, seconds, keep_ttl), now)
            self._trim(now)
        finally:
            self._leave()

    def set_many(self, mapping: Mapping[str, Any], *, ttl: TTLArg = None) -> None:
        """Store every item of *mapping*, all or nothing. See `MemoryStore.set_many`."""
        items = list(mapping.items())
        for key, _ in items:
            check_key(key)
        seconds = ttl_seconds(ttl)
        with self._critical:
            now = self._clock()
            writes = [self._prepare(key, value, now, seconds, False) for key, value in items]
            for write in writes:
                self._write(write, now)
            self._trim(now)

    def add(self, key: str, value: Any, *, ttl: TTLArg = None) -> bool:
        """Store *value* only if *key* is absent. See `MemoryStore.add`."""
        check_key(key)
        seconds = ttl_seconds(ttl)
        with self._critical:
            now = self._clock()
            if self._live(key, now) is not None:
                return False
            self._write(self._prepare(key, value, now, seconds, False), now)
            self._trim(now)
            return True

    def incr(self, key: str, delta: int = 1) -> int:
        """Add *delta* to the integer at *key*. See `MemoryStore.incr`."""
        check_key(key)
        if not isinstance(delta, int) or isinstance(delta, bool):
            msg = f"delta must be an int, not {type(delta).__name__}"
            raise TypeError(msg)
        with self._critical:
            now = self._clock()
            entry = self._live(key, now)
            if entry is None:
                value = delta
            else:
                current = entry[2]
                if not isinstance(current, int) or isinstance(current, bool):
                    msg = f"the value of {key!r} is a {type(current).__name__}, not an int"
                    raise TypeError(msg)
                value = current + delta
            self._write(self._prepare(key, value, now, None, True), now)
            self._trim(now)
            return value

    def expire(self, key: str, ttl: float | timedelta) -> bool:
        """Give *key* a new write deadline. See `MemoryStore.expire`."""
        check_key(key)
        seconds = as_seconds(ttl, what="ttl")
        with self._critical:
            now = self._clock()
            entry = self._live(key, now)
            if entry is None:
                return False
            self._set_write_deadline(entry, now + seconds)
            return True

    def persist(self, key: str) -> bool:
        """Remove the write deadline of *key*. See `MemoryStore.persist`."""
        with self._critical:
            entry = self._live(key, self._clock())
            if entry is None:
                return False
            if self._write_deadline(entry) == _INF:
                return False
            self._set_write_deadline(entry, _INF)
            return True

    def touch(self, key: str) -> bool:
        """Count a use of *key*. See `MemoryStore.touch`."""
        with self._critical:
            now = self._clock()
            entry = self._live(key, now)
            if entry is None:
                return False
            self._used(entry, now)
            return True

    # -- removals ----------------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Remove *key*. See `MemoryStore.delete`."""
        with self._critical:
            entry = self._live(key, self._clock())
            if entry is None:
                return False
            self._drop(entry, RemovalCause.EXPLICIT)
            return True

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove every key of *keys*. See `MemoryStore.delete_many`."""
        keys = _keys(keys)
        with self._critical:
            now = self._clock()
            removed = 0
            for key in keys:
                entry = self._live(key, now)
                if entry is not None:
                    self._drop(entry, RemovalCause.EXPLICIT)
                    removed += 1
            return removed

    def pop(self, key: str, default: Any = None) -> Any:
        """Remove *key* and return its value. See `MemoryStore.pop`."""
        with self._critical:
            entry = self._live(key, self._clock())
            if entry is None:
                return default
            self._drop(entry, RemovalCause.EXPLICIT)
            return entry[2]

    def clear(self) -> None:
        """Remove every entry. See `MemoryStore.clear`."""
        with self._critical:
            now = self._clock()
            for entry in list(self._data.values()):
                expired = entry[0] <= now
                self._drop(entry, RemovalCause.EXPIRED if expired else RemovalCause.EXPLICIT)

    def purge_expired(self) -> int:
        """Remove every expired entry now. See `MemoryStore.purge_expired`."""
        with self._critical:
            expired = self._index[: self._expired_count(self._clock())]
            for entry in expired:
                self._drop(entry, RemovalCause.EXPIRED)
            return len(expired)
