"""The FastAPI tutorial's shop, on a MemoryStore and on a real Redis: the same behaviour,
its test passing as a reader runs it, and its lifespan closing the stores."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio

from lapse import MemoryStore
from lapse.redis import RedisStore

from .servers import RedisServer, load_example, redis_server


pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).parent.parent.parent / "examples"


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="server", scope="module")
def _server() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def load_shop(monkeypatch: pytest.MonkeyPatch, redis_url: str | None) -> Any:
    if redis_url is None:
        monkeypatch.delenv("LAPSE_REDIS_URL", raising=False)
    else:
        monkeypatch.setenv("LAPSE_REDIS_URL", redis_url)
        flush(redis_url)
    return load_example("shop")


def flush(redis_url: str) -> None:
    """Start from an empty Redis: a price cached by an earlier test is not a slow call."""
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()


async def walk_through(shop: Any) -> None:
    transport = httpx.ASGITransport(app=shop.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://shop.example") as client:
        assert (await client.post("/cart/apple")).status_code == 401
        assert (await client.post("/login", params={"name": "alice"})).json() == {"user": "alice"}
        prices = await asyncio.gather(*(client.get("/price/apple") for _ in range(20)))
        assert {r.json()["price"] for r in prices} == {7.5}
        assert shop.Prices.lookups == 1  # 20 requests, 20 repositories, one slow call
        assert (await client.post("/cart/apple")).json() == {"cart": ["apple"], "total": 7.5}
        cart = (await client.post("/cart/fig")).json()
        assert cart == {"cart": ["apple", "fig"], "total": 12.0}
        assert shop.Prices.lookups == 2
        await client.post("/logout")
        assert (await client.post("/cart/apple")).status_code == 401


async def test_on_memory_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shop as the tutorial first runs it: sessions and cache in two MemoryStores."""
    shop = load_shop(monkeypatch, None)
    assert isinstance(shop.cache, MemoryStore)
    assert isinstance(shop.session_store, MemoryStore)
    assert shop.session_store.eviction is None  # sessions are never evicted
    await walk_through(shop)


async def test_on_redis(monkeypatch: pytest.MonkeyPatch, server: RedisServer) -> None:
    """LAPSE_REDIS_URL set: both stores on Redis, apart by prefix, and the same walk."""
    shop = load_shop(monkeypatch, server.url)
    assert isinstance(shop.cache, RedisStore)
    await walk_through(shop)
    client = redis.asyncio.Redis.from_url(server.url)
    try:
        assert await client.keys("shop:cache:*")
        assert await client.keys("shop:sessions:*")
    finally:
        await client.aclose()
    await shop.cache.aclose()
    await shop.session_store.aclose()


async def test_the_lifespan_closes_the_redis_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the app's lifespan ends, the server sees no connection of the shop's left (a
    server of its own: other tests' clients are not counted)."""
    with redis_server() as server:
        await lifespan_closes(monkeypatch, server)


async def lifespan_closes(monkeypatch: pytest.MonkeyPatch, server: RedisServer) -> None:
    shop = load_shop(monkeypatch, server.url)
    observer = redis.asyncio.Redis.from_url(server.url)
    try:
        me = str((await observer.client_info())["id"])
        async with shop.lifespan(shop.app):
            await walk_through(shop)
            assert len(await observer.client_list()) > 1  # the shop's, and the observer
        assert [c["id"] for c in await observer.client_list()] == [me]
    finally:
        await observer.aclose()


@pytest.mark.parametrize("on_redis", [False, True], ids=["memory", "redis"])
def test_the_tutorials_test_passes_as_a_reader_runs_it(
    tmp_path: Path, server: RedisServer, on_redis: bool
) -> None:
    """shop.py and test_shop.py in a new folder, `pytest` run there: it passes."""
    shutil.copy(EXAMPLES / "shop.py", tmp_path / "shop.py")
    shutil.copy(EXAMPLES / "test_shop.py", tmp_path / "test_shop.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAPSE_", "COV_"))}
    if on_redis:
        env["LAPSE_REDIS_URL"] = server.url
        flush(server.url)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_shop.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
