"""Rules of get_or_set and @cached: values as stored, writes win, errors and cancellation."""

from __future__ import annotations

import asyncio
import threading
import traceback

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from lapse import LRU, TTL, MemoryStore, RemovalCause, cached
from lapse.exceptions import LoadError
from lapse.testing import ManualClock


pytestmark = pytest.mark.anyio


async def test_refreshed_values_are_stored_as_they_are(clock: ManualClock) -> None:
    """Get, get_many, pop, on_remove and weighers see the value, never a wrapper."""
    removed: list[Any] = []
    store = MemoryStore(
        clock=clock,
        eviction=LRU(max_weight=100, weigher=lambda key, value: len(value)),
        on_remove=lambda key, value, cause: removed.append(value),
    )
    assert await store.get_or_set("k", lambda: "v1", ttl=60, refresh_after=10) == "v1"
    assert await store.get("k") == "v1"
    assert await store.get_many(["k"]) == {"k": "v1"}
    assert await store.pop("k") == "v1"
    assert removed == ["v1"]


async def test_a_plain_set_keeps_refresh_ahead(clock: ManualClock) -> None:
    """After a plain set, refresh-ahead still reloads the key when it is old."""
    store = MemoryStore(clock=clock)
    loads = 0
    done = anyio.Event()

    async def load() -> str:
        nonlocal loads
        loads += 1
        done.set()
        return "loaded"

    await store.set("k", "written", ttl=60)
    clock.advance(11)
    assert await store.get_or_set("k", load, ttl=60, refresh_after=10) == "written"
    with anyio.fail_after(5):
        await done.wait()
    await anyio.wait_all_tasks_blocked()
    assert loads == 1
    assert await store.get("k") == "loaded"


async def test_refresh_after_needs_a_lifetime() -> None:
    """refresh_after without a ttl on a store without a TTL policy is refused, clearly."""
    with pytest.raises(ValueError, match="refresh_after needs a finite lifetime"):
        await MemoryStore().get_or_set("k", lambda: 1, refresh_after=5)
    store = MemoryStore(expiry=TTL(30))  # the policy gives the lifetime
    assert await store.get_or_set("k", lambda: 1, refresh_after=5) == 1


async def test_a_refresh_returning_none_is_not_cached(clock: ManualClock) -> None:
    """With cache_none=False, a background refresh that returns None stores nothing."""
    store = MemoryStore(clock=clock)
    results = iter(["v1", None])
    refreshed = anyio.Event()

    @cached(store, ttl=60, refresh_after=10, cache_none=False)
    async def lookup() -> str | None:
        value = next(results)
        if value is None:
            refreshed.set()
        return value

    assert await lookup() == "v1"
    clock.advance(10)
    assert await lookup() == "v1"  # stale; the refresh returns None
    with anyio.fail_after(5):
        await refreshed.wait()
    await anyio.wait_all_tasks_blocked()
    assert await store.get(lookup.key()) is None
    assert not await store.has(lookup.key())


@pytest.mark.parametrize("write", ["delete", "set", "invalidate"])
async def test_a_write_during_a_load_wins(store: MemoryStore, write: str) -> None:
    """A delete or set made while a load runs is not overwritten by its result."""
    started, release = anyio.Event(), anyio.Event()

    @cached(store, ttl=60)
    async def slow() -> str:
        started.set()
        await release.wait()
        return "old"

    results: list[str] = []

    async def call() -> None:
        results.append(await slow())

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await started.wait()
        if write == "delete":
            await store.delete(slow.key())
        elif write == "set":
            await store.set(slow.key(), "fresh")
        else:
            await slow.invalidate()
        release.set()
    assert results == ["old"]  # the caller still gets its value
    expected = "fresh" if write == "set" else None
    assert await store.get(slow.key()) == expected


async def test_a_write_during_a_refresh_wins(clock: ManualClock) -> None:
    """A value set while a background refresh runs is not replaced by it."""
    store = MemoryStore(clock=clock)
    started, release, finished = anyio.Event(), anyio.Event(), anyio.Event()
    version = 0

    async def load() -> str:
        nonlocal version
        version += 1
        if version == 2:
            started.set()
            await release.wait()
            finished.set()
        return f"v{version}"

    assert await store.get_or_set("k", load, ttl=60, refresh_after=10) == "v1"
    clock.advance(10)
    assert await store.get_or_set("k", load, ttl=60, refresh_after=10) == "v1"
    with anyio.fail_after(5):
        await started.wait()
    await store.set("k", "written meanwhile")
    release.set()
    with anyio.fail_after(5):
        await finished.wait()
    await anyio.wait_all_tasks_blocked()
    assert await store.get("k") == "written meanwhile"


def test_a_write_during_a_threaded_load_wins() -> None:
    """The rule holds for store.sync.get_or_set in threads too."""
    store = MemoryStore()
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "old"

    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(store.sync.get_or_set("k", slow)))
    thread.start()
    assert started.wait(5)
    store.sync.delete("k")  # nothing to delete yet: still a delete after the load started
    release.set()
    thread.join()
    assert result == ["old"]
    assert store.sync.get("k") is None


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_factory_raising_cancelled_by_itself_fails_once(store: MemoryStore) -> None:
    """A factory's own CancelledError fails the load once; no waiter is cancelled."""
    calls = 0
    release = anyio.Event()

    async def factory() -> str:
        nonlocal calls
        calls += 1
        await release.wait()  # until every caller waits for this load
        raise asyncio.CancelledError  # nobody cancelled us

    outcomes: list[str] = []

    async def call() -> None:
        try:
            await store.get_or_set("k", factory)
        except LoadError:
            outcomes.append("load error")
        except asyncio.CancelledError:
            outcomes.append("cancelled")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(call)
            await anyio.wait_all_tasks_blocked()
            release.set()
    assert calls == 1
    assert outcomes.count("load error") == 19  # the leader gets its own CancelledError
    assert outcomes.count("cancelled") == 1


async def test_every_waiter_gets_its_own_traceback(store: MemoryStore) -> None:
    """1000 waiters of a failing load: tracebacks stay short, exceptions distinct."""
    release = anyio.Event()

    class UpstreamError(Exception):
        pass

    async def factory() -> str:
        await release.wait()
        msg = "upstream down"
        raise UpstreamError(msg)

    errors: list[BaseException] = []

    async def call() -> None:
        try:
            await store.get_or_set("k", factory)
        except UpstreamError as e:
            errors.append(e)

    async with anyio.create_task_group() as tg:
        for _ in range(1000):
            tg.start_soon(call)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert len(errors) == 1000
    assert len({id(e) for e in errors}) == 1000
    assert max(len(traceback.extract_tb(e.__traceback__)) for e in errors) < 30
    assert all(str(e) == "upstream down" for e in errors)


async def test_tasks_started_by_a_factory_may_load_the_key_later(store: MemoryStore) -> None:
    """The loading mark ends with the load; a task it started is not refused."""
    later: list[Any] = []
    loaded = anyio.Event()

    async with anyio.create_task_group() as tg:

        async def follow_up() -> None:
            await loaded.wait()  # after the load has finished
            await store.delete("k")  # a miss: the loading mark would be checked
            later.append(await store.get_or_set("k", lambda: "again", ttl=5))

        async def factory() -> str:
            tg.start_soon(follow_up)  # inherits the factory's context
            return "first"

        assert await store.get_or_set("k", factory, ttl=5) == "first"
        loaded.set()
    assert later == ["again"]


async def test_a_raising_on_remove_while_loading_does_not_lose_the_value(
    clock: ManualClock,
) -> None:
    """A loader's store of a result may evict; a failing on_remove is logged, the value kept."""

    def on_remove(key: str, value: Any, cause: RemovalCause) -> None:
        raise RuntimeError

    store = MemoryStore(clock=clock, eviction=LRU(1), on_remove=on_remove)
    await store.set("a", 1)
    assert await store.get_or_set("b", lambda: 2) == 2
    assert await store.get("b") == 2


class StrictError(Exception):
    """An exception that cannot be rebuilt from its args: copy.copy fails on it."""

    def __init__(self, *, code: int) -> None:
        super().__init__()
        self.code = code


async def test_an_uncopyable_error_reaches_waiters_as_load_error(store: MemoryStore) -> None:
    """When the leader's exception cannot be copied, waiters get LoadError from it."""
    release = anyio.Event()

    async def factory() -> str:
        await release.wait()
        raise StrictError(code=3)

    outcomes: list[BaseException] = []

    async def call() -> None:
        try:
            await store.get_or_set("k", factory)
        except (StrictError, LoadError) as e:
            outcomes.append(e)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(call)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert sorted(type(e).__name__ for e in outcomes) == ["LoadError", "LoadError", "StrictError"]
    assert all(isinstance(e.__cause__, StrictError) for e in outcomes if isinstance(e, LoadError))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aclose_cancels_refreshes_in_progress(clock: ManualClock) -> None:
    """aclose() stops background work: a refresh still running is cancelled, data stays."""
    store = MemoryStore(clock=clock)
    started = anyio.Event()
    cancelled = False

    async def load() -> str:
        nonlocal cancelled
        if await store.has("k"):  # the refresh
            started.set()
            try:
                await anyio.sleep_forever()
            except asyncio.CancelledError:
                cancelled = True
                raise
        return "v1"

    assert await store.get_or_set("k", load, ttl=60, refresh_after=10) == "v1"
    clock.advance(10)
    assert await store.get_or_set("k", load, ttl=60, refresh_after=10) == "v1"
    with anyio.fail_after(5):
        await started.wait()
    await store.aclose()
    assert cancelled
    assert await store.get("k") == "v1"


class MinimalStore:
    """get, set, delete and ttl, with no loader of its own and no lapse internals."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.data: dict[str, tuple[Any, float]] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        value, ends = self.data.get(key, (default, float("inf")))
        return value if ends > self.clock() else default

    async def set(self, key: str, value: Any, *, ttl: Any = None) -> None:
        self.data[key] = (value, self.clock() + (ttl or float("inf")))

    async def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    async def ttl(self, key: str) -> float | None:
        if key not in self.data:
            return None
        return self.data[key][1] - self.clock()


async def test_refresh_ahead_on_any_store_with_ttl(clock: ManualClock) -> None:
    """lapse.get_or_set refreshes on a store of one's own, and cache_none=False deletes."""
    from lapse import get_or_set  # noqa: PLC0415

    store = MinimalStore(clock)
    results = iter(["v1", None])
    refreshed = anyio.Event()

    @cached(store, ttl=30, refresh_after=10, cache_none=False)
    async def lookup() -> str | None:
        value = next(results)
        if value is None:
            refreshed.set()
        return value

    assert await lookup() == "v1"
    clock.advance(10)
    assert await lookup() == "v1"
    with anyio.fail_after(5):
        await refreshed.wait()
    await anyio.wait_all_tasks_blocked()
    assert lookup.key() not in store.data
    assert await get_or_set(store, "x", lambda: 5, ttl=5) == 5
