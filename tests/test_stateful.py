"""Random operations and clock moves against a simple reference model of the semantics."""

from __future__ import annotations

import math

from typing import Any

import hypothesis.strategies as st
import pytest

from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lapse import LRU, S3FIFO, SIEVE, TTL, Idle, MemoryStore, RemovalCause, WTinyLFU
from lapse._policies import ExpiryPolicy
from lapse.testing import ManualClock

from .eviction_models import RefLRU, RefS3FIFO, RefSieve, RefWTinyLFU


KEYS = st.sampled_from(["a", "b", "c", "d", "e", "f", "g"])
VALUES = st.integers(-5, 5)
# Near (1-30 s) and far (100-400 s: in 64-second lists of the index until the clock nears).
TTLS = (
    st.none() | st.integers(1, 30).map(float) | st.integers(100, 400).map(float) | st.just(math.inf)
)


class Model:
    """The spec, spelled out plainly: O(n) everywhere, no index, no cleverness."""

    def __init__(
        self, ttl: float | None, idle: float | None, max_size: int | None, ref: Any = RefLRU
    ) -> None:
        self.ttl, self.idle, self.max_size = ttl, idle, max_size
        self.now = 1000.0
        self.entries: dict[str, list[Any]] = {}  # key -> [value, hard, soft]
        self.ref = ref(max_size if max_size is not None else 10**9)  # the eviction order
        self.events: list[tuple[str, Any, RemovalCause]] = []

    def expires(self, key: str) -> float:
        _, hard, soft = self.entries[key]
        return float(min(hard, soft))

    def drop(self, key: str, cause: RemovalCause) -> None:
        self.events.append((key, self.entries.pop(key)[0], cause))
        self.ref.remove(key)

    def live(self, key: str) -> list[Any] | None:
        if key in self.entries and self.expires(key) <= self.now:
            self.drop(key, RemovalCause.EXPIRED)
        return self.entries.get(key)

    def use(self, key: str) -> None:
        if self.idle is not None:
            self.entries[key][2] = self.now + self.idle
        self.ref.use(key)

    def expired_in_order(self) -> list[str]:
        expired = [k for k in self.entries if self.expires(k) <= self.now]
        return sorted(expired, key=lambda k: (self.expires(k), k))

    def write(self, key: str, value: Any, hard: float) -> None:
        if key in self.entries:
            old = self.entries[key]
            if self.expires(key) <= self.now:
                self.drop(key, RemovalCause.EXPIRED)
            else:
                self.events.append((key, old[0], RemovalCause.REPLACED))
        soft = math.inf if self.idle is None else self.now + self.idle
        self.entries[key] = [value, hard, soft]
        self.ref.add(key)
        for stale in self.expired_in_order()[:2]:
            self.drop(stale, RemovalCause.EXPIRED)
        while (victim := self.ref.victim()) is not None:
            expired = self.expired_in_order()
            if expired:  # expired entries go first, as in the store
                self.drop(expired[0], RemovalCause.EXPIRED)
            else:
                self.drop(victim, RemovalCause.EVICTED)

    def hard(self, key: str, ttl: float | None, keep_ttl: bool = False) -> float:
        if keep_ttl and ttl is None and key in self.entries:
            return float(self.entries[key][1])
        if ttl is not None:
            return self.now + ttl
        return self.now + (self.ttl if self.ttl is not None else math.inf)


class StoreMachine(RuleBasedStateMachine):
    TTL: float | None = 20.0
    IDLE: float | None = None
    MAX_SIZE: int | None = 4
    POLICY: Any = LRU
    REF: Any = RefLRU

    def __init__(self) -> None:
        super().__init__()
        self.model = Model(self.TTL, self.IDLE, self.MAX_SIZE, self.REF)
        self.clock = ManualClock(self.model.now)
        self.events: list[tuple[str, Any, RemovalCause]] = []
        policies: list[ExpiryPolicy] = []
        if self.TTL is not None:
            policies.append(TTL(self.TTL))
        if self.IDLE is not None:
            policies.append(Idle(self.IDLE))
        self.store = MemoryStore(
            expiry=tuple(policies),
            eviction=None if self.MAX_SIZE is None else self.POLICY(self.MAX_SIZE),
            clock=self.clock,
            on_remove=lambda k, v, c: self.events.append((k, v, c)),
        ).sync

    @rule(seconds=st.integers(0, 12) | st.sampled_from([64, 150]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.model.now += seconds

    @rule(key=KEYS, value=VALUES, ttl=TTLS, keep_ttl=st.booleans())
    def set(self, key: str, value: int, ttl: float | None, keep_ttl: bool) -> None:
        if keep_ttl and ttl is not None:  # a contradiction: refused, nothing changes
            with pytest.raises(ValueError, match="keep_ttl"):
                self.store.set(key, value, ttl=ttl, keep_ttl=keep_ttl)
            return
        live = self.model.live(key) is not None
        self.model.write(key, value, self.model.hard(key, ttl, keep_ttl and live))
        self.store.set(key, value, ttl=ttl, keep_ttl=keep_ttl)

    @rule(key=KEYS, value=VALUES, ttl=TTLS)
    def add(self, key: str, value: int, ttl: float | None) -> None:
        expected = self.model.live(key) is None
        if expected:
            self.model.write(key, value, self.model.hard(key, ttl))
        assert self.store.add(key, value, ttl=ttl) is expected

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        entry = self.model.live(key)
        if entry is not None:
            self.model.use(key)
        assert self.store.get(key, "missing") == ("missing" if entry is None else entry[0])

    @rule(keys=st.lists(KEYS, max_size=3, unique=True))
    def get_many(self, keys: list[str]) -> None:
        expected = {}
        for key in keys:
            entry = self.model.live(key)
            if entry is not None:
                self.model.use(key)
                expected[key] = entry[0]
        assert self.store.get_many(keys) == expected

    @rule(key=KEYS, delta=st.integers(-3, 3))
    def incr(self, key: str, delta: int) -> None:
        entry = self.model.live(key)
        value = delta if entry is None else entry[0] + delta
        self.model.write(key, value, self.model.hard(key, None, keep_ttl=entry is not None))
        assert self.store.incr(key, delta) == value

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        entry = self.model.live(key)
        if entry is not None:
            self.model.drop(key, RemovalCause.EXPLICIT)
        assert self.store.delete(key) is (entry is not None)

    @rule(key=KEYS)
    def pop(self, key: str) -> None:
        entry = self.model.live(key)
        if entry is not None:
            self.model.drop(key, RemovalCause.EXPLICIT)
        assert self.store.pop(key) == (None if entry is None else entry[0])

    @rule(key=KEYS)
    def touch(self, key: str) -> None:
        entry = self.model.live(key)
        if entry is not None:
            self.model.use(key)
        assert self.store.touch(key) is (entry is not None)

    @rule(key=KEYS)
    def has_and_ttl(self, key: str) -> None:
        live = self.model.live(key) is not None
        assert self.store.has(key) is live
        expected = self.model.expires(key) - self.model.now if live else None
        assert self.store.ttl(key) == expected

    @rule(key=KEYS, seconds=st.integers(1, 30))
    def expire(self, key: str, seconds: int) -> None:
        entry = self.model.live(key)
        if entry is not None:
            entry[1] = self.model.now + seconds
        assert self.store.expire(key, seconds) is (entry is not None)

    @rule(key=KEYS)
    def persist(self, key: str) -> None:
        entry = self.model.live(key)
        expected = entry is not None and entry[1] != math.inf
        if entry is not None:
            entry[1] = math.inf
        assert self.store.persist(key) is expected

    @precondition(lambda self: self.model.entries)
    @rule()
    def purge_expired(self) -> None:
        expired = self.model.expired_in_order()
        for key in expired:
            self.model.drop(key, RemovalCause.EXPIRED)
        assert self.store.purge_expired() == len(expired)

    @invariant()
    def index_is_consistent(self) -> None:
        self.store._check_invariants()

    @invariant()
    def same_events(self) -> None:
        assert self.events == self.model.events

    @invariant()
    def same_size(self) -> None:
        live = [k for k in self.model.entries if self.model.expires(k) > self.model.now]
        assert len(self.store) == len(live)
        assert sorted(self.store.keys()) == sorted(live)
        if self.MAX_SIZE is not None:
            assert len(self.store._data) <= self.MAX_SIZE


class IdleMachine(StoreMachine):
    TTL = 25.0
    IDLE = 6.0
    MAX_SIZE = 4


class UnboundedIdleOnlyMachine(StoreMachine):
    TTL = None
    IDLE = 8.0
    MAX_SIZE = None


class PlainMachine(StoreMachine):
    TTL = None
    IDLE = None
    MAX_SIZE = None


_settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestTTLWithLRU = StoreMachine.TestCase
TestTTLWithLRU.settings = _settings
TestIdleWithLRU = IdleMachine.TestCase
TestIdleWithLRU.settings = _settings
TestIdleOnly = UnboundedIdleOnlyMachine.TestCase
TestIdleOnly.settings = _settings
TestPlain = PlainMachine.TestCase
TestPlain.settings = _settings


class SieveMachine(StoreMachine):
    POLICY, REF = SIEVE, RefSieve


class SieveIdleMachine(IdleMachine):
    POLICY, REF = SIEVE, RefSieve


class S3FIFOMachine(StoreMachine):
    POLICY, REF = S3FIFO, RefS3FIFO


class S3FIFOIdleMachine(IdleMachine):
    POLICY, REF = S3FIFO, RefS3FIFO


class WTinyLFUMachine(StoreMachine):
    POLICY, REF = WTinyLFU, RefWTinyLFU


class WTinyLFUIdleMachine(IdleMachine):
    POLICY, REF = WTinyLFU, RefWTinyLFU


TestSieve = SieveMachine.TestCase
TestSieve.settings = _settings
TestSieveIdle = SieveIdleMachine.TestCase
TestSieveIdle.settings = _settings
TestS3FIFO = S3FIFOMachine.TestCase
TestS3FIFO.settings = _settings
TestS3FIFOIdle = S3FIFOIdleMachine.TestCase
TestS3FIFOIdle.settings = _settings
TestWTinyLFU = WTinyLFUMachine.TestCase
TestWTinyLFU.settings = _settings
TestWTinyLFUIdle = WTinyLFUIdleMachine.TestCase
TestWTinyLFUIdle.settings = _settings
