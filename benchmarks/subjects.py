"""The stores under test, each behind the same small adapter.

An adapter builds a store holding the keys of one scenario and hands back its *bound*
operations, so that the timed loops call the store's own methods with no wrapper in
between. A sync subject's ``get`` is timed in a plain loop, an async one's with ``await``.
"""

from __future__ import annotations

import asyncio
import math
import time

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


LONG_TTL = 3600.0


@dataclass
class Ops:
    """The bound operations of one built store."""

    get: Callable[[str], Any]
    set: Callable[[str, Any, float], Any]  # key, value, ttl seconds
    size: Callable[[], int]
    is_async: bool
    hit: Callable[[Any], bool] = lambda result: result is not None


@dataclass
class Subject:
    name: str
    build: Callable[[int], Ops]  # bound: the most entries, or the keyspace for unbounded ones
    bounded: bool  # honours a max size
    per_key_ttl: bool


def _lapse(n: int) -> Ops:
    from lapse import LRU, TTL, MemoryStore  # noqa: PLC0415

    store = MemoryStore(expiry=TTL(LONG_TTL), eviction=LRU(n))

    def set_(key: str, value: Any, ttl: float) -> Any:
        return store.set(key, value, ttl=ttl)

    return Ops(store.get, set_, store.__len__, is_async=True)


def _lapse_with(policy_name: str) -> Callable[[int], Ops]:
    """lapse with another eviction policy than LRU, to compare its get and set with LRU's."""

    def build(n: int) -> Ops:
        import lapse  # noqa: PLC0415

        policy = getattr(lapse, policy_name)
        store = lapse.MemoryStore(expiry=lapse.TTL(LONG_TTL), eviction=policy(n))

        def set_(key: str, value: Any, ttl: float) -> Any:
            return store.set(key, value, ttl=ttl)

        return Ops(store.get, set_, store.__len__, is_async=True)

    return build


def _lapse_sync(n: int) -> Ops:
    from lapse import LRU, TTL, MemoryStore  # noqa: PLC0415

    sync = MemoryStore(expiry=TTL(LONG_TTL), eviction=LRU(n)).sync

    def set_(key: str, value: Any, ttl: float) -> Any:
        return sync.set(key, value, ttl=ttl)

    return Ops(sync.get, set_, sync.__len__, is_async=False)


def _dict(n: int) -> Ops:
    data: dict[str, Any] = {}

    def set_(key: str, value: Any, ttl: float) -> None:
        data[key] = value

    return Ops(data.get, set_, data.__len__, is_async=False)


def _async_dict(n: int) -> Ops:
    data: dict[str, Any] = {}

    async def get(key: str) -> Any:
        return data.get(key)

    async def set_(key: str, value: Any, ttl: float) -> None:
        data[key] = value

    return Ops(get, set_, data.__len__, is_async=True)


def _cachetools_tlru(n: int) -> Ops:
    import cachetools  # noqa: PLC0415

    def ttu(key: str, value: tuple[Any, float], now: float) -> float:
        return now + value[1]

    cache = cachetools.TLRUCache(maxsize=n, ttu=ttu, timer=time.monotonic)

    def get(key: str) -> Any:
        found = cache.get(key)
        return None if found is None else found[0]

    def set_(key: str, value: Any, ttl: float) -> None:
        cache[key] = (value, ttl)

    # TLRUCache stores the value with its TTL; get unwraps it, as a user would.
    return Ops(get, set_, cache.__len__, is_async=False)


def _cachetools_ttl(n: int) -> Ops:
    import cachetools  # noqa: PLC0415

    cache: Any = cachetools.TTLCache(maxsize=n, ttl=LONG_TTL, timer=time.monotonic)

    def set_(key: str, value: Any, ttl: float) -> None:
        cache[key] = value

    return Ops(cache.get, set_, cache.__len__, is_async=False)


def _cachetools_lru(n: int) -> Ops:
    import cachetools  # noqa: PLC0415

    cache: Any = cachetools.LRUCache(maxsize=n)

    def set_(key: str, value: Any, ttl: float) -> None:
        cache[key] = value

    return Ops(cache.get, set_, cache.__len__, is_async=False)


def _cachebox_lru(n: int) -> Ops:
    import cachebox  # noqa: PLC0415

    cache = cachebox.LRUCache(maxsize=n)

    def set_(key: str, value: Any, ttl: float) -> None:
        cache.insert(key, value)

    return Ops(cache.get, set_, cache.__len__, is_async=False)


def _cachebox_vttl(n: int) -> Ops:
    import cachebox  # noqa: PLC0415

    cache = cachebox.VTTLCache(maxsize=n)
    insert = cache.insert

    def set_(key: str, value: Any, ttl: float) -> None:
        insert(key, value, ttl)

    return Ops(cache.get, set_, cache.__len__, is_async=False)


def _theine(n: int) -> Ops:
    from theine import Cache  # noqa: PLC0415

    cache = Cache(n)

    def set_(key: str, value: Any, ttl: float) -> None:
        cache.set(key, value, timedelta(seconds=ttl))

    return Ops(cache.get, set_, cache.__len__, is_async=False, hit=lambda result: bool(result[1]))


def _aiocache(n: int) -> Ops:
    from aiocache import SimpleMemoryCache  # noqa: PLC0415

    cache = SimpleMemoryCache()

    def set_(key: str, value: Any, ttl: float) -> Any:
        return cache.set(key, value, ttl=ttl)

    return Ops(cache.get, set_, lambda: len(cache._cache), is_async=True)


def _cashews(n: int) -> Ops:
    from cashews import Cache  # noqa: PLC0415

    cache = Cache()
    cache.setup(f"mem://?size={n}&check_interval={LONG_TTL}")

    def set_(key: str, value: Any, ttl: float) -> Any:
        return cache.set(key, value, expire=ttl)

    def size() -> int:
        backend = next(iter(cache._backends.values()))
        return len(backend.store)

    return Ops(cache.get, set_, size, is_async=True)


def _cashews_raw(n: int) -> Ops:
    from cashews.backends.memory import Memory  # noqa: PLC0415

    backend = Memory(size=n, check_interval=LONG_TTL)

    def set_(key: str, value: Any, ttl: float) -> Any:
        return backend.set(key, value, expire=ttl)

    return Ops(backend.get, set_, lambda: len(backend.store), is_async=True)


SUBJECTS = {
    s.name: s
    for s in [
        Subject("lapse MemoryStore (TTL+LRU)", _lapse, bounded=True, per_key_ttl=True),
        Subject("lapse store.sync (TTL+LRU)", _lapse_sync, bounded=True, per_key_ttl=True),
        *(
            Subject(f"lapse MemoryStore (TTL+{p})", _lapse_with(p), bounded=True, per_key_ttl=True)
            for p in ("SIEVE", "S3FIFO", "WTinyLFU")
        ),
        Subject("dict floor", _dict, bounded=False, per_key_ttl=False),
        Subject("async floor", _async_dict, bounded=False, per_key_ttl=False),
        Subject("cachetools TLRUCache", _cachetools_tlru, bounded=True, per_key_ttl=True),
        Subject("cachetools TTLCache", _cachetools_ttl, bounded=True, per_key_ttl=False),
        Subject("cachetools LRUCache", _cachetools_lru, bounded=True, per_key_ttl=False),
        Subject("cachebox LRUCache", _cachebox_lru, bounded=True, per_key_ttl=False),
        Subject("cachebox VTTLCache", _cachebox_vttl, bounded=True, per_key_ttl=True),
        Subject("theine Cache", _theine, bounded=True, per_key_ttl=True),
        Subject("aiocache SimpleMemoryCache", _aiocache, bounded=False, per_key_ttl=True),
        Subject("cashews mem://", _cashews, bounded=True, per_key_ttl=True),
        Subject("cashews Memory (raw)", _cashews_raw, bounded=True, per_key_ttl=True),
    ]
}


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


INF = math.inf
