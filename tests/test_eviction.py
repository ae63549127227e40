"""SIEVE, S3FIFO and WTinyLFU: LRU's arguments and guarantees, their own behaviour, and
lock-free reads racing writers. Their eviction order is checked against the papers'
algorithms by the model-based tests (test_stateful.py, eviction_models.py)."""

from __future__ import annotations

import random
import threading

import pytest

from lapse import LRU, S3FIFO, SIEVE, TTL, MemoryStore, RemovalCause, SyncMemoryStore, WTinyLFU
from lapse.policies import FrequencySketch
from lapse.testing import ManualClock


POLICIES = [SIEVE, S3FIFO, WTinyLFU]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_size": 0}, ValueError, "at least 1"),
        ({"max_size": True}, TypeError, "int"),
        ({}, ValueError, "needs max_size"),
        ({"max_weight": 10}, ValueError, "together"),
        ({"max_weight": 10, "weigher": 3}, TypeError, "callable"),
    ],
)
def test_the_same_argument_checks_as_lru(
    policy: type[LRU], kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        policy(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=policy.__name__):
        policy()


@pytest.mark.parametrize("policy", POLICIES)
def test_bounds_weights_and_events(policy: type[LRU]) -> None:
    """The count and weight bounds hold, a too-heavy entry is refused with nothing
    changed, and every eviction is reported once, with cause EVICTED."""
    events: list[tuple[str, RemovalCause]] = []
    store = SyncMemoryStore(
        eviction=policy(10, max_weight=50, weigher=lambda k, v: v),
        on_remove=lambda k, v, c: events.append((k, c)),
    )
    rng = random.Random(3)
    for i in range(2000):
        key = f"k{rng.randrange(40)}"
        if rng.random() < 0.5:
            store.get(key)
        else:
            store.set(key, rng.randrange(1, 12))
        assert len(store) <= 10
        assert sum(store.get_many(list(store.keys())).values()) <= 50
        if i % 100 == 0:
            store._check_invariants()
    evicted = [k for k, c in events if c is RemovalCause.EVICTED]
    assert evicted
    before = dict(store.get_many(list(store.keys())))
    with pytest.raises(ValueError, match="more than max_weight"):
        store.set("huge", 51)
    assert store.get_many(list(store.keys())) == before


@pytest.mark.parametrize("policy", POLICIES)
def test_expired_entries_go_before_a_live_one(policy: type[LRU]) -> None:
    clock = ManualClock()
    events: list[tuple[str, RemovalCause]] = []
    store = SyncMemoryStore(
        expiry=TTL(100),
        eviction=policy(3),
        clock=clock,
        on_remove=lambda k, v, c: events.append((k, c)),
    )
    store.set("short", 1, ttl=1)
    store.set("a", 1)
    store.set("b", 1)
    clock.advance(1)
    store.set("c", 1)
    assert events == [("short", RemovalCause.EXPIRED)]
    assert sorted(store.keys()) == ["a", "b", "c"]


def test_sieve_keeps_what_is_read_and_scans_pass_through() -> None:
    """SIEVE: keys read since the hand last passed stay; one-time keys go first."""
    store = SyncMemoryStore(eviction=SIEVE(4))
    for key in "abcd":
        store.set(key, 1)
    store.get("a")
    store.get("b")
    for key in "wxyz":  # a scan of one-time keys
        store.set(key, 1)
    assert {"a", "b"} <= set(store.keys())


def test_s3fifo_sends_a_key_evicted_too_soon_to_main() -> None:
    """A key evicted from small and written again comes back into main (the ghost)."""
    store = SyncMemoryStore(eviction=S3FIFO(10))
    for i in range(11):
        store.set(f"k{i}", i)  # k0 goes: evicted from small, remembered in ghost
    assert store.get("k0") is None
    store.set("k0", 0)
    evictor = store._evictor
    assert "k0" in evictor._main  # type: ignore[union-attr]


def test_wtinylfu_keeps_popular_keys_through_a_flood() -> None:
    """Keys read often survive a flood of 10 000 one-time keys (200 between two reads of
    them, twice the bound); under LRU they do not."""
    survivors = {}
    for policy in (LRU, WTinyLFU):
        store = SyncMemoryStore(eviction=policy(100))
        for _ in range(5):
            for i in range(50):
                store.set(f"hot{i}", i) if store.get(f"hot{i}") is None else None
        for i in range(10_000):
            store.set(f"flood{i}", i)
            if i % 200 == 0:  # read again, then 199 one-time keys: twice the bound
                for j in range(50):
                    if store.get(f"hot{j}") is None:
                        store.set(f"hot{j}", j)
        survivors[policy] = sum(store.get(f"hot{i}") is not None for i in range(50))
    assert survivors[WTinyLFU] == 50
    assert survivors[LRU] < survivors[WTinyLFU]


def test_the_sketch_never_undercounts_and_ages() -> None:
    sketch = FrequencySketch(100)
    counts = {f"k{i}": i % 12 for i in range(100)}
    for key, n in counts.items():
        for _ in range(n):
            sketch.increment(key)
    for key, n in counts.items():
        assert sketch.frequency(key) >= n  # count-min: collisions only add
    assert sketch.frequency("never") <= 15
    for _ in range(1000):  # 10 x capacity sightings: every counter is halved
        sketch.increment("other")
    assert sketch.frequency("k11") <= 6


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("policy", POLICIES)
def test_lock_free_reads_racing_writers(policy: type[LRU]) -> None:
    """Readers (no lock) and writers and deleters on other threads: nothing raises, the
    bound holds, and the evictor agrees with the store afterwards."""
    store = SyncMemoryStore(eviction=policy(20))
    keys = [f"k{i}" for i in range(60)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        rng = random.Random(1)
        while not stop.is_set():  # as fast as it can, for as long as the writers run
            store.get(rng.choice(keys))

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(500):
                key = rng.choice(keys)
                if rng.random() < 0.2:
                    store.delete(key)
                else:
                    store.set(key, 1)
                assert len(store) <= 20  # under the lock: between two writes
        except BaseException as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(s,)) for s in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(60)
    stuck = any(t.is_alive() for t in writers)  # a write that never ends its replay
    stop.set()
    for t in writers:
        t.join()
    assert not stuck
    for t in readers:
        t.join()
    assert errors == []
    store.set("last", 1)  # replays the reads left in a buffer
    store._check_invariants()
    assert len(store) <= 20


@pytest.mark.anyio
@pytest.mark.parametrize("policy", POLICIES)
async def test_async_store_with_each_policy(policy: type[LRU]) -> None:
    store = MemoryStore(eviction=policy(2))
    await store.set("a", 1)
    await store.set("b", 2)
    assert await store.get("a") == 1
    await store.set("c", 3)
    assert len(store) == 2
    assert await store.touch("c") is True
    assert store.stats().evictions == 1
