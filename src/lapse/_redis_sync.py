"""`SyncRedisStore`: `RedisStore`'s operations on redis-py's sync client (``store.sync``).

The operations are `RedisStore`'s own (``_op_*``, generators of driver calls, see
`_Call`); this module only drives them on threads: a connection limit, retries of the
calls that are safe to repeat, and lapse's errors, as the asyncio face does.
"""

from __future__ import annotations

import threading
import time

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import redis.exceptions as redis_errors

from ._loader import OnStoreError
from ._redis import _ATTEMPTS, _DRIVER_ERRORS, _PAUSE, _Call
from ._sansio import Op, drive
from ._store import Stats
from .exceptions import StoreError


if TYPE_CHECKING:
    from ._redis import RedisStore, Serializer

T = TypeVar("T")


class SyncRedisStore:
    """A `RedisStore` as plain methods, for threads and code without an event loop.

    Get it as ``RedisStore(...).sync``: the same prefix, serializer, expiry policies,
    timeout, errors and counters (`stats`) as the store it comes from, with its own
    connection pool of the same size. Every method behaves, costs and raises as the
    `RedisStore` coroutine of the same name, and as the `SyncMemoryStore` method of the
    same name does in memory. Safe to use from any number of threads at once.

    The timeout covers waiting for a connection and the retries; each attempt is bounded
    by the client's socket timeout (half the call's with a *url*), and no retry starts
    once the timeout has passed.
    """

    __slots__ = ("_slots", "_store", "client")

    def __init__(self, store: RedisStore, client: Any) -> None:
        self._store = store
        self.client = client
        self._slots = threading.BoundedSemaphore(store.max_connections)

    def __repr__(self) -> str:
        return f"{self._store!r}.sync"

    @property
    def prefix(self) -> str:
        """The prefix of every key, the store's."""
        return self._store.prefix

    @property
    def serializer(self) -> Serializer:
        """The store's serializer."""
        return self._store.serializer

    @property
    def timeout(self) -> float:
        """Seconds each call may take, the store's."""
        return self._store.timeout

    # -- the driver --------------------------------------------------------------------

    def _run(self, step: _Call) -> Any:
        store = self._store
        deadline = time.monotonic() + store.timeout
        if not self._slots.acquire(timeout=store.timeout):
            raise store._error(step.what, step.unsure, TimeoutError())  # noqa: SLF001
        try:
            attempts = _ATTEMPTS if step.repeat else 1
            for attempt in range(1, attempts + 1):
                try:
                    return step.call(self.client)
                except _DRIVER_ERRORS:
                    if attempt == attempts or time.monotonic() >= deadline:
                        raise
        except (*_DRIVER_ERRORS, redis_errors.RedisError) as e:
            raise store._error(step.what, step.unsure, e) from e  # noqa: SLF001
        finally:
            self._slots.release()
        raise AssertionError  # pragma: no cover -- the loop returns or raises

    def _drive(self, op: Op[T]) -> T:
        return drive(op, self._step, StoreError)

    def _step(self, step: Any) -> Any:
        return None if step is _PAUSE else self._run(step)

    # -- reads -------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of *key*, or *default*. See `RedisStore.get`."""
        return self._drive(self._store._op_get(key, default))  # noqa: SLF001

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return the live values of *keys*. See `RedisStore.get_many`."""
        return self._drive(self._store._op_get_many(keys))  # noqa: SLF001

    def has(self, key: str) -> bool:
        """Return whether *key* exists. See `RedisStore.has`."""
        return self._drive(self._store._op_has(key))  # noqa: SLF001

    def ttl(self, key: str) -> float | None:
        """Seconds left. See `RedisStore.ttl`."""
        return self._drive(self._store._op_ttl(key))  # noqa: SLF001

    def keys(self) -> Iterator[str]:
        """Iterate over this store's keys (SCAN). See `RedisStore.keys`."""
        store = self._store
        pages = store._op_scan()  # noqa: SLF001
        reply: Any = None
        while True:
            try:
                step = pages.send(reply)
            except StopIteration:
                return
            reply = None
            if isinstance(step, list):
                yield from store._names(step)  # noqa: SLF001
            else:
                reply = self._run(step)

    def __len__(self) -> int:
        """The number of this store's keys: a SCAN of the prefix, so `O(n)` for *n* keys
        of the database (Redis keeps no count per prefix); keys expiring meanwhile may or
        may not be counted."""
        return sum(1 for _ in self.keys())

    def stats(self) -> Stats:
        """The counters, shared with the store. See `RedisStore.stats`."""
        return self._store.stats()

    # -- writes ------------------------------------------------------------------------

    def set(self, key: str, value: Any, *, ttl: Any = None, keep_ttl: bool = False) -> None:
        """Store *value*. See `RedisStore.set`."""
        self._drive(self._store._op_set(key, value, ttl, keep_ttl))  # noqa: SLF001

    def set_many(self, mapping: Mapping[str, Any], *, ttl: Any = None) -> None:
        """Store every item. See `RedisStore.set_many`."""
        self._drive(self._store._op_set_many(mapping, ttl))  # noqa: SLF001

    def add(self, key: str, value: Any, *, ttl: Any = None) -> bool:
        """Store *value* only if *key* is missing. See `RedisStore.add`."""
        return self._drive(self._store._op_add(key, value, ttl))  # noqa: SLF001

    def incr(self, key: str, delta: int = 1) -> int:
        """Add *delta* to the integer at *key*. See `RedisStore.incr`."""
        return self._drive(self._store._op_incr(key, delta))  # noqa: SLF001

    def update(
        self,
        key: str,
        fn: Callable[[Any], Any],
        *,
        ttl: Any = None,
        keep_ttl: bool = False,
    ) -> Any:
        """Replace the value of *key* by ``fn(value)``, atomically. See `RedisStore.update`."""
        return self._drive(self._store._op_update(key, fn, ttl, keep_ttl))  # noqa: SLF001

    def expire(self, key: str, ttl: float | timedelta) -> bool:
        """Give *key* a new deadline. See `RedisStore.expire`."""
        return self._drive(self._store._op_expire(key, ttl))  # noqa: SLF001

    def persist(self, key: str) -> bool:
        """Remove the deadline of *key*. See `RedisStore.persist`."""
        return self._drive(self._store._op_persist(key))  # noqa: SLF001

    def touch(self, key: str) -> bool:
        """Count a use of *key*. See `RedisStore.touch`."""
        return self._drive(self._store._op_touch(key))  # noqa: SLF001

    # -- removals ----------------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Remove *key*. See `RedisStore.delete`."""
        return self._drive(self._store._op_delete(key))  # noqa: SLF001

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove every key of *keys*. See `RedisStore.delete_many`."""
        return self._drive(self._store._op_delete_many(keys))  # noqa: SLF001

    def pop(self, key: str, default: Any = None) -> Any:
        """Remove *key* and return its value. See `RedisStore.pop`."""
        return self._drive(self._store._op_pop(key, default))  # noqa: SLF001

    def clear(self) -> None:
        """Remove this store's keys only. See `RedisStore.clear`."""
        self._drive(self._store._op_clear())  # noqa: SLF001

    def purge_expired(self) -> int:
        """Return 0: Redis removes expired keys by itself, and never returns one."""
        return 0

    # -- loading and closing -----------------------------------------------------------

    def get_or_set(
        self,
        key: str,
        factory: Callable[[], T],
        *,
        ttl: Any = None,
        refresh_after: float | None = None,
        on_store_error: OnStoreError = "fail_open",
    ) -> T:
        """Return the value of *key*, or load it once for all threads of this process.
        See `RedisStore.get_or_set`; *factory* is a plain function here."""
        result: T = self._store._loader.get_or_set_sync(  # noqa: SLF001
            self, key, factory, ttl=ttl, refresh_after=refresh_after, on_store_error=on_store_error
        )
        return result

    def close(self) -> None:
        """Close this view's connection pool (the store's `aclose` does it too)."""
        self.client.close()

    def __enter__(self) -> SyncRedisStore:  # noqa: PYI034 -- final in spirit
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
