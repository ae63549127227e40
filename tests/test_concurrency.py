"""Many tasks and threads on one store: no lost update, and the invariants hold throughout."""

from __future__ import annotations

import random
import threading

from typing import cast

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from lapse import LRU, S3FIFO, SIEVE, TTL, Idle, MemoryStore, RemovalCause, WTinyLFU
from lapse.testing import ManualClock


pytestmark = pytest.mark.anyio

THREADS = 4
TASKS = 8
OPS = 2000
BOUND = 50


def check_invariants(store: MemoryStore) -> None:
    """The dict, the expiry index and the LRU order describe the same entries."""
    engine = store.sync
    engine._check_invariants()
    evictor = engine._evictor
    assert len(engine._data) <= BOUND
    assert evictor.order is cast("object", engine._data)  # type: ignore[union-attr]


@pytest.mark.parametrize("policy", [LRU, SIEVE, S3FIFO, WTinyLFU])
@pytest.mark.parametrize("expiry", [TTL(5), (TTL(5), Idle(2))], ids=["ttl", "ttl+idle"])
async def test_tasks_and_threads_hammering_one_store(expiry: object, policy: type[LRU]) -> None:
    """incr loses no update; the bound, the index and the eviction state stay consistent,
    with lock-free reads racing the writers (every policy)."""
    clock = ManualClock()
    dropped: list[int] = []  # the counter's value each time the policy evicted it

    def on_remove(key: str, value: object, cause: RemovalCause) -> None:
        if key == "counter" and cause is RemovalCause.EVICTED:  # never EXPIRED: in use
            dropped.append(value)  # type: ignore[arg-type]

    store = MemoryStore(
        expiry=expiry,  # type: ignore[arg-type]
        eviction=policy(BOUND),
        clock=clock,
        on_remove=on_remove,
    )
    keys = [f"k{i}" for i in range(80)]
    increments = 0
    count_lock = threading.Lock()

    def thread_worker(seed: int) -> None:
        nonlocal increments
        rng = random.Random(seed)
        sync = store.sync
        done = 0
        for i in range(OPS):
            op = rng.random()
            key = rng.choice(keys)
            if op < 0.3:
                sync.incr("counter")
                done += 1
            elif op < 0.6:
                sync.set(key, i, ttl=rng.choice([None, 1, 3]))
            elif op < 0.85:
                sync.get(key)
            elif op < 0.9:
                sync.delete(key)
            elif op < 0.95:
                assert len(list(sync.keys())) <= BOUND  # iterates while others reorder
            else:
                clock.advance(0.01)  # "counter" is written every few ms: it never expires
            if i % 500 == 0:
                check_invariants(store)
        with count_lock:
            increments += done

    async def task_worker(seed: int) -> None:
        nonlocal increments
        rng = random.Random(seed)
        for i in range(OPS):
            key = rng.choice(keys)
            if i % 3 == 0:
                await store.incr("counter")
                with count_lock:
                    increments += 1
            elif i % 3 == 1:
                await store.set(key, i)
            else:
                await store.get_many([key, "counter"])
            if i % 50 == 0:
                await anyio.lowlevel.checkpoint()  # a checkpoint, so that tasks interleave

    async with anyio.create_task_group() as tg:
        for t in range(THREADS):
            tg.start_soon(anyio.to_thread.run_sync, thread_worker, t)
        for t in range(TASKS):
            tg.start_soon(task_worker, 100 + t)

    check_invariants(store)
    # No increment is lost: what the store holds, plus what a policy evicted (SIEVE and
    # the others may evict even a hot key, when the hand passes it twice between uses).
    assert (await store.get("counter") or 0) + sum(dropped) == increments
    assert len(store) <= BOUND
    stats = store.stats()
    assert stats.evictions > 0
    assert stats.sets >= increments
