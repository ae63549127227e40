"""Benchmark lapse against its peers, in one process, interleaved, median of repeats.

    ./scripts/bench            # N = 1k, 10k, 100k, 1M; about 25 minutes on 2 cores
    ./scripts/bench --quick    # N = 1k, 10k, 100k, fewer operations; about 6 minutes

Writes ``benchmarks/results/results.json`` and ``results.md``, and the plots of the docs'
Performance page (``docs/img/``). Every number is nanoseconds per operation unless said
otherwise; ratios are taken between subjects measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import itertools
import json
import platform
import random
import statistics
import subprocess
import sys
import time

from collections import OrderedDict
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from subjects import LONG_TTL, SUBJECTS, Ops


HERE = Path(__file__).parent
RESULTS = HERE / "results"
IMAGES = HERE.parent / "docs" / "img"

LAPSE = "lapse MemoryStore (TTL+LRU)"
LAPSE_SYNC = "lapse store.sync (TTL+LRU)"
ASYNC_FLOOR = "async floor"
TLRU = "cachetools TLRUCache"
LRU_PEERS = [
    LAPSE,
    LAPSE_SYNC,
    TLRU,
    "cachetools TTLCache",
    "cachetools LRUCache",
    "cachebox LRUCache",
    "cachebox VTTLCache",
    "theine Cache",
    "cashews mem://",
    "cashews Memory (raw)",
]
POLICIES = [f"lapse MemoryStore (TTL+{p})" for p in ("SIEVE", "S3FIFO", "WTinyLFU")]
MIXED = LRU_PEERS + POLICIES  # the mixed workload evicts: every policy's write path
MEMORY_SUBJECTS = [
    LAPSE,
    "dict floor",
    TLRU,
    "cachebox VTTLCache",
    "theine Cache",
    "aiocache SimpleMemoryCache",
    "cashews Memory (raw)",
]


async def timed(ops: Ops, calls: list[tuple[Any, ...]], fn: Callable[..., Any]) -> float:
    """Run fn(*call) for every call; return nanoseconds per call."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        if ops.is_async:
            for call in calls:
                await fn(*call)
        else:
            for call in calls:
                fn(*call)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed / len(calls) * 1e9


async def fill(ops: Ops, keys: list[str]) -> None:
    for key in keys:
        result = ops.set(key, key, LONG_TTL)
        if ops.is_async:
            await result


def zipf_trace(n: int, length: int, rng: random.Random, s: float = 1.0) -> list[str]:
    cumulative = list(itertools.accumulate(1 / (i**s) for i in range(1, n + 1)))
    total = cumulative[-1]
    ranks = [bisect.bisect_left(cumulative, rng.random() * total) for _ in range(length)]
    permutation = list(range(n))
    rng.shuffle(permutation)  # popular keys are not the first ones inserted
    return [f"key{permutation[r]}" for r in ranks]


def lru_reference_hits(trace: list[str], bound: int) -> int:
    order: OrderedDict[str, None] = OrderedDict()
    hits = 0
    for key in trace:
        if key in order:
            hits += 1
            order.move_to_end(key)
        else:
            order[key] = None
            if len(order) > bound:
                order.popitem(last=False)
    return hits


async def mixed(ops: Ops, trace: list[str]) -> tuple[float, int]:
    """Cache-aside: get, and set on a miss. Returns ns/op and hits."""
    hits = 0
    get, set_, hit = ops.get, ops.set, ops.hit
    gc.collect()
    start = time.perf_counter()
    if ops.is_async:
        for key in trace:
            if hit(await get(key)):
                hits += 1
            else:
                await set_(key, key, LONG_TTL)
    else:
        for key in trace:
            if hit(get(key)):
                hits += 1
            else:
                set_(key, key, LONG_TTL)
    return (time.perf_counter() - start) / len(trace) * 1e9, hits


async def scenario_n(n: int, ops_count: int, repeats: int, rng: random.Random) -> dict[str, Any]:
    keys = [f"key{i}" for i in range(n)]
    hit_calls = [(keys[rng.randrange(n)],) for _ in range(ops_count)]
    miss_calls = [(f"miss{i}",) for i in range(ops_count)]
    set_calls = [(keys[rng.randrange(n)], i, rng.uniform(600, 7200)) for i in range(ops_count)]
    built: dict[str, Ops] = {}
    for name, subject in SUBJECTS.items():
        ops = subject.build(n)
        await fill(ops, keys)
        if ops.size() != n:
            msg = f"{name} holds {ops.size()} entries after filling {n}"
            raise RuntimeError(msg)
        built[name] = ops
    samples: dict[str, dict[str, list[float]]] = {
        name: {"get_hit": [], "get_miss": [], "set_ttl": []} for name in built
    }
    for _ in range(repeats):
        for name, ops in built.items():  # interleaved: every subject once per repeat
            samples[name]["get_hit"].append(await timed(ops, hit_calls, ops.get))
            samples[name]["get_miss"].append(await timed(ops, miss_calls, ops.get))
            if SUBJECTS[name].per_key_ttl or name in {"dict floor", ASYNC_FLOOR}:
                samples[name]["set_ttl"].append(await timed(ops, set_calls, ops.set))
    del built
    gc.collect()
    # Mixed, skewed workload under an LRU bound of n / 10.
    bound = max(n // 10, 10)
    trace = zipf_trace(n, ops_count, rng)
    reference = lru_reference_hits(trace, bound)
    mixed_samples: dict[str, list[float]] = {name: [] for name in MIXED}
    mixed_hits: dict[str, int] = {}
    for _ in range(repeats):
        for name in MIXED:
            ops = SUBJECTS[name].build(bound)
            ns, hits = await mixed(ops, trace)
            mixed_samples[name].append(ns)
            mixed_hits[name] = hits
            del ops
    result: dict[str, Any] = {
        name: {scenario: statistics.median(v) for scenario, v in s.items() if v}
        for name, s in samples.items()
    }
    for name in MIXED:
        result[name]["mixed"] = statistics.median(mixed_samples[name])
        result[name]["mixed_hit_ratio"] = mixed_hits[name] / len(trace)
    result["_mixed_reference_hit_ratio"] = reference / len(trace)
    return result


async def churn(writes: int, window_seconds: float, rate: float) -> dict[str, Any]:
    """Short-lived keys and no reads: how many entries does each store hold?"""
    import cachetools  # noqa: PLC0415

    from lapse import TTL, MemoryStore  # noqa: PLC0415
    from lapse.testing import ManualClock  # noqa: PLC0415

    step = 1 / rate
    window_keys = int(window_seconds * rate)
    clock = ManualClock()
    store = MemoryStore(expiry=TTL(window_seconds), clock=clock)
    peak = 0
    start = time.perf_counter()
    for i in range(writes):
        await store.set(f"k{i}", i)
        clock.advance(step)
        if i % 64 == 0:
            peak = max(peak, len(store.sync._data))
    lapse_ns = (time.perf_counter() - start) / writes * 1e9
    timer = ManualClock()
    cache: cachetools.TTLCache[str, int] = cachetools.TTLCache(
        maxsize=10**9, ttl=window_seconds, timer=timer
    )
    cache_peak = 0.0
    start = time.perf_counter()
    for i in range(writes):
        cache[f"k{i}"] = i
        timer.advance(step)
        if i % 64 == 0:
            cache_peak = max(cache_peak, cache.currsize)
    cachetools_ns = (time.perf_counter() - start) / writes * 1e9
    tlru_timer = ManualClock()
    tlru: cachetools.TLRUCache[str, int] = cachetools.TLRUCache(
        maxsize=10**9, ttu=lambda _k, _v, now: now + window_seconds, timer=tlru_timer
    )
    start = time.perf_counter()
    for i in range(writes):
        tlru[f"k{i}"] = i
        tlru_timer.advance(step)
    tlru_ns = (time.perf_counter() - start) / writes * 1e9
    return {
        "cachetools_tlru_ns": tlru_ns,
        "writes": writes,
        "window_keys": window_keys,
        "lapse_peak_held": peak,
        "lapse_ns": lapse_ns,
        "cachetools_ttl_peak_held": cache_peak,
        "cachetools_ttl_ns": cachetools_ns,
    }


async def cached_hit(ops: int, repeats: int) -> dict[str, float]:
    """ns per hit of an @cached async function, beside a plain get of its key."""
    from lapse import TTL, MemoryStore, cached  # noqa: PLC0415

    store = MemoryStore(expiry=TTL(3600))

    @cached(store)
    async def price(product_id: int, currency: str = "EUR") -> float:
        return 9.99

    await price(1)
    key = price.key(1)
    calls = [(1,)] * ops
    hits, gets = [], []
    for _ in range(repeats):
        hits.append(await _timed_async(price, calls))
        gets.append(await _timed_async(store.get, [(key,)] * ops))
    return {"cached_hit_ns": statistics.median(hits), "get_ns": statistics.median(gets)}


async def _timed_async(fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for call in calls:
            await fn(*call)
        return (time.perf_counter() - start) / len(calls) * 1e9
    finally:
        gc.enable()


async def stampede(callers: int, latency: float) -> dict[str, dict[str, float]]:
    """*callers* concurrent calls of a cached function on a cold key: how many loads?"""
    from aiocache import SimpleMemoryCache  # noqa: PLC0415
    from aiocache import cached as aiocache_cached  # noqa: PLC0415
    from cashews import Cache  # noqa: PLC0415

    from lapse import MemoryStore, cached  # noqa: PLC0415

    cashews = Cache()
    cashews.setup("mem://")
    calls: dict[str, int] = {}

    def counted(name: str) -> Callable[[int], Any]:
        async def load(x: int) -> int:
            calls[name] = calls.get(name, 0) + 1
            await asyncio.sleep(latency)  # the database
            return x

        load.__name__ = load.__qualname__ = name.replace(" ", "_").replace("(", "").replace(")", "")
        return load

    subjects = {
        "lapse @cached": cached(MemoryStore())(counted("lapse @cached")),
        "aiocache @cached": aiocache_cached(ttl=60, cache=SimpleMemoryCache)(
            counted("aiocache @cached")
        ),
        "cashews @cache": cashews(ttl=60)(counted("cashews @cache")),
        "cashews @cache(lock=True)": cashews(ttl=60, lock=True)(
            counted("cashews @cache(lock=True)")
        ),
    }
    for fn in subjects.values():
        await fn(-1)  # warm up: first-use imports and set-up are not what we measure
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    loads: dict[str, list[int]] = {name: [] for name in subjects}
    for cold_key in range(3):  # a cold key each time
        for name, fn in subjects.items():
            before = calls[name]
            start = time.perf_counter()
            results = await asyncio.gather(*(fn(cold_key) for _ in range(callers)))
            samples[name].append((time.perf_counter() - start) * 1e3)
            loads[name].append(calls[name] - before)
            if any(r != cold_key for r in results):
                msg = f"{name} returned a wrong result"
                raise RuntimeError(msg)
    return {
        name: {"loads": max(loads[name]), "ms": statistics.median(samples[name])}
        for name in subjects
    }


def memory(n: int) -> dict[str, float]:
    """Bytes per entry, each subject in a fresh interpreter (RSS growth / entries)."""
    out = {}
    for name in MEMORY_SUBJECTS:
        proc = subprocess.run(  # noqa: S603
            [sys.executable, str(HERE / "memory.py"), name, str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        out[name] = float(proc.stdout.strip())
    return out


def versions() -> dict[str, str]:
    names = ["lapse", "cachetools", "cachebox", "theine", "aiocache", "cashews"]
    found = {name: metadata.version(name) for name in names}
    found["python"] = platform.python_version()
    found["build"] = "compiled" if compiled() else "pure"
    found["machine"] = f"{platform.machine()}, {platform.system()}, {_cores()} cores"
    return found


def compiled() -> bool:
    """Whether the lapse measured is the mypyc build (its engine is an extension module)."""
    import lapse._engine  # noqa: PLC0415

    return not (lapse._engine.__file__ or "").endswith(".py")


def _cores() -> int:
    import os  # noqa: PLC0415

    return os.cpu_count() or 0


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The issue's targets, checked against this run."""
    by_n = results["by_n"]
    ns = sorted(by_n, key=int)
    rows: list[tuple[str, str, bool]] = []
    for n in ns:
        r = by_n[n]
        lapse = r[LAPSE]["get_hit"]
        checks = [
            (TLRU, 3.0),
            ("aiocache SimpleMemoryCache", 4.0),
            ("cashews mem://", 4.0),
            ("cashews Memory (raw)", 1.2),
        ]
        for peer, need in checks:
            speedup = ratio(r[peer]["get_hit"], lapse)
            rows.append(
                (f"1. get hit N={n}: vs {peer} >= {need}x", f"{speedup:.2f}x", speedup >= need)
            )
        floor = ratio(lapse, r[ASYNC_FLOOR]["get_hit"])
        rows.append(
            (f"1. get hit N={n}: within 2.5x of async floor", f"{floor:.2f}x", floor <= 2.5)
        )
        lapse_set = r[LAPSE]["set_ttl"]
        for peer, need in [
            (TLRU, 2.0),
            ("aiocache SimpleMemoryCache", 5.0),
            ("cashews mem://", 5.0),
        ]:
            speedup = ratio(r[peer]["set_ttl"], lapse_set)
            rows.append(
                (f"2. set+TTL N={n}: vs {peer} >= {need}x", f"{speedup:.2f}x", speedup >= need)
            )
        speedup = ratio(r[TLRU]["mixed"], r[LAPSE]["mixed"])
        rows.append((f"3. mixed N={n}: vs {TLRU} >= 2x", f"{speedup:.2f}x", speedup >= 2.0))
        exact = r[LAPSE]["mixed_hit_ratio"] == r["_mixed_reference_hit_ratio"]
        rows.append(
            (
                f"3. mixed N={n}: hit ratio equals OrderedDict LRU",
                f"{r[LAPSE]['mixed_hit_ratio']:.4f} vs {r['_mixed_reference_hit_ratio']:.4f}",
                exact,
            )
        )
        for name in POLICIES:
            policy = name.split("+")[1].rstrip(")")
            get = ratio(r[name]["get_hit"], r[LAPSE]["get_hit"])
            rows.append((f"8. get hit N={n}: {policy} <= LRU", f"{get:.2f}x", get <= 1.0))
            for scenario, what in (("set_ttl", "set (overwrite)"), ("mixed", "mixed (evicting)")):
                cost = ratio(r[name][scenario], r[LAPSE][scenario])
                rows.append((f"8. {what} N={n}: {policy} <= 1.1x LRU", f"{cost:.2f}x", cost <= 1.1))
        sync = ratio(r[LAPSE_SYNC]["get_hit"], r["cachetools LRUCache"]["get_hit"])
        rows.append(
            (f"6. sync get N={n}: within 1.2x of cachetools LRUCache", f"{sync:.2f}x", sync <= 1.2)
        )
    small, large = by_n[ns[0]], by_n[ns[-1]]
    growth = ratio(
        ratio(large[LAPSE]["get_hit"], large[ASYNC_FLOOR]["get_hit"]),
        ratio(small[LAPSE]["get_hit"], small[ASYNC_FLOOR]["get_hit"]),
    )
    rows.append(
        (
            f"4. growth N={ns[-1]} vs N={ns[0]} (vs async floor) <= 1.5",
            f"{growth:.2f}",
            growth <= 1.5,
        )
    )
    mem = results["memory_bytes_per_entry"]
    peers = [TLRU, "theine Cache", "aiocache SimpleMemoryCache", "cashews Memory (raw)"]
    below = all(mem[LAPSE] < mem[p] for p in peers)
    rows.append(
        (
            f"5. memory at N={results['memory_n']}: <= 200 B/entry",
            f"{mem[LAPSE]:.0f} B",
            mem[LAPSE] <= 200,
        )
    )
    rows.append(
        ("5. memory below cachetools, theine, aiocache, cashews", "yes" if below else "no", below)
    )
    c = results["churn"]
    bounded = c["lapse_peak_held"] <= c["window_keys"] + 8
    rows.append(
        (
            "7. churn: held <= window + small constant",
            f"{c['lapse_peak_held']} held, window {c['window_keys']}",
            bounded,
        )
    )
    if "cachetools_tlru_ns" in c:
        speedup = ratio(c["cachetools_tlru_ns"], c["lapse_ns"])
        rows.append(("7. churn: write rate vs TLRU >= 1.5x", f"{speedup:.2f}x", speedup >= 1.5))
    rows += write_path_targets(results)
    return rows


def write_path_targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The write-path issue's targets, for the build measured (pure or compiled), with
    LRU and with each of the other policies."""
    compiled = results["versions"].get("build") == "compiled"
    build = "compiled" if compiled else "pure"
    set_need, mixed_need = (2.0, 2.5) if compiled else (1.3, 2.0)
    floor_need, floor_ns = (2.5, {"1000", "10000"}) if compiled else (2.7, {"1000"})
    rows: list[tuple[str, str, bool]] = []
    for n, r in sorted(results["by_n"].items(), key=lambda item: int(item[0])):
        for name in (LAPSE, *POLICIES):
            policy = name.split("+")[1].rstrip(")")
            speedup = ratio(r[TLRU]["set_ttl"], r[name]["set_ttl"])
            rows.append(
                (
                    f"9. {build} set+TTL N={n} {policy}: vs {TLRU} >= {set_need}x",
                    f"{speedup:.2f}x",
                    speedup >= set_need,
                )
            )
        speedup = ratio(r[TLRU]["mixed"], r[LAPSE]["mixed"])
        rows.append(
            (
                f"9. {build} mixed N={n} LRU: vs {TLRU} >= {mixed_need}x",
                f"{speedup:.2f}x",
                speedup >= mixed_need,
            )
        )
        if compiled:
            speedup = ratio(r["cashews Memory (raw)"]["set_ttl"], r[LAPSE]["set_ttl"])
            rows.append(
                (
                    f"9. moonshot set+TTL N={n}: vs cashews Memory (raw) >= 1x",
                    f"{speedup:.2f}x",
                    speedup >= 1.0,
                )
            )
        if n in floor_ns:
            floor = ratio(r[LAPSE]["get_hit"], r[ASYNC_FLOOR]["get_hit"])
            rows.append(
                (
                    f"9. {build} get hit N={n}: within {floor_need}x of async floor",
                    f"{floor:.2f}x",
                    floor <= floor_need,
                )
            )
    mem = results["memory_bytes_per_entry"][LAPSE]
    rows.append(
        (
            f"9. {build} memory at N={results['memory_n']}: <= 210 B/entry",
            f"{mem:.0f} B",
            mem <= 210,
        )
    )
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = []
    v = results["versions"]
    lines.append(
        "Machine: "
        + v["machine"]
        + f"; Python {v['python']}; lapse build: {v.get('build', 'pure')}; "
        + ", ".join(
            f"{k} {v[k]}"
            for k in ["lapse", "cachetools", "cachebox", "theine", "aiocache", "cashews"]
        )
        + "."
    )
    lines.append(
        f"{results['ops']} operations per sample, median of {results['repeats']} interleaved repeats; "
        "ns per operation (lower is better)."
    )
    lines.append("")
    ns = sorted(results["by_n"], key=int)
    for scenario, title in [
        ("get_hit", "get, hit"),
        ("get_miss", "get, miss"),
        ("set_ttl", "set with a per-key TTL (overwrite)"),
        ("mixed", "mixed Zipf workload (get, set on miss) under an LRU bound of N/10"),
    ]:
        lines += [f"### {title}", "", "| subject | " + " | ".join(f"N={n}" for n in ns) + " |"]
        lines.append("|---|" + "---|" * len(ns))
        for name in SUBJECTS:
            cells = [results["by_n"][n].get(name, {}).get(scenario) for n in ns]
            if all(c is None for c in cells):
                continue
            lines.append(
                f"| {name} | " + " | ".join("" if c is None else f"{c:,.0f}" for c in cells) + " |"
            )
        if scenario == "mixed":
            lines.append(
                "| hit ratio: exact LRU (OrderedDict) | "
                + " | ".join(f"{results['by_n'][n]['_mixed_reference_hit_ratio']:.1%}" for n in ns)
                + " |"
            )
            for name in MIXED:
                lines.append(
                    f"| hit ratio: {name} | "
                    + " | ".join(f"{results['by_n'][n][name]['mixed_hit_ratio']:.1%}" for n in ns)
                    + " |"
                )
        lines.append("")
    lines += [
        f"### Memory per entry at N={results['memory_n']} (per-key TTL)",
        "",
        "| subject | bytes |",
        "|---|---|",
    ]
    for name, b in results["memory_bytes_per_entry"].items():
        lines.append(f"| {name} | {b:.0f} |")
    c = results["churn"]
    lines += [
        "",
        "### Expiry churn (no reads)",
        "",
        f"{c['writes']:,} writes of keys with a TTL of one window ({c['window_keys']:,} keys); "
        f"peak entries held: lapse {c['lapse_peak_held']:,} ({c['lapse_ns']:,.0f} ns/write), "
        f"cachetools TTLCache {c['cachetools_ttl_peak_held']:,} ({c['cachetools_ttl_ns']:,.0f} ns/write), "
        f"cachetools TLRUCache {c.get('cachetools_tlru_ns', float('nan')):,.0f} ns/write.",
        "",
        "### RedisStore against a local redis-server (ns per call, same connection pool)",
        "",
        *(
            [
                "| call | ns |",
                "|---|---|",
                *(
                    f"| {name} | {value:,.0f} |"
                    for name, value in results["redis"].items()
                    if name != "get_many commands"
                ),
                "",
                f"`get_many` of 100 keys: {results['redis']['get_many commands']:.0f} command (MGET), one round trip; "
                "`set_many` of 100: one MULTI/EXEC pipeline, one round trip.",
                "",
            ]
            if "redis" in results
            else []
        ),
        "### @cached hit",
        "",
        *(
            [
                f"An `@cached` async function with two arguments: {results['cached_hit']['cached_hit_ns']:,.0f} ns per hit "
                f"(a plain `get` of its key: {results['cached_hit']['get_ns']:,.0f} ns).",
                "",
            ]
            if "cached_hit" in results
            else []
        ),
        "### Stampede: 1000 concurrent calls of a cached function on a cold key (5 ms load)",
        "",
        "| subject | loads | ms to serve all |",
        "|---|---|---|",
        *(f"| {name} | {r['loads']} | {r['ms']:.1f} |" for name, r in results["stampede"].items()),
        "",
        "### Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for target, measured, ok in targets(results):
        lines.append(f"| {target} | {measured} | {'yes' if ok else '**no**'} |")
    return "\n".join(lines) + "\n"


# One chart per question: (file, question, axis label, subjects, scenario).
CHARTS = [
    (
        "get_hit",
        "How long does a read (a hit) take?",
        "nanoseconds per get, lower is better",
        [
            LAPSE,
            LAPSE_SYNC,
            ASYNC_FLOOR,
            TLRU,
            "cachebox VTTLCache",
            "theine Cache",
            "cashews mem://",
            "aiocache SimpleMemoryCache",
        ],
    ),
    (
        "set_ttl",
        "How long does a write with its own TTL take?",
        "nanoseconds per set, lower is better",
        [
            LAPSE,
            LAPSE_SYNC,
            TLRU,
            "cachebox VTTLCache",
            "cashews mem://",
            "cashews Memory (raw)",
            "aiocache SimpleMemoryCache",
        ],
    ),
    (
        "mixed",
        "How long does a cache-aside request take?",
        "nanoseconds per get-or-set (Zipf keys, bound N/10), lower is better",
        [LAPSE, *POLICIES, TLRU, "cachebox LRUCache", "theine Cache", "cashews mem://"],
    ),
]


def _bars(ax: Any, labels: list[str], groups: dict[str, list[float | None]]) -> None:
    """Horizontal bars: one row per subject, one bar per N, lapse's rows in bold."""
    height = 0.8 / max(len(groups), 1)
    for i, (group, values) in enumerate(groups.items()):
        rows = [(y, v) for y, v in enumerate(values) if v is not None]
        ax.barh([y + i * height for y, _ in rows], [v for _, v in rows], height, label=group)
    ax.set_yticks([y + height * (len(groups) - 1) / 2 for y in range(len(labels))])
    ax.set_yticklabels(labels)
    for tick in ax.get_yticklabels():
        if tick.get_text().startswith("lapse"):
            tick.set_fontweight("bold")
    ax.invert_yaxis()


def plots(results: dict[str, Any]) -> None:
    """Write the docs' charts: one question each, its unit and direction on the axis."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    IMAGES.mkdir(parents=True, exist_ok=True)
    ns = sorted(results["by_n"], key=int)
    for scenario, question, axis, subjects in CHARTS:
        shown = [s for s in subjects if any(s in results["by_n"][n] for n in ns)]
        groups = {
            f"N = {int(n):,}": [results["by_n"][n].get(s, {}).get(scenario) for s in shown]
            for n in ns
        }
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(shown) * len(ns) / 2 + 1.6))
        _bars(ax, shown, groups)
        ax.set_xscale("log")
        ax.set_xlabel(axis)
        ax.set_title(question, pad=24)
        ax.legend(
            fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(ns), frameon=False
        )
        fig.tight_layout()
        fig.savefig(IMAGES / f"bench-{scenario}.png", dpi=90)
        plt.close(fig)
    memory = results.get("memory_bytes_per_entry", {})
    if memory:
        names = sorted(memory, key=memory.__getitem__)
        fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.4))
        _bars(ax, names, {f"N = {results['memory_n']:,}": [memory[n] for n in names]})
        ax.set_xlabel("bytes per entry (RSS growth), lower is better")
        ax.set_title("How much memory does an entry with a TTL take?")
        fig.tight_layout()
        fig.savefig(IMAGES / "bench-memory.png", dpi=90)
        plt.close(fig)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="N = 1k, 10k and 100k, fewer operations"
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (median taken)")
    parser.add_argument(
        "--render", type=Path, help="only write the table and plots of a results JSON file"
    )
    args = parser.parse_args()
    results: dict[str, Any]
    if args.render:
        results = json.loads(args.render.read_text())
        results["targets"] = [
            {"target": t, "measured": m, "met": ok} for t, m, ok in targets(results)
        ]
        args.render.with_suffix(".md").write_text(markdown(results))
        if not args.no_plots:
            plots(results)
        return
    sizes = [1_000, 10_000, 100_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    ops = 20_000 if args.quick else 200_000
    repeats = args.repeats or (1 if args.quick else 3)
    rng = random.Random(2026)
    results = {"ops": ops, "repeats": repeats, "versions": versions(), "by_n": {}}
    for n in sizes:
        print(f"N={n} ...", file=sys.stderr, flush=True)
        results["by_n"][str(n)] = await scenario_n(n, ops, repeats, rng)
    results["memory_n"] = 100_000 if args.quick else 1_000_000
    print("memory ...", file=sys.stderr, flush=True)
    results["memory_bytes_per_entry"] = memory(results["memory_n"])
    print("churn ...", file=sys.stderr, flush=True)
    results["churn"] = await churn(ops * 2, window_seconds=10.0, rate=1000.0)
    print("redis ...", file=sys.stderr, flush=True)
    import redis_bench  # noqa: PLC0415 -- next to this file

    try:
        results["redis"] = await redis_bench.measure(calls=2000 if args.quick else 10_000)
    except Exception as e:  # noqa: BLE001 -- the other results are worth keeping
        print(f"redis benchmark failed: {e!r}", file=sys.stderr, flush=True)
    print("cached hit ...", file=sys.stderr, flush=True)
    results["cached_hit"] = await cached_hit(ops, repeats)
    print("stampede ...", file=sys.stderr, flush=True)
    results["stampede"] = await stampede(1000, latency=0.005)
    results["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in targets(results)]
    RESULTS.mkdir(exist_ok=True)
    suffix = ("-quick" if args.quick else "") + ("-compiled" if compiled() else "")
    (RESULTS / f"results{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (RESULTS / f"results{suffix}.md").write_text(table)
    if not args.no_plots and not args.quick:
        plots(results)
    print(table)


if __name__ == "__main__":
    asyncio.run(main())
