"""The in-memory engine: one lock, one dict, and an expiry index of deadline buckets.

`SyncMemoryStore` holds all the state and does all the work with plain methods;
`lapse.MemoryStore` is its async face, and ``store.sync`` hands out the engine itself.

Entries (tuples, held in ``_data`` by key):

- ``(expires, value)`` when every expiry policy is a `TTL` (or there is none);
- ``(expires, value, hard, soft)`` otherwise, where *hard* is the write deadline,
  *soft* the use deadline and ``expires == min(hard, soft)``.

The expiry index: a finite deadline falls in the bucket ``floor(expires)`` (one second
wide). ``_buckets`` maps a bucket to the keys in it (a dict used as an ordered set),
``_ids`` is the `SortedList` of the buckets that hold keys, ``_head`` its first. Moving a
key to another deadline is two dict operations, and no index work at all within one
bucket; the `SortedList` changes only when a bucket appears or empties. A bucket is
ordered exactly, as a `SortedList` of ``(expires, key)``, only once the clock has reached
it (``_exact``): that is where a purge must pick the earliest entry and ``len()`` must
count the expired ones. Reads always check an entry's exact deadline.

``_data`` is the truth; the index and the evictor are derived from it. If an operation is
interrupted half-way (``KeyboardInterrupt``, ``MemoryError``, ``RecursionError``), the
store marks itself dirty and the next operation rebuilds what is derived before it
starts, so the store stays consistent and usable.

With an eviction policy the dict is an `OrderedDict`, and it is also the evictor's key
order (for `LRU`, the recency order), so keys are held once.

Locking: every operation that changes anything holds the lock. A `get` that misses, or
hits on a store without use deadlines, takes no lock: one dict lookup, one comparison
with the clock, one ``OrderedDict.move_to_end`` and one ``next()`` on an `itertools.count`,
each a single step that is safe between threads; an expired entry goes on under the lock.
"""

from __future__ import annotations

import bisect
import functools
import inspect
import itertools
import logging
import math
import threading
import time

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, Concatenate, ParamSpec, TypeAlias, TypeVar

import attrs

from sortedcontainers import SortedList

from ._clock import Clock, as_seconds, monotonic
from ._loader import DELETE, Loader, OnStoreError, own
from ._policies import LRU, TTL, EvictionPolicy, Evictor, ExpiryPolicy, Idle, LRUEvictor
from ._store import RemovalCause, Stats, check_key
from .exceptions import ReentrantCallError


T = TypeVar("T")
P = ParamSpec("P")
_INF = math.inf
_PURGE_STEP = 2  # expired entries purged by each write: more than one, so backlogs shrink
_SPARE_BUCKETS = 1024  # empty buckets kept beyond 8 per entry before a sweep
_COMPACT = 64  # an _Ordered run cuts its taken prefix past this length
_log = logging.getLogger("lapse")
_EXPIRED = RemovalCause.EXPIRED
_REPLACED = RemovalCause.REPLACED

Entry: TypeAlias = tuple[Any, ...]
OnRemove: TypeAlias = Callable[[str, Any, RemovalCause], object]
"""``on_remove(key, value, cause)``, called after each removal; its result is ignored."""
TTLArg: TypeAlias = "float | timedelta | None"
Expiry: TypeAlias = "ExpiryPolicy | tuple[ExpiryPolicy, ...] | None"
_Event: TypeAlias = tuple[str, Any, RemovalCause]


def _keys(keys: Iterable[str]) -> list[str]:
    keys = list(keys)
    for key in keys:
        check_key(key)
    return keys


def ttl_seconds(ttl: float | timedelta | None) -> float | None:
    if ttl is None:
        return None
    if (ttl.__class__ is float and ttl > 0) or (ttl.__class__ is int and 0 < ttl < 2**62):
        return ttl  # the common cases, fast
    return as_seconds(ttl, what="ttl")


def _count(counter: itertools.count[int]) -> int:
    """Read an `itertools.count` without advancing it."""
    return int(repr(counter)[6:-1])  # "count(42)"


def _check_lifetime(seconds: float, policy: object) -> float:
    if math.isnan(seconds):  # NaN would corrupt the order of the index
        msg = f"{policy!r} returned NaN as a lifetime"
        raise ValueError(msg)
    return seconds


def _nan_clock(clock: object) -> ValueError:
    return ValueError(f"the clock {clock!r} returned NaN; a clock must return seconds")


def _is_expiry_policy(policy: object) -> bool:
    return callable(getattr(policy, "after_write", None)) and callable(
        getattr(policy, "after_use", None)
    )


def expiry_tuple(expiry: object) -> tuple[ExpiryPolicy, ...]:
    """Return *expiry* (one policy, a tuple or list of them, or ``None``) as a tuple."""
    if expiry is None:
        return ()
    if _is_expiry_policy(expiry):
        return (expiry,)  # type: ignore[return-value]
    policies = tuple(expiry) if isinstance(expiry, (tuple, list)) else (expiry,)
    for policy in policies:
        if not _is_expiry_policy(policy):
            msg = f"expiry must be an expiry policy or a tuple of them, got {policy!r}"
            raise TypeError(msg)
    return policies


def check_store_arguments(eviction: object, clock: object, on_remove: object) -> None:
    """Check the arguments of a `MemoryStore` (or `SyncMemoryStore`) but *expiry*."""
    if eviction is not None and not (
        callable(getattr(eviction, "weigh", None)) and callable(getattr(eviction, "evictor", None))
    ):
        msg = f"eviction must be an eviction policy such as LRU(...), got {eviction!r}"
        raise TypeError(msg)
    if not callable(clock):
        msg = f"clock must be a callable returning seconds, got {clock!r}"
        raise TypeError(msg)
    if on_remove is not None:
        if not callable(on_remove):
            msg = f"on_remove must be callable or None, got {on_remove!r}"
            raise TypeError(msg)
        if inspect.iscoroutinefunction(on_remove) or inspect.iscoroutinefunction(
            getattr(on_remove, "__call__", None)  # noqa: B004 -- an async __call__
        ):
            msg = (
                f"on_remove must be a plain function, not a coroutine function ({on_remove!r}): "
                "it runs inside the operation, which cannot await it"
            )
            raise TypeError(msg)


class _Ordered:
    """The entries of one bucket in deadline order: ``(expires, key)``, earliest first.

    A plain list kept sorted with C ``bisect``, and a start offset so that taking the
    earliest is `O(1)`; the taken prefix is cut off once it is half the list. Built once,
    when the clock reaches the bucket; a bucket holds one second of deadlines, so its
    inserts and removals move little memory.
    """

    __slots__ = ("items", "start")

    def __init__(self, items: list[tuple[float, str]]) -> None:
        items.sort()
        self.items = items
        self.start = 0

    def first(self) -> tuple[float, str]:
        return self.items[self.start]

    def add(self, item: tuple[float, str]) -> None:
        bisect.insort(self.items, item, lo=self.start)

    def remove(self, item: tuple[float, str]) -> None:
        items, start = self.items, self.start
        i = bisect.bisect_left(items, item, lo=start)
        if i == start:
            self.start = start = start + 1
            if start > _COMPACT and 2 * start > len(items):
                del items[:start]
                self.start = 0
        else:
            del items[i]

    def expired(self, now: float) -> list[tuple[float, str]]:
        """Return the items whose deadline is *now* or earlier."""
        items = self.items
        return items[self.start : bisect.bisect_left(items, (math.nextafter(now, _INF),))]

    def live(self) -> list[tuple[float, str]]:
        return self.items[self.start :]


def _reentered() -> ReentrantCallError:
    return ReentrantCallError(
        "a weigher, an expiry policy or an update() function must not use the store that calls it "
        "(it runs under the store's lock, in the middle of a write)"
    )


def _locked(
    method: Callable[Concatenate[SyncMemoryStore, P], T],
) -> Callable[Concatenate[SyncMemoryStore, P], T]:
    """Run *method* holding the store's lock, then report its removals once released.

    The lock is a C-level context manager, so it is released even if an exception lands
    anywhere (``KeyboardInterrupt`` included). An exception in the middle of a change marks
    the store dirty; whoever takes the lock next rebuilds the index before going on.
    Callbacks run outside the lock, so that they may use the store; each operation reports
    exactly the removals it made, taken while the lock is held.
    """

    @functools.wraps(method)
    def run(self: SyncMemoryStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._calling is not None and self._calling == threading.get_ident():
            raise _reentered()
        lock = self._lock
        lock.acquire()  # released however the method ends: nothing but `try` in between
        try:
            if self._dirty:
                self._rebuild()
            result = method(self, *args, **kwargs)
        except BaseException:
            if self._busy:
                self._dirty = True
            raise
        finally:
            self._busy = False
            events: list[_Event] | None = self._events  # under the lock: this operation's
            if events:
                self._events = []
            else:
                events = None  # the shared empty list: others may fill it once released
            lock.release()
            if events is not None:
                self._notify(events)
        return result

    return run


@attrs.define(kw_only=True, eq=False, repr=False)
class SyncMemoryStore:
    """A `MemoryStore`'s operations as plain methods: ``store.sync``.

    ``MemoryStore(...).sync`` is the same store, not a copy: the same entries, the same
    lock, the same stats and callbacks. ``SyncMemoryStore(...)`` takes the keywords of
    `MemoryStore` and checks them the same way, for code that has no event loop at all.
    Every method is safe to call from any number of threads at once, and behaves, costs
    and raises as the `MemoryStore` coroutine of the same name.

    Added in 0.1. Changed in 0.2: constructible with `MemoryStore`'s keywords.
    """

    _expiry: Expiry = None
    _eviction: EvictionPolicy | None = None
    _clock: Clock = monotonic
    _on_remove: OnRemove | None = None
    _policies: tuple[ExpiryPolicy, ...] = attrs.field(init=False)
    _tracks_use: bool = attrs.field(init=False)
    _default_clock: bool = attrs.field(init=False)
    _fixed_ttl: float | None = attrs.field(init=False)  # the write lifetime, if constant
    _fixed_idle: float | None = attrs.field(init=False)  # the use lifetime, if constant
    _data: dict[str, Entry] = attrs.field(init=False)
    _evictor: Evictor | None = attrs.field(init=False)
    _use: Callable[[str], None] | None = attrs.field(init=False)
    _weigh: Callable[[str, Any], int] | None = attrs.field(init=False)
    _max_size: int | None = attrs.field(init=False)  # a plain LRU(n): handled inline
    _bound: int | None = attrs.field(init=False)  # the entry bound of an unweighted policy
    _add: Callable[[str, int], None] | None = attrs.field(init=False)  # its evictor's add
    _simple: bool = attrs.field(init=False)  # set's fast path applies
    _buckets: dict[float, dict[str, None]] = attrs.field(init=False, factory=dict)
    _ids: SortedList[float] = attrs.field(init=False, factory=SortedList)
    _exact: dict[float, _Ordered] = attrs.field(init=False, factory=dict)
    _head: float = attrs.field(init=False, default=_INF)  # the first bucket
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _calling: int | None = attrs.field(init=False, default=None)  # thread in a callback
    _busy: bool = attrs.field(init=False, default=False)  # changing state, under the lock
    _dirty: bool = attrs.field(init=False, default=False)  # derived state needs a rebuild
    _events: list[_Event] = attrs.field(init=False, factory=list)
    _hits: itertools.count[int] = attrs.field(init=False, factory=itertools.count)
    _misses: itertools.count[int] = attrs.field(init=False, factory=itertools.count)
    _sets: int = attrs.field(init=False, default=0)
    _deletes: int = attrs.field(init=False, default=0)
    _evictions: int = attrs.field(init=False, default=0)
    _expirations: int = attrs.field(init=False, default=0)
    _loader: Loader = attrs.field(init=False)
    _tickets: dict[str, Any] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._policies = policies = expiry_tuple(self._expiry)
        check_store_arguments(self._eviction, self._clock, self._on_remove)
        # The default clock is read inline: time.monotonic, looked up at call time as
        # monotonic() does, so freezegun still moves it.
        self._default_clock = self._clock is monotonic
        # TTL and Idle policies fold into constant lifetimes; others are asked each time.
        self._tracks_use = not all(type(policy) is TTL for policy in policies)
        self._fixed_ttl = self._fixed_idle = None
        if all(type(policy) in (TTL, Idle) for policy in policies):
            self._fixed_ttl = min(
                (p.seconds for p in policies if type(p) is TTL),
                default=_INF,
            )
            self._fixed_idle = min(
                (p.seconds for p in policies if type(p) is Idle),
                default=_INF,
            )
        eviction = self._eviction
        # LRU (or SIEVE, S3FIFO, WTinyLFU) without a weigher weighs every entry 1: no call.
        unweighted = eviction is None or (isinstance(eviction, LRU) and eviction.weigher is None)
        self._weigh = None if unweighted else eviction.weigh  # type: ignore[union-attr]
        self._max_size = self._bound = None
        self._add = None
        # set's fast path: constant lifetimes (TTL policies) and no weigher to call.
        self._simple = self._weigh is None and not self._tracks_use
        if eviction is None:
            self._data = {}
            self._evictor = self._use = None
        else:
            order: OrderedDict[str, Entry] = OrderedDict()
            self._data = order
            self._evictor = evictor = eviction.evictor(order)
            self._use = evictor.use
            if unweighted and type(evictor) is LRUEvictor:
                self._max_size = self._bound = evictor.max_size
            elif unweighted:  # another of ours, counting entries: one add() call per set
                self._add = evictor.add
                self._bound = eviction.max_size  # type: ignore[attr-defined]
        # Our async get never yields, so a load need not read the store again after a miss.
        self._loader = Loader(
            self._clock,
            recheck=False,
            lifetime=self._fixed_ttl,
            store_load=self._store_load,
            write_ttl=self._write_ttl,
        )
        own(self, self._loader)
        self._tickets = self._loader.tickets  # loads in progress, by key

    def __repr__(self) -> str:
        """Show the configuration and the size, never a key or a value."""
        return (
            f"{type(self).__name__}(expiry={self._expiry!r}, eviction={self._eviction!r}, "
            f"size={len(self._data)})"
        )

    # -- the lock ----------------------------------------------------------------------

    def _notify(self, events: list[_Event]) -> None:
        """Call on_remove for *events*, outside the lock, so that it may use the store."""
        on_remove = self._on_remove
        if on_remove is None:
            return
        for key, value, cause in events:
            try:
                on_remove(key, value, cause)
            except Exception:  # noqa: BLE001 -- a callback must never break the store
                _log.warning(
                    "on_remove callback failed for %r (%s)", key, cause.value, exc_info=True
                )

    def _now(self) -> float:
        now = time.monotonic() if self._default_clock else self._clock()
        if now != now:  # NaN  # noqa: PLR0124
            raise _nan_clock(self._clock)
        return now

    def _callback(self, fn: Callable[..., T], *args: Any) -> T:
        """Call a user's weigher or policy under the lock, marked so re-entrance is refused."""
        self._calling = threading.get_ident()
        try:
            return fn(*args)
        finally:
            self._calling = None

    # -- the index, under the lock -----------------------------------------------------

    def _index(self, key: str, expires: float) -> None:
        if expires == _INF:
            return
        bucket_id = expires // 1.0
        bucket = self._buckets.get(bucket_id)
        if bucket is None:
            self._buckets[bucket_id] = {key: None}
            self._ids.add(bucket_id)
            if len(self._buckets) > 8 * len(self._data) + _SPARE_BUCKETS:
                self._sweep()
        else:
            bucket[key] = None
            if self._exact:
                exact = self._exact.get(bucket_id)
                if exact is not None:
                    exact.add((expires, key))
        if expires < self._head:  # noqa: PLR1730 -- min() is a call, this is not
            self._head = expires

    def _unindex(self, key: str, expires: float) -> None:
        if expires == _INF:
            return
        bucket_id = expires // 1.0
        bucket = self._buckets[bucket_id]
        del bucket[key]  # an empty bucket stays, for the next key
        if self._exact:
            exact = self._exact.get(bucket_id)
            if exact is not None:
                exact.remove((expires, key))
                if bucket and self._head // 1.0 == bucket_id:
                    self._head = exact.first()[0]  # the next deadline, exactly

    def _reindex(self, key: str, old: float, new: float) -> None:
        """Move *key* from the deadline *old* to *new*: nothing to do within one bucket."""
        if old == new or (
            old != _INF  # noqa: PLR1714 -- a tuple costs an allocation
            and new != _INF
            and (bucket_id := old // 1.0) == new // 1.0
            and (not self._exact or bucket_id not in self._exact)
        ):
            return
        self._unindex(key, old)
        self._index(key, new)

    def _ordered(self, bucket_id: float) -> _Ordered:
        """The entries of a bucket the clock has reached, by deadline: built once."""
        exact = self._exact.get(bucket_id)
        if exact is None:
            data = self._data
            exact = _Ordered([(data[key][0], key) for key in self._buckets[bucket_id]])
            self._exact[bucket_id] = exact
        return exact

    def _expire_first(self, now: float) -> bool:
        """Drop the entry with the earliest deadline if it has passed; return whether it did.

        The purge's hot path: `_drop` and `_unindex` written out for the first entry of
        the first bucket.
        """
        ids, buckets = self._ids, self._buckets
        while self._head <= now:
            first = self._head // 1.0  # the first bucket's id: the head lies in it
            bucket = buckets[first]
            if not bucket:  # an empty bucket reached by the clock: gone for good
                del buckets[first]
                self._exact.pop(first, None)
                del ids[0]
                self._head = ids[0] if ids else _INF
                continue
            exact = self._exact.get(first)
            if exact is None:
                exact = self._ordered(first)
            items, start = exact.items, exact.start
            expires, key = items[start]
            if expires > now:
                self._head = expires  # exactly: nothing to purge before it passes
                return False
            self._busy = True
            entry = self._data.pop(key)
            del bucket[key]
            start += 1
            self._head = items[start][0] if start < len(items) else first
            if start > _COMPACT and 2 * start > len(items):
                del items[:start]
                start = 0
            exact.start = start
            self._forget(key, entry, _EXPIRED)
            return True
        return False

    def _purge(self, now: float) -> None:
        """Drop up to `_PURGE_STEP` expired entries, earliest first: what each write does."""
        for _ in range(_PURGE_STEP):
            if self._head > now or not self._expire_first(now):
                return

    def _sweep(self) -> None:
        """Drop the empty buckets, once they outnumber the entries: amortized `O(1)`."""
        buckets = {bid: bucket for bid, bucket in self._buckets.items() if bucket}
        self._exact = {bid: exact for bid, exact in self._exact.items() if bid in buckets}
        self._buckets, self._ids = buckets, SortedList(buckets)
        self._head = self._ids[0] if self._ids else _INF

    def _expired_count(self, now: float) -> int:
        if self._head > now:
            return 0
        ids, buckets = self._ids, self._buckets
        boundary = now // 1.0
        past = ids.bisect_left(boundary)  # buckets before the clock's: wholly expired
        count = sum(len(buckets[bucket_id]) for bucket_id in ids.islice(0, past))
        if boundary in buckets:
            count += len(self._ordered(boundary).expired(now))
        return count

    def _rebuild(self) -> None:
        """Derive the index (and the evictor's state) from the entries again."""
        items = list(self._data.items())  # one step: lock-free reads may reorder the dict
        buckets: dict[float, dict[str, None]] = {}
        for key, entry in items:
            expires = entry[0]
            if expires != _INF:
                buckets.setdefault(expires // 1.0, {})[key] = None
        ids = SortedList(buckets)
        self._buckets, self._ids, self._exact = buckets, ids, {}
        self._head = ids[0] if ids else _INF
        rebuild = getattr(self._evictor, "rebuild", None)
        if rebuild is not None:
            weigh = self._weigh
            values = {key: entry[1] for key, entry in items}
            rebuild(lambda key: 1 if weigh is None else weigh(key, values[key]))
        self._dirty = False

    @_locked
    def _check_invariants(self) -> None:
        """Raise `AssertionError` unless the dict, the index and the evictor agree (tests)."""
        items = list(self._data.items())
        finite = {key: entry[0] for key, entry in items if entry[0] != _INF}
        indexed = {key: bid for bid, bucket in self._buckets.items() for key in bucket}
        if indexed != {key: expires // 1.0 for key, expires in finite.items()}:
            msg = "the expiry index does not match the entries"
            raise AssertionError(msg)
        if list(self._ids) != sorted(self._buckets):
            msg = "the bucket ids do not match the buckets"
            raise AssertionError(msg)
        earliest = min(finite.values(), default=_INF)
        if not (
            self._head <= earliest
            and (self._head // 1.0 == self._ids[0] if self._ids else self._head == _INF)
        ):
            msg = "the head is not a lower bound of the deadlines, in the first bucket"
            raise AssertionError(msg)
        for bid, exact in self._exact.items():
            if exact.live() != sorted((finite[k], k) for k in self._buckets[bid]):
                msg = f"the ordered bucket {bid} does not match its keys"
                raise AssertionError(msg)
        for key, entry in items:
            if self._tracks_use and entry[0] != min(entry[2], entry[3]):
                msg = f"the deadlines of {key!r} disagree"
                raise AssertionError(msg)
        check = getattr(self._evictor, "check", None)
        if check is not None:
            check(items)

    # -- primitives, called with the lock held -----------------------------------------

    def _deadlines(
        self, key: str, value: Any, now: float, ttl: float | None
    ) -> tuple[float, float]:
        """Return the (write, use) deadlines of *value* written to *key* at *now*."""
        if ttl is None:
            ttl = self._fixed_ttl
            if ttl is None:
                ttl = _INF
                for policy in self._policies:
                    seconds = self._callback(policy.after_write, key, value)
                    ttl = min(ttl, _check_lifetime(seconds, policy))
        return now + ttl, self._use_deadline(key, value, now)

    def _use_deadline(self, key: str, value: Any, now: float) -> float:
        if not self._tracks_use:
            return _INF
        idle = self._fixed_idle
        if idle is not None:
            return now + idle
        idle = _INF
        for policy in self._policies:
            idle = min(idle, _check_lifetime(self._callback(policy.after_use, key, value), policy))
        return now + idle

    def _entry(self, value: Any, hard: float, soft: float) -> Entry:
        if self._tracks_use:
            return (hard if hard < soft else soft, value, hard, soft)  # noqa: FURB136
        return (hard, value)

    def _write_deadline(self, entry: Entry) -> float:
        deadline: float = entry[2] if self._tracks_use else entry[0]
        return deadline

    def _swap(self, key: str, old: Entry, new: Entry) -> None:
        """Put *new* where *old* was, in the dict and the index."""
        self._busy = True
        self._data[key] = new
        self._reindex(key, old[0], new[0])

    def _drop(self, key: str, entry: Entry, cause: RemovalCause) -> None:
        self._busy = True
        del self._data[key]
        self._unindex(key, entry[0])
        self._forget(key, entry, cause)

    def _forget(self, key: str, entry: Entry, cause: RemovalCause) -> None:
        """After *key* left the dict and the index: the evictor, the counters, the event."""
        if self._evictor is not None:
            self._evictor.remove(key)
        if cause is _EXPIRED:
            self._expirations += 1
        elif cause is RemovalCause.EVICTED:
            self._evictions += 1
        elif cause is RemovalCause.EXPLICIT:
            self._deletes += 1
            if self._tickets:
                self._loader.invalidate(key)  # a delete wins over loads started before it
        if self._on_remove is not None:
            self._events.append((key, entry[1], cause))

    def _live(self, key: str, now: float) -> Entry | None:
        """Return the live entry of *key*, dropping it first if it has expired."""
        check_key(key)
        entry = self._data.get(key)
        if entry is not None and entry[0] <= now:
            self._drop(key, entry, _EXPIRED)
            return None
        return entry

    def _used(self, key: str, entry: Entry, now: float) -> Entry:
        """Count a use of the live *entry*: LRU order and use deadline."""
        if self._tracks_use:
            soft = self._use_deadline(key, entry[1], now)
            hard = entry[2]
            new = (hard if hard < soft else soft, entry[1], hard, soft)  # noqa: FURB136
            self._swap(key, entry, new)
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
        return self._used(key, entry, now)

    def _weight(self, key: str, value: Any) -> int:
        return 1 if self._weigh is None else self._callback(self._weigh, key, value)

    def _prepare(
        self, key: str, value: Any, now: float, ttl: float | None, keep_ttl: bool
    ) -> tuple[float, float, int]:
        """Check and compute everything a write needs, changing nothing: (hard, soft, weight)."""
        weight = self._weight(key, value)
        if keep_ttl:
            current = self._data.get(key)
            if current is not None and current[0] > now:
                return self._write_deadline(current), self._use_deadline(key, value, now), weight
        hard, soft = self._deadlines(key, value, now, ttl)
        return hard, soft, weight

    def _write(  # noqa: PLR0917 -- private and hot: no keywords
        self, key: str, value: Any, hard: float, soft: float, weight: int, now: float
    ) -> None:
        """Store a prepared write, replacing or dropping what was there."""
        self._busy = True
        if self._tickets:
            self._loader.invalidate(key)  # a write wins over loads that started before it
        data = self._data
        old = data.get(key)
        if old is not None and old[0] <= now:
            self._drop(key, old, _EXPIRED)  # a new key now, not a replacement
            old = None
        new = self._entry(value, hard, soft)
        data[key] = new
        if old is None:
            self._index(key, new[0])
        else:
            self._reindex(key, old[0], new[0])
            if self._on_remove is not None:
                self._events.append((key, old[1], _REPLACED))
        if self._evictor is not None:
            self._evictor.add(key, weight)
        self._sets += 1

    def _trim(self, now: float) -> None:
        """Purge a few expired entries, then evict until within the bound."""
        self._purge(now)
        evictor = self._evictor
        if evictor is None:
            return
        while (victim := evictor.victim()) is not None:
            if self._head > now or not self._expire_first(now):  # expired ones go first
                self._drop(victim, self._data[victim], RemovalCause.EVICTED)

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
                return entry[1]
        return self.get_locked(key, default)

    @_locked
    def get_locked(self, key: str, default: Any = None) -> Any:
        """`get`, under the lock: for expired entries, use deadlines and bad keys."""
        entry = self._read(key, self._now())
        return default if entry is None else entry[1]

    @_locked
    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return the live values of *keys*. See `MemoryStore.get_many`."""
        keys = _keys(keys)
        now = self._now()
        found = {}
        for key in keys:
            entry = self._read(key, now)
            if entry is not None:
                found[key] = entry[1]
        return found

    def get_or_set(
        self,
        key: str,
        factory: Callable[[], T],
        *,
        ttl: TTLArg = None,
        refresh_after: float | None = None,
        on_store_error: OnStoreError = "fail_open",
    ) -> T:
        """Return the value of *key*, or load it once for all threads. See `MemoryStore.get_or_set`.

        *factory* must be a plain function here; threads waiting for one key share its
        single call.
        """
        result: T = self._loader.get_or_set_sync(
            self, key, factory, ttl=ttl, refresh_after=refresh_after, on_store_error=on_store_error
        )
        return result

    @_locked
    def has(self, key: str) -> bool:
        """Return whether *key* is live. See `MemoryStore.has`."""
        return self._live(key, self._now()) is not None

    @_locked
    def ttl(self, key: str) -> float | None:
        """Return the seconds *key* has left. See `MemoryStore.ttl`."""
        now = self._now()
        entry = self._live(key, now)
        if entry is None:
            return None
        remaining: float = entry[0] - now
        return remaining

    @_locked
    def keys(self) -> Iterator[str]:
        """Iterate over a snapshot of the live keys. See `MemoryStore.keys`."""
        now = self._now()
        # list() copies in one step: lock-free hits may reorder the dict meanwhile.
        live = [key for key, entry in list(self._data.items()) if entry[0] > now]
        return iter(live)

    @_locked
    def __len__(self) -> int:
        """Return the number of live entries. See `MemoryStore.__len__`."""
        return len(self._data) - self._expired_count(self._now())

    @_locked
    def stats(self) -> Stats:
        """Return a snapshot of the counters. See `MemoryStore.stats`."""
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
            size=len(self._data) - self._expired_count(self._now()),
        )

    # -- writes ------------------------------------------------------------------------

    def set(  # noqa: C901, PLR0912, PLR0915 -- the hot path, written out on purpose
        self, key: str, value: Any, *, ttl: TTLArg = None, keep_ttl: bool = False
    ) -> None:
        """Store *value* under *key*. See `MemoryStore.set`."""
        if ttl is None:
            seconds = None
        elif ttl.__class__ is float and ttl > 0:
            seconds = ttl
        else:
            seconds = ttl_seconds(ttl)
        if keep_ttl or not self._simple or key.__class__ is not str:
            self._set_slow(key, value, seconds, keep_ttl)
            return
        # The common case: TTL policies, a plain LRU or none. _locked, _write and _trim
        # written out, because set is hot; keep them alike.
        if self._calling is not None and self._calling == threading.get_ident():
            raise _reentered()
        lock = self._lock
        lock.acquire()  # not `with`: that costs twice as much here
        try:
            if self._dirty:
                self._rebuild()
            now = time.monotonic() if self._default_clock else self._clock()
            if now != now:  # NaN  # noqa: PLR0124
                raise _nan_clock(self._clock)  # noqa: TRY301
            hard = now + (self._fixed_ttl if seconds is None else seconds)  # type: ignore[operator]
            if self._tickets:
                self._loader.invalidate(key)  # a write wins over loads that started before it
            data = self._data
            old = data.get(key)
            if old is not None and old[0] <= now:
                self._drop(key, old, _EXPIRED)  # a new key now, not a replacement
                old = None
            if old is None:
                data[key] = (hard, value)
                self._index(key, hard)
            else:
                data[key] = (hard, value)
                expires = old[0]
                # _reindex inlined for two finite deadlines in plain buckets.
                if expires == _INF or hard == _INF or self._exact:  # noqa: PLR1714
                    self._reindex(key, expires, hard)
                elif (old_id := expires // 1.0) != (new_id := hard // 1.0):
                    buckets = self._buckets
                    del buckets[old_id][key]
                    bucket = buckets.get(new_id)
                    if bucket is None:
                        self._index(key, hard)
                    else:
                        bucket[key] = None
                        if hard < self._head:  # noqa: PLR1730
                            self._head = hard
                if self._on_remove is not None:
                    self._events.append((key, old[1], _REPLACED))
                if self._max_size is not None:
                    data.move_to_end(key)  # type: ignore[attr-defined]
            self._sets += 1
            add = self._add
            if add is not None:
                add(key, 1)
            max_size = self._bound
            if max_size is not None and len(data) > max_size:
                self._trim(now)
            elif self._head <= now:
                self._purge(now)
        except BaseException:
            self._dirty = True  # maybe half-way: rebuilt by the next operation
            raise
        finally:
            events: list[_Event] | None = self._events  # under the lock: this operation's
            if events:
                self._events = []
            else:
                events = None  # the shared empty list: others may fill it once released
            lock.release()
            if events is not None:
                self._notify(events)

    @_locked
    def _store_load(self, key: str, value: Any, ttl: TTLArg, ticket: Any) -> None:
        """Store a load's result (or delete the key for `DELETE`), unless *ticket* is stale.

        Under the lock, so that no write can come between the check and the store.
        """
        if ticket.stale:
            return
        now = self._now()
        if value is DELETE:
            entry = self._live(key, now)
            if entry is not None:
                self._drop(key, entry, RemovalCause.EXPLICIT)
            return
        hard, soft, weight = self._prepare(key, value, now, ttl_seconds(ttl), False)
        self._write(key, value, hard, soft, weight, now)
        self._trim(now)

    @_locked
    def _write_ttl(self, key: str) -> float | None:
        """The seconds left before the write deadline of a live *key*, or ``None``."""
        now = self._now()
        entry = self._live(key, now)
        if entry is None:
            return None
        return self._write_deadline(entry) - now

    @_locked
    def _set_slow(self, key: str, value: Any, seconds: float | None, keep_ttl: bool) -> None:
        check_key(key)
        if keep_ttl and seconds is not None:
            msg = "set() takes a ttl or keep_ttl=True, not both (Redis refuses PX with KEEPTTL)"
            raise ValueError(msg)
        now = self._now()
        hard, soft, weight = self._prepare(key, value, now, seconds, keep_ttl)
        self._write(key, value, hard, soft, weight, now)
        self._trim(now)

    @_locked
    def set_many(self, mapping: Mapping[str, Any], *, ttl: TTLArg = None) -> None:
        """Store every item of *mapping*, all or nothing. See `MemoryStore.set_many`."""
        items = list(mapping.items())
        for key, _ in items:
            check_key(key)
        seconds = ttl_seconds(ttl)
        now = self._now()
        writes = [
            (key, value, *self._prepare(key, value, now, seconds, False)) for key, value in items
        ]
        for key, value, hard, soft, weight in writes:
            self._write(key, value, hard, soft, weight, now)
        self._trim(now)

    @_locked
    def add(self, key: str, value: Any, *, ttl: TTLArg = None) -> bool:
        """Store *value* only if *key* is absent. See `MemoryStore.add`."""
        check_key(key)
        seconds = ttl_seconds(ttl)
        now = self._now()
        current = self._data.get(key)
        if current is not None and current[0] > now:
            return False
        hard, soft, weight = self._prepare(key, value, now, seconds, False)
        self._write(key, value, hard, soft, weight, now)
        self._trim(now)
        return True

    @_locked
    def incr(self, key: str, delta: int = 1) -> int:
        """Add *delta* to the integer at *key*. See `MemoryStore.incr`."""
        check_key(key)
        if not isinstance(delta, int) or isinstance(delta, bool):
            msg = f"delta must be an int, not {type(delta).__name__}"
            raise TypeError(msg)
        now = self._now()
        entry = self._data.get(key)
        if entry is None or entry[0] <= now:
            value = delta
        else:
            current = entry[1]
            if not isinstance(current, int) or isinstance(current, bool):
                msg = f"the value of {key!r} is a {type(current).__name__}, not an int"
                raise TypeError(msg)
            value = current + delta
        hard, soft, weight = self._prepare(key, value, now, None, True)
        self._write(key, value, hard, soft, weight, now)
        self._trim(now)
        return value

    @_locked
    def update(
        self,
        key: str,
        fn: Callable[[Any], Any],
        *,
        ttl: TTLArg | Callable[[Any], TTLArg] = None,
        keep_ttl: bool = False,
    ) -> Any:
        """Replace the value of *key* by ``fn(value)``, atomically. See `MemoryStore.update`."""
        check_key(key)
        computed = callable(ttl)
        seconds = None if computed else ttl_seconds(ttl)  # type: ignore[arg-type]
        if keep_ttl and (computed or seconds is not None):
            msg = "update() takes a ttl or keep_ttl=True, not both"
            raise ValueError(msg)
        now = self._now()
        entry = self._live(key, now)
        new = self._callback(fn, None if entry is None else entry[1])
        if new is None:
            if entry is not None:
                self._drop(key, entry, RemovalCause.EXPLICIT)
            return None
        if computed:
            seconds = ttl_seconds(self._callback(ttl, new))  # type: ignore[arg-type]
        hard, soft, weight = self._prepare(key, new, now, seconds, keep_ttl)
        self._write(key, new, hard, soft, weight, now)
        self._trim(now)
        return new

    @_locked
    def _set_write_deadline(self, key: str, ttl: float) -> bool:
        """Give a live *key* the write deadline *ttl* from now, unless it is the same ∞."""
        now = self._now()
        entry = self._live(key, now)
        if entry is None or (ttl == _INF and self._write_deadline(entry) == _INF):
            return False
        soft = entry[3] if self._tracks_use else _INF
        self._swap(key, entry, self._entry(entry[1], now + ttl, soft))
        return True

    def expire(self, key: str, ttl: float | timedelta) -> bool:
        """Give *key* a new write deadline. See `MemoryStore.expire`."""
        check_key(key)
        return self._set_write_deadline(key, as_seconds(ttl, what="ttl"))

    def persist(self, key: str) -> bool:
        """Remove the write deadline of *key*. See `MemoryStore.persist`."""
        return self._set_write_deadline(key, _INF)

    @_locked
    def touch(self, key: str) -> bool:
        """Count a use of *key*. See `MemoryStore.touch`."""
        now = self._now()
        entry = self._live(key, now)
        if entry is None:
            return False
        self._used(key, entry, now)
        return True

    # -- removals ----------------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Remove *key*. See `MemoryStore.delete`."""
        return self.pop(key, _MISSING) is not _MISSING

    @_locked
    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove every key of *keys*. See `MemoryStore.delete_many`."""
        keys = _keys(keys)
        now = self._now()
        removed = 0
        for key in keys:
            entry = self._live(key, now)
            if self._tickets:
                self._loader.invalidate(key)
            if entry is not None:
                self._drop(key, entry, RemovalCause.EXPLICIT)
                removed += 1
        return removed

    @_locked
    def pop(self, key: str, default: Any = None) -> Any:
        """Remove *key* and return its value. See `MemoryStore.pop`."""
        entry = self._live(key, self._now())
        if self._tickets:
            self._loader.invalidate(key)  # present or not: a delete after a load started
        if entry is None:
            return default
        self._drop(key, entry, RemovalCause.EXPLICIT)
        return entry[1]

    @_locked
    def clear(self) -> None:
        """Remove every entry. See `MemoryStore.clear`."""
        now = self._now()
        for key in list(self._tickets):
            self._loader.invalidate(key)
        for key, entry in list(self._data.items()):
            expired = entry[0] <= now
            self._drop(key, entry, _EXPIRED if expired else RemovalCause.EXPLICIT)

    @_locked
    def purge_expired(self) -> int:
        """Remove every expired entry now. See `MemoryStore.purge_expired`."""
        now = self._now()
        if self._head > now:
            return 0
        data, buckets = self._data, self._buckets
        boundary = now // 1.0
        expired = [
            (data[key][0], key)
            for bucket_id in self._ids.islice(0, self._ids.bisect_left(boundary))
            for key in buckets[bucket_id]
        ]
        expired.sort()
        if boundary in buckets:
            expired += self._ordered(boundary).expired(now)
        for _, key in expired:
            self._drop(key, data[key], _EXPIRED)
        return len(expired)


_MISSING: Any = object()
