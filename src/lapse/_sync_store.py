"""`SyncMemoryStore`: the engine with every operation of a store, as plain methods.

The hot `get` and `set`, the state and the primitives are in `Engine`
(``_engine.py``); the operations here are each a few primitives under the lock.
"""

from __future__ import annotations

import itertools

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from ._clock import as_seconds
from ._engine import Engine, TTLArg, _locked
from ._loader import OnStoreError
from ._policies import ttl_seconds
from ._store import Bool, Int, Key, RemovalCause, Stats, bad_key


T = TypeVar("T")
_INF = float("inf")
_EXPIRED = RemovalCause.EXPIRED


def _keys(keys: Iterable[object]) -> list[str]:
    checked = []
    for key in keys:  # each checked here, not by a compiled signature
        if not isinstance(key, str):
            raise bad_key(key)
        checked.append(key)
    return checked


def _count(counter: itertools.count[int]) -> int:
    """Read an `itertools.count` without advancing it."""
    return int(repr(counter)[6:-1])  # "count(42)"


class SyncMemoryStore(Engine):
    """A `MemoryStore`'s operations as plain methods: ``store.sync``.

    ``MemoryStore(...).sync`` is the same store, not a copy: the same entries, the same
    lock, the same stats and callbacks. ``SyncMemoryStore(...)`` takes the keywords of
    `MemoryStore` and checks them the same way, for code that has no event loop at all.
    Every method is safe to call from any number of threads at once, and behaves, costs
    and raises as the `MemoryStore` coroutine of the same name.
    """

    __slots__ = ()

    # -- reads -------------------------------------------------------------------------

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
        key: Key,
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
        if not isinstance(key, str):
            raise bad_key(key)
        result: T = self._loader.get_or_set_sync(
            self, key, factory, ttl=ttl, refresh_after=refresh_after, on_store_error=on_store_error
        )
        return result

    @_locked
    def has(self, key: Key) -> bool:
        """Return whether *key* is live. See `MemoryStore.has`."""
        return self._live(key, self._now()) is not None

    @_locked
    def ttl(self, key: Key) -> float | None:
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

    @_locked
    def set_many(self, mapping: Mapping[str, Any], *, ttl: TTLArg = None) -> None:
        """Store every item of *mapping*, all or nothing. See `MemoryStore.set_many`."""
        items: list[tuple[object, Any]] = list(mapping.items())
        keys = _keys([key for key, _ in items])
        seconds = ttl_seconds(ttl)
        now = self._now()
        writes = [
            (key, value, *self._prepare(key, value, now, seconds, False))
            for key, (_, value) in zip(keys, items, strict=True)
        ]
        for key, value, hard, soft, weight in writes:
            self._write(key, value, hard, soft, weight, now)
        self._trim(now)

    @_locked
    def add(self, key: Key, value: Any, *, ttl: TTLArg = None) -> bool:
        """Store *value* only if *key* is absent. See `MemoryStore.add`."""
        if not isinstance(key, str):
            raise bad_key(key)
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
    def incr(self, key: Key, delta: Int = 1) -> int:
        """Add *delta* to the integer at *key*. See `MemoryStore.incr`."""
        if not isinstance(key, str):
            raise bad_key(key)
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
        key: Key,
        fn: Callable[[Any], Any],
        *,
        ttl: TTLArg | Callable[[Any], TTLArg] = None,
        keep_ttl: Bool = False,
    ) -> Any:
        """Replace the value of *key* by ``fn(value)``, atomically. See `MemoryStore.update`."""
        if not isinstance(key, str):
            raise bad_key(key)
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
    def _set_write_deadline(self, key: Key, ttl: float) -> bool:
        """Give a live *key* the write deadline *ttl* from now, unless it is the same ∞."""
        if not isinstance(key, str):
            raise bad_key(key)
        now = self._now()
        entry = self._live(key, now)
        if entry is None or (ttl == _INF and self._write_deadline(entry) == _INF):
            return False
        soft = entry[3] if self._tracks_use else _INF
        self._swap(key, entry, self._entry(entry[1], now + ttl, soft))
        return True

    def expire(self, key: Key, ttl: float | timedelta) -> bool:
        """Give *key* a new write deadline. See `MemoryStore.expire`."""
        if not isinstance(key, str):
            raise bad_key(key)
        return self._set_write_deadline(key, as_seconds(ttl, what="ttl"))

    def persist(self, key: Key) -> bool:
        """Remove the write deadline of *key*. See `MemoryStore.persist`."""
        return self._set_write_deadline(key, _INF)

    @_locked
    def touch(self, key: Key) -> bool:
        """Count a use of *key*. See `MemoryStore.touch`."""
        if not isinstance(key, str):
            raise bad_key(key)
        now = self._now()
        entry = self._live(key, now)
        if entry is None:
            return False
        self._used(key, entry, now)
        return True

    # -- removals ----------------------------------------------------------------------

    def delete(self, key: Key) -> bool:
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
    def pop(self, key: Key, default: Any = None) -> Any:
        """Remove *key* and return its value. See `MemoryStore.pop`."""
        if not isinstance(key, str):
            raise bad_key(key)
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
        expired = self._all_expired(self._now())
        data = self._data
        for _, key in expired:
            self._drop(key, data[key], _EXPIRED)
        return len(expired)


_MISSING: Any = object()
