"""The deadline-bucket index: exact order where the clock is, sweeps, compaction, len()."""

from __future__ import annotations

import random

from lapse import LRU, RemovalCause, SyncMemoryStore
from lapse.testing import ManualClock


def test_empty_buckets_are_swept_once_they_outnumber_the_entries() -> None:
    """One key moved across 3000 distinct seconds: empty buckets are swept, never piled up."""
    clock = ManualClock(0.0)
    store = SyncMemoryStore(clock=clock)
    for seconds in range(1, 3001):
        store.set("k", seconds, ttl=float(seconds))
        assert len(store._buckets) <= 8 * len(store._data) + 1024 + 1
    store._check_invariants()
    assert store.ttl("k") == 3000.0
    clock.advance(2999.5)
    assert store.get("k") == 3000
    clock.advance(0.5)
    assert store.get("k") is None


def test_a_reached_bucket_is_purged_in_order_and_compacted() -> None:
    """Hundreds of deadlines in one second, reached by the clock: purged earliest first."""
    clock = ManualClock(100.0)
    events: list[str] = []
    store = SyncMemoryStore(clock=clock, on_remove=lambda k, v, c: events.append(k))
    rng = random.Random(7)
    deadlines = {f"k{i}": rng.uniform(0.001, 0.999) for i in range(500)}
    for key, offset in deadlines.items():
        store.set(key, 0, ttl=10 + offset)  # all in the bucket of second 110
    clock.advance(10.5)
    expected_expired = sorted((d, k) for k, d in deadlines.items() if 10 + d <= 10.5)
    assert len(store) == 500 - len(expected_expired)  # exact, before any purge
    for i in range(400):  # writes purge two expired entries each, earliest first
        store.set(f"new{i}", i, ttl=50)
        if i % 50 == 0:
            store._check_invariants()
    assert events == [k for _, k in expected_expired]
    clock.advance(0.5)
    assert store.purge_expired() == 500 - len(expected_expired)
    assert len(store) == 400
    store._check_invariants()


def test_len_counts_buckets_wholly_in_the_past() -> None:
    """Expired entries in several past buckets and the current one are not counted."""
    clock = ManualClock(0.0)
    store = SyncMemoryStore(clock=clock)
    for i in range(30):
        store.set(f"k{i}", i, ttl=1.0 + i * 0.5)  # deadlines from 1.0 to 15.5
    clock.advance(7.2)
    assert len(store) == sum(1 for i in range(30) if 1.0 + i * 0.5 > 7.2)
    assert sorted(store.keys()) == sorted(f"k{i}" for i in range(30) if 1.0 + i * 0.5 > 7.2)
    assert store.stats().size == len(store)
    store._check_invariants()


def test_eviction_takes_expired_entries_across_buckets_first() -> None:
    """Over the bound, expired entries go first, whichever bucket they are in."""
    clock = ManualClock(0.0)
    causes: list[RemovalCause] = []
    store = SyncMemoryStore(
        clock=clock, eviction=LRU(5), on_remove=lambda k, v, c: causes.append(c)
    )
    for i in range(5):
        store.set(f"k{i}", i, ttl=1.0 + i)
    clock.advance(3.5)  # k0, k1, k2 expired
    for i in range(3):
        store.set(f"n{i}", i, ttl=100)
    assert causes.count(RemovalCause.EVICTED) == 0
    assert sorted(store.keys()) == ["k3", "k4", "n0", "n1", "n2"]
    store._check_invariants()


class _ShortAfterUse:
    """Entries live 5 s from their last use; the keys in *short*, 0.2 s."""

    def __init__(self) -> None:
        self.short: set[str] = set()

    def after_write(self, key: str, value: object) -> float:
        return float("inf")

    def after_use(self, key: str, value: object) -> float:
        return 0.2 if key in self.short else 5.0


def test_a_deadline_moved_earlier_within_its_bucket_moves_the_head() -> None:
    """A use that brings a deadline before every other one, without leaving its bucket:
    len() and the purge see it expire at once (the head once stayed behind)."""
    clock = ManualClock(0.5)
    policy = _ShortAfterUse()
    store = SyncMemoryStore(expiry=policy, clock=clock)
    store.set("a", "long")  # deadline 5.5: the head
    clock.advance(0.4)
    store.set("b", "short")  # deadline 5.9
    clock.advance(4.15)  # 5.05
    policy.short.add("b")
    assert store.get("b") == "short"  # deadline 5.25, before a's
    store._check_invariants()
    clock.advance(0.25)  # 5.3: b has expired, a has not
    assert len(store) == 1
    assert store.purge_expired() == 1
    assert list(store.keys()) == ["a"]


def test_a_rewrite_to_an_earlier_deadline_in_the_same_bucket_moves_the_head() -> None:
    """set's inlined path: a rewrite whose deadline comes before every other one, in the
    same second, is seen by len() as soon as it passes."""
    clock = ManualClock(0.0)
    store = SyncMemoryStore(clock=clock)
    store.set("a", 1, ttl=5.5)  # the head
    store.set("k", 1, ttl=5.9)
    store.set("k", 2, ttl=5.2)  # bucket 5 still, and now the earliest
    store._check_invariants()
    clock.advance(5.3)
    assert len(store) == 1
    assert store.purge_expired() == 1
    assert list(store.keys()) == ["a"]


def _coarse_window_store(
    keys: int, *, in_order: bool = False
) -> tuple[SyncMemoryStore, ManualClock, list[str], dict[str, float]]:
    """A store whose *keys* deadlines all lie in one far coarse bucket, [1024, 1088), set
    earliest first if *in_order*; its on_remove records the expired keys."""
    clock = ManualClock(900.0)
    events: list[str] = []
    store = SyncMemoryStore(
        clock=clock,
        on_remove=lambda k, v, c: events.append(k) if c is RemovalCause.EXPIRED else None,
    )
    rng = random.Random(11)
    deadlines = {f"k{i}": rng.uniform(1024.0, 1088.0) for i in range(keys)}
    if in_order:
        deadlines = dict(sorted(deadlines.items(), key=lambda item: item[1]))
    for key, deadline in deadlines.items():
        store.set(key, 0, ttl=deadline - 900.0)
    return store, clock, events, deadlines


def test_far_deadlines_share_a_coarse_bucket_moved_in_steps_before_the_clock_reaches_it() -> None:
    """Far deadlines are in a 64-second bucket; within a minute of the clock it is opened
    and its keys move to one-second buckets a bounded number per write, while keys in it
    are rewritten, deleted and read; every expiry fires once, earliest first."""
    store, clock, events, deadlines = _coarse_window_store(5000)
    assert list(store._coarse) == [1024.0]  # 5000 deadlines, one list
    assert not store._buckets
    store._check_invariants()
    clock.advance(1024.0 - 64.0 - 900.0)  # a minute before the first deadline
    store.set("trigger", 0, ttl=10_000)
    moving = len(store._remnant)
    assert 0 < moving <= 5000 - 1024  # opened, one step moved
    rng = random.Random(3)
    written = 0
    while store._remnant:
        before = len(store._remnant)
        victim = rng.choice(list(deadlines))
        if rng.random() < 0.5:
            store.delete(victim)
            del deadlines[victim]
        else:  # to another deadline, maybe in the same coarse bucket
            deadlines[victim] = clock() + rng.uniform(70.0, 120.0)
            store.set(victim, 1, ttl=deadlines[victim] - clock())
        assert store.get(victim) == (1 if victim in deadlines else None)
        written += 1
        assert before - len(store._remnant) <= 1024 + 1
        store._check_invariants()
    assert written >= 3  # it took several writes, none moved everything
    assert store._fine_end == 1088.0
    assert len(store) == len(deadlines) + 1
    clock.advance(1200.0 - clock())
    assert store.purge_expired() == len(deadlines)
    assert events == sorted(deadlines, key=deadlines.__getitem__)
    store._check_invariants()


def test_a_clock_that_jumps_past_an_opened_coarse_bucket_finds_every_expired_key() -> None:
    """Opened but not yet moved when the clock passes its deadlines: len() is exact and
    a purge takes them earliest first, at once."""
    store, clock, events, deadlines = _coarse_window_store(3000)
    clock.advance(1024.0 - 60.0 - 900.0)
    store.set("trigger", 0, ttl=10_000)
    assert store._remnant  # opened, waiting for writes
    clock.advance(1050.0 - clock())
    expired = sorted((d, k) for k, d in deadlines.items() if d <= 1050.0)
    assert len(store) == 3001 - len(expired)
    assert not store._remnant
    store._check_invariants()
    assert store.purge_expired() == len(expired)
    assert events == [k for _, k in expired]
    clock.advance(100.0)
    assert len(store) == 1
    store._check_invariants()


def test_writes_alone_purge_a_coarse_bucket_after_a_long_silence() -> None:
    """No reads, no len(): writes after the clock jumped past a whole coarse bucket open,
    move and purge it, so memory stays bounded."""
    store, clock, events, deadlines = _coarse_window_store(2000)
    clock.advance(2000.0 - 900.0)
    for i in range(1100):
        store.set(f"w{i}", i, ttl=5000)
    assert sorted(events) == sorted(deadlines)
    assert len(store._data) == 1100
    store._check_invariants()


def test_a_key_rewritten_within_its_second_while_its_coarse_bucket_is_moved() -> None:
    """A rewrite to a deadline in the same second, before the key left the opened coarse
    bucket: the index stays exact, and the new deadline is the one that expires."""
    store, clock, events, deadlines = _coarse_window_store(3000, in_order=True)
    clock.advance(1024.0 - 64.0 - 900.0)
    store.set("trigger", 0, ttl=10_000)
    # The latest deadlines moved first: the earliest wait, before every indexed one.
    waiting = [key for key in store._remnant if deadlines[key] // 1.0 < deadlines[key] - 0.01]
    assert deadlines[waiting[0]] < store._ids[0]
    for key in waiting[:50]:
        deadlines[key] -= 0.01  # earlier, same second
        store.set(key, 2, ttl=deadlines[key] - clock())
        store._check_invariants()
    clock.advance(1100.0 - clock())
    assert store.purge_expired() == 3000
    assert events == sorted(deadlines, key=deadlines.__getitem__)


def test_keys_moved_between_far_deadlines_leave_bounded_stale_entries() -> None:
    """1000 keys rewritten 60 000 times to far deadlines (each rewrite leaves a stale
    entry in a coarse list): the lists stay within twice the entries, and when the clock
    passes every deadline each key expires once, at its last deadline."""
    clock = ManualClock(0.0)
    expired: list[str] = []
    store = SyncMemoryStore(
        clock=clock,
        on_remove=lambda k, v, c: expired.append(k) if c is RemovalCause.EXPIRED else None,
    )
    rng = random.Random(5)
    deadlines: dict[str, float] = {}
    for i in range(60_000):
        key = f"k{i % 1000}"
        deadlines[key] = rng.uniform(600.0, 7200.0)
        store.set(key, i, ttl=deadlines[key])
        assert store._coarse_slots <= 2 * len(store) + 4096 + 1
        if i % 7919 == 0:
            store._check_invariants()
    store._check_invariants()
    while clock() < 7300.0:  # writes move the index along, as in a live process
        clock.advance(30.0)
        store.set("tick", 0, ttl=1.0)
        store._check_invariants()
    assert len(store) == 1
    store.purge_expired()  # what two purges a write have not taken yet
    assert sorted(k for k in expired if k != "tick") == sorted(deadlines)
    assert store._coarse_slots == 0


def test_a_key_that_comes_back_to_a_coarse_list_is_moved_and_expires_once() -> None:
    """A -> B -> A between two coarse lists: A holds the key twice (one stale); it is
    moved once, expires once; a key deleted while in a list never expires."""
    clock = ManualClock(0.0)
    expired: list[str] = []
    store = SyncMemoryStore(
        clock=clock,
        on_remove=lambda k, v, c: expired.append(k) if c is RemovalCause.EXPIRED else None,
    )
    store.set("k", 0, ttl=1000.0)  # list 960
    store.set("k", 0, ttl=2000.0)  # list 1984
    store.set("k", 0, ttl=1010.0)  # list 960 again
    store.set("gone", 0, ttl=1005.0)
    store.delete("gone")
    assert store._coarse[960.0] == ["k", "k", "gone"]
    store._check_invariants()
    clock.advance(990.0)
    store.set("tick", 0, ttl=10_000)  # opens list 960: moved, stale entries dropped
    assert store._buckets == {1010.0: {"k": None}}
    store._check_invariants()
    clock.advance(30.0)
    assert store.purge_expired() == 1
    assert expired == ["k"]
    store._check_invariants()


def test_deleted_keys_in_coarse_lists_are_compacted_away() -> None:
    """Entries deleted while their deadline is far stay as stale list entries only until
    the lists outnumber twice the entries: writes then compact them, one list a write."""
    clock = ManualClock(0.0)
    store = SyncMemoryStore(clock=clock)
    for i in range(20_000):
        store.set(f"k{i}", i, ttl=600.0 + i % 3000)
    for i in range(20_000):
        store.delete(f"k{i}")
    assert store._coarse_slots == 20_000  # stale, not searched for
    clock.advance(1.0)
    for i in range(200):
        store.set(f"n{i}", i, ttl=700.0 + i)
        store._check_invariants()
    assert 200 <= store._coarse_slots <= 2 * len(store) + 4096  # from 20 200


def test_a_coarse_list_opened_while_it_is_compacted() -> None:
    """Compaction checks a bounded number of entries per write; a list the clock comes
    near half-way through is opened with what compaction kept and what it had not checked
    yet: no key is lost, none expires twice."""
    clock = ManualClock(0.0)
    expired: list[str] = []
    store = SyncMemoryStore(
        clock=clock,
        on_remove=lambda k, v, c: expired.append(k) if c is RemovalCause.EXPIRED else None,
    )
    rng = random.Random(9)
    deadlines: dict[str, float] = {}
    for i in range(10_000):  # list 1024
        deadlines[f"k{i}"] = rng.uniform(1024.0, 1088.0)
        store.set(f"k{i}", 0, ttl=deadlines[f"k{i}"])
    writes = 0
    while store._compacting != 1024.0:  # keys move on, leaving stale entries in 1024
        key = f"k{writes % 10_000}"
        if writes % 10_000 % 3:  # a third stay live there
            deadlines[key] = rng.uniform(2048.0, 4000.0)
            store.set(key, 1, ttl=deadlines[key])
        writes += 1
        assert writes < 100_000, "compaction never started"
    assert 0 < store._compact_pos < len(store._coarse[1024.0])  # part-way
    assert store._compact_live  # live keys found in the part checked
    store._check_invariants()
    clock.advance(1024.0 - 64.0)
    store.set("w1", 0, ttl=5000.0)  # opens list 1024, part-compacted
    assert store._remnant_id == 1024.0
    assert store._compacting != store._compacting  # NaN: no list being compacted
    store._check_invariants()
    clock.advance(6000.0 - clock())
    store.purge_expired()
    assert sorted(expired) == sorted([*deadlines, "w1"])
    store._check_invariants()
