"""MemoryStore: reads, writes, deadlines and the bound, driven by a ManualClock."""

from __future__ import annotations

import math

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from lapse import LRU, TTL, Idle, MemoryStore, Stats
from lapse.testing import ManualClock


pytestmark = pytest.mark.anyio


async def test_get_default_and_value(store: MemoryStore) -> None:
    """get returns the default for a missing key and the value for a present one."""
    assert await store.get("k") is None
    assert await store.get("k", 0) == 0
    await store.set("k", [1])
    assert await store.get("k") == [1]


async def test_values_are_kept_by_reference(store: MemoryStore) -> None:
    """The stored object is the object given: no copy, no serialization."""
    value: dict[str, int] = {}
    await store.set("k", value)
    value["x"] = 1
    assert await store.get("k") is value


async def test_none_is_a_value(store: MemoryStore) -> None:
    """None can be stored; has() tells it apart from a missing key."""
    await store.set("k", None)
    assert await store.has("k")
    assert await store.get("k", "default") is None


async def test_policy_ttl_expires_exactly(clock: ManualClock) -> None:
    """With TTL(t), an entry written at T is live before T+t and gone from T+t on."""
    store = MemoryStore(expiry=TTL(300), clock=clock)
    await store.set("k", "v")
    clock.advance(299.999)
    assert await store.get("k") == "v"
    clock.advance(0.001)
    assert await store.get("k") is None
    assert not await store.has("k")


async def test_reads_do_not_extend_ttl(clock: ManualClock) -> None:
    """Under TTL, reading an entry does not move its deadline."""
    store = MemoryStore(expiry=TTL(10), clock=clock)
    await store.set("k", "v")
    for _ in range(9):
        clock.advance(1)
        assert await store.get("k") == "v"
    clock.advance(1)
    assert await store.get("k") is None


async def test_per_key_ttl_overrides_policy(clock: ManualClock) -> None:
    """ttl= replaces the policy's write deadline, shorter or longer."""
    store = MemoryStore(expiry=TTL(300), clock=clock)
    await store.set("short", 1, ttl=60)
    await store.set("long", 2, ttl=timedelta(hours=1))
    await store.set("never", 3, ttl=math.inf)
    assert await store.ttl("short") == 60
    assert await store.ttl("long") == 3600
    assert await store.ttl("never") == math.inf
    clock.advance(600)
    assert await store.get_many(["short", "long", "never"]) == {"long": 2, "never": 3}


async def test_plain_set_replaces_deadline_and_keep_ttl_keeps_it(clock: ManualClock) -> None:
    """set gives a new deadline; keep_ttl=True keeps the old one, and acts as set on a new key."""
    store = MemoryStore(expiry=TTL(100), clock=clock)
    await store.set("k", 1)
    clock.advance(60)
    await store.set("k", 2, keep_ttl=True)
    assert await store.ttl("k") == 40
    await store.set("k", 3)
    assert await store.ttl("k") == 100
    await store.set("new", 1, keep_ttl=True)
    assert await store.ttl("new") == 100


async def test_keep_ttl_on_expired_key_is_plain_set(clock: ManualClock) -> None:
    """An expired key has no deadline to keep: keep_ttl gives the policy's lifetime."""
    store = MemoryStore(expiry=TTL(10), clock=clock)
    await store.set("k", 1)
    clock.advance(10)
    await store.set("k", 2, keep_ttl=True)
    assert await store.ttl("k") == 10


async def test_idle_slides_with_use(clock: ManualClock) -> None:
    """Idle(t): each get or touch pushes the deadline t seconds out; has and ttl do not."""
    store = MemoryStore(expiry=Idle(10), clock=clock)
    await store.set("k", "v")
    for _ in range(5):
        clock.advance(9)
        assert await store.get("k") == "v"
    clock.advance(9)
    assert await store.touch("k")
    clock.advance(9)
    assert await store.has("k")
    assert await store.ttl("k") == 1
    clock.advance(1)
    assert await store.get("k") is None
    assert not await store.touch("k")


async def test_ttl_and_idle_compose_earliest_wins(clock: ManualClock) -> None:
    """With (TTL, Idle), use extends the entry, but never past the absolute TTL."""
    store = MemoryStore(expiry=(TTL(100), Idle(30)), clock=clock)
    await store.set("k", "v")
    assert await store.ttl("k") == 30
    for _ in range(3):
        clock.advance(29)
        assert await store.get("k") == "v"
    assert await store.ttl("k") == 13  # 100 - 87: the absolute limit is nearer now
    clock.advance(12)
    assert await store.get("k") == "v"
    clock.advance(1)
    assert await store.get("k") is None


async def test_idle_applies_to_per_key_ttl(clock: ManualClock) -> None:
    """A per-key ttl sets the write deadline; the idle policy still bounds the entry."""
    store = MemoryStore(expiry=Idle(10), clock=clock)
    await store.set("k", "v", ttl=1000)
    clock.advance(10)
    assert await store.get("k") is None
    await store.set("k", "v", ttl=5)
    clock.advance(4)
    assert await store.get("k") == "v"
    clock.advance(1)
    assert await store.get("k") is None


async def test_expire_and_persist(clock: ManualClock) -> None:
    """expire sets a new write deadline; persist removes it, reporting whether one existed."""
    store = MemoryStore(clock=clock)
    await store.set("k", "v")
    assert await store.ttl("k") == math.inf
    assert not await store.persist("k")
    assert await store.expire("k", 5)
    assert await store.ttl("k") == 5
    assert await store.persist("k")
    clock.advance(100)
    assert await store.get("k") == "v"
    assert not await store.expire("missing", 5)
    assert not await store.persist("missing")
    assert await store.ttl("missing") is None


async def test_expire_and_persist_keep_idle(clock: ManualClock) -> None:
    """Under an Idle policy, expire and persist change the write deadline only."""
    store = MemoryStore(expiry=(TTL(100), Idle(20)), clock=clock)
    await store.set("k", "v")
    assert await store.expire("k", 5)
    assert await store.ttl("k") == 5
    assert await store.persist("k")
    assert await store.ttl("k") == 20
    assert not await store.persist("k")
    clock.advance(20)
    assert not await store.has("k")


async def test_add_only_if_absent(clock: ManualClock) -> None:
    """add writes a missing or expired key and leaves a live one alone."""
    store = MemoryStore(clock=clock)
    assert await store.add("k", 1, ttl=10)
    assert not await store.add("k", 2)
    assert await store.get("k") == 1
    clock.advance(10)
    assert await store.add("k", 3)
    assert await store.get("k") == 3


async def test_pop_and_delete_many(store: MemoryStore) -> None:
    """pop returns and removes; delete_many counts the live keys it removed."""
    await store.set_many({"a": 1, "b": 2, "c": 3})
    assert await store.pop("a") == 1
    assert await store.pop("a", "gone") == "gone"
    assert await store.delete_many(["a", "b", "c", "d"]) == 2
    assert len(store) == 0


async def test_incr(clock: ManualClock) -> None:
    """incr counts from 0, keeps the write deadline, and refuses a non-int value."""
    store = MemoryStore(expiry=TTL(10), clock=clock)
    assert await store.incr("n") == 1
    clock.advance(4)
    assert await store.incr("n", 10) == 11
    assert await store.incr("n", -2) == 9
    assert await store.ttl("n") == 6
    await store.set("s", "text")
    with pytest.raises(TypeError, match="not an int"):
        await store.incr("s")
    assert await store.get("s") == "text"
    with pytest.raises(TypeError, match="delta"):
        await store.incr("n", 1.5)  # type: ignore[arg-type]
    await store.set("b", True)
    with pytest.raises(TypeError):
        await store.incr("b")
    clock.advance(6)
    assert await store.incr("n") == 1


async def test_len_keys_and_stats_skip_expired(clock: ManualClock) -> None:
    """Expired entries are never counted or listed, even before they are purged."""
    store = MemoryStore(clock=clock)
    await store.set("a", 1, ttl=5)
    await store.set("b", 2, ttl=10)
    await store.set("c", 3)
    clock.advance(5)
    assert len(store) == 2
    assert sorted([key async for key in store.keys()]) == ["b", "c"]
    assert store.stats().size == 2
    clock.advance(5)
    assert len(store) == 1
    assert await store.purge_expired() == 2
    assert await store.purge_expired() == 0
    assert len(store) == 1


async def test_stats_count_operations(clock: ManualClock) -> None:
    """stats() counts hits, misses, sets, deletes, evictions and expirations."""
    store = MemoryStore(eviction=LRU(2), clock=clock)
    assert store.stats() == Stats(0, 0, 0, 0, 0, 0, 0)
    assert store.stats().hit_ratio == 0.0
    await store.set("a", 1, ttl=5)
    await store.set("b", 2)
    await store.get("a")
    await store.get("x")
    await store.set("c", 3)  # evicts b? no: a was used last, b is the LRU
    clock.advance(5)
    await store.get("a")  # expired
    await store.delete("c")
    stats = store.stats()
    assert stats == Stats(hits=1, misses=2, sets=3, deletes=1, evictions=1, expirations=1, size=0)
    assert stats.hit_ratio == pytest.approx(1 / 3)


async def test_lru_evicts_least_recently_used(clock: ManualClock) -> None:
    """get, set, incr and touch count as use; has and ttl do not."""
    store = MemoryStore(eviction=LRU(3), clock=clock)
    await store.set_many({"a": 1, "b": 2, "c": 3})
    await store.get("a")  # order: b c a
    await store.has("b")
    await store.ttl("b")
    await store.set("d", 4)  # evicts b
    assert sorted([k async for k in store.keys()]) == ["a", "c", "d"]
    await store.touch("c")  # order: a d c
    await store.set("e", 5)  # evicts a
    assert not await store.has("a")
    await store.incr("d")  # order: c e d
    await store.set("f", 6)  # evicts c
    assert sorted([k async for k in store.keys()]) == ["d", "e", "f"]
    assert len(store) == 3


async def test_lru_prefers_expired_over_live(clock: ManualClock) -> None:
    """A full store drops an expired entry before it evicts any live one."""
    removed: list[tuple[str, str]] = []
    store = MemoryStore(
        eviction=LRU(3), clock=clock, on_remove=lambda k, v, c: removed.append((k, c.value))
    )
    await store.set("old", 1)
    await store.set("mid", 2)
    await store.set("short", 3, ttl=1)  # most recently used, but it will expire
    clock.advance(1)
    await store.set("new", 4)
    assert removed == [("short", "expired")]
    assert sorted([k async for k in store.keys()]) == ["mid", "new", "old"]


async def test_lru_weight_bound() -> None:
    """With a weigher, the sum of weights stays within max_weight."""
    store = MemoryStore(eviction=LRU(max_weight=10, weigher=lambda k, v: len(v)))
    await store.set("a", "xxxx")
    await store.set("b", "xxxx")
    await store.set("a", "xx")  # replaces: weight 6
    await store.set("c", "xxxx")  # 10: fits
    assert len(store) == 3
    await store.set("d", "x")  # 11: evicts b, the least recently used
    assert not await store.has("b")
    with pytest.raises(ValueError, match="more than max_weight"):
        await store.set("e", "x" * 11)
    assert sorted([k async for k in store.keys()]) == ["a", "c", "d"]


async def test_lru_count_and_weight_together() -> None:
    """Both bounds hold at once."""
    store = MemoryStore(eviction=LRU(2, max_weight=100, weigher=lambda k, v: v))
    await store.set_many({"a": 1, "b": 1, "c": 1})
    assert len(store) == 2
    await store.set("d", 99)
    assert sorted([k async for k in store.keys()]) == ["c", "d"]


async def test_set_many_all_or_nothing() -> None:
    """A bad key, ttl or weight in set_many raises before anything is written."""
    store = MemoryStore(eviction=LRU(max_weight=5, weigher=lambda k, v: v))
    await store.set("keep", 1)
    with pytest.raises(TypeError):
        await store.set_many({"a": 1, 2: 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="negative"):
        await store.set_many({"a": 1, "b": -1})
    with pytest.raises(ValueError, match="ttl"):
        await store.set_many({"a": 1}, ttl=-1)
    assert [k async for k in store.keys()] == ["keep"]
    assert store.stats().sets == 1


@pytest.mark.parametrize(
    ("ttl", "error"),
    [
        (0, ValueError),
        (-5, ValueError),
        (math.nan, ValueError),
        ("5", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
async def test_bad_ttl_on_expire(store: MemoryStore, ttl: object, error: type[Exception]) -> None:
    """expire refuses a bad ttl and leaves the deadline as it was."""
    await store.set("k", "v", ttl=10)
    with pytest.raises(error, match="ttl"):
        await store.expire("k", ttl)  # type: ignore[arg-type]
    assert await store.ttl("k") == 10


async def test_bad_key_everywhere(store: MemoryStore) -> None:
    """Every operation that takes a key refuses a non-str one with a clear TypeError."""
    await store.set("k", "v")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.get(1),  # type: ignore[arg-type]
        lambda: store.get([1]),  # type: ignore[arg-type]
        lambda: store.get_many(["k", 1]),  # type: ignore[list-item]
        lambda: store.has(1),  # type: ignore[arg-type]
        lambda: store.ttl(1),  # type: ignore[arg-type]
        lambda: store.set(1, "v"),  # type: ignore[arg-type]
        lambda: store.add(1, "v"),  # type: ignore[arg-type]
        lambda: store.incr(1),  # type: ignore[arg-type]
        lambda: store.expire(1, 5),  # type: ignore[arg-type]
        lambda: store.persist(1),  # type: ignore[arg-type]
        lambda: store.touch(1),  # type: ignore[arg-type]
        lambda: store.delete(1),  # type: ignore[arg-type]
        lambda: store.delete_many(["k", 1]),  # type: ignore[list-item]
        lambda: store.pop(1),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(TypeError, match="key must be a str"):
            await call()
    assert await store.get("k") == "v"
    assert store.stats().misses == 0


@pytest.mark.parametrize("policy", [None, Idle(60)], ids=["plain", "idle"])
def test_bad_key_everywhere_in_sync_code(policy: Idle | None) -> None:
    """The sync face refuses a non-str key (or delta) with lapse's own message: in the
    compiled build too, where a compiled signature would otherwise answer first."""
    store = MemoryStore(expiry=policy).sync
    store.set("k", "v")
    calls: list[Callable[[], object]] = [
        lambda: store.get(1),  # type: ignore[arg-type]
        lambda: store.get_many(["k", 1]),  # type: ignore[list-item]
        lambda: store.get_or_set(1, lambda: "v"),  # type: ignore[arg-type]
        lambda: store.has(1),  # type: ignore[arg-type]
        lambda: store.ttl(1),  # type: ignore[arg-type]
        lambda: store.set(1, "v"),  # type: ignore[arg-type]
        lambda: store.set(1, "v", keep_ttl=True),  # type: ignore[arg-type]
        lambda: store.set_many({"a": 1, 2: "v"}),  # type: ignore[dict-item]
        lambda: store.add(1, "v"),  # type: ignore[arg-type]
        lambda: store.incr(1),  # type: ignore[arg-type]
        lambda: store.update(1, lambda value: value),  # type: ignore[arg-type]
        lambda: store.expire(1, 5),  # type: ignore[arg-type]
        lambda: store.persist(1),  # type: ignore[arg-type]
        lambda: store.touch(1),  # type: ignore[arg-type]
        lambda: store.delete(1),  # type: ignore[arg-type]
        lambda: store.delete_many(["k", 1]),  # type: ignore[list-item]
        lambda: store.pop(1),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(TypeError, match="key must be a str, not int"):
            call()
    with pytest.raises(TypeError, match="delta must be an int, not float"):
        store.incr("n", 1.5)  # type: ignore[arg-type]
    assert store.get("k") == "v"
    assert not store.has("a")
    assert not store.has("n")
    assert len(store) == 1
    # Flags are taken for their truth, as Python takes them, in both builds.
    store.set("t", 1, ttl=30)
    store.set("t", 2, keep_ttl=1)  # type: ignore[arg-type]
    store.update("t", lambda value: value + 1, keep_ttl=1)  # type: ignore[arg-type]
    store.set("k", "w", keep_ttl=0)  # type: ignore[arg-type]
    assert store.get("t") == 3
    assert store.ttl("t") is not None
    assert store.ttl("t") <= 30  # type: ignore[operator]
    assert store.get("k") == "w"


async def test_clear_and_aclose(clock: ManualClock) -> None:
    """clear empties the store; aclose keeps the data; the store stays usable."""
    store = MemoryStore(expiry=TTL(5), clock=clock)
    async with store:
        await store.set_many({"a": 1, "b": 2})
        await store.clear()
        assert len(store) == 0
        await store.set("c", 3)
    assert len(store) == 1
    await store.set("d", 4)
    assert await store.get("d") == 4


async def test_writes_purge_expired_without_reads(clock: ManualClock) -> None:
    """Memory stays bounded with writes only: each write purges expired entries."""
    store = MemoryStore(expiry=TTL(10), clock=clock)
    for i in range(10_000):
        await store.set(f"k{i}", i)
        clock.advance(0.01)  # 1000 keys live per TTL window
        assert len(store._sync._data) <= 1000 + 2
    assert store.stats().expirations >= 9000 - 2


async def test_bulk_expiry_is_purged_gradually(clock: ManualClock) -> None:
    """After a mass expiry, each write purges at least one more than it adds."""
    store = MemoryStore(expiry=TTL(1), clock=clock)
    await store.set_many({f"k{i}": i for i in range(1000)})
    clock.advance(1)
    for i in range(1000):
        await store.set(f"n{i}", i)
    assert len(store._sync._data) == 1000
    assert len(store) == 1000


async def test_sync_view_shares_state(store: MemoryStore) -> None:
    """store.sync reads and writes the same entries as the async methods."""
    store.sync.set("k", 1)
    assert await store.get("k") == 1
    await store.set("j", 2)
    assert store.sync.get("j") == 2
    assert sorted(store.sync.keys()) == ["j", "k"]
    assert len(store.sync) == 2
    assert store.sync.stats() == store.stats()


def test_construction_errors() -> None:
    """Wrong kinds of policies, clocks and callbacks are refused when the store is built."""
    with pytest.raises(TypeError, match="expiry"):
        MemoryStore(expiry=300)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expiry"):
        MemoryStore(expiry=(TTL(1), "x"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="eviction"):
        MemoryStore(eviction=100)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock"):
        MemoryStore(clock=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_remove"):
        MemoryStore(on_remove="print")  # type: ignore[arg-type]
    policies: object = [TTL(1), Idle(1)]
    assert MemoryStore(expiry=policies).expiry == policies  # type: ignore[arg-type]


def test_manual_clock_never_goes_back() -> None:
    """ManualClock.advance refuses negative and NaN steps."""
    clock = ManualClock(5.0)
    clock.advance(0)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="forward"):
            clock.advance(bad)
    assert clock() == 5.0
