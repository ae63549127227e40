"""Type-checked by mypy, never run: the public API as users write it."""

from __future__ import annotations

import math

from datetime import timedelta

from lapse import LRU, TTL, Idle, MemoryStore, RemovalCause, Stats, Store
from lapse.policies import EvictionPolicy, ExpiryPolicy
from lapse.testing import ManualClock


def on_remove(key: str, value: object, cause: RemovalCause) -> None: ...


async def usage() -> None:
    clock = ManualClock()
    policy: ExpiryPolicy = TTL(300)
    eviction: EvictionPolicy = LRU(10_000)
    store = MemoryStore(
        expiry=(policy, Idle(timedelta(minutes=30))),
        eviction=eviction,
        clock=clock,
        on_remove=on_remove,
    )
    as_protocol: Store = store
    await as_protocol.set("k", 1, ttl=60)
    await store.set("k", 1, ttl=math.inf, keep_ttl=True)
    n: int = await store.incr("n")
    left: float | None = await store.ttl("k")
    found: dict[str, object] = await store.get_many(["k"])
    stats: Stats = store.stats()
    ratio: float = stats.hit_ratio
    keys = [key async for key in store.keys()]
    size: int = len(store) + len(store.sync)
    sync_value: object = store.sync.get("k")
    del n, left, found, ratio, keys, size, sync_value
    LRU(max_weight=100, weigher=lambda key, value: len(value))
