"""The in-memory engine's core: its state, its primitives, and the hot `get` and `set`.

`Engine` holds all the state of a store; `lapse.SyncMemoryStore` (in `_sync_store`)
adds the other operations, `lapse.MemoryStore` is the async face, and ``store.sync``
hands out the engine itself. The expiry index is `ExpiryIndex`, a base class; how the
policies fold into the hot paths is in `_policies`.

Entries (tuples, held in ``_data`` by key):

- ``(expires, value)`` when every expiry policy is a `TTL` (or there is none);
- ``(expires, value, hard, soft)`` otherwise, where *hard* is the write deadline,
  *soft* the use deadline and ``expires == min(hard, soft)``.

``_data`` is the truth; the index and the evictor are derived from it. If an operation is
interrupted half-way (``KeyboardInterrupt``, ``MemoryError``, ``RecursionError``), the
store marks itself dirty and the next operation rebuilds what is derived before it
starts, so the store stays consistent and usable.

With an eviction policy the dict is an `OrderedDict`, and it is also the evictor's key
order (for `LRU`, the recency order), so keys are held once. The evictor is called on
read (``use``, lock-free), on write (``add``), on removal (``remove``) and to pick a
victim (``victim``); a plain `LRU` is inlined into `set` as a ``move_to_end``.

Locking: every operation that changes anything holds the lock. A `get` that misses, or
hits on a store without use deadlines, takes no lock: one dict lookup, one comparison
with the clock, the evictor's ``use`` and one ``next()`` on an `itertools.count`, each a
single step that is safe between threads; an expired entry goes on under the lock.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import threading
import time

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Concatenate, ParamSpec, TypeAlias, TypeVar

from ._clock import Clock, monotonic
from ._expiry_index import _COARSE, _SPARE_SLOTS, ExpiryIndex
from ._loader import DELETE, Loader
from ._policies import (
    EvictionPolicy,
    Evictor,
    ExpiryPolicy,
    check_lifetime,
    check_store_arguments,
    expiry_tuple,
    fold_eviction,
    fold_expiry,
    ttl_seconds,
)
from ._store import Bool, Key, RemovalCause, bad_key
from .exceptions import ReentrantCallError


T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="Engine")
_INF = math.inf
_log = logging.getLogger("lapse")
_EXPIRED = RemovalCause.EXPIRED
_REPLACED = RemovalCause.REPLACED

Entry: TypeAlias = tuple[Any, ...]
OnRemove: TypeAlias = Callable[[str, Any, RemovalCause], object]
"""``on_remove(key, value, cause)``, called after each removal; its result is ignored."""
TTLArg: TypeAlias = "float | timedelta | None"
Expiry: TypeAlias = "ExpiryPolicy | tuple[ExpiryPolicy, ...] | None"
_Event: TypeAlias = tuple[str, Any, RemovalCause]


def _nan_clock(clock: object) -> ValueError:
    return ValueError(f"the clock {clock!r} returned NaN; a clock must return seconds")


def _reentered() -> ReentrantCallError:
    return ReentrantCallError(
        "a weigher, an expiry policy or an update() function must not use the store that calls it "
        "(it runs under the store's lock, in the middle of a write)"
    )


def _weight_of(weigh: Callable[[str, Any], int] | None, values: dict[str, Any], key: str) -> int:
    return 1 if weigh is None else weigh(key, values[key])


def _locked(
    method: Callable[Concatenate[S, P], T],
) -> Callable[Concatenate[S, P], T]:
    """Run *method* holding the store's lock, then report its removals once released.

    The lock is a C-level context manager, so it is released even if an exception lands
    anywhere (``KeyboardInterrupt`` included). An exception in the middle of a change marks
    the store dirty; whoever takes the lock next rebuilds the index before going on.
    Callbacks run outside the lock, so that they may use the store; each operation reports
    exactly the removals it made, taken while the lock is held.
    """

    @functools.wraps(method)
    def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
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


class Engine(ExpiryIndex):
    """The state of an in-memory store, its primitives and its hot paths.

    Not used alone: `SyncMemoryStore` is this with every other operation. The primitives
    (``_live``, ``_read``, ``_prepare``, ``_write``, ``_drop``, ``_trim``) run under the
    lock, which ``@_locked`` holds; `get` and `set` inline them for the common cases.
    A plain class with slots (mypyc compiles it in the compiled build).
    """

    __slots__ = (
        "_add", "_bound", "_calling", "_clock", "_default_clock", "_deletes", "_dirty",
        "_events", "_eviction", "_evictions", "_evictor", "_expirations", "_expiry",
        "_fixed_idle", "_fixed_ttl", "_hits", "_loader", "_lock", "_misses", "_on_remove",
        "_policies", "_sets", "_simple", "_tickets", "_tracks_use", "_use", "_weigh",
    )  # fmt: skip

    _expiry: Expiry
    _eviction: EvictionPolicy | None
    _clock: Clock
    _on_remove: OnRemove | None
    _policies: tuple[ExpiryPolicy, ...]
    _tracks_use: bool
    _default_clock: bool
    _fixed_ttl: float | None  # the write lifetime, if constant
    _fixed_idle: float | None  # the use lifetime, if constant
    _evictor: Evictor | None
    _use: Callable[[str], None] | None
    _weigh: Callable[[str, Any], int] | None
    _bound: int | None  # the entry bound of an unweighted policy
    _add: Callable[[str, int], None] | None  # its evictor's add
    _simple: bool  # set's fast path applies
    _lock: threading.Lock
    _calling: int | None  # the thread in a callback
    _dirty: bool  # derived state needs a rebuild
    _events: list[_Event]
    _hits: itertools.count[int]
    _misses: itertools.count[int]
    _sets: int
    _deletes: int
    _evictions: int
    _expirations: int
    _loader: Loader
    _tickets: dict[str, Any]

    def __init__(
        self,
        *,
        expiry: Expiry = None,
        eviction: EvictionPolicy | None = None,
        clock: Clock = monotonic,
        on_remove: OnRemove | None = None,
    ) -> None:
        super().__init__()
        self._policies = policies = expiry_tuple(expiry)
        check_store_arguments(eviction, clock, on_remove)
        self._expiry, self._eviction, self._clock, self._on_remove = (
            expiry,
            eviction,
            clock,
            on_remove,
        )
        # The default clock is read inline: time.monotonic, looked up at call time as
        # monotonic() does, so freezegun still moves it.
        self._default_clock = clock is monotonic
        self._tracks_use, self._fixed_ttl, self._fixed_idle = fold_expiry(policies)
        (
            self._data,
            self._evictor,
            self._use,
            self._weigh,
            self._bound,
            self._add,
        ) = fold_eviction(eviction)
        # set's fast path: constant lifetimes (TTL policies) and no weigher to call.
        self._simple = self._weigh is None and not self._tracks_use
        self._lock = threading.Lock()
        self._calling = None
        self._dirty = False
        self._events = []
        self._hits = itertools.count()
        self._misses = itertools.count()
        self._sets = self._deletes = self._evictions = self._expirations = 0
        # Our async get never yields, so a load need not read the store again after a miss.
        # get_or_set and @cached find this loader by its name (see loader_for).
        self._loader = Loader(
            self._clock,
            recheck=False,
            lifetime=self._fixed_ttl,
            store_load=self._store_load,
            write_ttl=self._write_ttl,
        )
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

    # -- derived state -------------------------------------------------------------------

    def _rebuild(self) -> None:
        """Derive the index (and the evictor's state) from the entries again."""
        items = list(self._data.items())  # one step: lock-free reads may reorder the dict
        self._index_from(items)
        rebuild = getattr(self._evictor, "rebuild", None)
        if rebuild is not None:
            weigh = self._weigh
            values = {key: entry[1] for key, entry in items}
            rebuild(functools.partial(_weight_of, weigh, values))
        self._dirty = False

    @_locked
    def _check_invariants(self) -> None:
        """Raise `AssertionError` unless the dict, the index and the evictor agree (tests)."""
        items = list(self._data.items())
        self._check_index(items)
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
                    ttl = min(ttl, check_lifetime(seconds, policy))
        return now + ttl, self._use_deadline(key, value, now)

    def _use_deadline(self, key: str, value: Any, now: float) -> float:
        if not self._tracks_use:
            return _INF
        idle = self._fixed_idle
        if idle is not None:
            return now + idle
        idle = _INF
        for policy in self._policies:
            idle = min(idle, check_lifetime(self._callback(policy.after_use, key, value), policy))
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

    def _live(self, key: Key, now: float) -> Entry | None:
        """Return the live entry of *key*, dropping it first if it has expired."""
        if not isinstance(key, str):
            raise bad_key(key)
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
        self, key: str, value: Any, now: float, ttl: float | None, keep_ttl: Bool
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

    def get(self, key: Key, default: Any = None) -> Any:
        """Return the value of *key*, or *default*. See `MemoryStore.get`."""
        # A miss, and a hit on a store without use deadlines: no lock, no allocation.
        # MemoryStore.get inlines the same lines; keep them alike.
        data: dict[Any, Entry] = self._data  # any key: a bad one is refused under the lock
        try:
            entry = data.get(key)
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
                use: Callable[[Any], None] | None = self._use
                if use is not None:
                    try:  # noqa: SIM105 -- suppress() costs a context manager per hit
                        use(key)
                    except KeyError:  # removed by another thread since the lookup
                        pass
                next(self._hits)
                return entry[1]
        return self._get_locked(key, default)

    @_locked
    def _get_locked(self, key: Key, default: Any = None) -> Any:
        """`get`, under the lock: for expired entries, use deadlines and bad keys."""
        if not isinstance(key, str):
            raise bad_key(key)
        entry = self._read(key, self._now())
        return default if entry is None else entry[1]

    # -- writes ------------------------------------------------------------------------

    def set(  # noqa: C901, PLR0912, PLR0915 -- the hot path, written out on purpose
        self, key: Key, value: Any, *, ttl: TTLArg = None, keep_ttl: Bool = False
    ) -> None:
        """Store *value* under *key*. See `MemoryStore.set`."""
        if ttl is None:
            seconds = None
        elif ttl.__class__ is float and ttl > 0:
            seconds = ttl
        else:
            seconds = ttl_seconds(ttl)
        if keep_ttl or not self._simple or not isinstance(key, str):
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
            if self._default_clock:  # time.monotonic() is never NaN
                now = time.monotonic()
            else:
                now = self._clock()
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
                add = self._add
                if add is not None:  # LRU's order has it at the newest end already
                    add(key, 1)
            else:
                data[key] = (hard, value)
                expires = old[0]
                # _reindex inlined for two finite deadlines, while no bucket is ordered
                # or being moved: far ones are appended to a coarse list (the old entry
                # goes stale there), near ones moved between one-second buckets.
                if expires == _INF or hard == _INF or self._exact or self._remnant:  # noqa: PLR1714
                    self._reindex(key, expires, hard)
                elif (
                    old_id := expires // 1.0
                    if expires < (fine_end := self._fine_end)
                    else expires // _COARSE * _COARSE
                ) == (new_id := hard // 1.0 if hard < fine_end else hard // _COARSE * _COARSE):
                    if hard < self._head and hard < fine_end:
                        self._head = hard
                elif hard >= fine_end:
                    if expires < fine_end:
                        del self._buckets[old_id][key]
                    coarse = self._coarse.get(new_id)
                    if coarse is None or self._coarse_slots >= 2 * len(data) + _SPARE_SLOTS:
                        self._index_coarse(key, new_id)
                    else:
                        coarse.append(key)
                        self._coarse_slots += 1
                else:
                    buckets = self._buckets
                    if expires < fine_end:
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
                use = self._use
                if use is not None:  # unweighted, a rewrite is a use: LRU's move_to_end
                    use(key)
            self._sets += 1
            max_size = self._bound
            if max_size is not None and len(data) > max_size:
                self._trim(now)
            elif self._head <= now or self._due <= now:
                self._purge(now)
        except BaseException:
            self._dirty = True  # maybe half-way: rebuilt by the next operation
            raise
        finally:
            events = self._events  # under the lock: this operation's
            if events:
                self._events = []
                lock.release()
                self._notify(events)
            else:  # the shared empty list: others may fill it once released
                lock.release()

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
    def _set_slow(self, key: Key, value: Any, seconds: float | None, keep_ttl: Bool) -> None:
        if not isinstance(key, str):
            raise bad_key(key)
        if keep_ttl and seconds is not None:
            msg = "set() takes a ttl or keep_ttl=True, not both (Redis refuses PX with KEEPTTL)"
            raise ValueError(msg)
        now = self._now()
        hard, soft, weight = self._prepare(key, value, now, seconds, keep_ttl)
        self._write(key, value, hard, soft, weight, now)
        self._trim(now)
