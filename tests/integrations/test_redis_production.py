"""RedisStore in production, on a real redis-server: a pool that waits, safe retries, no
double writes from anyone's retries, restarts, loaders that fail open, exact values, the
same edge semantics as MemoryStore, large batches and large databases."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import decimal
import enum
import itertools
import logging
import math
import uuid

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from lapse import TTL, Idle, MemoryStore, cached, get_or_set
from lapse.exceptions import StoreError, StoreTimeoutError, UnserializableError
from lapse.redis import RedisStore

from .servers import DropReplyProxy, RedisServer


pytestmark = pytest.mark.anyio
_prefixes = itertools.count()


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="store")
async def _store(server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(server.url, prefix=f"p{next(_prefixes)}:")
    yield store
    await store.clear()
    await store.aclose()


# -- connections ---------------------------------------------------------------------------


async def test_past_the_pool_size_calls_wait_for_a_connection(server: RedisServer) -> None:
    """500 tasks, 2 000 calls, a pool of 10: every call succeeds, no more than 10 sockets."""
    store = RedisStore(server.url, prefix="pool:", max_connections=10, timeout=10)
    peak = 0

    async def task(i: int) -> None:
        nonlocal peak
        for j in range(4):
            await store.set(f"k{i}", j)
            assert await store.incr("n") > 0
        peak = max(peak, len(store.client.connection_pool._in_use_connections))

    await asyncio.gather(*(task(i) for i in range(500)))
    assert await store.get("n") == 2000
    assert 1 <= peak <= 10
    assert store.max_connections == 10
    await store.clear()
    await store.aclose()


async def test_a_clients_own_pool_size_is_waited_for(server: RedisServer) -> None:
    """A client passed in with redis-py's default pool (100, which raises past it): lapse
    waits for a connection instead of failing."""
    client = redis.asyncio.Redis(port=server.port, max_connections=5)
    store = RedisStore(client=client, prefix="pool2:", timeout=10)
    assert store.max_connections == 5
    await asyncio.gather(*(store.incr("n") for _ in range(300)))
    assert await store.get("n") == 300
    await store.clear()
    await store.aclose()


async def test_after_a_clean_restart_no_call_fails(server: RedisServer) -> None:
    """The server restarts on its port while 8 pooled connections sit idle; right after,
    before the loop has seen the closed sockets, every kind of call succeeds (those not
    safe to repeat included: they are never sent into a dead connection)."""
    store = RedisStore(server.url, prefix="restart:", timeout=2)
    await asyncio.gather(*(store.set(f"k{i}", i) for i in range(8)))
    assert len(store.client.connection_pool._available_connections) >= 2
    server.stop()
    server.start()  # a blocking restart: the loop does not run meanwhile
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: store.incr("n"),
        lambda: store.add("a", 1),
        lambda: store.delete("k1"),
        lambda: store.pop("k2"),
        lambda: store.update("u", lambda v: 1),
        lambda: store.persist("k3"),
        lambda: store.get("k4"),
        lambda: store.set("k5", 5),
    ]
    for call in calls:  # one at a time: each takes the next stale connection
        await call()
    assert await store.get("n") == 1
    await store.clear()
    await store.aclose()


@pytest.mark.parametrize(
    ("marker", "call", "check"),
    [
        (b"INCRBY", lambda s: s.incr("n"), lambda v: v == 2),
        (b"NX", lambda s: s.add("fresh", 1), lambda v: v == 1),
        (b"UNLINK", lambda s: s.delete("n"), lambda v: v is None),
        (b"GETDEL", lambda s: s.pop("n"), lambda v: v is None),
    ],
    ids=["incr", "add", "delete", "pop"],
)
async def test_a_clients_own_retries_never_apply_a_write_twice(
    server: RedisServer, marker: bytes, call: Any, check: Any
) -> None:
    """A client passed in with retries on connection errors: its reply is lost after the
    server ran the write; lapse turned those retries off, so the write is applied once and
    the call says the outcome is unknown (no +2, no False after the work was done)."""
    proxy = DropReplyProxy(server.port, marker)
    async with proxy as url:
        client = redis.asyncio.Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 3),
            retry_on_error=[redis.exceptions.ConnectionError],
        )
        store = RedisStore(client=client, prefix="own-retry:", timeout=2)
        await store.set("n", 1)
        proxy.armed = True
        with pytest.raises(StoreError, match="may or may not have been applied"):
            await call(store)
        assert proxy.dropped == 1
        key = "fresh" if marker == b"NX" else "n"
        assert check(await store.get(key))
        await store.clear()
        await store.aclose()


async def test_a_silently_dead_path_costs_a_read_nothing(server: RedisServer) -> None:
    """A connection whose replies stop (the path died, no close): a GET is retried on
    another connection within the timeout and succeeds; an INCRBY is not retried, says
    so, and was applied once."""
    proxy = DropReplyProxy(server.port, b"GET", hang=True)
    async with proxy as url:
        store = RedisStore(url, prefix="dead-path:", timeout=1)
        await store.set("k", "v")
        proxy.armed = True
        assert await store.get("k") == "v"
        assert proxy.dropped == 1
        proxy.marker, proxy.armed = b"INCRBY", True
        with pytest.raises(StoreTimeoutError, match="may or may not have been applied"):
            await store.incr("n")
        assert await store.get("n") == 1
        await store.clear()
        await store.aclose()


# -- loaders while the server is down -------------------------------------------------------


async def test_loaders_call_the_function_while_redis_is_down(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """@cached and get_or_set fail open by default (logged), and raise when asked to."""
    store = RedisStore(server.url, prefix="down:", timeout=0.3)
    calls = 0

    @cached(store, ttl=30)
    async def price(item: str) -> tuple[str, int]:
        nonlocal calls
        calls += 1
        return (item, calls)

    @cached(store, ttl=30, on_store_error="fail_closed")
    async def strict(item: str) -> str:
        return item

    assert await price("a") == ("a", 1)
    assert await price("a") == ("a", 1)  # from Redis, as a tuple
    server.stop()
    try:
        with caplog.at_level(logging.WARNING, logger="lapse"):
            assert await price("a") == ("a", 2)
            assert await get_or_set(store, "g", lambda: 7) == 7
            assert await store.get_or_set("g", lambda: 8) == 8
        assert any("loading without the store" in r.getMessage() for r in caplog.records)
        with pytest.raises(StoreError):
            await strict("x")
        with pytest.raises(StoreError):
            await store.get_or_set("g", lambda: 9, on_store_error="fail_closed")
        with pytest.raises(ValueError, match="on_store_error"):
            cached(store, on_store_error="ignore")  # type: ignore[arg-type]
    finally:
        server.start()
    assert await price("b") == ("b", 3)
    await store.clear()
    await store.aclose()


# -- values come back exactly, or are refused ------------------------------------------------


class Colour(enum.Enum):
    RED = 1


class Name(str):  # noqa: SLOT000 -- a plain str subclass, as users write them
    pass


@dataclasses.dataclass
class Point:
    x: int


EXACT = [
    (1, "a"),
    [(1, 2), [3, (4,)]],
    {1: "a", "1": "b"},
    {(1, 2): "pair", None: 0, True: "t", 2.5: "f"},
    {"\x00t": "a str key that looks like a tag"},
    {"\x00t": [1], "other": 2},
    {1, 2, 3},
    frozenset({"a", (1, 2)}),
    b"\x00\xffbytes",
    dt.datetime(2026, 12, 5, 10, 30, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.datetime(2026, 12, 5, 10, 30),  # noqa: DTZ001 -- a naive one stays naive
    dt.date(2026, 12, 5),
    dt.time(23, 59, 59, 999999),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    decimal.Decimal("1.10"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    {"plain": [1, 2.5, None, True, "s"], "nested": {"t": (1,)}},
    "\ud800 lone surrogate",
    2**100,
    -0.0,
]


def same_types(a: Any, b: Any) -> bool:
    """Whether *a* and *b*, already equal, have the same types all the way down (and the
    same repr at the leaves); set members are paired by equality, not by their order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return all(same_types(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        keys = {k: k for k in b}
        return all(same_types(k, keys[k]) and same_types(v, b[k]) for k, v in a.items())
    if isinstance(a, (set, frozenset)):
        members = {m: m for m in b}
        return all(same_types(m, members[m]) for m in a)
    return repr(a) == repr(b)


@pytest.mark.parametrize(
    "value", EXACT, ids=[type(v).__name__ + str(i) for i, v in enumerate(EXACT)]
)
async def test_values_come_back_exactly(store: RedisStore, value: Any) -> None:
    """What goes in comes back equal and of the same types, all the way down."""
    await store.set("k", value)
    back = await store.get("k")
    assert back == value
    assert same_types(back, value)  # a tuple stays a tuple, 1 stays 1, -0.0 stays -0.0

    @cached(store)
    async def same(x: int) -> Any:
        return value

    first, second = await same(1), await same(1)
    assert same_types(first, value)
    assert same_types(second, value)


@pytest.mark.parametrize(
    "value",
    [Colour.RED, Name("x"), Point(1), [math.inf], {"k": math.nan}, [object()], {1: Colour.RED}],
    ids=["enum", "str-subclass", "dataclass", "inf", "nan", "object", "enum-in-dict"],
)
async def test_values_that_would_change_are_refused(store: RedisStore, value: Any) -> None:
    """A value that would not come back as it went in is refused, and nothing is written."""
    await store.set("k", "old")
    with pytest.raises(UnserializableError, match="'k'"):
        await store.set("k", value)
    with pytest.raises(UnserializableError):
        await store.set_many({"a": 1, "k": value})
    assert await store.get("k") == "old"
    assert await store.get("a") is None


async def test_a_value_that_contains_itself_is_refused(store: RedisStore) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(UnserializableError):
        await store.set("k", loop)


@pytest.mark.parametrize(
    "raw",
    [b'{"\\u0000z": 1}', b'{"\\u0000s": [[1]]}', b'{"\\u0000d": 5}', b'{"\\u0000b": "%%"}'],
)
async def test_bad_tags_are_corrupt_values(store: RedisStore, raw: bytes) -> None:
    """Bytes with an unknown or malformed tag are a CorruptValueError naming the key."""
    from lapse.exceptions import CorruptValueError  # noqa: PLC0415

    await store.client.set(store.prefix + "k", raw)
    with pytest.raises(CorruptValueError, match="'k'"):
        await store.get("k")


# -- the same semantics as MemoryStore ---------------------------------------------------------


async def test_keep_ttl_on_a_new_key_gets_the_policys_lifetime(server: RedisServer) -> None:
    store = RedisStore(server.url, prefix="keep:", expiry=TTL(60))
    memory = MemoryStore(expiry=TTL(60))
    for s in (store, memory):
        await s.set("new", 1, keep_ttl=True)
        left = await s.ttl("new")
        assert left is not None
        assert 59 < left <= 60
        await s.set("old", 1, ttl=10)
        await s.set("old", 2, keep_ttl=True)
        left = await s.ttl("old")
        assert left is not None
        assert left <= 10
        assert await s.get("old") == 2
    await store.clear()
    await store.aclose()


async def test_idle_get_many_restarts_the_idle_lifetimes(server: RedisServer) -> None:
    store = RedisStore(server.url, prefix="idle-many:", expiry=Idle(30))
    await store.set_many({"a": 1, "b": 2})
    for name in (b"idle-many:a", b"idle-many:b"):
        await store.client.pexpire(name, 1000)
    assert await store.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    for key in ("a", "b"):
        left = await store.ttl(key)
        assert left is not None
        assert left > 29
    await store.clear()
    await store.aclose()


async def test_lifetime_edges(store: RedisStore) -> None:
    """Lifetimes Redis can keep behave as in memory; longer ones raise ValueError; inf
    means no deadline everywhere."""
    await store.set("long", 1, ttl=10**9)  # about 31 years
    left = await store.ttl("long")
    assert left is not None
    assert left > 10**9 - 5
    for ttl in (1e16, 2**62 - 1, 1e300):
        with pytest.raises(ValueError, match="beyond what Redis can keep"):
            await store.set("k", 1, ttl=ttl)
        with pytest.raises(ValueError, match="beyond what Redis can keep"):
            await store.expire("long", ttl)
    assert await store.get("k") is None
    assert await store.expire("long", math.inf) is True
    assert await store.ttl("long") == math.inf
    assert await store.expire("missing", math.inf) is False
    with pytest.raises(ValueError, match="beyond what Redis can keep"):
        RedisStore("redis://127.0.0.1:1/0", expiry=TTL(1e300))


async def test_incr_past_64_bits_is_a_value_error(store: RedisStore) -> None:
    await store.set("n", 2**63 - 2)
    assert await store.incr("n") == 2**63 - 1
    with pytest.raises(ValueError, match="overflow"):
        await store.incr("n")
    assert await store.get("n") == 2**63 - 1
    with pytest.raises(ValueError, match="64-bit"):
        await store.incr("n", 2**64)
    await store.set("big", 2**70)
    with pytest.raises(TypeError, match="not an int"):
        await store.incr("big")


async def test_keys_with_lone_surrogates_work_as_in_memory(store: RedisStore) -> None:
    key = "user:\udc80"
    await store.set(key, 1)
    assert await store.get(key) == 1
    assert await store.get("user:\udc81") is None
    assert [k async for k in store.keys()] == [key]
    assert await store.get_many([key]) == {key: 1}
    assert await store.delete(key) is True


# -- large databases and large batches -------------------------------------------------------


async def test_keys_and_clear_finish_on_a_large_database(server: RedisServer) -> None:
    """1 000 000 keys of another application: the timeout applies per SCAN round trip, so
    keys() and clear() of a small prefix finish with a 0.1 s timeout (one SCAN of the
    whole database takes several times that)."""
    admin = redis.asyncio.Redis(port=server.port)
    await admin.execute_command("DEBUG", "POPULATE", 1_000_000, "other")  # type: ignore[no-untyped-call]
    store = RedisStore(server.url, prefix="small:", timeout=0.1)
    try:
        await store.set_many({f"k{i}": i for i in range(10)})
        assert len([k async for k in store.keys()]) == 10
        await store.clear()
        assert [k async for k in store.keys()] == []
        assert await admin.dbsize() >= 1_000_000
    finally:
        await admin.flushdb()
        await admin.aclose()
        await store.aclose()


async def _calls(client: Any, command: str) -> int:
    stats = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_a_large_batch_is_sent_in_chunks(store: RedisStore) -> None:
    """set_many / get_many / delete_many of 10 000 items go in chunks of 250 (40 round
    trips each), so no step holds the loop for long; everything is written and read."""
    admin = store.client
    mapping = {f"k{i}": {"i": i, "tags": ("a", "b")} for i in range(10_000)}
    before = await _calls(admin, "exec")
    await store.set_many(mapping)
    assert await _calls(admin, "exec") - before == 40
    before = await _calls(admin, "mget")
    assert await store.get_many(list(mapping)) == mapping
    assert await _calls(admin, "mget") - before == 40
    before = await _calls(admin, "unlink")
    assert await store.delete_many(list(mapping)) == 10_000
    assert await _calls(admin, "unlink") - before == 40


# -- TTL and Idle together ----------------------------------------------------------------


def _near(left: float | None, expected: float) -> bool:
    return left is not None and expected - 1 < left <= expected


async def test_ttl_and_idle_together_in_real_time(server: RedisServer) -> None:
    """TTL(1.0) and Idle(0.4): reads every 0.2 s keep a key past its idle time, but not
    past its write deadline; a key nobody reads goes after 0.4 s. (Redis's own expiry, so
    real time: 1.1 s in all.)"""
    store = RedisStore(server.url, prefix="both-rt:", expiry=(TTL(1.0), Idle(0.4)))
    await store.set_many({"read": 1, "unread": 2})
    for _ in range(4):  # t = 0.2, 0.4, 0.6, 0.8
        await asyncio.sleep(0.2)
        assert await store.get("read") == 1
    assert await store.get("unread") is None
    left = await store.ttl("read")
    assert left is not None
    assert left <= 0.25  # the write deadline (t = 1.0), not the idle one (t = 1.2)
    await asyncio.sleep(0.3)
    assert await store.get("read") is None
    await store.clear()
    await store.aclose()


async def test_ttl_and_idle_together_every_method(server: RedisServer) -> None:
    """Every method keeps both deadlines, as MemoryStore does: the key's own TTL is the
    earlier of the idle and the write deadline, and a read restarts it from there."""
    store = RedisStore(server.url, prefix="both:", expiry=(TTL(100), Idle(10)))
    client = store.client
    await store.set("k", {"v": (1, 2)})
    assert _near(await store.ttl("k"), 10)
    assert (await client.get(b"both:k")).startswith(b"\x00")  # the write deadline, beside
    await client.pexpire(b"both:k", 1000)  # 9 s of idleness later...
    assert await store.get("k") == {"v": (1, 2)}  # ...a read restarts the idle lifetime
    assert _near(await store.ttl("k"), 10)
    await store.set("short", 1, ttl=5)  # the write deadline comes first
    await client.pexpire(b"both:short", 1000)
    assert await store.get("short") == 1
    assert _near(await store.ttl("short"), 5)
    assert await store.touch("short") is True
    assert _near(await store.ttl("short"), 5)
    assert await store.persist("short") is True  # the write deadline goes, idle stays
    assert await store.persist("short") is False
    assert _near(await store.ttl("short"), 10)
    assert await store.expire("short", 3) is True
    assert _near(await store.ttl("short"), 3)
    assert await store.expire("missing", 3) is False
    await store.set("short", 2, keep_ttl=True)
    assert _near(await store.ttl("short"), 3)
    await store.set("fresh", 2, keep_ttl=True)  # a new key: the policies' lifetime
    assert _near(await store.ttl("fresh"), 10)
    assert await store.incr("n") == 1
    assert await store.incr("n", 2**62) == 2**62 + 1  # exact: not through a Lua double
    assert _near(await store.ttl("n"), 10)
    await store.set("text", "x", ttl=5)
    with pytest.raises(TypeError, match="not an int"):
        await store.incr("text")
    assert await store.get("text") == "x"
    assert _near(await store.ttl("text"), 5)  # the failed incr changed nothing
    with pytest.raises(ValueError, match="overflow"):
        await store.incr("n", 2**63 - 1)
    assert await store.get("n") == 2**62 + 1
    assert await store.add("k", 0) is False
    assert await store.add("a", [1], ttl=4) is True
    assert _near(await store.ttl("a"), 4)
    assert await store.update("u", lambda v: (v or 0) + 1) == 1
    assert await store.update("u", lambda v: v + 1, ttl=2) == 2
    assert _near(await store.ttl("u"), 2)
    assert await store.update("u", lambda v: v + 1, keep_ttl=True) == 3
    assert _near(await store.ttl("u"), 2)
    assert await store.update("u", lambda v: None) is None
    assert await store.has("u") is False
    assert await store.get_many(["k", "a", "missing"]) == {"k": {"v": (1, 2)}, "a": [1]}
    assert await store.pop("a") == [1]
    assert sorted([k async for k in store.keys()]) == ["fresh", "k", "n", "short", "text"]
    assert await store.get_or_set("g", lambda: "loaded") == "loaded"
    assert await store.get("g") == "loaded"
    await store.clear()
    await store.aclose()


async def test_ttl_and_idle_on_a_cluster(cluster_url: str) -> None:
    """The same scripts run on a real cluster (one key each: one node)."""
    store = RedisStore(cluster_url, prefix="both-c:", expiry=(TTL(100), Idle(10)))
    await store.set_many({f"k{i}": i for i in range(20)}, ttl=5)
    assert await store.get_many([f"k{i}" for i in range(20)]) == {f"k{i}": i for i in range(20)}
    assert _near(await store.ttl("k3"), 5)
    assert await store.incr("n", 5) == 5
    assert await store.update("n", lambda v: v * 2) == 10
    await store.clear()
    await store.aclose()
