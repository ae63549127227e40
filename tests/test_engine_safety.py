"""The engine under attack: thread races, interrupted operations, re-entrant callbacks."""

from __future__ import annotations

import collections
import math
import sys
import threading

from collections.abc import Callable
from typing import Any

import pytest

from lapse import (
    LRU,
    S3FIFO,
    SIEVE,
    TTL,
    Idle,
    MemoryStore,
    RemovalCause,
    SyncMemoryStore,
    WTinyLFU,
)
from lapse.exceptions import ReentrantCallError
from lapse.testing import ManualClock


Event = tuple[str, Any, RemovalCause]


def run_threads(*targets: Callable[[], None]) -> list[BaseException]:
    """Run every target on its own thread; return what they raised."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as e:  # noqa: BLE001 -- reported to the test
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.usefixtures("fast_switching")
def test_each_removal_is_reported_exactly_once_under_threads() -> None:
    """Six threads writing, reading and deleting: every removal event arrives once."""
    events: list[Event] = []
    lock = threading.Lock()

    def on_remove(key: str, value: Any, cause: RemovalCause) -> None:
        with lock:
            events.append((key, value, cause))

    store = SyncMemoryStore(eviction=LRU(20), on_remove=on_remove)
    per_thread = 3000

    def worker(t: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(per_thread):
                key = f"t{t}-{i}"
                store.set(key, i)  # unique value: the event names this write
                store.get(f"t{t}-{i // 2}")
                if i % 3 == 0:
                    store.delete(key)

        return run

    assert run_threads(*(worker(t) for t in range(6))) == []
    counts = collections.Counter(events)
    assert [e for e, n in counts.items() if n > 1] == []
    # Every value written is either still held or was reported removed, once.
    held = {(k, store.get(k)) for k in store.keys()}
    removed = {(k, v) for k, v, _ in events}
    assert len(held) + len(removed) == 6 * per_thread
    store._check_invariants()


@pytest.mark.usefixtures("fast_switching")
def test_writes_never_raise_while_threads_read_an_lru_store() -> None:
    """Readers reorder the LRU order lock-free; writers never see an error, the bound holds."""
    store = SyncMemoryStore(expiry=TTL(60), eviction=LRU(10))
    stop = threading.Event()
    over_bound: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            for i in range(6):  # six keys: "n" stays among the 10 most recent
                store.get(f"k{i}")

    def writer() -> None:
        try:
            for i in range(40_000):
                store.set(f"k{i % 12}", i)
                store.incr("n")  # used every other write: never the LRU victim
                held = len(store._data)
                if held > 10:
                    over_bound.append(held)
        finally:
            stop.set()

    assert run_threads(writer, reader, reader, reader) == []
    assert over_bound == []
    assert store.get("n") == 40_000
    store._check_invariants()


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize(
    ("expiry", "eviction"),
    [(TTL(5), LRU(30)), ((TTL(5), Idle(2)), LRU(30)), (None, None)],
    ids=["ttl+lru", "idle+lru", "plain"],
)
def test_threads_hammering_keep_dict_and_index_in_step(expiry: Any, eviction: Any) -> None:
    """Mixed operations from several threads with a moving clock: consistent at the end."""
    clock = ManualClock(100.0)
    store = SyncMemoryStore(expiry=expiry, eviction=eviction, clock=clock)

    def worker(seed: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(4000):
                key = f"k{(i * seed) % 50}"
                op = (i + seed) % 9
                if op == 0:
                    store.delete(key)
                elif op == 1:
                    store.incr("counter")
                elif op == 2:
                    clock.advance(0.01)
                elif op == 3:
                    store.set(key, i, ttl=0.5 + (i % 3))
                elif op == 4:
                    len(store)
                else:
                    store.get(key)

        return run

    assert run_threads(*(worker(s) for s in (1, 3, 7, 11))) == []
    store._check_invariants()


class _BoomError(Exception):
    pass


def test_recursive_on_remove_leaves_the_store_usable() -> None:
    """An on_remove that re-enters an LRU(1) store until RecursionError breaks nothing."""
    store: SyncMemoryStore

    def on_remove(key: str, value: Any, cause: RemovalCause) -> None:
        store.set(f"{key}+", value)  # evicts the last key: on_remove again, deeper

    store = SyncMemoryStore(expiry=TTL(60), eviction=LRU(1), on_remove=on_remove)
    store.set("a", 1)
    store.set("b", 2)  # recursion until the limit; the error is logged and swallowed
    store._check_invariants()
    store._on_remove = None  # stop the recursion, then use the store as before
    store.set("a", 3)
    store.set("a", 4)
    assert store.get("a") == 4
    assert len(store) == 1
    store._check_invariants()


@pytest.mark.parametrize("policy", [LRU, SIEVE, S3FIFO, WTinyLFU])
@pytest.mark.parametrize("step", range(1, 40))
def test_an_interrupted_write_leaves_the_store_consistent(step: int, policy: type[LRU]) -> None:
    """KeyboardInterrupt at any point of a write: the store is consistent and usable after."""
    clock = ManualClock(10.0)
    store = SyncMemoryStore(
        expiry=TTL(5),
        eviction=policy(max_size=4, max_weight=100, weigher=lambda k, v: v),
        clock=clock,
    )
    for i in range(4):
        store.set(f"k{i}", i, ttl=1 + i)
    clock.advance(1.5)  # k0 has expired: the write purges it

    calls = 0

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal calls
        if event == "call" and frame.f_code.co_filename.endswith(
            ("_engine.py", "_expiry_index.py", "_sync_store.py", "_policies.py", "_eviction.py")
        ):
            calls += 1
            if calls == step:
                raise KeyboardInterrupt
        return None

    previous = sys.gettrace()  # coverage's: put it back afterwards
    sys.settrace(tracer)
    try:
        store.set("k9", 9, ttl=3)
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(previous)
    store._check_invariants()
    for i in range(10):
        store.set(f"n{i}", i)
    store._check_invariants()
    assert len(store) == 4
    if policy is LRU:
        assert sorted(store.keys()) == ["n6", "n7", "n8", "n9"]


@pytest.mark.parametrize("where", ["weigher", "after_write", "after_use"])
def test_a_callback_that_raises_changes_nothing(where: str) -> None:
    """A weigher or an expiry policy that raises: the error reaches the caller, nothing moved."""

    class Policy:
        def after_write(self, key: str, value: object) -> float:
            if where == "after_write" and value == "bad":
                raise _BoomError
            return 10.0

        def after_use(self, key: str, value: object) -> float:
            if where == "after_use" and value == "bad":
                raise _BoomError
            return 10.0

    def weigher(key: str, value: object) -> int:
        if where == "weigher" and value == "bad":
            raise _BoomError
        return 1

    clock = ManualClock()
    store = SyncMemoryStore(
        expiry=Policy(), eviction=LRU(max_weight=10, weigher=weigher), clock=clock
    )
    store.set("a", "good")
    store.set("b", "good")
    with pytest.raises(_BoomError):
        store.set("a", "bad")
    with pytest.raises(_BoomError):
        store.set_many({"c": "good", "a": "bad"})
    assert store.get("a") == "good"
    assert store.get("c") is None
    assert sorted(store.keys()) == ["a", "b"]
    store._check_invariants()


@pytest.mark.parametrize("where", ["weigher", "after_write", "after_use"])
def test_a_callback_that_uses_its_own_store_is_refused(where: str) -> None:
    """A weigher or policy calling its own store gets ReentrantCallError, not a deadlock."""
    store: SyncMemoryStore

    class Policy:
        def after_write(self, key: str, value: object) -> float:
            if where == "after_write":
                len(store)
            return 10.0

        def after_use(self, key: str, value: object) -> float:
            if where == "after_use":
                store.has("x")
            return 10.0

    def weigher(key: str, value: object) -> int:
        if where == "weigher":
            store.get("other-key", None)
            store.ttl("x")
        return 1

    store = SyncMemoryStore(expiry=Policy(), eviction=LRU(max_weight=10, weigher=weigher))
    with pytest.raises(ReentrantCallError, match="must not use the store"):
        store.set("a", 1)
    assert list(store.keys()) == []
    store._check_invariants()


def test_keep_ttl_with_a_ttl_is_refused() -> None:
    """set(ttl=..., keep_ttl=True) contradicts itself, as in Redis: ValueError, no change."""
    clock = ManualClock()
    store = SyncMemoryStore(clock=clock)
    store.set("a", 1, ttl=10)
    with pytest.raises(ValueError, match="keep_ttl"):
        store.set("a", 2, ttl=100, keep_ttl=True)
    assert store.get("a") == 1
    assert store.ttl("a") == 10


@pytest.mark.anyio
async def test_closing_a_store_keeps_its_data() -> None:
    """aclose() and `async with` release resources; the data of a shared store stays."""
    store = MemoryStore()
    await store.set("a", 1)
    async with store:
        pass
    await store.aclose()
    assert await store.get("a") == 1


def test_async_on_remove_is_refused() -> None:
    """An async on_remove would never run: refused with TypeError at construction."""

    async def on_remove(key: str, value: Any, cause: RemovalCause) -> None:
        pass

    class AsyncCallable:
        async def __call__(self, key: str, value: Any, cause: RemovalCause) -> None:
            pass

    for callback in (on_remove, AsyncCallable()):
        with pytest.raises(TypeError, match="on_remove must be a plain function"):
            MemoryStore(on_remove=callback)
        with pytest.raises(TypeError, match="on_remove must be a plain function"):
            SyncMemoryStore(on_remove=callback)


@pytest.mark.parametrize("ttl", [10**400, -(10**400)])
def test_a_huge_int_ttl_raises_value_error(ttl: int) -> None:
    """An int beyond float range is a ValueError naming ttl, not an OverflowError."""
    store = SyncMemoryStore()
    with pytest.raises(ValueError, match="ttl"):
        store.set("a", 1, ttl=ttl)
    with pytest.raises(ValueError, match="seconds is beyond float range"):
        TTL(ttl)
    assert list(store.keys()) == []


def test_repr_shows_configuration_never_values() -> None:
    """A stored secret never appears in a repr; the size does."""
    store = MemoryStore(expiry=TTL(60), eviction=LRU(10))
    store.sync.set("password", "hunter2-secret")
    for text in (repr(store), repr(store.sync), str(store.sync)):
        assert "hunter2" not in text
        assert "TTL(seconds=60" in text
    assert "size=1" in repr(store.sync)


def test_sync_store_is_built_like_memory_store() -> None:
    """SyncMemoryStore takes MemoryStore's keywords and checks them the same way."""
    clock = ManualClock()
    store = SyncMemoryStore(expiry=(TTL(10), Idle(5)), eviction=LRU(2), clock=clock)
    store.set("a", 1)
    clock.advance(5)
    assert store.get("a") is None
    with pytest.raises(TypeError, match="expiry"):
        SyncMemoryStore(expiry=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="eviction"):
        SyncMemoryStore(eviction="lru")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock"):
        SyncMemoryStore(clock=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SyncMemoryStore((), None, clock, None)  # type: ignore[call-arg]


def test_a_nan_clock_reading_is_a_clear_error() -> None:
    """A clock that returns NaN gets ValueError naming the clock; the store is unchanged."""
    clock = ManualClock()
    store = SyncMemoryStore(expiry=TTL(10), clock=clock)
    store.set("a", 1)
    clock.now = math.nan
    with pytest.raises(ValueError, match="clock"):
        store.set("b", 2)
    with pytest.raises(ValueError, match="clock"):
        store.get("a")
    clock.now = 1.0
    assert sorted(store.keys()) == ["a"]
    store._check_invariants()
