"""RedisStore beside raw redis.asyncio on the same connection pool, against a local server.

Started by run.py (or alone: ``python benchmarks/redis_bench.py``): it starts its own
redis-server on a free loopback port, with nothing written to disk, and stops it after.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(port: int, directory: str) -> subprocess.Popen[bytes]:
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    return subprocess.Popen(  # noqa: S603 -- our own server, on loopback
        [*args, "--save", "", "--dir", directory], stdout=subprocess.DEVNULL
    )


async def _per_op(calls: int, fn: Any) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await fn()
    return (time.perf_counter() - start) / calls * 1e9


async def _peers(port: int) -> dict[str, Any]:
    """aiocache and cashews on the same server, with JSON-like values, as users set them up."""
    from aiocache import RedisCache  # noqa: PLC0415
    from aiocache.serializers import JsonSerializer  # noqa: PLC0415
    from cashews import Cache  # noqa: PLC0415

    aiocache = RedisCache(
        endpoint="127.0.0.1", port=port, namespace="a", serializer=JsonSerializer()
    )
    cashews = Cache()
    cashews.setup(f"redis://127.0.0.1:{port}/0", client_side=False)
    await aiocache.set("k", "value")
    await cashews.set("c:k", "value")
    return {
        "aiocache get": lambda: aiocache.get("k"),
        "cashews get": lambda: cashews.get("c:k"),
        "aiocache set": lambda: aiocache.set("k", "value"),
        "cashews set": lambda: cashews.set("c:k", "value"),
    }


async def loop_stall(fn: Any) -> float:
    """The longest time (ms) the event loop went without a turn while *fn* ran."""
    longest = 0.0
    running = True

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    await fn()
    running = False
    await task
    return longest * 1000


async def measure(calls: int = 5000, repeats: int = 5) -> dict[str, float]:
    """ns per call: lapse get/set vs raw GET/SET and aiocache's and cashews' on the same
    server (interleaved), get_many/set_many of 100 keys, and the longest loop stall of a
    set_many of 10 000 values."""
    import redis.asyncio  # noqa: PLC0415

    from lapse.redis import RedisStore  # noqa: PLC0415

    if shutil.which("redis-server") is None:
        msg = "redis-server is not installed: run ./scripts/install-system"
        raise RuntimeError(msg)
    port = _free_port()
    directory = tempfile.mkdtemp(prefix="lapse-bench-redis-")
    server = _start(port, directory)
    try:
        client = redis.asyncio.Redis(port=port)
        for _ in range(200):
            try:
                await client.ping()
                break
            except redis.exceptions.ConnectionError:
                await asyncio.sleep(0.02)
        store = RedisStore(client=client, prefix="b:", timeout=30)  # a benchmark never times out
        await store.set("k", "value")
        await client.set("raw", b'"value"')
        keys = [f"m{i}" for i in range(100)]
        mapping = dict.fromkeys(keys, "value")
        await store.set_many(mapping)
        subjects = {
            "raw GET": lambda: client.get("raw"),
            "lapse get": lambda: store.get("k"),
            "raw SET": lambda: client.set("raw", b'"value"'),
            "lapse set": lambda: store.set("k", "value"),
            "lapse get_many(100)": lambda: store.get_many(keys),
            "lapse set_many(100)": lambda: store.set_many(mapping),
            **await _peers(port),
        }
        samples: dict[str, list[float]] = {name: [] for name in subjects}
        for _ in range(repeats):
            for name, fn in subjects.items():  # interleaved
                samples[name].append(await _per_op(calls // (10 if "many" in name else 1), fn))
        info_before = await client.info("stats")
        await store.get_many(keys)
        info_after = await client.info("stats")
        commands = info_after["total_commands_processed"] - info_before["total_commands_processed"]
        result = {name: statistics.median(v) for name, v in samples.items()}
        result["get_many commands"] = commands - 1  # INFO itself counts once
        big = {f"big{i}": {"i": i, "tags": ["a", "b"]} for i in range(10_000)}
        stalls = [await loop_stall(lambda: store.set_many(big)) for _ in range(3)]
        result["set_many(10000) longest loop stall ms"] = max(stalls)
        await store.clear()
        await client.aclose()
        return result
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    for name, value in asyncio.run(measure()).items():
        print(f"{name}: {value:,.0f}")
