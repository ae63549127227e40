"""on_remove: every removal is reported once, with its cause, before the call returns."""

from __future__ import annotations

import logging

from typing import Any

import pytest

from lapse import LRU, TTL, MemoryStore, RemovalCause
from lapse.testing import ManualClock


pytestmark = pytest.mark.anyio

Event = tuple[str, Any, RemovalCause]


@pytest.fixture(name="events")
def _events() -> list[Event]:
    return []


@pytest.fixture(name="store")
def _store(clock: ManualClock, events: list[Event]) -> MemoryStore:
    return MemoryStore(
        expiry=TTL(10),
        eviction=LRU(3),
        clock=clock,
        on_remove=lambda key, value, cause: events.append((key, value, cause)),
    )


async def test_explicit_removals(store: MemoryStore, events: list[Event]) -> None:
    """delete, delete_many, pop and clear report EXPLICIT with the removed value."""
    await store.set_many({"a": 1, "b": 2, "c": 3})
    await store.delete("a")
    await store.pop("b")
    await store.delete_many(["c", "zz"])
    await store.set("d", 4)
    await store.clear()
    assert events == [
        ("a", 1, RemovalCause.EXPLICIT),
        ("b", 2, RemovalCause.EXPLICIT),
        ("c", 3, RemovalCause.EXPLICIT),
        ("d", 4, RemovalCause.EXPLICIT),
    ]
    assert store.stats().deletes == 4


async def test_replaced(store: MemoryStore, events: list[Event]) -> None:
    """set over a live key and incr report the old value as REPLACED; add does not replace."""
    await store.set("k", "old")
    await store.set("k", "new")
    await store.add("k", "ignored")
    await store.set("n", 1)
    await store.incr("n")
    assert events == [("k", "old", RemovalCause.REPLACED), ("n", 1, RemovalCause.REPLACED)]


async def test_expired_reported_by_read_write_purge_and_clear(clock: ManualClock) -> None:
    """Expired entries are reported as EXPIRED whichever path removes them."""
    events: list[Event] = []
    store = MemoryStore(expiry=TTL(10), clock=clock, on_remove=lambda *e: events.append(e))
    await store.set_many({"read": 1, "overwritten": 2, "p1": 3, "p2": 4, "p3": 5})
    clock.advance(10)
    assert await store.get("read") is None
    await store.set("overwritten", 20)  # the old entry expired: not a replacement
    assert await store.purge_expired() == 1  # the write purged p1 and p2
    await store.set("x", 1, ttl=1)
    clock.advance(1)
    await store.clear()
    assert [(k, c) for k, _, c in events] == [
        ("read", RemovalCause.EXPIRED),
        ("overwritten", RemovalCause.EXPIRED),
        ("p1", RemovalCause.EXPIRED),
        ("p2", RemovalCause.EXPIRED),
        ("p3", RemovalCause.EXPIRED),
        ("overwritten", RemovalCause.EXPLICIT),  # clear: live ones are explicit removals
        ("x", RemovalCause.EXPIRED),
    ]
    assert store.stats().expirations == 6


async def test_evicted(store: MemoryStore, events: list[Event]) -> None:
    """Going over the bound reports the least recently used entry as EVICTED."""
    await store.set_many({"a": 1, "b": 2, "c": 3})
    await store.set("d", 4)
    assert events == [("a", 1, RemovalCause.EVICTED)]


async def test_callback_runs_before_return_and_may_use_the_store(clock: ManualClock) -> None:
    """The callback runs before the operation returns, outside the lock: it can use the store."""
    seen: list[object] = []

    def on_remove(key: str, value: object, cause: RemovalCause) -> None:
        store.sync.set(f"tombstone:{key}", cause.value)
        seen.append(store.sync.get(key))

    store = MemoryStore(clock=clock, on_remove=on_remove)
    await store.set("k", 1)
    await store.delete("k")
    assert await store.get("tombstone:k") == "explicit"
    assert seen == [None]


async def test_failing_callback_is_logged_not_raised(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in on_remove is logged as a warning; the store and the caller go on."""

    def on_remove(key: str, value: object, cause: RemovalCause) -> None:
        raise RuntimeError(key)

    store = MemoryStore(clock=clock, on_remove=on_remove)
    await store.set_many({"a": 1, "b": 2})
    with caplog.at_level(logging.WARNING, logger="lapse"):
        await store.clear()
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.WARNING]
    assert "on_remove callback failed for 'a'" in caplog.records[0].getMessage()
    await store.set("c", 3)
    assert await store.get("c") == 3
