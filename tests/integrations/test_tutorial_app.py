"""The tutorial's FastAPI app, first on MemoryStore, then on a real Redis: same behaviour."""

from __future__ import annotations

import asyncio

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lapse import MemoryStore
from lapse.redis import RedisStore

from .servers import RedisServer, load_example, redis_server


pytestmark = pytest.mark.anyio


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="server", scope="module")
def _server() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


async def walk_through(app: Any) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://shop.example") as client:
        assert (await client.post("/cart/apple")).status_code == 401
        assert (await client.post("/login", params={"name": "alice"})).json() == {"user": "alice"}
        prices = await asyncio.gather(*(client.get("/price/apple") for _ in range(20)))
        assert {r.json()["price"] for r in prices} == {7.5}
        assert app.state.price_lookups == 1  # 20 requests, one slow call
        assert (await client.post("/cart/apple")).json() == {"cart": ["apple"], "total": 7.5}
        cart = (await client.post("/cart/fig")).json()
        assert cart == {"cart": ["apple", "fig"], "total": 12.0}
        await client.post("/logout")
        assert (await client.post("/cart/apple")).status_code == 401


async def test_on_memory_store() -> None:
    """The app as the tutorial first writes it: everything in one MemoryStore."""
    module = load_example("fastapi_app")
    store = module.make_store(None)
    assert isinstance(store, MemoryStore)
    await walk_through(module.build_app(store))


async def test_on_redis(server: RedisServer) -> None:
    """The one-line switch: make_store(redis_url), and the same walk-through passes."""
    module = load_example("fastapi_app")
    store = module.make_store(server.url)
    assert isinstance(store, RedisStore)
    await walk_through(module.build_app(store))
    await store.clear()
    await store.aclose()
