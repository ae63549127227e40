"""RedisStore against a real redis-server (and a real 3-node cluster): contract, API, faults."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import subprocess
import sys
import threading
import time

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
import redis.asyncio

from lapse import LRU, TTL, Idle, cached
from lapse.exceptions import CorruptValueError, StoreError, StoreTimeoutError, UnserializableError
from lapse.redis import PickleSerializer, RedisStore
from lapse.sessions import SessionManager
from lapse.testing import AsyncFace, FullStoreContract, SyncStoreContract

from .servers import DropReplyProxy, RedisServer, free_port


pytestmark = pytest.mark.anyio
_prefixes = itertools.count()


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"  # redis-py's client is asyncio's


@pytest.fixture(name="redis_store")
async def _redis_store(server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(server.url, prefix=f"t{next(_prefixes)}:")
    yield store
    await store.clear()
    await store.aclose()


def shifter(store: RedisStore) -> Callable[[float], Awaitable[None]]:
    """Move the store's time forward: every key of its prefix loses *seconds* of TTL."""

    async def advance(seconds: float) -> None:
        client = store.client
        ms = round(seconds * 1000)
        async for name in client.scan_iter(match=store.prefix + "*"):
            left = await client.pttl(name)
            if left < 0:
                continue
            if left - ms <= 0:
                await client.delete(name)
            else:
                await client.pexpire(name, left - ms)

    return advance


class TestRedisContract(FullStoreContract):
    """The one contract, on a real redis-server.

    What differs from MemoryStore is outside the contract and tested below: values are
    serialized (JSON: a copy comes back; unserializable values are refused), and there is
    no LRU eviction (refused: Redis's maxmemory-policy does it). Time moves by shifting
    every key's PTTL (`shifter`); Redis's own expiry is checked once, in real time.
    """

    @pytest.fixture(name="store")
    def _store(self, redis_store: RedisStore) -> RedisStore:
        return redis_store

    @pytest.fixture(name="advance")
    def _advance(self, redis_store: RedisStore) -> object:
        return shifter(redis_store)


class TestRedisClusterContract(FullStoreContract):
    """The one contract, on a real 3-master Redis Cluster."""

    @pytest.fixture(name="store")
    async def _store(self, cluster_url: str) -> AsyncIterator[RedisStore]:
        store = RedisStore(cluster_url, prefix=f"c{next(_prefixes)}:")
        yield store
        await store.clear()
        await store.aclose()

    @pytest.fixture(name="advance")
    def _advance(self, store: RedisStore) -> object:
        return shifter(store)


class TestSyncRedisContract(SyncStoreContract):
    """The one contract on ``RedisStore(...).sync``: redis-py's sync client."""

    @pytest.fixture(name="store")
    def _store(self, redis_store: RedisStore) -> AsyncFace:
        return AsyncFace(redis_store.sync)

    @pytest.fixture(name="advance")
    def _advance(self, redis_store: RedisStore) -> object:
        return shifter(redis_store)


class TestSyncRedisClusterContract(SyncStoreContract):
    """The one contract on the sync face of a real 3-master Redis Cluster."""

    @pytest.fixture(name="cluster_store")
    async def _cluster_store(self, cluster_url: str) -> AsyncIterator[RedisStore]:
        store = RedisStore(cluster_url, prefix=f"sc{next(_prefixes)}:")
        yield store
        await store.clear()
        await store.aclose()

    @pytest.fixture(name="store")
    def _store(self, cluster_store: RedisStore) -> AsyncFace:
        return AsyncFace(cluster_store.sync)

    @pytest.fixture(name="advance")
    def _advance(self, cluster_store: RedisStore) -> object:
        return shifter(cluster_store)


async def test_redis_expires_by_itself(redis_store: RedisStore) -> None:
    """Redis's own expiry, in real time (the one short wait): PX is honoured."""
    await redis_store.set("k", "v", ttl=0.15)
    assert await redis_store.get("k") == "v"
    await asyncio.sleep(0.3)
    assert await redis_store.get("k") is None


async def test_the_api_with_redis_semantics(redis_store: RedisStore) -> None:
    """get_many, set_many, delete_many, add, pop, incr, ttl, expire, persist, touch, update."""
    store = redis_store
    await store.set_many({"a": 1, "b": [1, 2], "c": {"x": None}}, ttl=100)
    assert await store.get_many(["a", "b", "c", "zz"]) == {"a": 1, "b": [1, 2], "c": {"x": None}}
    ttl = await store.ttl("a")
    assert ttl is not None
    assert 99 < ttl <= 100
    assert await store.add("a", 2) is False
    assert await store.add("d", 4) is True
    assert await store.pop("d") == 4
    assert await store.pop("d", "gone") == "gone"
    assert await store.incr("n") == 1
    assert await store.incr("n", 9) == 10
    await store.set("n", 5, ttl=50)
    assert await store.incr("n") == 6
    left = await store.ttl("n")
    assert left is not None
    assert left > 40  # incr keeps the deadline
    with pytest.raises(TypeError, match="not an int"):
        await store.incr("b")
    assert await store.persist("a") is True
    assert await store.ttl("a") == math.inf
    assert await store.expire("a", timedelta(seconds=30)) is True
    assert await store.expire("missing", 30) is False
    assert await store.touch("a") is True
    assert await store.touch("missing") is False
    assert await store.ttl("missing") is None
    assert await store.update("n", lambda old: old * 2) == 12
    assert await store.update("n", lambda old: None) is None
    assert not await store.has("n")
    assert await store.delete_many(["a", "b", "zz"]) == 2
    await store.set("k", "v", ttl=10)
    await store.set("k", "w", keep_ttl=True)
    kept = await store.ttl("k")
    assert kept is not None
    assert kept <= 10
    with pytest.raises(ValueError, match="keep_ttl"):
        await store.set("k", "x", ttl=5, keep_ttl=True)
    assert await store.get("k") == "w"


async def test_policies_and_refusals(server: RedisServer) -> None:
    """TTL gives a default lifetime, Idle is refreshed by reads; LRU is refused clearly."""
    ttl_store = RedisStore(server.url, prefix="pol-ttl:", expiry=TTL(60))
    await ttl_store.set("k", 1)
    left = await ttl_store.ttl("k")
    assert left is not None
    assert 59 < left <= 60
    idle = RedisStore(server.url, prefix="pol-idle:", expiry=Idle(30))
    await idle.set("k", 1)
    await idle.client.pexpire("pol-idle:k", 1000)
    assert await idle.get("k") == 1  # 30 s again
    left = await idle.ttl("k")
    assert left is not None
    assert left > 29
    with pytest.raises(ValueError, match="allkeys-lru"):
        RedisStore(server.url, eviction=LRU(10))
    with pytest.raises(TypeError, match="expiry"):
        RedisStore(server.url, expiry=LRU(5))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="url or a client"):
        RedisStore()
    for store in (ttl_store, idle):
        await store.clear()
        await store.aclose()


async def test_values_that_cannot_be_encoded_or_decoded(redis_store: RedisStore) -> None:
    """Unserializable values raise before anything is written; foreign bytes name the key."""
    await redis_store.set("keep", "old")
    with pytest.raises(UnserializableError, match="'bad'"):
        await redis_store.set("bad", {1, object()})
    with pytest.raises(UnserializableError):
        await redis_store.set_many({"x": 1, "y": object()})
    assert await redis_store.get_many(["x", "y", "bad"]) == {}
    with pytest.raises(UnserializableError):
        await redis_store.set("nan", math.nan)
    await redis_store.client.set(redis_store.prefix + "foreign", b"\x80\x04not json")
    with pytest.raises(CorruptValueError, match="'foreign'"):
        await redis_store.get("foreign")
    assert await redis_store.get("keep") == "old"


async def test_pickle_only_when_asked(server: RedisServer) -> None:
    """PickleSerializer round-trips what JSON cannot, when the user passes it."""
    store = RedisStore(server.url, prefix="pickle:", serializer=PickleSerializer())
    await store.set("k", {1, 2, 3})
    assert await store.get("k") == {1, 2, 3}
    await store.clear()
    await store.aclose()


@pytest.mark.parametrize("prefix", ["sp ace:", "st*r:", "q?m:", "br[a]ck:", "n\nl:", "é😀:"])
async def test_odd_characters_in_keys_and_prefixes(server: RedisServer, prefix: str) -> None:
    """Glob characters in a prefix are escaped: clear and keys see only their own keys."""
    store = RedisStore(server.url, prefix=prefix)
    neighbour = RedisStore(server.url, prefix=prefix.replace(prefix[0], "Z", 1) + "x")
    odd = ["a b", "*", "?", "[x]", "new\nline", "ünï😀", ""]
    for key in odd:
        await store.set(key, key)
        await neighbour.set(key, "other")
    assert sorted([k async for k in store.keys()]) == sorted(odd)
    assert await store.get_many(odd) == {k: k for k in odd}
    await store.clear()
    assert [k async for k in store.keys()] == []
    assert await neighbour.get("*") == "other"
    await neighbour.clear()
    for s in (store, neighbour):
        await s.aclose()


async def test_clear_without_a_prefix_is_refused(server: RedisServer) -> None:
    """Without a prefix clear() would wipe the database: refused, never FLUSHDB."""
    store = RedisStore(server.url)
    with pytest.raises(ValueError, match="prefix"):
        await store.clear()
    await store.aclose()


async def test_loaders_on_redis(redis_store: RedisStore) -> None:
    """get_or_set and @cached work on Redis: single-flight, refresh-ahead, invalidation."""
    calls = 0

    @cached(redis_store, ttl=30)
    async def price(item: str) -> float:
        nonlocal calls
        calls += 1
        await release.wait()  # the other callers queue up behind this load
        return 9.5

    release = asyncio.Event()

    async def callers() -> list[float]:
        return await asyncio.gather(*(price("x") for _ in range(50)))

    pending = asyncio.create_task(callers())
    await anyio.wait_all_tasks_blocked()
    release.set()
    results = await pending
    assert results == [9.5] * 50
    assert calls == 1
    assert await redis_store.get(price.key("x")) == 9.5
    assert await price.invalidate("x") is True
    assert await redis_store.get_or_set("g", lambda: [1], ttl=5) == [1]
    assert redis_store.stats().loads == 2

    versions = iter(["v1", "v2"])
    assert (
        await redis_store.get_or_set("r", lambda: next(versions), ttl=30, refresh_after=10) == "v1"
    )
    await shifter(redis_store)(11)
    assert (
        await redis_store.get_or_set("r", lambda: next(versions), ttl=30, refresh_after=10) == "v1"
    )
    await asyncio.gather(*redis_store._loader._background)  # the refresh, to its end
    assert await redis_store.get("r") == "v2"


async def test_a_stopped_server_gives_a_lapse_error_then_recovers(server: RedisServer) -> None:
    """The server stops mid-test: StoreError chained to the driver's; after restart, it works."""
    store = RedisStore(server.url, prefix="fault-stop:", timeout=0.5)
    await store.set("k", "before")
    server.stop()
    try:
        with pytest.raises(StoreError) as caught:
            await store.set("k", "while down")
        assert caught.value.__cause__ is not None
        with pytest.raises(StoreError):
            await store.get("k")
    finally:
        server.start()
    await store.set("k", "after")  # the same object works again
    assert await store.get("k") == "after"
    await store.clear()
    await store.aclose()


async def test_a_hung_server_times_out_then_recovers(server: RedisServer) -> None:
    """SIGSTOP: the caller gets StoreTimeoutError within the timeout; SIGCONT: it recovers."""
    store = RedisStore(server.url, prefix="fault-hang:", timeout=0.3)
    await store.set("k", "before")
    server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StoreTimeoutError):
            await store.set("k", "while hung")
        assert time.monotonic() - started < 2
    finally:
        server.resume()
    assert await store.get("k") in ("before", "while hung")  # never reported as written
    await store.set("k", "after")
    assert await store.get("k") == "after"
    await store.clear()
    await store.aclose()


async def test_cluster_multi_key_operations_across_slots(cluster_url: str) -> None:
    """On a cluster, multi-key operations work whatever slots their keys fall in."""
    store = RedisStore(cluster_url, prefix="multi:")
    keys = [f"key-{i}" for i in range(40)]  # spread over the three masters
    await store.set_many({k: i for i, k in enumerate(keys)}, ttl=60)
    assert await store.get_many(keys) == {k: i for i, k in enumerate(keys)}
    assert sorted([k async for k in store.keys()]) == sorted(keys)
    assert await store.delete_many(keys[:10]) == 10
    assert await store.update("key-20", lambda old: old + 100) == 120
    await store.clear()
    assert [k async for k in store.keys()] == []
    await store.aclose()


async def test_an_existing_client_can_be_passed(server: RedisServer) -> None:
    """RedisStore(client=...) uses the client it is given."""
    client = redis.asyncio.Redis(port=server.port)
    store = RedisStore(client=client, prefix="client:")
    await store.set("k", 1)
    assert await client.get("client:k") == b"1"
    await store.clear()
    await store.aclose()


async def test_sessions_run_on_redis(server: RedisServer) -> None:
    """The session manager runs on RedisStore unchanged; every key it writes has a TTL."""
    store = RedisStore(server.url, prefix="sess:")
    manager = SessionManager(store=store, idle_timeout=600, absolute_timeout=3600, renewal_grace=0)
    sid = await manager.create({"n": 1}, user="ann")
    other = await manager.create({"n": 2}, user="ann")
    assert await manager.get(sid) == {"n": 1}
    assert await manager.update(sid, {"m": 2})
    new = await manager.regenerate(sid)
    assert new is not None
    assert await manager.get(sid) is None
    assert len(await manager.sessions_of("ann")) == 2
    ttls = [await store.ttl(k) async for k in store.keys()]
    assert ttls
    assert all(ttl is not None and ttl <= 3600 for ttl in ttls)
    assert await manager.revoke_all("ann", keep=new) == 1
    assert await manager.get(other) is None
    assert await manager.get(new) == {"n": 1, "m": 2}
    first, second = await asyncio.gather(
        manager.update(new, {"a": 1}), manager.update(new, {"b": 2})
    )
    assert first
    assert second
    assert await manager.get(new) == {"n": 1, "m": 2, "a": 1, "b": 2}  # compare-and-set: both kept
    await store.clear()
    await store.aclose()


def test_two_processes_share_sessions_through_redis(server: RedisServer) -> None:
    """Two uvicorn processes, one Redis: a session started on one continues on the other."""
    here = Path(__file__).parent
    ports = [free_port(), free_port()]
    env = {**os.environ, "LAPSE_REDIS_URL": server.url}
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(here), "shared_app:app"]
    options = ["--host", "127.0.0.1", "--log-level", "warning"]
    processes = [
        subprocess.Popen([*command, *options, "--port", str(port)], env=env)  # noqa: S603
        for port in ports
    ]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url in urls:
            for _ in range(200):
                try:
                    httpx.get(url, timeout=0.5)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            else:
                msg = f"uvicorn did not start at {url}"
                raise RuntimeError(msg)
        with httpx.Client() as client:
            first = client.get(urls[0]).json()
            second = client.get(urls[1]).json()
            third = client.get(urls[0]).json()
        assert [first["n"], second["n"], third["n"]] == [1, 2, 3]
        assert first["pid"] != second["pid"]
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


async def test_an_update_whose_reply_is_lost_applies_once_and_says_so(
    server: RedisServer,
) -> None:
    """The connection drops after the server ran the compare-and-set: update() raises a
    StoreError saying it may or may not have been applied, and +1 was applied exactly once
    (no retry by lapse or by redis-py)."""
    proxy = DropReplyProxy(server.port, b"EVAL")
    async with proxy as url:
        store = RedisStore(url, prefix="fault-drop:", timeout=1.0)
        await store.set("n", 1)
        proxy.armed = True
        with pytest.raises(StoreError, match="may or may not have been applied"):
            await store.update("n", lambda n: n + 1)
        assert proxy.dropped == 1
        assert await store.get("n") == 2  # applied once, never twice
        assert await store.update("n", lambda n: n + 1) == 3  # a new connection works
        await store.clear()
        await store.aclose()


async def test_cluster_updates_lose_nothing_under_contention(cluster_url: str) -> None:
    """100 concurrent update(+1) on one key of a real cluster: exactly 100, no thread."""
    store = RedisStore(cluster_url, prefix="cas:", timeout=5.0)
    await store.set("n", 0)
    threads = threading.active_count()
    await asyncio.gather(*(store.update("n", lambda n: n + 1) for _ in range(100)))
    assert await store.get("n") == 100
    assert threading.active_count() == threads
    await store.clear()
    await store.aclose()
