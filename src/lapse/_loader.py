"""Loading through a store: single-flight ``get_or_set`` and refresh-ahead.

One `Loader` serves one store. It keeps the loads in flight, so that concurrent callers
of one missing key share one call of the factory, and the counters that
``MemoryStore.stats()`` reports. Any `lapse.Store` gets a loader of its own through
`loader_for`: single-flight then holds within this process.

Refresh-ahead needs the time an entry was loaded. A value loaded with *refresh_after* is
stored wrapped in a `Loaded` record with that time; `get_or_set` unwraps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import threading
import time
import weakref

from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any, TypeVar, overload

import anyio
import attrs

from ._clock import Clock, as_seconds
from ._store import check_key
from .exceptions import ReentrantLoadError


T = TypeVar("T")
_log = logging.getLogger("lapse")
_MISSING: Any = object()

# The (loader, key) pairs whose factory is running in this context: a factory that asks
# for its own key would otherwise wait for itself.
_loading: contextvars.ContextVar[frozenset[tuple[int, str]]] = contextvars.ContextVar(
    "lapse_loading", default=frozenset()
)


@attrs.frozen
class Loaded:
    """A value stored by a load with *refresh_after*, with the time it was loaded.

    `get_or_set` and `lapse.cached` unwrap it; a plain ``get`` of the key returns it as is.

    Attributes:
        value: The loaded value.
        loaded_at: The store's clock when it was loaded.

    Added in 0.1.
    """

    value: Any
    loaded_at: float


@attrs.frozen
class _Load:
    """One call of get_or_set: what to load, and how to store it."""

    store: Any
    key: str
    factory: Callable[[], Any]
    ttl: Any
    refresh_after: float | None
    cache_none: bool


@attrs.define(eq=False)
class _Flight:
    """One load in progress, shared by everyone who asked for the key meanwhile."""

    done: Any  # anyio.Event or threading.Event
    value: Any = None
    error: BaseException | None = None
    abandoned: bool = False  # the leader was cancelled: a waiter takes over


def _check(key: str, ttl: Any, refresh_after: float | None) -> float | None:
    """Check a get_or_set call before anything is read or loaded; return *refresh_after*."""
    check_key(key)
    if ttl is not None:
        as_seconds(ttl, what="ttl")
    if refresh_after is None:
        return None
    return as_seconds(refresh_after, what="refresh_after")


def _spawn(fn: Callable[[], Coroutine[Any, Any, None]], keep: set[Any]) -> None:
    """Start *fn* in the background on the running event loop (asyncio or trio)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: trio has system tasks for this
        import trio  # noqa: PLC0415

        async def run() -> None:
            with trio.CancelScope() as scope:
                keep.add(scope)  # so that aclose() can cancel it
                try:
                    await fn()
                finally:
                    keep.discard(scope)

        trio.lowlevel.spawn_system_task(run)
        return
    task = loop.create_task(fn())
    keep.add(task)  # the loop keeps only a weak reference
    task.add_done_callback(keep.discard)


@attrs.define(eq=False)
class Loader:
    """Single-flight loads and refresh-ahead for one store, and their counters.

    Attributes:
        clock: The clock that stamps loads for refresh-ahead.
        recheck: Whether the async path reads the store again after it wins a load. A
            store whose ``get`` never yields to the event loop (`MemoryStore`) needs not.
    """

    clock: Clock
    recheck: bool = True
    loads: int = attrs.field(init=False, default=0)
    load_failures: int = attrs.field(init=False, default=0)
    load_time: float = attrs.field(init=False, default=0.0)
    _flights: dict[tuple[int, str], _Flight] = attrs.field(init=False, factory=dict)
    _sync_flights: dict[str, _Flight] = attrs.field(init=False, factory=dict)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _refreshing: set[str] = attrs.field(init=False, factory=set)
    _background: set[Any] = attrs.field(init=False, factory=set)

    async def aclose(self) -> None:
        """Cancel the background refreshes in progress, and wait for those of asyncio."""
        pending = list(self._background)
        for work in pending:
            work.cancel()
        tasks = [work for work in pending if isinstance(work, asyncio.Task)]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- shared pieces -----------------------------------------------------------------

    def _check_reentry(self, key: str) -> None:
        if (id(self), key) in _loading.get():
            msg = (
                f"the factory loading {key!r} asked the same store for {key!r}: "
                "it would wait for itself"
            )
            raise ReentrantLoadError(msg)

    @contextlib.contextmanager
    def _measured(self, key: str) -> Iterator[None]:
        """Around a call of a factory: mark *key* as loading here, count and time the call."""
        token = _loading.set(_loading.get() | {(id(self), key)})
        started = time.perf_counter()
        try:
            yield
        except Exception:
            self._count(started, failures=1)
            raise
        else:
            self._count(started, loads=1)
        finally:
            _loading.reset(token)

    def _count(self, started: float, *, loads: int = 0, failures: int = 0) -> None:
        with self._lock:
            self.load_time += time.perf_counter() - started
            self.loads += loads
            self.load_failures += failures

    @contextlib.contextmanager
    def _leading(self, flights: dict[Any, _Flight], key: Any, flight: _Flight) -> Iterator[None]:
        """Around a leader's load: hand its outcome to the waiters, whatever it is."""
        try:
            yield
        except Exception as e:
            flight.error = e
            raise
        except BaseException:
            flight.abandoned = True  # cancelled: a waiter takes over
            raise
        finally:
            with self._lock:
                del flights[key]
            flight.done.set()

    def _unwrap(self, found: Any, refresh_after: float | None) -> tuple[Any, bool]:
        """Return the value and whether it is due for a refresh."""
        if type(found) is not Loaded:
            return found, False
        due = refresh_after is not None and self.clock() - found.loaded_at >= refresh_after
        return found.value, due

    def _serve(self, found: Any, load: _Load, refresh: Callable[[_Load], None]) -> Any:
        value, due = self._unwrap(found, load.refresh_after)
        if due:
            refresh(load)
        return value

    def _wrap(self, value: Any, load: _Load) -> Any:
        return value if load.refresh_after is None else Loaded(value, self.clock())

    # -- async -------------------------------------------------------------------------

    async def get_or_set(
        self,
        store: Any,
        key: str,
        factory: Callable[[], Any],
        *,
        ttl: Any = None,
        refresh_after: float | None = None,
        cache_none: bool = True,
    ) -> Any:
        """Return the live value of *key*, or load it once for every concurrent caller."""
        refresh_after = _check(key, ttl, refresh_after)
        found = await store.get(key, _MISSING)
        if found is not _MISSING and type(found) is not Loaded:
            return found  # the common case, kept short
        load = _Load(store, key, factory, ttl, refresh_after, cache_none)
        self._check_reentry(key)
        flight_key = (threading.get_ident(), key)  # an event belongs to one loop
        while True:
            if found is not _MISSING:
                return self._serve(found, load, self._refresh_async)
            flight = self._flights.get(flight_key)
            if flight is None:
                return await self._lead(load, flight_key)
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if not flight.abandoned:
                return flight.value
            # The leader was cancelled: go round again, and one of us takes over.
            found = await store.get(key, _MISSING)

    async def _lead(self, load: _Load, flight_key: tuple[int, str]) -> Any:
        flight = self._flights[flight_key] = _Flight(anyio.Event())
        with self._leading(self._flights, flight_key, flight):
            # A load may have ended while our read was in flight.
            found = await load.store.get(load.key, _MISSING) if self.recheck else _MISSING
            if found is not _MISSING:
                value = self._unwrap(found, load.refresh_after)[0]
            else:
                value = await self._call(load)
                if value is not None or load.cache_none:
                    await load.store.set(load.key, self._wrap(value, load), ttl=load.ttl)
            flight.value = value
        return value

    async def _call(self, load: _Load) -> Any:
        with self._measured(load.key):
            value = load.factory()
            if inspect.isawaitable(value):
                value = await value
        return value

    def _refresh_async(self, load: _Load) -> None:
        if load.key in self._refreshing:
            return
        self._refreshing.add(load.key)

        async def refresh() -> None:
            try:
                value = await self._call(load)
                await load.store.set(load.key, self._wrap(value, load), ttl=load.ttl)
            except Exception:  # noqa: BLE001 -- the stale value stays until it expires
                _log.warning("refreshing %r failed; serving the old value", load.key, exc_info=True)
            finally:
                self._refreshing.discard(load.key)

        _spawn(refresh, self._background)

    # -- threads -----------------------------------------------------------------------

    def get_or_set_sync(
        self,
        store: Any,
        key: str,
        factory: Callable[[], Any],
        *,
        ttl: Any = None,
        refresh_after: float | None = None,
        cache_none: bool = True,
    ) -> Any:
        """`get_or_set` for threads, on a store with plain ``get`` and ``set``."""
        refresh_after = _check(key, ttl, refresh_after)
        found = store.get(key, _MISSING)
        if found is not _MISSING and type(found) is not Loaded:
            return found
        load = _Load(store, key, factory, ttl, refresh_after, cache_none)
        self._check_reentry(key)
        while True:
            if found is not _MISSING:
                return self._serve(found, load, self._refresh_thread)
            with self._lock:
                flight = self._sync_flights.get(key)
                leader = flight is None
                if flight is None:
                    flight = self._sync_flights[key] = _Flight(threading.Event())
            if leader:
                return self._lead_sync(load, flight)
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if not flight.abandoned:
                return flight.value
            found = store.get(key, _MISSING)

    def _lead_sync(self, load: _Load, flight: _Flight) -> Any:
        with self._leading(self._sync_flights, load.key, flight):
            found = load.store.get(load.key, _MISSING)  # another thread may have just loaded it
            if found is not _MISSING:
                value = self._unwrap(found, load.refresh_after)[0]
            else:
                value = self._call_sync(load)
                if value is not None or load.cache_none:
                    load.store.set(load.key, self._wrap(value, load), ttl=load.ttl)
            flight.value = value
        return value

    def _call_sync(self, load: _Load) -> Any:
        with self._measured(load.key):
            return _no_awaitable(load.key, load.factory())

    def _refresh_thread(self, load: _Load) -> None:
        with self._lock:
            if load.key in self._refreshing:
                return
            self._refreshing.add(load.key)

        def refresh() -> None:
            try:
                value = self._call_sync(load)
                load.store.set(load.key, self._wrap(value, load), ttl=load.ttl)
            except Exception:  # noqa: BLE001 -- the stale value stays until it expires
                _log.warning("refreshing %r failed; serving the old value", load.key, exc_info=True)
            finally:
                with self._lock:
                    self._refreshing.discard(load.key)

        threading.Thread(target=refresh, name=f"lapse-refresh-{load.key}", daemon=True).start()


def _no_awaitable(key: str, value: Any) -> Any:
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()  # never awaited: close it, or Python warns
        msg = f"the factory for {key!r} returned an awaitable: use the async get_or_set"
        raise TypeError(msg)
    return value


# -- loaders for stores that have none of their own --------------------------------------

_loaders: weakref.WeakKeyDictionary[Any, Loader] = weakref.WeakKeyDictionary()
_loaders_by_id: dict[int, Loader] = {}
_registry_lock = threading.Lock()


def loader_for(store: Any) -> Loader:
    """Return the loader of *store*: its own, or one kept here for the store's lifetime."""
    own = getattr(store, "_loader", None)
    if isinstance(own, Loader):
        return own
    with _registry_lock:
        try:
            loader = _loaders.get(store)
            if loader is None:
                loader = _loaders[store] = Loader(time.time)
        except TypeError:  # neither hashable nor weakly referenceable: key by identity
            loader = _loaders_by_id.setdefault(id(store), Loader(time.time))
    return loader


@overload
async def get_or_set(
    store: Any,
    key: str,
    factory: Callable[[], Awaitable[T]],
    *,
    ttl: float | timedelta | None = None,
    refresh_after: float | None = None,
) -> T: ...
@overload
async def get_or_set(
    store: Any,
    key: str,
    factory: Callable[[], T],
    *,
    ttl: float | timedelta | None = None,
    refresh_after: float | None = None,
) -> T: ...
async def get_or_set(
    store: Any,
    key: str,
    factory: Callable[[], Any],
    *,
    ttl: float | timedelta | None = None,
    refresh_after: float | None = None,
) -> Any:
    """Return the live value of *key* in *store*, or store and return ``factory()``.

    Works on any `lapse.Store`. Concurrent callers of one missing key share one call of
    *factory* (sync or async) within this process; see `MemoryStore.get_or_set` for the
    whole behaviour.

    Added in 0.1.
    """
    return await loader_for(store).get_or_set(
        store, key, factory, ttl=ttl, refresh_after=refresh_after
    )
