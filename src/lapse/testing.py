"""Helpers for testing code that uses lapse, and stores that implement `lapse.Store`.

- `ManualClock` is a clock you move by hand: pass it as ``MemoryStore(clock=...)``.
- `StoreContract` is the test suite every `Store` must pass; subclass it in your own tests
  to check a store of your own.

This module does not import pytest; `StoreContract` is written for it all the same.
"""

from __future__ import annotations

import math

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import attrs

from ._store import Store


@attrs.define
class ManualClock:
    """A clock that moves only when told to.

    ::

        clock = ManualClock()
        store = MemoryStore(expiry=TTL(60), clock=clock)
        clock.advance(60)   # every entry written before is now expired

    Attributes:
        now: The current reading, in seconds.

    Added in 0.1.
    """

    now: float = 0.0

    def __call__(self) -> float:
        """Return `now`."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by *seconds* (zero or more).

        Raises:
            ValueError: *seconds* is negative or NaN: a clock never goes back.
        """
        if not seconds >= 0:
            msg = f"a clock only moves forward; got {seconds!r}"
            raise ValueError(msg)
        self.now += seconds


Advance = Callable[[float], "Awaitable[None] | None"]
"""Moves the store's time forward by some seconds; may be a coroutine function."""


async def _advance(advance: Advance, seconds: float) -> None:
    result = advance(seconds)
    if result is not None:
        await result


class StoreContract:
    """The behaviour every `lapse.Store` must have, as pytest tests.

    Subclass it in a test module, mark the class for your async test plugin, and provide
    two fixtures: ``store``, a fresh, empty store whose default lifetime is unbounded, and
    ``advance``, a callable that moves that store's time forward by some seconds (it may
    be async)::

        @pytest.mark.anyio
        class TestMyStore(StoreContract):
            @pytest.fixture(name="clock")
            def _clock(self):
                return ManualClock()

            @pytest.fixture(name="store")
            def _store(self, clock):
                return MyStore(clock=clock)

            @pytest.fixture(name="advance")
            def _advance(self, clock):
                return clock.advance

    Only ``get``, ``set`` and ``delete`` are used, with JSON-like values, so a store that
    serializes values passes too.

    Added in 0.1.
    """

    async def test_is_a_store(self, store: Any) -> None:
        """The store satisfies the runtime-checkable `Store` protocol."""
        assert isinstance(store, Store)

    async def test_missing_key_gives_default(self, store: Store) -> None:
        """A key never written reads as None, or as the default given."""
        assert await store.get("missing") is None
        assert await store.get("missing", "fallback") == "fallback"

    async def test_set_then_get(self, store: Store) -> None:
        """A written value reads back equal."""
        value = {"user": 1, "roles": ["admin"], "name": "Alice"}
        await store.set("k", value)
        assert await store.get("k") == value

    async def test_set_replaces_value(self, store: Store) -> None:
        """A second set of the same key replaces the value."""
        await store.set("k", "one")
        await store.set("k", "two")
        assert await store.get("k") == "two"

    async def test_keys_are_distinct(self, store: Store) -> None:
        """Writing one key does not change another."""
        await store.set("a", 1)
        await store.set("b", 2)
        assert [await store.get("a"), await store.get("b")] == [1, 2]

    async def test_delete(self, store: Store) -> None:
        """delete removes a key and says whether it was there."""
        await store.set("k", "v")
        assert await store.delete("k") is True
        assert await store.get("k") is None
        assert await store.delete("k") is False

    async def test_ttl_expires_at_deadline(self, store: Store, advance: Advance) -> None:
        """An entry written with ttl=t is live just before t seconds and gone at t."""
        await store.set("k", "v", ttl=10)
        await _advance(advance, 9.5)
        assert await store.get("k") == "v"
        await _advance(advance, 0.5)
        assert await store.get("k") is None

    async def test_ttl_accepts_timedelta(self, store: Store, advance: Advance) -> None:
        """A timedelta ttl means the same as its seconds."""
        await store.set("k", "v", ttl=timedelta(seconds=10))
        await _advance(advance, 9.5)
        assert await store.get("k") == "v"
        await _advance(advance, 0.5)
        assert await store.get("k") is None

    async def test_set_replaces_deadline(self, store: Store, advance: Advance) -> None:
        """A new set gives the key the new deadline, as Redis SET does."""
        await store.set("k", "short", ttl=10)
        await store.set("k", "long", ttl=100)
        await _advance(advance, 50)
        assert await store.get("k") == "long"
        await store.set("k", "forever")
        await _advance(advance, 1000)
        assert await store.get("k") == "forever"

    async def test_infinite_ttl_never_expires(self, store: Store, advance: Advance) -> None:
        """ttl=math.inf keeps an entry for good."""
        await store.set("k", "v", ttl=math.inf)
        await _advance(advance, 10**9)
        assert await store.get("k") == "v"

    async def test_expired_key_is_missing(self, store: Store, advance: Advance) -> None:
        """An expired key reads as the default and deletes as absent."""
        await store.set("k", "v", ttl=1)
        await _advance(advance, 1)
        assert await store.get("k", "gone") == "gone"
        assert await store.delete("k") is False

    async def test_bad_ttl_changes_nothing(self, store: Store) -> None:
        """A zero, negative, NaN or non-numeric ttl raises and keeps the old value."""
        await store.set("k", "old")
        for ttl in (0, -1, math.nan, -math.inf):
            try:
                await store.set("k", "new", ttl=ttl)
            except ValueError:
                pass
            else:
                msg = f"ttl={ttl!r} was accepted"
                raise AssertionError(msg)
        bad_types: tuple[object, ...] = ("10", True, [1])
        for bad in bad_types:
            try:
                await store.set("k", "new", ttl=bad)  # type: ignore[arg-type]
            except TypeError:
                pass
            else:
                msg = f"ttl={bad!r} was accepted"
                raise AssertionError(msg)
        assert await store.get("k") == "old"

    async def test_non_str_key_raises(self, store: Store) -> None:
        """get, set and delete refuse a key that is not a str, and store nothing."""
        for key in (1, b"k", None, ("k",)):
            for call in (
                lambda key=key: store.get(key),
                lambda key=key: store.set(key, "v"),
                lambda key=key: store.delete(key),
            ):
                try:
                    await call()
                except TypeError:
                    pass
                else:
                    msg = f"key {key!r} was accepted"
                    raise AssertionError(msg)
        assert await store.get("1") is None


__all__ = ["Advance", "ManualClock", "StoreContract"]
