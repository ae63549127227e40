"""get_or_set: single-flight loads, errors, cancellation, re-entry, refresh-ahead."""

from __future__ import annotations

import logging
import threading
import time

from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import lapse

from lapse import TTL, MemoryStore
from lapse.exceptions import ReentrantLoadError
from lapse.testing import ManualClock


pytestmark = pytest.mark.anyio

CALLERS = 1000


class MinimalStore:
    """A third-party store with only get/set/delete, whose reads yield to the loop."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        await anyio.lowlevel.checkpoint()  # a network round trip would yield here
        return self.data.get(key, default)

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        await anyio.lowlevel.checkpoint()
        self.data[key] = value

    async def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None


def hold_until_all_missed(store: MemoryStore, threads: int) -> None:
    """Called in a factory: wait until every thread has missed, and the leader re-checked."""
    deadline = time.monotonic() + 10
    while store.sync.stats().misses < threads + 1:
        assert time.monotonic() < deadline, "threads never all arrived"
        threading.Event().wait(0.001)


def run_threads(count: int, target: Callable[[], None]) -> None:
    pool = [threading.Thread(target=target) for _ in range(count)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


@pytest.mark.parametrize("kind", ["memory", "minimal"])
async def test_stampede_runs_the_factory_once(kind: str) -> None:
    """1000 concurrent callers of one missing key: all are waiting before the factory
    returns (wait_all_tasks_blocked), and the factory runs exactly once."""
    store: Any = MemoryStore() if kind == "memory" else MinimalStore()
    gate = anyio.Event()
    calls = 0
    results: list[object] = []

    async def factory() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"answer": 42}

    async def caller() -> None:
        results.append(await lapse.get_or_set(store, "k", factory))

    async with anyio.create_task_group() as tg:
        for _ in range(CALLERS):
            tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()  # every caller is inside get_or_set now
        assert calls == 1
        gate.set()
    assert calls == 1
    assert len(results) == CALLERS
    assert all(r == {"answer": 42} for r in results)
    assert results[0] is results[-1]  # one load, one object
    if kind == "memory":
        stats = store.stats()
        assert (stats.loads, stats.load_failures) == (1, 0)


async def test_late_miss_does_not_load_twice() -> None:
    """A read that missed before a load finished, answered after: no second load."""

    class SlowReads(MinimalStore):
        hold: anyio.Event | None = None

        async def get(self, key: str, default: Any = None) -> Any:
            value = self.data.get(key, default)  # the read happens now...
            hold, self.hold = self.hold, None
            if hold is not None:
                await hold.wait()  # ...and its answer arrives late
            return value

    store = SlowReads()
    store.hold = gate = anyio.Event()
    calls = 0

    def factory() -> str:
        nonlocal calls
        calls += 1
        return "loaded"

    late: list[object] = []

    async def late_caller() -> None:
        late.append(await lapse.get_or_set(store, "k", factory))

    async with anyio.create_task_group() as tg:
        tg.start_soon(late_caller)
        await anyio.wait_all_tasks_blocked()  # its read has missed, the answer is held
        assert await lapse.get_or_set(store, "k", factory) == "loaded"  # a whole load
        gate.set()  # now the late caller hears "missing"
    assert calls == 1
    assert late == ["loaded"]


def test_stampede_from_threads() -> None:
    """8 threads through store.sync: all have missed before the factory returns; it runs once."""
    store = MemoryStore()
    threads = 8
    calls = 0
    barrier = threading.Barrier(threads)
    results: list[object] = []

    def factory() -> str:
        nonlocal calls
        calls += 1
        hold_until_all_missed(store, threads)
        return "value"

    def worker() -> None:
        barrier.wait()
        results.append(store.sync.get_or_set("k", factory))

    run_threads(threads, worker)
    assert calls == 1
    assert results == ["value"] * threads
    assert store.stats().loads == 1


def test_error_reaches_every_waiting_thread() -> None:
    """Threads waiting for a failing load all get its error; nothing is stored."""
    store = MemoryStore()
    threads = 4
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    calls = 0

    def factory() -> str:
        nonlocal calls
        calls += 1
        hold_until_all_missed(store, threads)
        msg = "no"
        raise LookupError(msg)

    def worker() -> None:
        barrier.wait()
        try:
            store.sync.get_or_set("k", factory)
        except LookupError as e:
            errors.append(e)

    run_threads(threads, worker)
    assert calls == 1
    assert len(errors) == threads
    assert not store.sync.has("k")


async def test_error_reaches_every_waiter_and_is_not_cached() -> None:
    """A failing factory's error reaches all waiters; nothing is stored; the next call retries."""
    store = MemoryStore()
    gate = anyio.Event()
    calls = 0
    errors: list[BaseException] = []

    async def factory() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        msg = "database down"
        raise ConnectionError(msg)

    async def caller() -> None:
        try:
            await store.get_or_set("k", factory)
        except ConnectionError as e:
            errors.append(e)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert calls == 1
    assert len(errors) == 20
    assert all(str(e) == "database down" for e in errors)
    assert not await store.has("k")
    assert await store.get_or_set("k", lambda: "recovered") == "recovered"
    stats = store.stats()
    assert (stats.loads, stats.load_failures) == (1, 1)


async def test_cancelled_leader_hands_over() -> None:
    """Cancelling the caller running the factory: the others neither hang nor fail."""
    store = MemoryStore()
    calls = 0
    results: list[object] = []

    async def factory() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await anyio.sleep_forever()  # the first load never ends by itself
        return "second load"

    async def waiter() -> None:
        results.append(await store.get_or_set("k", factory))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            leader = anyio.CancelScope()

            async def lead() -> None:
                with leader:
                    await store.get_or_set("k", factory)

            tg.start_soon(lead)
            await anyio.wait_all_tasks_blocked()
            for _ in range(5):
                tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            leader.cancel()
    assert results == ["second load"] * 5
    assert calls == 2
    assert await store.get("k") == "second load"


async def test_reentrant_factory_gets_an_error() -> None:
    """A factory asking for its own key gets ReentrantLoadError, not a deadlock."""
    store = MemoryStore()

    async def factory() -> str:
        return str(await store.get_or_set("k", factory))

    with anyio.fail_after(5), pytest.raises(ReentrantLoadError, match="'k'"):
        await store.get_or_set("k", factory)
    assert not await store.has("k")

    async def other_key() -> str:
        return str(await store.get_or_set("inner", lambda: "fine")) + "!"

    assert await store.get_or_set("outer", other_key) == "fine!"


def test_reentrant_factory_in_sync_code() -> None:
    """The same holds for store.sync.get_or_set."""
    store = MemoryStore()

    def factory() -> object:
        return store.sync.get_or_set("k", factory)

    with pytest.raises(ReentrantLoadError):
        store.sync.get_or_set("k", factory)


def test_sync_factory_must_not_be_async() -> None:
    """store.sync.get_or_set refuses a coroutine factory, without leaking the coroutine."""
    store = MemoryStore()

    async def factory() -> int:
        return 1

    with pytest.raises(TypeError, match="awaitable"):
        store.sync.get_or_set("k", factory)  # type: ignore[unused-coroutine]
    assert store.stats().load_failures == 1


async def test_get_or_set_hit_does_not_call_the_factory(clock: ManualClock) -> None:
    """A live value is returned as is; ttl applies to what is loaded; None is stored."""
    store = MemoryStore(expiry=TTL(300), clock=clock)
    await store.set("k", "present")

    def never() -> str:
        raise AssertionError

    assert await store.get_or_set("k", never) == "present"

    def nothing() -> None:
        return None

    assert await store.get_or_set("n", nothing, ttl=5) is None  # type: ignore[func-returns-value]
    assert await store.has("n")
    assert await store.ttl("n") == 5
    with pytest.raises(ValueError, match="ttl"):
        await store.get_or_set("x", lambda: 1, ttl=-1)
    with pytest.raises(TypeError, match="key"):
        await store.get_or_set(1, lambda: 1)  # type: ignore[call-overload]


async def test_refresh_ahead_serves_stale_once_and_reloads_once(clock: ManualClock) -> None:
    """Past refresh_after, the old value is served while one background reload replaces it."""
    store = MemoryStore(clock=clock)
    version = 0
    reloaded = anyio.Event()

    async def factory() -> str:
        nonlocal version
        version += 1
        if version == 2:
            reloaded.set()
        return f"v{version}"

    async def read() -> object:
        return await store.get_or_set("k", factory, ttl=100, refresh_after=10)

    assert await read() == "v1"
    clock.advance(9)
    assert await read() == "v1"
    assert version == 1
    clock.advance(1)
    assert [await read(), await read(), await read()] == ["v1"] * 3  # stale, one reload
    with anyio.fail_after(5):
        await reloaded.wait()
    await anyio.wait_all_tasks_blocked()
    assert version == 2
    assert await read() == "v2"
    assert await store.get("k") == "v2"  # stored as it is, no wrapper
    assert await store.ttl("k") == 100  # the reload wrote a fresh entry


async def test_failed_refresh_keeps_old_value_until_ttl(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload that fails is logged; the old value is served until its TTL ends."""
    store = MemoryStore(clock=clock)
    attempts = 0
    failed = anyio.Event()

    async def factory() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 2:
            failed.set()
            msg = "upstream down"
            raise RuntimeError(msg)
        return f"v{attempts}"

    assert await store.get_or_set("k", factory, ttl=30, refresh_after=10) == "v1"
    clock.advance(15)
    with caplog.at_level(logging.WARNING, logger="lapse"):
        assert await store.get_or_set("k", factory, ttl=30, refresh_after=10) == "v1"
        with anyio.fail_after(5):
            await failed.wait()
        await anyio.wait_all_tasks_blocked()
    assert "refreshing 'k' failed" in caplog.text
    assert store.stats().load_failures == 1
    clock.advance(14)
    assert await store.get("k") == "v1"
    clock.advance(1)  # the TTL of v1 ends: the next call loads afresh
    assert await store.get_or_set("k", factory, ttl=30, refresh_after=10) == "v3"


def test_refresh_ahead_in_threads(clock: ManualClock) -> None:
    """store.sync.get_or_set refreshes in a background thread, once."""
    replaced = threading.Event()
    store = MemoryStore(clock=clock, on_remove=lambda key, value, cause: replaced.set())
    version = 0

    def factory() -> str:
        nonlocal version
        version += 1
        return f"v{version}"

    assert store.sync.get_or_set("k", factory, ttl=100, refresh_after=10) == "v1"
    clock.advance(10)
    assert store.sync.get_or_set("k", factory, ttl=100, refresh_after=10) == "v1"
    assert replaced.wait(5)  # the background thread stored v2 over v1
    assert store.sync.get_or_set("k", factory, ttl=100, refresh_after=10) == "v2"
    assert version == 2


async def test_refresh_after_is_validated() -> None:
    """refresh_after must be a positive number of seconds."""
    store = MemoryStore()
    with pytest.raises(ValueError, match="refresh_after"):
        await store.get_or_set("k", lambda: 1, refresh_after=0)
