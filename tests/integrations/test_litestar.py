"""lapse.litestar.Store: Litestar's store interface on lapse stores, checked method by method
on a MemoryStore and a real redis-server, and under Litestar's own response cache and rate
limiter, driven by Litestar's test client."""

from __future__ import annotations

import itertools
import json
import math

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from litestar import Litestar, get
from litestar.config.response_cache import ResponseCacheConfig
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.testing import TestClient
from playwright.sync_api import Browser

import lapse.litestar

from lapse import LRU, TTL, MemoryStore
from lapse.redis import RedisStore
from lapse.testing import ManualClock

from .servers import RedisServer, load_example, serving


pytestmark = pytest.mark.anyio
_prefixes = itertools.count()


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"  # Litestar and redis-py's client run on asyncio


@pytest.fixture(name="backing", params=["memory", "redis"])
async def _backing(
    request: pytest.FixtureRequest, server: RedisServer
) -> AsyncIterator[MemoryStore | RedisStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    store = RedisStore(server.url, prefix=f"ls{next(_prefixes)}:")
    yield store
    await store.clear()
    await store.aclose()


async def test_set_get_delete_exists(backing: MemoryStore | RedisStore) -> None:
    """Bytes go in and come back; a str is stored UTF-8 encoded; delete is idempotent."""
    store = lapse.litestar.Store(backing)
    assert await store.get("a") is None
    assert not await store.exists("a")
    await store.set("a", b"\x00bytes")
    await store.set("b", "héllo")
    assert await store.get("a") == b"\x00bytes"
    assert await store.get("b") == "héllo".encode()
    assert await store.exists("a")
    await store.delete("a")
    await store.delete("a")
    assert await store.get("a") is None
    assert await store.get("b") == "héllo".encode()


async def test_expiry_and_renewal(backing: MemoryStore | RedisStore) -> None:
    """expires_in is the TTL, in whole seconds; renew_for restarts it only for a value that
    has one; a value without expiry reports None."""
    store = lapse.litestar.Store(backing)
    await store.set("short", b"x", expires_in=100)
    await store.set("td", b"x", expires_in=timedelta(seconds=50))
    await store.set("forever", b"x")
    short = await store.expires_in("short")
    assert short is not None
    assert 98 <= short <= 100
    td = await store.expires_in("td")
    assert td is not None
    assert 48 <= td <= 50
    assert await store.expires_in("forever") is None
    assert await store.expires_in("missing") is None
    assert await store.get("td", renew_for=500) == b"x"
    renewed = await store.expires_in("td")
    assert renewed is not None
    assert 498 <= renewed <= 500
    assert await store.get("forever", renew_for=500) == b"x"
    assert await store.expires_in("forever") is None
    assert await backing.ttl("forever") == math.inf


async def test_expired_entries_are_gone(clock: ManualClock) -> None:
    """On a MemoryStore with a fake clock: an entry is gone exactly when its time is up."""
    store = lapse.litestar.Store(MemoryStore(clock=clock))
    await store.set("k", b"v", expires_in=10)
    clock.advance(9.999)
    assert await store.get("k") == b"v"
    clock.advance(0.001)
    assert await store.get("k") is None
    assert not await store.exists("k")


async def test_namespaces_are_isolated_and_nested(backing: MemoryStore | RedisStore) -> None:
    """Keys of one namespace do not see another's; delete_all of a namespace removes its
    keys and its children's, and nothing else; without a namespace it clears the store."""
    root = lapse.litestar.Store(backing)
    users = root.with_namespace("users")
    admins = users.with_namespace("admins")
    other = root.with_namespace("other")
    assert admins.namespace == "users:admins"
    for store in (root, users, admins, other):
        await store.set("k", (store.namespace or "root").encode())
    assert await users.get("k") == b"users"
    assert await admins.get("k") == b"users:admins"
    await users.delete_all()
    assert await users.get("k") is None
    assert await admins.get("k") is None
    assert await other.get("k") == b"other"
    assert await root.get("k") == b"root"
    await root.delete_all()
    assert await other.get("k") is None
    assert await root.get("k") is None


@pytest.fixture(name="app_store")
def _app_store() -> MemoryStore:
    return MemoryStore(expiry=TTL(3600), eviction=LRU(1000))


def _app(store: MemoryStore, calls: list[str]) -> Litestar:
    @get("/cached", cache=60, sync_to_thread=False)
    def cached() -> dict[str, int]:
        calls.append("cached")
        return {"calls": len(calls)}

    @get("/limited", sync_to_thread=False)
    def limited() -> str:
        return "ok"

    return Litestar(
        route_handlers=[cached, limited],
        stores={
            "response_cache": lapse.litestar.Store(store, "response_cache"),
            "rate_limit": lapse.litestar.Store(store, "rate_limit"),
        },
        response_cache_config=ResponseCacheConfig(store="response_cache"),
        middleware=[RateLimitConfig(rate_limit=("minute", 3), exclude=["/cached"]).middleware],
    )


def test_litestar_response_cache_and_rate_limiter_run_on_it(app_store: MemoryStore) -> None:
    """Litestar's own response cache serves the second request from the lapse store, and
    its rate limiter counts in it: the fourth request in a minute is refused."""
    calls: list[str] = []
    with TestClient(app=_app(app_store, calls)) as client:
        first = client.get("/cached")
        second = client.get("/cached")
        assert first.json() == second.json() == {"calls": 1}
        assert calls == ["cached"]
        statuses = [client.get("/limited").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
    keys = app_store.sync.keys()
    namespaces = {key.split(":", 1)[0] for key in keys}
    assert namespaces == {"response_cache", "rate_limit"}


def test_lapse_sessions_in_a_litestar_app() -> None:
    """lapse's SessionMiddleware in a Litestar app (the example): request.session is the
    lapse Session; a login keeps the data under a new ID; a logout starts over; the
    response cache runs on the lapse store."""
    module = load_example("litestar_app")
    with TestClient(app=module.app) as client:
        assert client.get("/").json() == {"visits": 1, "user": None}
        first = client.cookies.get(module.manager.cookie_name)
        assert client.post("/login", data={"user": "bob"}).json() == {"user": "bob"}
        assert client.cookies.get(module.manager.cookie_name) != first
        assert client.get("/").json() == {"visits": 2, "user": "bob"}
        assert len(module.manager.sync.sessions_of("bob")) == 1
        assert client.post("/logout").json() == {"user": None}
        assert module.manager.sync.sessions_of("bob") == []
        assert client.get("/").json() == {"visits": 1, "user": None}
        assert client.get("/report").json() == client.get("/report").json()
    assert any(key.startswith("response_cache:") for key in module.cache.sync.keys())


def test_litestar_sessions_in_a_browser(browser: Browser) -> None:
    """The example under a real uvicorn, in Chromium: log in, reload, log out."""
    module = load_example("litestar_app")
    with serving(module.app) as url:
        page = browser.new_page()
        try:

            def shown() -> object:
                return json.loads(page.inner_text("body"))

            page.goto(url + "/")
            assert shown() == {"visits": 1, "user": None}
            status = page.evaluate(
                "fetch('/login', {method: 'POST', body: new URLSearchParams({user: 'ann'})})"
                ".then(r => r.status)"
            )
            assert status == 200
            page.reload()
            assert shown() == {"visits": 2, "user": "ann"}
            page.evaluate("fetch('/logout', {method: 'POST'}).then(r => r.status)")
            page.reload()
            assert shown() == {"visits": 1, "user": None}
        finally:
            page.close()
