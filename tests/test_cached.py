"""The cached decorator: keys, single-flight, methods, sync functions, helpers."""

from __future__ import annotations

import re

from typing import Any

import anyio
import pytest

from lapse import MemoryStore, cached
from lapse._cached import default_key


pytestmark = pytest.mark.anyio


async def test_calls_share_by_arguments(store: MemoryStore) -> None:
    """Equal calls (positional, keyword, defaulted) share one entry; different calls do not."""
    calls: list[tuple[int, str]] = []

    @cached(store, ttl=60)
    async def lookup(user_id: int, field: str = "name") -> str:
        calls.append((user_id, field))
        return f"{user_id}:{field}"

    assert await lookup(1) == "1:name"
    assert await lookup(user_id=1) == "1:name"
    assert await lookup(1, "name") == "1:name"
    assert await lookup(1, field="name") == "1:name"
    assert await lookup(2) == "2:name"
    assert await lookup(1, "email") == "1:email"
    assert calls == [(1, "name"), (2, "name"), (1, "email")]
    assert lookup.key(1) == lookup.key(user_id=1, field="name")
    name = f"{__name__}.test_calls_share_by_arguments.<locals>.lookup"
    # A second function object of one name (this test runs on asyncio, then trio) gets #2.
    assert re.fullmatch(rf"{re.escape(name)}(#\d+)?\(user_id=1, field='name'\)", lookup.key(1))
    assert await store.ttl(lookup.key(2)) == 60
    assert lookup.__name__ == "lookup"


async def test_invalidate_and_key(store: MemoryStore) -> None:
    """invalidate removes one call's entry; the next call runs the function again."""
    runs = 0

    @cached(store)
    async def compute(x: int) -> int:
        nonlocal runs
        runs += 1
        return x * 10

    assert await compute(3) == 30
    assert await compute.invalidate(3) is True
    assert await compute.invalidate(3) is False
    assert await compute(3) == 30
    assert runs == 2


async def test_stampede_through_the_decorator(store: MemoryStore) -> None:
    """1000 concurrent calls with the same arguments run the function once."""
    runs = 0
    gate = anyio.Event()

    @cached(store)
    async def slow(x: int) -> int:
        nonlocal runs
        runs += 1
        await gate.wait()
        return x

    async with anyio.create_task_group() as tg:
        for _ in range(1000):
            tg.start_soon(slow, 7)
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert runs == 1


async def test_methods_on_two_instances_do_not_mix(store: MemoryStore) -> None:
    """Each instance has its own entries, self need not be hashable, and helpers bind."""

    class Repo:
        __hash__ = None  # type: ignore[assignment]

        def __init__(self, prefix: str) -> None:
            self.prefix = prefix
            self.runs = 0

        @cached(store)
        async def name(self, user_id: int) -> str:
            self.runs += 1
            return f"{self.prefix}{user_id}"

    a, b = Repo("a"), Repo("b")
    assert await a.name(1) == "a1"
    assert await b.name(1) == "b1"
    assert await a.name(1) == "a1"
    assert (a.runs, b.runs) == (1, 1)
    assert a.name.key(1) != b.name.key(1)
    assert a.name.key(1) == Repo.name.key(a, 1)
    assert await a.name.invalidate(1) is True
    assert await a.name(1) == "a1"
    assert a.runs == 2


async def test_instance_keys_are_never_reused(store: MemoryStore) -> None:
    """A new object at a dead object's address does not inherit its entries."""

    class Thing:
        @cached(store)
        async def value(self) -> int:
            return id(self)

    keys = set()
    for _ in range(50):
        thing = Thing()
        keys.add(Thing.value.key(thing))
        del thing
    assert len(keys) == 50


async def test_custom_key_and_cache_none(store: MemoryStore) -> None:
    """key= gets the call's arguments; cache_none=False asks again after a None."""
    runs = 0

    @cached(store, key=lambda user_id, **_: f"user:{user_id}", cache_none=False)
    async def find(user_id: int, *, verbose: bool = False) -> str | None:
        nonlocal runs
        runs += 1
        return None if user_id == 0 else f"u{user_id}"

    assert await find(5, verbose=True) == "u5"
    assert await store.get("user:5") == "u5"
    assert await find(0) is None
    assert await find(0) is None
    assert runs == 3
    assert not await store.has("user:0")


async def test_none_is_cached_by_default(store: MemoryStore) -> None:
    """By default a None result is stored like any other."""
    runs = 0

    @cached(store)
    async def nothing() -> None:
        nonlocal runs
        runs += 1

    await nothing()
    await nothing()
    assert runs == 1


def test_sync_function_with_a_memory_store(store: MemoryStore) -> None:
    """A plain function is cached through store.sync, with sync helpers."""
    runs = 0

    @cached(store, ttl=10)
    def square(x: int) -> int:
        nonlocal runs
        runs += 1
        return x * x

    assert square(4) == 16
    assert square(x=4) == 16
    assert runs == 1
    assert store.sync.get(square.key(4)) == 16
    assert square.invalidate(4) is True
    assert square(4) == 16
    assert runs == 2


def test_sync_function_with_an_async_only_store() -> None:
    """A plain function and a store with no sync face: TypeError at decoration."""

    class AsyncOnly:
        async def get(self, key: str, default: Any = None) -> Any:
            return default

        async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
            pass

        async def delete(self, key: str) -> bool:
            return False

    with pytest.raises(TypeError, match="not async"):

        @cached(AsyncOnly())
        def f() -> int:
            return 1


def test_decorator_arguments_are_checked(store: MemoryStore) -> None:
    """Bad ttl, refresh_after or key are refused when decorating."""
    with pytest.raises(ValueError, match="ttl"):
        cached(store, ttl=0)
    with pytest.raises(ValueError, match="refresh_after"):
        cached(store, refresh_after=-1)
    with pytest.raises(TypeError, match="key"):
        cached(store, key="k")  # type: ignore[arg-type]

    @cached(store, key=lambda x: x)  # returns an int: refused at call time
    def f(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="not a str"):
        f(1)


def test_default_key_details() -> None:
    """Keyword-variadic arguments are sorted, and long keys are hashed."""

    def f(*args: int, **kwargs: int) -> None: ...

    make = default_key(f)
    assert make(1, b=2, a=1) == make(1, a=1, b=2)
    assert make(1, a=1, b=2).endswith("f(args=(1,), a=1, b=2)")
    long = make(*range(200))
    assert "#sha256:" in long
    assert len(long) < 200


def test_wrong_calls_raise_like_the_function() -> None:
    """A call the function itself would refuse is refused with TypeError when keyed."""

    def f(a: int, b: int = 2, *, c: int = 3) -> None: ...

    make = default_key(f)
    assert make(1) == make(a=1, b=2, c=3)
    for args, kwargs in [((1, 2, 3), {}), ((), {"z": 1}), ((1,), {"a": 1}), ((), {})]:
        with pytest.raises(TypeError):
            make(*args, **kwargs)


async def test_async_function_with_a_minimal_store() -> None:
    """@cached works on a store that implements only get, set and delete."""

    class DictStore:
        def __init__(self) -> None:
            self.data: dict[str, Any] = {}

        async def get(self, key: str, default: Any = None) -> Any:
            return self.data.get(key, default)

        async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
            self.data[key] = value

        async def delete(self, key: str) -> bool:
            return self.data.pop(key, None) is not None

    store = DictStore()
    runs = 0

    @cached(store, ttl=5)
    async def double(x: int) -> int:
        nonlocal runs
        runs += 1
        return 2 * x

    assert [await double(2), await double(2), await double(x=2)] == [4, 4, 4]
    assert runs == 1
    assert store.data == {double.key(2): 4}
    assert await double.invalidate(2)
    assert store.data == {}


async def test_ignore_self_shares_a_method_between_instances() -> None:
    """A repository made per request (FastAPI's Depends): with ignore=("self",), five
    instances make one database call; without it, self is part of the key, five calls."""
    store = MemoryStore()
    calls: list[int] = []

    class Repository:
        @cached(store, ignore=("self",))
        async def find(self, user_id: int) -> dict[str, int]:
            calls.append(user_id)
            return {"id": user_id}

        @cached(store)
        async def find_per_instance(self, user_id: int) -> dict[str, int]:
            calls.append(-user_id)
            return {"id": user_id}

    for _ in range(5):
        assert await Repository().find(1) == {"id": 1}
    assert calls == [1]
    assert re.fullmatch(r".*\.Repository\.find(#\d+)?\(user_id=1\)", Repository().find.key(1))
    assert await Repository().find.invalidate(1) is True
    assert await Repository().find(1) == {"id": 1}
    assert calls == [1, 1]
    for _ in range(5):
        await Repository().find_per_instance(2)
    assert calls.count(-2) == 5


def test_ignore_other_arguments_and_its_mistakes() -> None:
    """ignore leaves any named parameter out (a connection); a name the function does not
    have, or ignore with key=, is refused at decoration."""
    store = MemoryStore()
    loads: list[str] = []

    @cached(store, ignore="db")
    def lookup(db: object, name: str) -> str:
        loads.append(name)
        return name.upper()

    assert lookup(object(), "a") == "A"
    assert lookup(object(), "a") == "A"
    assert loads == ["a"]
    with pytest.raises(TypeError, match=r"ignore names \['sef'\]"):

        @cached(store, ignore=("sef",))
        def typo(self: object) -> None: ...

    with pytest.raises(TypeError, match="key="):
        cached(store, key=lambda *a: "k", ignore=("x",))
