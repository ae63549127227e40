"""The shipped Store contract, run against MemoryStore in each configuration."""

from __future__ import annotations

import pytest

from lapse import LRU, TTL, Idle, MemoryStore
from lapse.testing import (
    AsyncFace,
    FullStoreContract,
    ManualClock,
    StoreContract,
    SyncStoreContract,
)


@pytest.mark.anyio
class TestMemoryStore(FullStoreContract):
    """The full contract: the one that RedisStore and a Redis Cluster run too."""

    @pytest.fixture(name="store", params=["plain", "lru"])
    def _store(self, request: pytest.FixtureRequest, clock: ManualClock) -> MemoryStore:
        if request.param == "lru":
            return MemoryStore(eviction=LRU(100), clock=clock)
        return MemoryStore(clock=clock)

    @pytest.fixture(name="advance")
    def _advance(self, clock: ManualClock) -> object:
        return clock.advance


@pytest.mark.anyio
class TestSyncMemoryStore(SyncStoreContract):
    """The same contract on ``MemoryStore(...).sync``, as RedisStore's sync face runs it."""

    @pytest.fixture(name="store", params=["plain", "lru"])
    def _store(self, request: pytest.FixtureRequest, clock: ManualClock) -> AsyncFace:
        eviction = LRU(100) if request.param == "lru" else None
        return AsyncFace(MemoryStore(eviction=eviction, clock=clock).sync)

    @pytest.fixture(name="advance")
    def _advance(self, clock: ManualClock) -> object:
        return clock.advance


@pytest.mark.anyio
class TestMemoryStoreWithPolicies(StoreContract):
    """The Store contract holds whatever the policies (an Idle deadline is never inf)."""

    @pytest.fixture(name="store")
    def _store(self, clock: ManualClock) -> MemoryStore:
        return MemoryStore(expiry=(TTL(10**12), Idle(10**12)), clock=clock)

    @pytest.fixture(name="advance")
    def _advance(self, clock: ManualClock) -> object:
        return clock.advance


@pytest.mark.anyio
class TestMinimalStore(StoreContract):
    """The contract holds for a third-party store with only get/set/delete."""

    @pytest.fixture(name="store")
    def _store(self, clock: ManualClock) -> object:
        class DictStore:
            """A Harpia-style store written against the protocol only."""

            def __init__(self) -> None:
                self._inner = MemoryStore(clock=clock)

            async def get(self, key: str, default: object = None) -> object:
                return await self._inner.get(key, default)

            async def set(self, key: str, value: object, *, ttl: float | None = None) -> None:
                await self._inner.set(key, value, ttl=ttl)

            async def delete(self, key: str) -> bool:
                return await self._inner.delete(key)

        return DictStore()

    @pytest.fixture(name="advance")
    def _advance(self, clock: ManualClock) -> object:
        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        return advance
