"""The longest pause of a write: one store of 1 M entries under 2.2 M overwrites.

    python benchmarks/pauses.py            # 1 M entries; about a minute
    python benchmarks/pauses.py --n 100000

Each write is timed alone. The clock is a manual one that moves 0.5 ms a write (about
18 minutes over the run), so deadlines pass, slots of the expiry index are reached and
split, and expired entries are purged as in a long-running process. Two lifetime spreads:
60 s to 1 h, and 60-120 s (every deadline in one or two minute slots, the case where a
coarse bucket fills up and is split). cachetools' `TLRUCache` is measured beside it (its
heap is rebuilt from time to time, which is its pause).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time

from typing import Any


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def lapse_store(clock: Clock, n: int) -> Any:
    from lapse import LRU, MemoryStore  # noqa: PLC0415

    sync = MemoryStore(eviction=LRU(2 * n), clock=clock).sync

    def set_(key: str, value: int, ttl: float) -> None:
        sync.set(key, value, ttl=ttl)

    return set_


def tlru_store(clock: Clock, n: int) -> Any:
    from cachetools import TLRUCache  # noqa: PLC0415

    cache: TLRUCache[str, tuple[int, float]] = TLRUCache(
        maxsize=2 * n, ttu=lambda _key, v, now: now + v[1], timer=clock
    )

    def set_(key: str, value: int, ttl: float) -> None:
        cache[key] = (value, ttl)

    return set_


def run(build: Any, n: int, spread: tuple[float, float]) -> dict[str, float]:
    clock = Clock()
    set_ = build(clock, n)
    rng = random.Random(11)
    keys = [f"key{i}" for i in range(n)]
    for key in keys:
        set_(key, 0, rng.uniform(*spread))
    writes = [(keys[rng.randrange(n)], rng.uniform(*spread)) for _ in range(int(2.2 * n))]
    times = []
    gc.collect()
    gc.disable()
    perf = time.perf_counter
    for i, (key, ttl) in enumerate(writes):
        clock.now += 0.0005
        start = perf()
        set_(key, i, ttl)
        times.append(perf() - start)
    gc.enable()
    return {"mean_us": statistics.fmean(times) * 1e6, "max_ms": max(times) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    for spread in ((60.0, 3600.0), (60.0, 120.0)):
        for name, build in (("lapse", lapse_store), ("cachetools TLRUCache", tlru_store)):
            result = run(build, args.n, spread)
            print(
                f"N={args.n} ttl {spread[0]:.0f}-{spread[1]:.0f} s  {name:22} "
                f"mean {result['mean_us']:.2f} us  longest {result['max_ms']:.1f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
