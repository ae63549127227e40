"""Type-checked by mypy, never run: the public API as users write it."""

from __future__ import annotations

import math

from datetime import timedelta

from lapse import LRU, TTL, Idle, MemoryStore, RemovalCause, Stats, Store, cached, get_or_set
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


store_for_cache = MemoryStore()


@cached(store_for_cache, ttl=60)
async def fetch_user(user_id: int, *, verbose: bool = False) -> dict[str, int]:
    return {"id": user_id}


@cached(store_for_cache)
def square(x: int) -> int:
    return x * x


class Repo:
    @cached(store_for_cache)
    async def name(self, user_id: int) -> str:
        return str(user_id)

    @cached(store_for_cache)
    def size(self, n: int) -> int:
        return n


async def loaders() -> None:
    user: dict[str, int] = await fetch_user(1, verbose=True)
    key: str = fetch_user.key(1)
    removed: bool = await fetch_user.invalidate(1)
    sq: int = square(3)
    sq_removed: bool = square.invalidate(3)
    repo = Repo()
    name: str = await repo.name(1)
    name_key: str = repo.name.key(1)
    size: int = repo.size(2)
    loaded: int = await store_for_cache.get_or_set("k", lambda: 1)
    loaded_async: str = await get_or_set(store_for_cache, "k", fetch_name)
    threaded: int = store_for_cache.sync.get_or_set("k", lambda: 1, refresh_after=5)
    del user, key, removed, sq, sq_removed, name, name_key, size, loaded, loaded_async, threaded


async def fetch_name() -> str:
    return "x"


async def _full_stores(url: str) -> None:
    from lapse import FullStore
    from lapse.redis import RedisStore

    memory: FullStore = MemoryStore()
    redis_store: FullStore = RedisStore(url)
    for store in (memory, redis_store):
        await store.set("k", 1)
