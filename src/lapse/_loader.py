"""Loading through a store: single-flight ``get_or_set`` and refresh-ahead.

One `Loader` serves one store. It keeps the loads in flight, so that concurrent callers
of one missing key share one call of the factory, and the counters that
``MemoryStore.stats()`` reports. Any `lapse.Store` gets a loader of its own through
`loader_for`: single-flight then holds within this process.

Two rules shape it:

- **A write wins over an older load.** Each load holds a `_Ticket` in `Loader.tickets`
  while it runs; a store that knows its loader (`MemoryStore`) marks the tickets of a key
  stale whenever the key is written or deleted, and stores a load's result only if its
  ticket is still fresh, under the store's lock. The load's callers still get the value.
- **Values are stored as they are.** Refresh-ahead needs the age of a value; it is the
  entry's lifetime minus the lifetime it has left (``ttl()``), so nothing is wrapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import inspect
import logging
import math
import threading
import time
import weakref

from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any, Literal, TypeVar, overload

import anyio
import attrs

from ._clock import Clock, as_seconds
from ._store import check_key
from .exceptions import LoadError, ReentrantLoadError, StoreError


T = TypeVar("T")
OnStoreError = Literal["fail_open", "fail_closed"]
"""What a load does when the store fails: call the function all the same, or raise."""
_log = logging.getLogger("lapse")
_MISSING: Any = object()
DELETE: Any = object()
"""Passed as the value to a loader's *store_load* hook: delete the key instead."""


@attrs.define(eq=False)
class _Running:
    """Marks a factory call as running, for as long as it runs (seen by re-entrance checks)."""

    running: bool = True


# The factory calls running in this context: (loader id, key, marker). A factory that asks
# for its own key while it runs would wait for itself. Tasks started inside a factory
# inherit the context; the marker tells them when that load is over.
_loading: contextvars.ContextVar[tuple[tuple[int, str, _Running], ...]] = contextvars.ContextVar(
    "lapse_loading", default=()
)


@attrs.define(eq=False)
class _Ticket:
    """One load or refresh in progress: marked stale by a later write or delete of its key."""

    stale: bool = False


@attrs.frozen
class _Load:
    """One call of get_or_set: what to load, and how to store it."""

    store: Any
    key: str
    factory: Callable[[], Any]
    ttl: Any
    refresh_after: float | None
    lifetime: float | None  # the write lifetime, when refresh_after needs it
    cache_none: bool
    fail_open: bool  # a store error is logged and the factory's result returned


@attrs.define(eq=False)
class _Flight:
    """One load in progress, shared by everyone who asked for the key meanwhile."""

    done: Any  # anyio.Event or threading.Event
    value: Any = None
    error: BaseException | None = None
    abandoned: bool = False  # the leader was cancelled: a waiter takes over


def check_on_store_error(on_store_error: object) -> bool:
    """Check an *on_store_error* argument; return whether it fails open."""
    if on_store_error not in ("fail_open", "fail_closed"):
        msg = f"on_store_error must be 'fail_open' or 'fail_closed', not {on_store_error!r}"
        raise ValueError(msg)
    return on_store_error == "fail_open"


def _check(key: str, ttl: Any, refresh_after: float | None, default: float | None) -> float | None:
    """Check a get_or_set call before anything is read or loaded; return the lifetime
    (*ttl*, or the store's *default* write lifetime) when *refresh_after* needs it."""
    check_key(key)
    seconds = None if ttl is None else as_seconds(ttl, what="ttl")
    if refresh_after is None:
        return None
    as_seconds(refresh_after, what="refresh_after")
    lifetime = seconds if seconds is not None else default
    if lifetime is None or lifetime == math.inf:
        msg = (
            "refresh_after needs a finite lifetime: pass ttl=..., or use a store with a TTL "
            "policy (the age of a value is its lifetime minus the time it has left)"
        )
        raise ValueError(msg)
    return lifetime


def _abandons(error: BaseException) -> bool:
    """Whether a leader's *error* (not an `Exception`) leaves the load to a waiter.

    A cancellation of the leader, ``KeyboardInterrupt`` and the like do: the load did not
    fail, its caller went away. A `CancelledError` that the factory raised by itself
    (nobody cancelled the task) does not: that is the load failing. Python 3.10 cannot
    tell the two apart (no ``Task.cancelling()``) and takes it as a cancellation.
    """
    if isinstance(error, asyncio.CancelledError):
        task = asyncio.current_task()
        cancelling = getattr(task, "cancelling", None)  # Python 3.11+
        return cancelling is None or cancelling() > 0
    return True


def _reraise(key: str, error: BaseException) -> BaseException:
    """Return what a waiter raises for the leader's *error*: a copy with its own traceback.

    Every waiter raising the one exception object would grow its traceback each time.
    A factory's own `CancelledError` (nobody cancelled it) must not cancel the waiters:
    they get `LoadError` from it.
    """
    if isinstance(error, Exception):
        try:
            twin = copy.copy(error)
        except Exception:  # noqa: BLE001 -- an exception that cannot be copied
            twin = None
        if type(twin) is type(error):
            twin.__cause__, twin.__context__ = error.__cause__, error.__context__
            twin.__suppress_context__ = error.__suppress_context__
            return twin.with_traceback(error.__traceback__)
    msg = f"loading {key!r} failed: the factory raised {error!r}"
    failure = LoadError(msg)
    failure.__cause__ = error
    return failure


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

    A store that owns its loader says so with `own`, and may give it three hooks, so
    that it does better than ``get`` and ``set`` (`MemoryStore` does):

    Attributes:
        clock: The store's clock.
        recheck: Whether the async path reads the store again after it wins a load. A
            store whose ``get`` never yields to the event loop (`MemoryStore`) needs not.
        lifetime: The store's write lifetime when a write gives no *ttl*, if it is one
            constant (for *refresh_after*).
        store_load: ``store_load(key, value, ttl, ticket)`` stores a load's result (or
            deletes *key* for `DELETE`) unless *ticket* is stale, atomically with the
            check; without it, the loader checks the ticket and calls ``set``.
        write_ttl: ``write_ttl(key)``: the seconds left before the write deadline of
            *key*, without I/O; without it, the loader awaits the store's ``ttl``.
        tickets: The loads in progress by key; the store marks them stale on writes.
    """

    clock: Clock
    recheck: bool = True
    lifetime: float | None = None
    store_load: Callable[[str, Any, Any, _Ticket], None] | None = None
    write_ttl: Callable[[str], float | None] | None = None
    loads: int = attrs.field(init=False, default=0)
    load_failures: int = attrs.field(init=False, default=0)
    load_time: float = attrs.field(init=False, default=0.0)
    tickets: dict[str, list[_Ticket]] = attrs.field(init=False, factory=dict)
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

    # -- invalidation ------------------------------------------------------------------

    def invalidate(self, key: str) -> None:
        """*key* was written or deleted: loads in progress must not store their result.

        Called by the store under its own lock. Runtime complexity: `O(1)` per load.
        """
        for ticket in tuple(self.tickets.get(key, ())):
            ticket.stale = True

    @contextlib.contextmanager
    def _ticket(self, key: str) -> Iterator[_Ticket]:
        ticket = _Ticket()
        with self._lock:
            self.tickets.setdefault(key, []).append(ticket)
        try:
            yield ticket
        finally:
            with self._lock:
                held = self.tickets.get(key)
                if held is not None:
                    held.remove(ticket)
                    if not held:
                        del self.tickets[key]

    # -- shared pieces -----------------------------------------------------------------

    def _check_reentry(self, key: str) -> None:
        me = id(self)
        for loader, loading, call in _loading.get():
            if loader == me and loading == key and call.running:
                msg = (
                    f"the factory loading {key!r} asked the same store for {key!r}: "
                    "it would wait for itself"
                )
                raise ReentrantLoadError(msg)

    @contextlib.contextmanager
    def _measured(self, key: str) -> Iterator[None]:
        """Around a call of a factory: mark *key* as loading here, count and time the call."""
        call = _Running()
        token = _loading.set((*_loading.get(), (id(self), key, call)))
        started = time.perf_counter()
        try:
            yield
        except Exception:
            self._count(started, failures=1)
            raise
        else:
            self._count(started, loads=1)
        finally:
            call.running = False
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
        except BaseException as e:
            if _abandons(e):
                flight.abandoned = True  # cancelled: a waiter takes over
            else:
                flight.error = e  # the factory raised it by itself: the waiters fail too
            raise
        finally:
            with self._lock:
                del flights[key]
            flight.done.set()

    def _outcome(self, key: str, flight: _Flight) -> Any:
        """A waiter's result: the value, or the leader's error (raised afresh)."""
        if flight.error is not None:
            raise _reraise(key, flight.error)
        return flight.value

    def _due(self, load: _Load, remaining: float | None) -> bool:
        """Whether a value with *remaining* seconds to live is older than refresh_after."""
        if remaining is None or load.lifetime is None or load.refresh_after is None:
            return False
        return load.lifetime - remaining >= load.refresh_after

    def _stored(self, load: _Load, value: Any) -> Any:
        """What a load stores: the value, or DELETE for a None that is not to be cached."""
        return DELETE if value is None and not load.cache_none else value

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
        on_store_error: OnStoreError = "fail_open",
    ) -> Any:
        """Return the live value of *key*, or load it once for every concurrent caller.

        If the store fails (`StoreError`) and *on_store_error* is ``"fail_open"``, the
        failure is logged on the ``lapse`` logger and the factory's result is returned
        all the same (single-flight still holds); ``"fail_closed"`` raises it.
        """
        lifetime = _check(key, ttl, refresh_after, self.lifetime)
        fail_open = check_on_store_error(on_store_error)
        try:
            found = await store.get(key, _MISSING)
        except StoreError as e:
            found = _failed(e, key, "reading", fail_open=fail_open)
        if found is not _MISSING and refresh_after is None:
            return found  # the common case, kept short
        load = _Load(store, key, factory, ttl, refresh_after, lifetime, cache_none, fail_open)
        self._check_reentry(key)
        flight_key = (threading.get_ident(), key)  # an event belongs to one loop
        while True:
            if found is not _MISSING:
                if self._due(load, await self._remaining(load)):
                    self._refresh_async(load)
                return found
            flight = self._flights.get(flight_key)
            if flight is None:
                return await self._lead(load, flight_key)
            await flight.done.wait()
            if not flight.abandoned:
                return self._outcome(key, flight)
            # The leader was cancelled: go round again, and one of us takes over.
            found = await self._read(load)

    async def _read(self, load: _Load) -> Any:
        try:
            return await load.store.get(load.key, _MISSING)
        except StoreError as e:
            return _failed(e, load.key, "reading", fail_open=load.fail_open)

    async def _remaining(self, load: _Load) -> float | None:
        if self.write_ttl is not None:
            remaining: float | None = self.write_ttl(load.key)
        else:
            try:
                remaining = await load.store.ttl(load.key)
            except StoreError as e:
                _failed(e, load.key, "reading the lifetime of", fail_open=load.fail_open)
                return None  # not known: no refresh this time
        return remaining

    async def _lead(self, load: _Load, flight_key: tuple[int, str]) -> Any:
        flight = self._flights[flight_key] = _Flight(anyio.Event())
        with self._leading(self._flights, flight_key, flight), self._ticket(load.key) as ticket:
            # A load may have ended while our read was in flight.
            found = await self._read(load) if self.recheck else _MISSING
            if found is not _MISSING:
                value = found
            else:
                value = await self._call(load)
                stored = self._stored(load, value)
                if stored is not DELETE:
                    try:
                        await self._put(load, stored, ticket)
                    except StoreError as e:
                        _failed(e, load.key, "storing", fail_open=load.fail_open)
            flight.value = value
        return value

    async def _put(self, load: _Load, value: Any, ticket: _Ticket) -> None:
        """Store a load's result unless a write or delete came after the load started."""
        if self.store_load is not None:
            self.store_load(load.key, value, load.ttl, ticket)
        elif not ticket.stale:  # a store that does not know us: the best we can do
            if value is DELETE:
                await load.store.delete(load.key)
            else:
                await load.store.set(load.key, value, ttl=load.ttl)

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
                with self._ticket(load.key) as ticket:
                    value = await self._call(load)
                    await self._put(load, self._stored(load, value), ticket)
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
        on_store_error: OnStoreError = "fail_open",
    ) -> Any:
        """`get_or_set` for threads, on a store with plain ``get`` and ``set``."""
        lifetime = _check(key, ttl, refresh_after, self.lifetime)
        fail_open = check_on_store_error(on_store_error)
        load = _Load(store, key, factory, ttl, refresh_after, lifetime, cache_none, fail_open)
        found = self._read_sync(load)
        if found is not _MISSING and refresh_after is None:
            return found
        self._check_reentry(key)
        while True:
            if found is not _MISSING:
                if self._due(load, self._remaining_sync(load)):
                    self._refresh_thread(load)
                return found
            with self._lock:
                flight = self._sync_flights.get(key)
                leader = flight is None
                if flight is None:
                    flight = self._sync_flights[key] = _Flight(threading.Event())
            if leader:
                return self._lead_sync(load, flight)
            flight.done.wait()
            if not flight.abandoned:
                return self._outcome(key, flight)
            found = self._read_sync(load)

    def _read_sync(self, load: _Load) -> Any:
        try:
            return load.store.get(load.key, _MISSING)
        except StoreError as e:
            return _failed(e, load.key, "reading", fail_open=load.fail_open)

    def _remaining_sync(self, load: _Load) -> float | None:
        remaining: float | None = (self.write_ttl or load.store.ttl)(load.key)
        return remaining

    def _lead_sync(self, load: _Load, flight: _Flight) -> Any:
        with (
            self._leading(self._sync_flights, load.key, flight),
            self._ticket(load.key) as ticket,
        ):
            found = self._read_sync(load)  # another thread may have just loaded it
            if found is not _MISSING:
                value = found
            else:
                value = self._call_sync(load)
                stored = self._stored(load, value)
                if stored is not DELETE:
                    try:
                        self._put_sync(load, stored, ticket)
                    except StoreError as e:
                        _failed(e, load.key, "storing", fail_open=load.fail_open)
            flight.value = value
        return value

    def _put_sync(self, load: _Load, value: Any, ticket: _Ticket) -> None:
        if self.store_load is not None:
            self.store_load(load.key, value, load.ttl, ticket)
        elif not ticket.stale:
            if value is DELETE:
                load.store.delete(load.key)
            else:
                load.store.set(load.key, value, ttl=load.ttl)

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
                with self._ticket(load.key) as ticket:
                    value = self._call_sync(load)
                    self._put_sync(load, self._stored(load, value), ticket)
            except Exception:  # noqa: BLE001 -- the stale value stays until it expires
                _log.warning("refreshing %r failed; serving the old value", load.key, exc_info=True)
            finally:
                with self._lock:
                    self._refreshing.discard(load.key)

        threading.Thread(target=refresh, name=f"lapse-refresh-{load.key}", daemon=True).start()


def _failed(error: StoreError, key: str, doing: str, *, fail_open: bool) -> Any:
    """A load's store failed: raise *error*, or log it and carry on as if *key* were missing."""
    if not fail_open:
        raise error
    _log.warning("%s %r failed; loading without the store: %s", doing, key, error)
    return _MISSING


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
    """Return the loader of *store*: its own ``_loader`` (lapse's stores have one, and it
    knows their fast paths), or one made here and kept for the store's lifetime."""
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
    on_store_error: OnStoreError = "fail_open",
) -> T: ...
@overload
async def get_or_set(
    store: Any,
    key: str,
    factory: Callable[[], T],
    *,
    ttl: float | timedelta | None = None,
    refresh_after: float | None = None,
    on_store_error: OnStoreError = "fail_open",
) -> T: ...
async def get_or_set(
    store: Any,
    key: str,
    factory: Callable[[], Any],
    *,
    ttl: float | timedelta | None = None,
    refresh_after: float | None = None,
    on_store_error: OnStoreError = "fail_open",
) -> Any:
    """Return the live value of *key* in *store*, or store and return ``factory()``.

    Works on any `lapse.Store`. Concurrent callers of one missing key share one call of
    *factory* (sync or async) within this process; see `MemoryStore.get_or_set` for the
    whole behaviour. *refresh_after* needs the store to have ``ttl(key)``.

    On a store that is not a `MemoryStore`, a write or delete made directly on the store
    while a load of that key runs cannot be seen: the load may store its older result
    after it. Writes and deletes made through ``fn.invalidate()`` are seen.

    If the store fails (`lapse.exceptions.StoreError`: a Redis server down), the failure
    is logged on the ``lapse`` logger and *factory*'s result is returned, as if the store
    were empty (``on_store_error="fail_open"``, the default, as aiocache and cashews
    do); ``on_store_error="fail_closed"`` raises it instead.
    """
    return await loader_for(store).get_or_set(
        store, key, factory, ttl=ttl, refresh_after=refresh_after, on_store_error=on_store_error
    )
