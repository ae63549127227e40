"""lapse in the terminal: TTL expiry, idle expiry, LRU eviction, removal events and stats.

Run it with ``./scripts/demo``. It waits for real time to pass (about 2 seconds).
"""

from __future__ import annotations

import asyncio
import time

from collections.abc import Callable
from typing import Any

from lapse import LRU, TTL, Clock, Idle, MemoryStore, RemovalCause


def show(message: str) -> None:
    print(message, flush=True)


async def run(clock: Clock | None = None, sleep: Callable[[float], object] = time.sleep) -> None:
    """Walk through the store's features; *clock* and *sleep* let the tests skip the waiting."""

    def on_remove(key: str, value: object, cause: RemovalCause) -> None:
        show(f"    on_remove: {key!r} = {value!r} ({cause.value})")

    options: dict[str, Any] = {} if clock is None else {"clock": clock}
    store = MemoryStore(
        expiry=(TTL(1.0), Idle(0.6)), eviction=LRU(3), on_remove=on_remove, **options
    )

    show("1. Per-key TTL: 'otp' lives 0.5 s, the store default is 1 s")
    await store.set("otp", "493021", ttl=0.5)
    await store.set("user:1", {"name": "Alice"})
    otp_ttl, otp = await store.ttl("otp"), await store.get("otp")
    show(f"    ttl('otp') = {otp_ttl:.2f} s, get('otp') = {otp!r}")
    sleep(0.5)
    show(f"    0.5 s later: get('otp') = {await store.get('otp')!r}")

    show("2. Idle expiry: reading 'user:1' keeps it alive; it would idle out after 0.6 s")
    show(f"    get('user:1') = {await store.get('user:1')!r}")
    show(f"    ttl('user:1') = {await store.ttl('user:1'):.2f} s (min of TTL and idle)")

    show("3. LRU eviction: the store holds at most 3 entries")
    for key in ("a", "b", "c"):
        await store.set(key, key.upper())
    show(f"    len(store) = {len(store)}, keys = {sorted([k async for k in store.keys()])}")

    show("4. Counters: incr is atomic and keeps the key's deadline")
    for _ in range(3):
        await store.incr("hits")
    show(f"    get('hits') = {await store.get('hits')!r}")

    show("5. Everything expires: after 1 s nothing written above is left")
    sleep(1.0)
    show(f"    len(store) = {len(store)}; purge_expired() removed {await store.purge_expired()}")

    stats = store.stats()
    show(
        f"6. stats: hits={stats.hits} misses={stats.misses} sets={stats.sets} "
        f"evictions={stats.evictions} expirations={stats.expirations} "
        f"hit_ratio={stats.hit_ratio:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(run())
