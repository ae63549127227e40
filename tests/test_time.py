"""Real time: the default clock follows freezegun, and a custom policy composes."""

from __future__ import annotations

import math

from datetime import datetime, time, timedelta

import pytest

from freezegun import freeze_time

from lapse import TTL, Idle, MemoryStore


pytestmark = pytest.mark.anyio

STORE_BUILT_BEFORE_FREEZING = MemoryStore(expiry=TTL(60))


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"  # freezegun's real_asyncio keeps asyncio's own clock running


async def test_default_clock_follows_freezegun() -> None:
    """The default clock reads time.monotonic() at call time, so freezegun moves it."""
    store = STORE_BUILT_BEFORE_FREEZING
    with freeze_time("2026-01-01 12:00:00", real_asyncio=True) as frozen:
        await store.set("k", "v")
        frozen.tick(59)
        assert await store.get("k") == "v"
        assert await store.ttl("k") == pytest.approx(1)
        frozen.tick(1)
        assert await store.get("k") is None


class UntilMidnight:
    """Every entry expires at the next local midnight: a custom ExpiryPolicy."""

    def after_write(self, key: str, value: object) -> float:
        now = datetime.now()  # noqa: DTZ005 -- local midnight is the point
        midnight = datetime.combine(now.date() + timedelta(days=1), time())
        return (midnight - now).total_seconds()

    def after_use(self, key: str, value: object) -> float:
        return math.inf


async def test_custom_policy_composes_with_idle() -> None:
    """(UntilMidnight(), Idle(600)): use keeps an entry alive, but never past midnight."""
    with freeze_time("2026-03-01 23:30:00", real_asyncio=True) as frozen:
        store = MemoryStore(expiry=(UntilMidnight(), Idle(600)))
        await store.set("session", {"user": 1})
        frozen.tick(599)
        assert await store.get("session") == {"user": 1}
        frozen.tick(601)
        assert await store.get("session") is None  # idle for 601 s
        await store.set("session", {"user": 1})  # 23:50:00
        for _ in range(9):
            frozen.tick(60)
            assert await store.get("session") == {"user": 1}
        assert await store.ttl("session") == pytest.approx(60)  # midnight is nearer than idle
        frozen.tick(60)
        assert await store.get("session") is None  # midnight


async def test_policy_returning_nan_is_refused() -> None:
    """A policy that returns NaN raises ValueError and the store is unchanged."""

    class Broken(UntilMidnight):
        def after_write(self, key: str, value: object) -> float:
            return math.nan

    store = MemoryStore(expiry=Broken())
    with pytest.raises(ValueError, match="NaN"):
        await store.set("k", 1)
    assert len(store) == 0
