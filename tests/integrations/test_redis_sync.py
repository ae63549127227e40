"""RedisStore.sync under faults and threads, on a real redis-server.

The rules themselves are the contract's (`TestSyncRedisContract` in test_redis.py); here,
what only a sync face can get wrong: blocking calls that must still time out, threads
sharing the pool, a dropped reply that must not apply a write twice. The fault proxy runs
on the test's event loop, so the sync calls run in a worker thread.
"""

from __future__ import annotations

import threading
import time

from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
import redis
import redis.asyncio as aioredis

from lapse.exceptions import CorruptValueError, StoreError, StoreTimeoutError
from lapse.redis import RedisStore

from .servers import DropReplyProxy, RedisServer, free_port


pytestmark = pytest.mark.anyio


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"  # redis-py's client and the fault proxy are asyncio's


async def test_a_dropped_reply_never_applies_an_update_twice(server: RedisServer) -> None:
    """The compare-and-set ran, its reply was lost: the sync update says so, and the
    value moved once."""
    proxy = DropReplyProxy(server.port, b"EVAL")
    async with proxy as url:
        store = RedisStore(url, prefix="sync-drop:", timeout=1.0)
        sync = store.sync
        await anyio.to_thread.run_sync(lambda: sync.set("n", 1))
        proxy.armed = True
        with pytest.raises(StoreError, match="may or may not have been applied"):
            await anyio.to_thread.run_sync(lambda: sync.update("n", lambda n: n + 1))
        assert proxy.dropped == 1
        assert await anyio.to_thread.run_sync(lambda: sync.get("n")) == 2
        assert await anyio.to_thread.run_sync(lambda: sync.update("n", lambda n: n + 1)) == 3
        await store.clear()
        await store.aclose()


async def test_a_dead_path_is_retried_or_reported(server: RedisServer) -> None:
    """A connection whose replies stop (the path died, no close): a blocking GET is
    retried on another connection within the timeout and succeeds; an INCRBY is not
    retried, times out saying so, and was applied once."""
    proxy = DropReplyProxy(server.port, b"GET", hang=True)
    async with proxy as url:
        store = RedisStore(url, prefix="sync-dead-path:", timeout=1)
        sync = store.sync
        await anyio.to_thread.run_sync(lambda: sync.set("k", "v"))
        proxy.armed = True
        start = time.monotonic()
        assert await anyio.to_thread.run_sync(lambda: sync.get("k")) == "v"
        assert time.monotonic() - start < 1
        assert proxy.dropped == 1
        proxy.marker, proxy.armed = b"INCRBY", True
        with pytest.raises(StoreTimeoutError, match="may or may not have been applied"):
            await anyio.to_thread.run_sync(lambda: sync.incr("n"))
        assert await anyio.to_thread.run_sync(lambda: sync.get("n")) == 1
        await store.clear()
        await store.aclose()


def test_a_server_that_is_down_gives_store_errors() -> None:
    """Nothing listens: every call fails with StoreError (never redis-py's own error)."""
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", prefix="down:", timeout=0.3)
    sync = store.sync
    for call in (lambda: sync.get("k"), lambda: sync.set("k", 1), lambda: sync.incr("k")):
        with pytest.raises(StoreError) as caught:
            call()
        assert isinstance(caught.value.__cause__, (redis.exceptions.RedisError, OSError))
    sync.close()


async def test_threads_share_the_pool(server: RedisServer) -> None:
    """16 threads, 50 increments each, through 2 connections: every one counted once."""
    store = RedisStore(server.url, prefix="sync-threads:", max_connections=2, timeout=5.0)
    sync = store.sync

    def work() -> None:
        for _ in range(50):
            sync.incr("n")

    def run() -> None:
        with ThreadPoolExecutor(16) as pool:
            for future in [pool.submit(work) for _ in range(16)]:
                future.result()

    await anyio.to_thread.run_sync(run)
    assert await store.get("n") == 800
    assert sync.client.connection_pool.max_connections == 2
    await store.clear()
    await store.aclose()


async def test_corrupt_records_name_the_key(server: RedisServer) -> None:
    """Bytes the serializer cannot read: CorruptValueError naming the key, on the sync
    face as on the async one; a value of another Redis type too."""
    store = RedisStore(server.url, prefix="sync-corrupt:")
    await store.client.set("sync-corrupt:bad", b"\xff not json")
    await store.client.lpush("sync-corrupt:list", b"x")
    with pytest.raises(CorruptValueError, match="'bad'"):
        store.sync.get("bad")
    with pytest.raises(CorruptValueError, match="another type"):
        store.sync.get("list")
    await store.clear()
    await store.aclose()


async def test_one_store_two_faces(server: RedisServer) -> None:
    """The sync face sees the async face's writes and counts in the same stats; the
    store's aclose closes the sync pool too."""
    store = RedisStore(server.url, prefix="sync-faces:")
    await store.set("k", [1, 2])
    sync = store.sync
    assert sync is store.sync
    assert sync.get("k") == [1, 2]
    sync.set("k2", {"a": (1, 2)})
    assert await store.get("k2") == {"a": (1, 2)}
    assert store.stats().hits == 2
    assert store.stats().sets == 2
    assert sync.stats() == store.stats()
    await store.clear()
    closed = threading.Event()
    pool = sync.client.connection_pool
    original = pool.disconnect

    def disconnect(*args: object, **kwargs: object) -> None:
        closed.set()
        original(*args, **kwargs)

    pool.disconnect = disconnect
    await store.aclose()
    assert closed.is_set()


async def test_a_client_needs_a_sync_client(server: RedisServer) -> None:
    """With client=, the sync face needs sync_client= (lapse cannot copy an asyncio
    client's settings); given one, it works, with its retries off."""
    store = RedisStore(client=aioredis.from_url(server.url), prefix="sync-client:")
    with pytest.raises(TypeError, match="sync_client"):
        _ = store.sync
    await store.aclose()
    sync_client = redis.Redis.from_url(server.url)
    store = RedisStore(
        client=aioredis.from_url(server.url), sync_client=sync_client, prefix="sync-client:"
    )
    store.sync.set("k", "v")
    assert await store.get("k") == "v"
    assert sync_client.get_retry() is not None
    assert sync_client.get_retry()._retries == 0  # type: ignore[union-attr]
    await store.clear()
    await store.aclose()


async def test_sessions_on_the_sync_face_of_redis(server: RedisServer) -> None:
    """SessionManager.sync on a real Redis: the rules hold, a corrupt record is no
    session (no exception), and "log out everywhere" ends every session of a user."""
    from lapse.sessions import SessionManager  # noqa: PLC0415 -- beside its one test

    store = RedisStore(server.url, prefix="sync-sessions:")
    manager = SessionManager(store=store, idle_timeout=600, absolute_timeout=3600)
    sync = manager.sync

    def scenario() -> None:
        sid = sync.create({"n": 1}, user="ann")
        other = sync.create({}, user="ann")
        assert sync.update(sid, {"m": 2})
        assert sync.get(sid) == {"n": 1, "m": 2}
        new = sync.regenerate(sid)
        assert new is not None
        assert sync.get(new) == {"n": 1, "m": 2}
        assert len(sync.sessions_of("ann")) == 2
        store.sync.set(manager.key_of(other), "garbage")
        assert sync.get(other) is None
        assert sync.revoke_all("ann") >= 1
        assert sync.get(new) is None

    await anyio.to_thread.run_sync(scenario)
    assert manager.stats().corrupt == 1
    await store.clear()
    await store.aclose()


async def test_the_method_set_of_memory_stores_sync(server: RedisServer) -> None:
    """RedisStore.sync has every public method of MemoryStore.sync: len() counts this
    prefix's keys (a SCAN), purge_expired() has nothing to do."""
    from lapse import MemoryStore  # noqa: PLC0415 -- beside its one use

    store = RedisStore(server.url, prefix="sync-methods:")
    sync = store.sync
    public = {name for name in dir(MemoryStore().sync) if not name.startswith("_")}
    missing = {name for name in public if not hasattr(sync, name)}
    assert missing == set()
    assert len(sync) == 0
    sync.set_many({"a": 1, "b": 2})
    await store.client.set("other:c", b"3")  # another prefix: not counted
    assert len(sync) == 2
    assert sync.purge_expired() == 0
    await store.client.delete("other:c")
    await store.clear()
    await store.aclose()
