"""A Django cache backend on a lapse store: ``"BACKEND": "lapse.django.cache.LapseCache"``.

```python
CACHES = {
    "default": {
        "BACKEND": "lapse.django.cache.LapseCache",
        "LOCATION": "memory://",            # or "redis://127.0.0.1:6379/0"
        "TIMEOUT": 300,                      # Django's: the default lifetime
        "OPTIONS": {"max_size": 10_000},     # memory://: entries kept (SIEVE)
    }
}
```

In memory, values are kept by reference, never pickled (Django's ``LocMemCache``
pickles every value, both ways); a ``memory://name`` location is one store per process,
shared by the aliases that name it. On Redis, values go through the store's serializer
(``OPTIONS: {"serializer": "pickle"}`` for arbitrary objects; JSON by default). The
``a``-prefixed methods are native coroutines on the store, not thread wrappers.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

from lapse._eviction import SIEVE
from lapse._memory import MemoryStore


__all__ = ["LapseCache"]

_MISSING: Any = object()
_memory: dict[str, MemoryStore] = {}
_redis: dict[tuple[Any, ...], Any] = {}  # sync faces, one pool per process and config
_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)  # asyncio stores, per event loop: redis-py's connections belong to one loop
_memory_lock = threading.Lock()
_OPTIONS = {"max_size", "serializer", "timeout", "max_connections", "prefix"}


def _ttl(timeout: float | None) -> float:
    """The store's ttl for a Django backend timeout: ``None`` (forever) is ``math.inf``."""
    return float("inf") if timeout is None else timeout


class LapseCache(BaseCache):
    """Django's cache API on `lapse.MemoryStore` or ``lapse.redis.RedisStore``.

    Each call is one store call (``incr``/``decr`` one atomic ``update``); ``get_many``,
    ``set_many`` and ``delete_many`` are one batch. Timeouts follow Django: ``None``
    keeps forever, ``0`` or less removes (nothing is cached).
    """

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        options = dict(params.get("OPTIONS", {}))
        unknown = set(options) - _OPTIONS
        if unknown:
            msg = f"LapseCache OPTIONS has unknown keys: {sorted(unknown)}"
            raise ValueError(msg)
        self._location = location or "memory://"
        self._options = options
        self._config = (self._location, *sorted(options.items()))
        if self._location.startswith("memory://"):
            with _memory_lock:
                store = _memory.get(self._location)
                if store is None:
                    max_size = options.get("max_size")
                    eviction = None if max_size is None else SIEVE(max_size)
                    store = _memory[self._location] = MemoryStore(eviction=eviction)
            self._async_store: Any = store
            self._sync = store.sync
        elif self._location.startswith(("redis://", "rediss://", "unix://", "redis+cluster://")):
            self._async_store = None
            with _memory_lock:
                sync = _redis.get(self._config)
                if sync is None:
                    sync = _redis[self._config] = self._redis().sync
            self._sync = sync
        else:
            msg = f'LOCATION must be "memory://" or a redis:// URL, not {self._location!r}'
            raise ValueError(msg)

    def _redis(self) -> Any:
        from lapse.redis import JSON, PickleSerializer, RedisStore  # noqa: PLC0415

        serializer = PickleSerializer() if self._options.get("serializer") == "pickle" else JSON
        return RedisStore(
            self._location,
            prefix=self._options.get("prefix", "django-cache:"),
            serializer=serializer,
            timeout=self._options.get("timeout", 1.0),
            max_connections=self._options.get("max_connections"),
        )

    def _store(self) -> Any:
        """The async store for the running event loop: redis-py's asyncio connections
        belong to one loop, and Django runs each async test (and ``async_to_sync`` call)
        in its own."""
        if self._async_store is not None:
            return self._async_store
        stores = _loops.setdefault(asyncio.get_running_loop(), {})
        store = stores.get(self._config)
        if store is None:
            store = stores[self._config] = self._redis()
        return store

    def get_backend_timeout(self, timeout: Any = DEFAULT_TIMEOUT) -> float | None:
        """Seconds from now (Django's base gives a timestamp): ``None`` is forever, and
        0 or less means "do not keep"."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else max(0.0, float(timeout))

    # -- sync ---------------------------------------------------------------------------

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> bool:
        key = self.make_and_validate_key(key, version=version)
        seconds = self.get_backend_timeout(timeout)
        if seconds is not None and seconds <= 0:
            return not self._sync.has(key)
        return bool(self._sync.add(key, value, ttl=_ttl(seconds)))

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        return self._sync.get(key, default)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        key = self.make_and_validate_key(key, version=version)
        seconds = self.get_backend_timeout(timeout)
        if seconds is not None and seconds <= 0:
            self._sync.delete(key)
        else:
            self._sync.set(key, value, ttl=_ttl(seconds))

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        seconds = self.get_backend_timeout(timeout)
        if seconds is not None and seconds <= 0:
            return bool(self._sync.delete(key))
        return bool(self._sync.expire(key, _ttl(seconds)))

    def delete(self, key: Any, version: Any = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return bool(self._sync.delete(key))

    def has_key(self, key: Any, version: Any = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return bool(self._sync.has(key))

    def get_many(self, keys: Iterable[Any], version: Any = None) -> dict[Any, Any]:
        names = {self.make_and_validate_key(key, version=version): key for key in keys}
        found = self._sync.get_many(list(names))
        return {names[name]: value for name, value in found.items()}

    def set_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> list[Any]:
        mapping = {self.make_and_validate_key(k, version=version): v for k, v in data.items()}
        seconds = self.get_backend_timeout(timeout)
        if seconds is not None and seconds <= 0:
            self._sync.delete_many(list(mapping))
        elif mapping:
            self._sync.set_many(mapping, ttl=_ttl(seconds))
        return []

    def delete_many(self, keys: Iterable[Any], version: Any = None) -> None:
        names = [self.make_and_validate_key(key, version=version) for key in keys]
        if names:
            self._sync.delete_many(names)

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> int:
        key = self.make_and_validate_key(key, version=version)
        existed = self._sync.has(key)
        result: int = self._sync.update(key, _adder(key, delta, existed), keep_ttl=True)
        return result

    def clear(self) -> None:
        self._sync.clear()

    def close(self, **kwargs: Any) -> None:
        """Nothing to release per request: connections are pooled for the process."""

    # -- async: native coroutines on the store -----------------------------------------

    async def aadd(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> bool:
        key = self.make_and_validate_key(key, version=version)
        seconds = self.get_backend_timeout(timeout)
        if seconds is not None and seconds <= 0:
            return not await self._store().has(key)
        return bool(await self._store().add(key, value, ttl=_ttl(seconds)))

    async def aget(self, key: Any, default: Any = None, version: Any = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        return await self._store().get(key, default)

    async def aset(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        key = self.make_and_validate_key(key, version=version)
        seconds = self.get_backend_timeout(timeout)
        if seconds is not None and seconds <= 0:
            await self._store().delete(key)
        else:
            await self._store().set(key, value, ttl=_ttl(seconds))

    async def atouch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        seconds = self.get_backend_timeout(timeout)
        if seconds is not None and seconds <= 0:
            return bool(await self._store().delete(key))
        return bool(await self._store().expire(key, _ttl(seconds)))

    async def adelete(self, key: Any, version: Any = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return bool(await self._store().delete(key))

    async def ahas_key(self, key: Any, version: Any = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return bool(await self._store().has(key))

    async def aget_many(self, keys: Iterable[Any], version: Any = None) -> dict[Any, Any]:
        names = {self.make_and_validate_key(key, version=version): key for key in keys}
        found = await self._store().get_many(list(names))
        return {names[name]: value for name, value in found.items()}

    async def aset_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> list[Any]:
        mapping = {self.make_and_validate_key(k, version=version): v for k, v in data.items()}
        seconds = self.get_backend_timeout(timeout)
        if seconds is not None and seconds <= 0:
            await self._store().delete_many(list(mapping))
        elif mapping:
            await self._store().set_many(mapping, ttl=_ttl(seconds))
        return []

    async def adelete_many(self, keys: Iterable[Any], version: Any = None) -> None:
        names = [self.make_and_validate_key(key, version=version) for key in keys]
        if names:
            await self._store().delete_many(names)

    async def aincr(self, key: Any, delta: int = 1, version: Any = None) -> int:
        key = self.make_and_validate_key(key, version=version)
        store = self._store()
        existed = await store.has(key)
        result: int = await store.update(key, _adder(key, delta, existed), keep_ttl=True)
        return result

    async def aclear(self) -> None:
        await self._store().clear()

    async def aclose(self, **kwargs: Any) -> None:  # noqa: ARG002 -- Django's signature
        """Close this event loop's Redis connections (made again if used again); nothing
        for a memory store."""
        if self._async_store is None:
            store = _loops.get(asyncio.get_running_loop(), {}).pop(self._config, None)
            if store is not None:
                await store.aclose()


def _adder(key: str, delta: int, existed: bool) -> Any:
    """``update``'s function for ``incr``: a missing key is Django's `ValueError`; a
    stored ``None`` (``update`` sees it as missing too) cannot be added to."""

    def add(current: Any) -> Any:
        if current is None and not existed:
            msg = f"Key '{key}' not found"
            raise ValueError(msg)
        return current + delta

    return add
