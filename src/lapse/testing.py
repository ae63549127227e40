"""Helpers for testing code that uses lapse, and stores that implement `lapse.Store`.

- `ManualClock` is a clock you move by hand: pass it as ``MemoryStore(clock=...)``.
- `StoreContract` is the test suite every `Store` must pass; subclass it in your own tests
  to check a store of your own. `FullStoreContract` adds the full store API, and
  `SyncStoreContract` runs it on a sync store, through `AsyncFace`.

This module does not import pytest; `StoreContract` is written for it all the same.
"""

from __future__ import annotations

import inspect
import math

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import attrs

from ._store import Store


@attrs.define
class ManualClock:
    """A clock that moves only when told to.

    ```python
    clock = ManualClock()
    store = MemoryStore(expiry=TTL(60), clock=clock)
    clock.advance(60)   # every entry written before is now expired
    ```

    Attributes:
        now: The current reading, in seconds.
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


async def _refused(call: Callable[[], Awaitable[Any]], error: type[Exception], what: str) -> None:
    """Raise `AssertionError` unless ``await call()`` raises *error*; *what* was accepted."""
    try:
        await call()
    except error:
        return
    msg = f"{what} was accepted"
    raise AssertionError(msg)


async def _advance(advance: Advance, seconds: float) -> None:
    result = advance(seconds)
    if result is not None:
        await result


class StoreContract:
    """The behaviour every `lapse.Store` must have, as pytest tests.

    Subclass it in a test module, mark the class for your async test plugin, and provide
    two fixtures: ``store``, a fresh, empty store whose default lifetime is unbounded, and
    ``advance``, a callable that moves that store's time forward by some seconds (it may
    be async):

    ```python
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
    ```

    Only ``get``, ``set`` and ``delete`` are used, with JSON-like values, so a store that
    serializes values passes too.
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


class FullStoreContract(StoreContract):
    """`StoreContract` plus every method of the full store API (`lapse.FullStore`), as
    `MemoryStore` and `lapse.redis.RedisStore` have it: one statement of each rule,
    run on every backend.

    The fixtures are those of `StoreContract`; the store must start empty, with no
    default lifetime, and may serialize values (they are JSON-like here).
    """

    async def test_has_counts_no_use_and_sees_no_expired_key(
        self, store: Any, advance: Advance
    ) -> None:
        """has() is True for a live key, False for a missing or expired one."""
        await store.set("k", 1, ttl=10)
        assert await store.has("k") is True
        assert await store.has("missing") is False
        await _advance(advance, 10)
        assert await store.has("k") is False

    async def test_get_many_returns_the_live_keys_only(self, store: Any, advance: Advance) -> None:
        """get_many() maps each live key to its value and leaves out the others."""
        await store.set_many({"a": 1, "b": [2]})
        await store.set("short", 3, ttl=1)
        await _advance(advance, 1)
        assert await store.get_many(["a", "b", "short", "missing"]) == {"a": 1, "b": [2]}
        assert await store.get_many([]) == {}

    async def test_set_many_writes_every_item_with_one_ttl(
        self, store: Any, advance: Advance
    ) -> None:
        """set_many() writes every item; its ttl applies to each."""
        await store.set_many({"a": 1, "b": 2}, ttl=10)
        assert await store.get_many(["a", "b"]) == {"a": 1, "b": 2}
        await _advance(advance, 10)
        assert await store.get_many(["a", "b"]) == {}

    async def test_delete_many_counts_what_was_there(self, store: Any) -> None:
        """delete_many() removes the keys and returns how many were live."""
        await store.set_many({"a": 1, "b": 2})
        assert await store.delete_many(["a", "b", "missing"]) == 2
        assert await store.get_many(["a", "b"]) == {}
        assert await store.delete_many([]) == 0

    async def test_add_writes_only_a_missing_key(self, store: Any, advance: Advance) -> None:
        """add() writes and returns True only if the key is missing (or expired)."""
        assert await store.add("k", 1, ttl=5) is True
        assert await store.add("k", 2) is False
        assert await store.get("k") == 1
        await _advance(advance, 5)
        assert await store.add("k", 3) is True
        assert await store.get("k") == 3

    async def test_pop_removes_and_returns(self, store: Any) -> None:
        """pop() returns the value and removes the key; the default for a missing key."""
        await store.set("k", {"v": 1})
        assert await store.pop("k") == {"v": 1}
        assert await store.pop("k") is None
        assert await store.pop("k", "gone") == "gone"

    async def test_incr_counts_and_keeps_the_deadline(self, store: Any, advance: Advance) -> None:
        """incr() starts a missing key at 0, adds delta, keeps the key's deadline, and
        refuses a value that is not an int (the value unchanged)."""
        assert await store.incr("n") == 1
        assert await store.incr("n", 41) == 42
        assert await store.incr("n", -2) == 40
        await store.set("t", 5, ttl=10)
        assert await store.incr("t") == 6
        await _advance(advance, 10)
        assert await store.get("t") is None
        await store.set("s", "text")
        await _refused(lambda: store.incr("s"), TypeError, "incr() of a str")
        assert await store.get("s") == "text"
        await _refused(lambda: store.incr("n", 1.5), TypeError, "a float delta")

    async def test_ttl_expire_persist(self, store: Any, advance: Advance) -> None:
        """ttl() is the seconds left (inf: none; None: missing); expire() sets a new
        deadline (inf removes it) and persist() removes it, each False for a missing key."""
        await store.set("k", 1, ttl=math.inf)
        assert await store.ttl("k") == math.inf
        assert await store.ttl("missing") is None
        assert await store.expire("k", 10) is True
        left = await store.ttl("k")
        assert left is not None
        assert 9 < left <= 10
        assert await store.expire("missing", 10) is False
        assert await store.persist("k") is True
        assert await store.persist("k") is False
        assert await store.ttl("k") == math.inf
        assert await store.expire("k", timedelta(seconds=5)) is True
        assert await store.expire("k", math.inf) is True
        await _advance(advance, 10)
        assert await store.get("k") == 1
        await store.expire("k", 1)
        await _advance(advance, 1)
        assert await store.get("k") is None
        assert await store.persist("k") is False

    async def test_keep_ttl_keeps_an_existing_deadline(self, store: Any, advance: Advance) -> None:
        """set(keep_ttl=True) replaces the value and keeps the deadline; with a ttl too,
        it raises ValueError and writes nothing."""
        await store.set("k", "a", ttl=10)
        await store.set("k", "b", keep_ttl=True)
        await _advance(advance, 5)
        assert await store.get("k") == "b"
        await _refused(
            lambda: store.set("k", "c", ttl=5, keep_ttl=True), ValueError, "ttl with keep_ttl"
        )
        assert await store.get("k") == "b"
        await _advance(advance, 5)
        assert await store.get("k") is None

    async def test_touch(self, store: Any) -> None:
        """touch() is True for a live key, False for a missing one."""
        await store.set("k", 1)
        assert await store.touch("k") is True
        assert await store.touch("missing") is False

    async def test_update_is_read_modify_write(self, store: Any, advance: Advance) -> None:
        """update() gives fn the value (None if missing), stores and returns fn's result,
        deletes on None, and takes a ttl (a number or a function of the new value)."""
        assert await store.update("n", lambda v: (v or 0) + 1) == 1
        assert await store.update("n", lambda v: v + 1) == 2
        assert await store.update("n", lambda v: None) is None
        assert await store.has("n") is False
        assert await store.update("t", lambda v: [1], ttl=10) == [1]
        assert await store.update("c", lambda v: {"ttl": 3}, ttl=lambda new: new["ttl"]) == {
            "ttl": 3
        }
        await _advance(advance, 3)
        assert await store.get("c") is None
        assert await store.get("t") == [1]
        await _advance(advance, 7)
        assert await store.get("t") is None

    async def test_keys_and_clear(self, store: Any) -> None:
        """keys() yields every live key once; clear() removes them all."""
        await store.set_many({"a": 1, "b": 2, "c": 3})
        assert sorted([key async for key in store.keys()]) == ["a", "b", "c"]
        await store.clear()
        assert [key async for key in store.keys()] == []
        assert await store.get("a") is None

    async def test_get_or_set_loads_once(self, store: Any) -> None:
        """get_or_set() returns the live value, or stores and returns the factory's."""
        calls = []

        def factory() -> list[int]:
            calls.append(1)
            return [len(calls)]

        assert await store.get_or_set("k", factory) == [1]
        assert await store.get_or_set("k", factory) == [1]
        assert await store.get("k") == [1]
        assert len(calls) == 1

    async def test_stats_count_reads_and_writes(self, store: Any) -> None:
        """stats() counts hits, misses, sets and deletes made through this object."""
        before = store.stats()
        await store.set("k", 1)
        await store.get("k")
        await store.get("missing")
        await store.delete("k")
        after = store.stats()
        assert after.hits - before.hits == 1
        assert after.misses - before.misses == 1
        assert after.sets - before.sets == 1
        assert after.deletes - before.deletes == 1

    async def test_bad_arguments_change_nothing(self, store: Any) -> None:
        """Every method refuses a non-str key, and a bad ttl, with nothing written."""
        await store.set("k", "old")
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: store.has(1),
            lambda: store.add(1, "v"),
            lambda: store.incr(1),
            lambda: store.pop(1),
            lambda: store.ttl(1),
            lambda: store.expire(1, 10),
            lambda: store.get_many([1]),
            lambda: store.set_many({1: "v"}),
            lambda: store.delete_many([1]),
            lambda: store.update(1, lambda v: v),
        ]
        for call in calls:
            await _refused(call, TypeError, "a non-str key")
        for ttl in (0, -1, math.nan):
            bad_calls: list[Callable[[], Awaitable[Any]]] = [
                lambda ttl=ttl: store.expire("k", ttl),  # type: ignore[misc]
                lambda ttl=ttl: store.add("new", 1, ttl=ttl),  # type: ignore[misc]
                lambda ttl=ttl: store.set_many({"k": "new"}, ttl=ttl),  # type: ignore[misc]
            ]
            for bad in bad_calls:
                await _refused(bad, ValueError, f"ttl={ttl!r}")
        assert await store.get("k") == "old"
        assert await store.get("new") is None


class AsyncFace:
    """A sync store (``MemoryStore(...).sync``, ``RedisStore(...).sync`` or your own) seen
    through coroutines: each method call runs the sync method and returns its result
    from a coroutine, and ``keys()`` is an async iterator. So `SyncStoreContract` states
    each rule once, for both faces. Not a way to use a sync store from async code (it
    blocks the event loop for the whole call).
    """

    def __init__(self, sync_store: Any) -> None:
        self.sync_store = sync_store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.sync_store, name)
        if name == "stats" or not callable(attr):
            return attr
        if name == "keys":

            async def keys() -> AsyncIterator[str]:
                for key in attr():
                    yield key

            return keys

        async def call(*args: Any, **kwargs: Any) -> Any:
            return attr(*args, **kwargs)

        return call


_FULL_STORE_METHODS = (
    "get", "get_many", "get_or_set", "has", "ttl", "keys", "stats", "set", "set_many", "add",
    "incr", "update", "expire", "persist", "touch", "delete", "delete_many", "pop", "clear",
)  # fmt: skip


class SyncStoreContract(FullStoreContract):
    """`FullStoreContract` on the sync face of a store: the same rules, for
    ``MemoryStore(...).sync``, ``RedisStore(...).sync`` or a sync store of your own.

    Provide the fixtures of `StoreContract`, with ``store`` an `AsyncFace` of the sync
    store: ``return AsyncFace(MemoryStore(clock=clock).sync)``.
    """

    async def test_is_a_store(self, store: Any) -> None:
        """Every method of the full store API is there, as a plain (not async) method."""
        sync_store = store.sync_store
        for name in _FULL_STORE_METHODS:
            method = getattr(sync_store, name)
            assert callable(method), name
            assert not inspect.iscoroutinefunction(method), name
            assert not inspect.isasyncgenfunction(method), name


__all__ = [
    "Advance",
    "AsyncFace",
    "FullStoreContract",
    "ManualClock",
    "StoreContract",
    "SyncStoreContract",
]
