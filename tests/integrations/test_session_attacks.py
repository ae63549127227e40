"""Sessions as an attacker tries them: over real HTTP, on MemoryStore and a real Redis.

Each test here failed on the code before the sessions audit; the docstring
says which promise it holds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from freezegun import freeze_time
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from lapse import LRU, Idle, MemoryStore
from lapse.exceptions import SessionUnavailableError
from lapse.redis import PickleSerializer, RedisStore
from lapse.sessions import SessionManager, SessionMiddleware, session_of

from .servers import RedisServer, load_example, redis_server


pytestmark = pytest.mark.anyio
_prefixes = itertools.count()


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"  # redis-py's client is asyncio's


@pytest.fixture(name="store", params=["memory", "redis"])
async def _store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    server: RedisServer = request.getfixturevalue("server")
    store = RedisStore(server.url, prefix=f"attack{next(_prefixes)}:")
    yield store
    await store.clear()
    await store.aclose()


@pytest.fixture(name="manager")
def _manager(store: Any) -> SessionManager:
    return SessionManager(store=store, idle_timeout=600, absolute_timeout=3600)


def build_app(
    manager: SessionManager, gate: tuple[asyncio.Event, asyncio.Event] | None = None
) -> Starlette:
    async def login(request: Request) -> Response:
        session = session_of(request)
        remember = request.query_params.get("remember")
        lifetimes = {"absolute_timeout": timedelta(days=30)} if remember else {}
        session.login(
            request.query_params["user"],
            descriptor=request.headers.get("user-agent"),
            **lifetimes,
        )
        request.session["user"] = request.query_params["user"]
        return PlainTextResponse("in")

    async def put(request: Request) -> Response:
        request.session.update(dict(request.query_params))
        return PlainTextResponse("ok")

    async def dump(request: Request) -> Response:
        return PlainTextResponse(json.dumps(dict(request.session), sort_keys=True))

    async def logout(request: Request) -> Response:
        request.session.clear()
        request.session["flash"] = "bye"
        return PlainTextResponse("out")

    async def public(request: Request) -> Response:
        return PlainTextResponse("hello", headers={"cache-control": "public, max-age=600"})

    async def public_peek(request: Request) -> Response:
        request.session.get("user")
        return PlainTextResponse("peek", headers={"cache-control": "public, max-age=600"})

    async def strict_peek(request: Request) -> Response:
        request.session.get("user")
        return PlainTextResponse("peek", headers={"cache-control": "no-store"})

    async def slow_put(request: Request) -> Response:
        request.session.get("user")  # loaded with the old ID
        assert gate is not None
        entered, go = gate
        entered.set()
        await go.wait()  # meanwhile, another tab logs in
        request.session["note"] = "from the slow tab"
        return PlainTextResponse("slow")

    async def late_login(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"started"
            session_of(request).login("late")

        return StreamingResponse(body())

    app = Starlette(
        routes=[
            Route("/login", login),
            Route("/put", put),
            Route("/dump", dump),
            Route("/logout", logout),
            Route("/public", public),
            Route("/public-peek", public_peek),
            Route("/strict-peek", strict_peek),
            Route("/slow", slow_put),
            Route("/late-login", late_login),
        ]
    )
    app.add_middleware(SessionMiddleware, manager=manager)
    return app


def client_for(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


async def index_key(store: Any) -> str:
    """The store key of the one user index in *store*."""
    (key,) = [k async for k in store.keys() if k.startswith("session:user:")]
    return str(key)


async def raw_set(manager: SessionManager, key: str, value: Any) -> None:
    """Write *value* under *key* behind lapse's back (bytes on Redis, anything in memory)."""
    store = manager.store
    if isinstance(store, RedisStore):
        await store.client.set(store.prefix + key, value)
    else:
        await store.set(key, value)


# -- 1. another user's login -------------------------------------------------------------


async def test_another_users_login_starts_from_empty_data(manager: SessionManager) -> None:
    """Logging in as another user on a held session: new ID, nothing of the old data;
    the same user logging in again keeps the data."""
    async with client_for(build_app(manager)) as client:
        await client.get("/login", params={"user": "alice"})
        await client.get("/put", params={"role": "admin", "csrf": "alice-token"})
        alice = client.cookies["session_id"]
        await client.get("/login", params={"user": "alice"})
        assert json.loads((await client.get("/dump")).text)["role"] == "admin"
        alice = client.cookies["session_id"]
        await client.get("/login", params={"user": "mallory"})
        mallory = client.cookies["session_id"]
        assert mallory != alice
        assert json.loads((await client.get("/dump")).text) == {"user": "mallory"}
    assert await manager.get(alice) is None  # ended for good, no grace to another user
    assert await manager.sessions_of("alice") == []


# -- 2. logout, then a write ---------------------------------------------------------------


async def test_logout_then_flash_is_a_new_anonymous_session(manager: SessionManager) -> None:
    """clear() ends the session for good; a flash written after it goes into a new session
    with a new ID and no user."""
    async with client_for(build_app(manager)) as client:
        await client.get("/login", params={"user": "alice"})
        before = client.cookies["session_id"]
        response = await client.get("/logout")
        after = client.cookies["session_id"]
        assert after != before
        assert "Max-Age=0" not in response.headers["set-cookie"]
        assert json.loads((await client.get("/dump")).text) == {"flash": "bye"}
    assert await manager.get(before) is None
    assert await manager.sessions_of("alice") == []


# -- 3. log out everywhere, whatever the store evicts --------------------------------------


async def test_revoked_sessions_stay_dead_when_the_index_is_evicted() -> None:
    """LRU pressure evicts the user's index: revoke_all then finds nothing to end, and the
    stolen session is still never accepted (eviction may log out, never keep alive)."""
    store = MemoryStore(eviction=LRU(4))
    manager = SessionManager(store=store)
    stolen = await manager.create({"n": 1}, user="alice")
    await store.touch(manager.key_of(stolen))  # the index is now the least recently used
    for i in range(3):
        await store.set(f"other{i}", i)
    assert await store.has(manager.key_of(stolen))  # the session itself survived
    assert await manager.revoke_all("alice") == 0
    assert await manager.get(stolen) is None


async def test_revoked_sessions_stay_dead_when_redis_loses_the_index(
    server: RedisServer,
) -> None:
    """On Redis with allkeys-lru the index can go too: the sessions it listed die with it."""
    store = RedisStore(server.url, prefix=f"lost{next(_prefixes)}:")
    manager = SessionManager(store=store)
    stolen = await manager.create({"n": 1}, user="alice")
    index = [k async for k in store.keys() if k.startswith("session:user:")]
    assert len(index) == 1
    await store.client.unlink(store.prefix + index[0])  # what an eviction does
    assert await manager.revoke_all("alice") == 0
    assert await manager.get(stolen) is None
    await store.clear()
    await store.aclose()


class RacingStore(MemoryStore):
    """A MemoryStore that runs *during* once, right before the first write of a key that
    starts with *prefix*: how a revoke_all lands in the middle of a regenerate."""

    during: Any = None
    prefix = "session:"

    async def set(self, key: str, value: Any, **kwargs: Any) -> None:
        during, self.during = self.during, None
        if during is not None:
            await during()
        await super().set(key, value, **kwargs)


async def test_regenerate_racing_revoke_all_stays_revoked() -> None:
    """A revoke_all between the two halves of a regenerate: the new ID is not accepted."""
    store = RacingStore()
    manager = SessionManager(store=store)
    sid = await manager.create({"n": 1}, user="alice")

    async def revoke() -> None:
        await manager.revoke_all("alice")

    store.during = revoke
    new = await manager.regenerate(sid)
    assert new is None or await manager.get(new) is None
    assert await manager.get(sid) is None
    assert await manager.sessions_of("alice") == []


# -- 4. corrupt and foreign records ----------------------------------------------------------


def _record(**fields: Any) -> str:
    record = {"v": 1, "data": {}, "created": 0, "seen": 0, "idle": None, "abs": None}
    return json.dumps({**record, **fields})


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


GARBAGE = {
    "not utf-8": b"\xff\xfe\x00 not utf-8",
    "not json": b"{not json",
    "created not a number": _record(created="x"),
    "idle not a number": _record(idle="soon"),
    "data not a mapping": _record(data=[]),
    "NaN seen": _record(seen=float("nan")),
    "nested past the parser": "[" * 100_000 + "]" * 100_000,
    "nested past the limit": _record(data={"x": _nested(200)}),
}


@pytest.mark.parametrize("garbage", list(GARBAGE), ids=list(GARBAGE))
async def test_corrupt_records_are_no_session_never_a_500(
    manager: SessionManager, garbage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Undecodable bytes, wrong field types, deep nesting: no session, logged, never a 500."""
    value: Any = GARBAGE[garbage]
    sid = await manager.create({"n": 1})
    if isinstance(manager.store, MemoryStore) and isinstance(value, bytes):
        value = value.decode("latin-1")
    await raw_set(manager, manager.key_of(sid), value)
    async with client_for(build_app(manager)) as client:
        with caplog.at_level(logging.WARNING, logger="lapse.sessions"):
            response = await client.get("/dump", headers={"cookie": f"session_id={sid}"})
    assert response.status_code == 200
    assert response.text == "{}"
    assert "cannot be decoded" in caplog.text


async def test_a_key_of_another_redis_type_is_no_session(server: RedisServer) -> None:
    """WRONGTYPE (a hash where a session should be) reads as no session, and a login on it
    works."""
    store = RedisStore(server.url, prefix=f"wt{next(_prefixes)}:")
    manager = SessionManager(store=store)
    sid = await manager.create({"n": 1}, user="bob")
    await store.client.unlink(store.prefix + manager.key_of(sid))
    await store.client.hset(store.prefix + manager.key_of(sid), "f", "v")
    async with client_for(build_app(manager)) as client:
        response = await client.get("/dump", headers={"cookie": f"session_id={sid}"})
        assert response.status_code == 200
        assert response.text == "{}"
        assert (await client.get("/put", params={"a": "1"})).status_code == 200
    index = await index_key(store)
    await store.client.unlink(store.prefix + index)
    await store.client.sadd(store.prefix + index, "x")  # a corrupt index, of another type
    async with client_for(build_app(manager)) as client:
        assert (await client.get("/login", params={"user": "bob"})).status_code == 200
        assert json.loads((await client.get("/dump")).text) == {"user": "bob"}
    assert len(await manager.sessions_of("bob")) == 1
    await store.clear()
    await store.aclose()


async def test_a_corrupt_index_never_blocks_a_login(manager: SessionManager) -> None:
    """A garbage user index: the user's old sessions are not accepted, a login rebuilds it."""
    old = await manager.create({"n": 1}, user="carol")
    await raw_set(manager, await index_key(manager.store), b"\x00garbage")
    assert await manager.get(old) is None
    async with client_for(build_app(manager)) as client:
        assert (await client.get("/login", params={"user": "carol"})).status_code == 200
        assert json.loads((await client.get("/dump")).text) == {"user": "carol"}
    assert len(await manager.sessions_of("carol")) == 1


# -- 5. caches --------------------------------------------------------------------------------


async def test_a_response_that_read_the_session_is_private(manager: SessionManager) -> None:
    """Reading the session adds Vary: Cookie and Cache-Control: private (the app's public
    directive dropped, a stricter no-store kept); a page that never reads it is untouched."""
    async with client_for(build_app(manager)) as client:
        await client.get("/login", params={"user": "dave"})
        peek = await client.get("/public-peek")
        assert peek.headers["vary"] == "Cookie"
        assert peek.headers["cache-control"] == "private, max-age=600"
        strict = await client.get("/strict-peek")
        assert strict.headers["cache-control"] == "no-store"
        public = await client.get("/public")
        assert "vary" not in public.headers
        assert public.headers["cache-control"] == "public, max-age=600"


# -- 6. renewal races ----------------------------------------------------------------------


async def test_a_tab_in_flight_during_login_keeps_the_new_cookie(
    manager: SessionManager,
) -> None:
    """A request with the old ID, in flight while another logs in: its change lands in the
    new session and its response sets no cookie; after the grace the old ID is dead."""
    gate = (asyncio.Event(), asyncio.Event())
    with freeze_time("2026-12-05 09:00:00", real_asyncio=True) as frozen:
        async with client_for(build_app(manager, gate)) as client:
            await client.get("/put", params={"cart": "apple"})
            old = client.cookies["session_id"]
            slow = asyncio.ensure_future(
                client.get("/slow", headers={"cookie": f"session_id={old}"})
            )
            await gate[0].wait()  # it has loaded the session with the old ID
            login = await client.get("/login", params={"user": "erin"})
            new = login.cookies["session_id"]
            gate[1].set()
            response = await slow
            assert "set-cookie" not in response.headers
            client.cookies.clear()
            data = json.loads(
                (await client.get("/dump", headers={"cookie": f"session_id={new}"})).text
            )
            assert data == {"cart": "apple", "user": "erin", "note": "from the slow tab"}
            frozen.tick(6)
            stale = await client.get("/dump", headers={"cookie": f"session_id={old}"})
            assert stale.text == "{}"


async def test_login_after_the_response_started_raises(manager: SessionManager) -> None:
    """login() once the headers went out cannot send the new cookie: RuntimeError."""
    async with client_for(build_app(manager)) as client:
        await client.get("/put", params={"a": "1"})
        with pytest.raises(RuntimeError, match="after the response started"):
            await client.get("/late-login")


# -- 7. the index stays small and expires -------------------------------------------------------


async def test_the_index_is_bounded_pruned_and_expires(store: Any) -> None:
    """At most max_sessions_per_user entries (the oldest ends); ended sessions leave it; with
    no absolute lifetime it still expires with its last session."""
    manager = SessionManager(
        store=store, idle_timeout=600, absolute_timeout=None, max_sessions_per_user=3
    )
    with freeze_time("2026-12-05 09:00:00", real_asyncio=True) as frozen:
        sids = []
        for _ in range(5):
            sids.append(await manager.create({}, user="fay"))
            frozen.tick(1)
        assert [await manager.get(s) is not None for s in sids] == [False, False, True, True, True]
        assert len(await manager.sessions_of("fay")) == 3
        for _ in range(12):  # an hour of activity on one session: its index lives on
            frozen.tick(300)
            assert await manager.get(sids[-1]) == {}
        assert len(await manager.sessions_of("fay")) == 1  # the quiet ones left the index
        ttl = await store.ttl(await index_key(store))
        assert ttl is not None
        assert ttl <= 2 * 600  # not forever: two idle periods at most


# -- 8. idle from the record ---------------------------------------------------------------


async def test_idle_holds_when_the_store_deadline_is_lost(manager: SessionManager) -> None:
    """A record whose store TTL was lost (a failed second call, a store Idle policy) still
    ends after the idle timeout (plus a tenth), enforced from the record."""
    store = manager.store
    with freeze_time("2026-12-05 09:00:00", real_asyncio=True) as frozen:
        sid = await manager.create({"n": 1})
        await store.persist(manager.key_of(sid))  # type: ignore[attr-defined]
        frozen.tick(600 + 61)
        assert await manager.get(sid) is None


async def test_redis_idle_store_does_not_stretch_sessions(server: RedisServer) -> None:
    """RedisStore(expiry=Idle(1 h)) restarts keys on every read; the manager's 10 min idle
    still holds, sessions_of included."""
    store = RedisStore(server.url, prefix=f"idle{next(_prefixes)}:", expiry=Idle(3600))
    manager = SessionManager(store=store, idle_timeout=600, absolute_timeout=None)
    with freeze_time("2026-12-05 09:00:00", real_asyncio=True) as frozen:
        sid = await manager.create({"n": 1}, user="gus")
        frozen.tick(700)
        assert await manager.sessions_of("gus") == []
        assert await manager.get(sid) is None
    await store.clear()
    await store.aclose()


async def test_a_read_write_request_costs_four_round_trips(server: RedisServer) -> None:
    """On Redis a request that reads and writes a logged-in session costs 4 round trips:
    GET session, GET index, then GET and one compare-and-set EVAL (whose own GET and SET
    run inside the server)."""
    store = RedisStore(server.url, prefix=f"rt{next(_prefixes)}:")
    manager = SessionManager(store=store)
    sid = await manager.create({"n": 1}, user="hal")
    probe = aioredis.from_url(server.url)
    await probe.config_resetstat()
    session = await manager.open([(b"cookie", f"session_id={sid}".encode())])
    session["n"] = 2
    await manager.save(session)
    calls = {k: v["calls"] for k, v in (await probe.info("commandstats")).items()}
    calls.pop("cmdstat_config|resetstat")
    assert calls == {"cmdstat_get": 2 + 1 + 1, "cmdstat_eval": 1, "cmdstat_set": 1}
    round_trips = sum(calls.values()) - 2 * calls["cmdstat_eval"]  # the script's GET, SET
    assert round_trips == 4
    await probe.aclose()
    await store.clear()
    await store.aclose()


# -- 9. stores that unpickle --------------------------------------------------------------------


def test_a_store_that_unpickles_is_refused(server: RedisServer) -> None:
    """Whoever can write to Redis must not run code through a cookie."""
    store = RedisStore(server.url, serializer=PickleSerializer())
    with pytest.raises(ValueError, match="may run code"):
        SessionManager(store=store)


# -- 10. cookies ------------------------------------------------------------------------------


async def test_remember_me_cookies_live_as_long_as_their_session(
    manager: SessionManager,
) -> None:
    """A 30-day login gets a 30-day cookie; the default one the absolute timeout."""
    async with client_for(build_app(manager)) as client:
        short = await client.get("/login", params={"user": "ida"})
        assert "Max-Age=3600;" in short.headers["set-cookie"]
        client.cookies.clear()
        long = await client.get("/login", params={"user": "ida", "remember": "1"})
        assert f"Max-Age={30 * 86400};" in long.headers["set-cookie"]


async def test_browser_session_cookies_and_host_prefix() -> None:
    """persistent_cookie=False sends no Max-Age; host_prefix names the cookie __Host-."""
    manager = SessionManager(persistent_cookie=False, host_prefix=True)
    assert manager.cookie_name == "__Host-session_id"
    async with client_for(build_app(manager)) as client:
        response = await client.get("/put", params={"a": "1"})
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("__Host-session_id=")
        assert "Max-Age" not in cookie
        assert json.loads((await client.get("/dump")).text) == {"a": "1"}


@pytest.mark.parametrize("domain", ["a.com; Secure", "a .com", "a.com\r\nX: y", "", "a,b.com"])
def test_domain_is_validated(domain: str) -> None:
    """A domain that could smuggle attributes or headers is refused."""
    with pytest.raises(ValueError, match="domain"):
        SessionManager(domain=domain)


def test_host_prefix_refuses_a_domain() -> None:
    """__Host- cookies cannot carry a Domain."""
    with pytest.raises(ValueError, match="__Host-"):
        SessionManager(host_prefix=True, domain="example.com")


# -- 11. logging and guessing -------------------------------------------------------------------


async def test_lifecycle_is_logged_with_hashed_ids_only(
    manager: SessionManager, caplog: pytest.LogCaptureFixture
) -> None:
    """Create, login, logout, unknown IDs are logged on lapse.sessions, never the raw ID;
    stats() counts unknown IDs so an app can spot guessing."""
    with caplog.at_level(logging.INFO, logger="lapse.sessions"):
        async with client_for(build_app(manager)) as client:
            await client.get("/put", params={"a": "1"})
            first = client.cookies["session_id"]
            await client.get("/login", params={"user": "jo"})
            second = client.cookies["session_id"]
            await client.get("/logout")
            for guess in ("A" * 43, "B" * 43, "short"):
                await client.get("/dump", headers={"cookie": f"session_id={guess}"})
    text = caplog.text
    for word in ("created", "renewed", "ended", "unknown ids"):
        assert word in text
    for sid in (first, second, "A" * 43):
        assert sid not in text
    assert manager.stats().unknown_ids >= 3


# -- 12. store outages ----------------------------------------------------------------------------


async def test_an_outage_fails_closed_only_where_the_session_is_used() -> None:
    """Redis down: a page that never reads the session works; one that does gets a clear
    503 (fail closed); with fail_open it reads as empty and only writes get the 503."""
    with redis_server() as server:
        for policy in ("fail_closed", "fail_open"):
            store = RedisStore(server.url, prefix=f"down{policy}:", timeout=0.5)
            manager = SessionManager(store=store, on_store_error=policy)
            sid = await manager.create({"user": "kim"})
            server.stop()
            try:
                async with client_for(build_app(manager)) as client:
                    client.cookies.set("session_id", sid)
                    assert (await client.get("/public")).status_code == 200
                    read = await client.get("/dump")
                    write = await client.get("/put", params={"a": "1"})
            finally:
                server.start()
            assert write.status_code == 503
            assert "session store" in write.text
            if policy == "fail_closed":
                assert read.status_code == 503
            else:
                assert read.status_code == 200
                assert read.text == "{}"
            assert "set-cookie" not in read.headers
            assert manager.stats().store_errors >= 2
            await store.aclose()


async def test_a_save_that_fails_is_a_503_never_a_silent_loss() -> None:
    """The store fails between loading and saving: the response is 503, not 200."""
    with redis_server() as server:
        store = RedisStore(server.url, prefix="save:", timeout=0.5)
        manager = SessionManager(store=store)
        sid = await manager.create({"n": 1})

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope["session"]["n"] = 2
            server.stop()
            await PlainTextResponse("saved?")(scope, receive, send)

        try:
            async with client_for(SessionMiddleware(app, manager)) as client:
                response = await client.get("/", headers={"cookie": f"session_id={sid}"})
        finally:
            server.start()
        assert response.status_code == 503
        assert "session store" in response.text
        await store.aclose()


async def test_an_unavailable_session_raises_a_clear_error() -> None:
    """Loading while the store is down does not raise; using the session does, clearly."""
    with redis_server() as server:
        store = RedisStore(server.url, prefix="gone:", timeout=0.5)
        manager = SessionManager(store=store)
        sid = await manager.create({"n": 1})
        server.stop()
        try:
            session = await manager.open([(b"cookie", f"session_id={sid}".encode())])
        finally:
            server.start()
        with pytest.raises(SessionUnavailableError, match="unavailable"):
            session.get("n")
        assert await manager.save(session) == []
        await store.aclose()


# -- also: rotation on privilege change, descriptors -----------------------------------------------


async def test_principal_keys_rotate_the_id(store: Any) -> None:
    """Changing a principal key rotates the ID before the response; changing it to
    another value drops everything the request did not write."""
    manager = SessionManager(store=store, principal_keys=("user_id", "role"))
    async with client_for(build_app(manager)) as client:
        await client.get("/put", params={"cart": "pear"})
        first = client.cookies["session_id"]
        await client.get("/put", params={"user_id": "1"})
        second = client.cookies["session_id"]
        assert second != first
        assert json.loads((await client.get("/dump")).text) == {"cart": "pear", "user_id": "1"}
        await client.get("/put", params={"role": "admin"})
        third = client.cookies["session_id"]
        assert third != second
        await client.get("/put", params={"user_id": "2"})
        assert json.loads((await client.get("/dump")).text) == {"user_id": "2"}


async def test_sessions_of_shows_descriptors_never_ids(manager: SessionManager) -> None:
    """A descriptor set at login (the user agent here) is listed with created and last seen."""
    async with client_for(build_app(manager)) as client:
        await client.get("/login", params={"user": "lea"}, headers={"user-agent": "Firefox/140"})
        sid = client.cookies["session_id"]
    (info,) = await manager.sessions_of("lea")
    assert info.descriptor == "Firefox/140"
    assert info.key == manager.key_of(sid)
    assert sid not in repr(info)


# -- 13. the demo and duplicate cookies ------------------------------------------------------------


async def test_a_planted_duplicate_cookie_cannot_end_the_users_own_session() -> None:
    """The demo's "log out my other sessions" keeps the session the middleware used, not
    the last of two cookies of the same name (which Starlette's request.cookies picks)."""
    manager = SessionManager(store=MemoryStore())
    mine = await manager.create({"user": "zoe"}, user="zoe")
    other = await manager.create({"user": "zoe"}, user="zoe")
    planted = "A" * 43
    async with client_for(load_example("web_demo").build_app(manager)) as client:
        cookie = f"session_id={mine}; session_id={planted}"
        response = await client.post("/logout-others", headers={"cookie": cookie})
        assert response.status_code == 303
    assert await manager.get(mine) == {"user": "zoe"}
    assert await manager.get(other) is None
