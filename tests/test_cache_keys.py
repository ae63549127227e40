"""Default keys of @cached: by value, never by address; one function object, one namespace."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import gc
import os
import subprocess
import sys
import textwrap

from typing import Any, ClassVar

import attrs
import pytest

from lapse import MemoryStore, cached
from lapse._cached import canonical


pytestmark = pytest.mark.anyio


class Query:
    """A plain object: the default repr, its address."""

    def __init__(self, sql: str) -> None:
        self.sql = sql


class SlotPoint:
    """Default repr and no __weakref__: nothing but its address identifies it."""

    __slots__ = ("x",)

    def __init__(self, x: int) -> None:
        self.x = x

    def describe(self) -> str:
        return f"x={self.x}"


@dataclasses.dataclass(slots=True, frozen=True)
class Point:
    x: int

    def describe(self) -> str:
        return f"x={self.x}"


class Color(enum.Enum):
    RED = 1
    BLUE = 2


@attrs.frozen
class Span:
    start: int
    end: int


async def test_objects_with_the_default_repr_never_share_results(store: MemoryStore) -> None:
    """A new object at a dead object's address never gets its result."""

    @cached(store, ttl=60)
    async def execute(query: Query) -> str:
        return f"rows of {query.sql}"

    for i in range(20):  # addresses are reused as the objects die
        query = Query(f"select {i}")
        assert await execute(query) == f"rows of select {i}"
        del query
        gc.collect()


def test_a_slotted_object_with_the_default_repr_is_refused(store: MemoryStore) -> None:
    """An object known only by its address and not weakly referable: TypeError."""
    describe = cached(store)(SlotPoint.describe)
    with pytest.raises(TypeError, match=r"pass key=\.\.\."):
        describe(SlotPoint(0))
    assert list(store.sync.keys()) == []


def test_value_objects_are_keyed_by_value(store: MemoryStore) -> None:
    """Slotted dataclasses, enums, attrs classes, dates: by their value."""

    class Shapes:
        calls = 0

        @cached(store)
        def describe(self, point: Point) -> str:
            Shapes.calls += 1
            return point.describe()

    shapes = Shapes()
    assert [shapes.describe(Point(x)) for x in range(5)] == [f"x={x}" for x in range(5)]
    assert shapes.describe(Point(3)) == "x=3"  # an equal point: the same entry
    assert Shapes.calls == 5
    day = dt.date(2026, 12, 2)
    assert canonical(Color.RED) != canonical(Color.BLUE)
    assert canonical(Span(1, 2)) == canonical(Span(1, 2)) != canonical(Span(1, 3))
    assert canonical(day) == canonical(dt.date(2026, 12, 2))
    assert canonical(1) != canonical(True) != canonical(1.0)


def test_equal_dicts_and_sets_give_one_key() -> None:
    """Insertion order and hash seed do not change a key."""
    assert canonical({"a": 1, "b": [1, 2]}) == canonical({"b": [1, 2], "a": 1})
    assert canonical({3, 1, 2}) == canonical({2, 3, 1})
    assert canonical(frozenset({"x", "y"})) != canonical({"x", "y"})
    assert canonical((1, [2, {"k": {4, 5}}])) == canonical((1, [2, {"k": {5, 4}}]))


def test_keys_are_the_same_in_every_process() -> None:
    """The key of a call is stable across processes (hash seeds differ)."""
    script = textwrap.dedent(
        """
        from lapse import MemoryStore, cached
        store = MemoryStore()
        @cached(store)
        def report(tags, options):
            return 0
        print(report.key({"b", "a", "c", "d"}, {"z": 1, "y": frozenset({3, 2, 1})}))
        """
    )
    keys = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(  # noqa: S603 -- our own interpreter and script
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        keys.add(out.stdout.strip())
    assert len(keys) == 1
    assert "report(tags=set({'a', 'b', 'c', 'd'})" in keys.pop()


async def test_closures_from_one_factory_do_not_share(store: MemoryStore) -> None:
    """Make_adder(1) and make_adder(100) are two functions, two namespaces."""

    def make_adder(n: int) -> Any:
        @cached(store)
        async def add(x: int) -> int:
            return x + n

        return add

    add_one, add_hundred = make_adder(1), make_adder(100)
    assert await add_one(1) == 2
    assert await add_hundred(1) == 101
    assert add_one.key(1) != add_hundred.key(1)


def test_separately_decorated_lambdas_do_not_share(store: MemoryStore) -> None:
    """Two lambdas have one qualified name, and still two namespaces."""
    double = cached(store)(lambda x: x * 2)
    square = cached(store)(lambda x: x * x)
    assert double(3) == 6
    assert square(3) == 9


def test_sync_face_itself_is_a_store_for_plain_functions(store: MemoryStore) -> None:
    """`@cached(store.sync)` takes a plain function, refuses an async one."""
    calls = 0

    @cached(store.sync, ttl=10)
    def slow(x: int) -> int:
        nonlocal calls
        calls += 1
        return x * 2

    assert slow(2) == 4
    assert slow(2) == 4
    assert calls == 1
    with pytest.raises(TypeError, match="not an async store"):

        @cached(store.sync)
        async def nope(x: int) -> int:
            return x


def test_static_and_class_methods(store: MemoryStore) -> None:
    """`@cached` over @staticmethod and @classmethod works on class and instance."""

    class Rates:
        base: ClassVar[int] = 10
        calls: ClassVar[int] = 0

        @cached(store)
        @staticmethod
        def double(x: int) -> int:
            Rates.calls += 1
            return x * 2

        @cached(store)
        @classmethod
        def scaled(cls, x: int) -> int:
            Rates.calls += 1
            return cls.base * x

    class Cheap(Rates):
        base = 1

    # mypy applies @staticmethod and @classmethod itself, before any decorator above
    # them, so it sees the plain function here: the ignores are mypy's, not lapse's.
    assert Rates().double(1) == 2  # type: ignore[call-arg]
    assert Rates.double(1) == 2
    assert Rates.scaled(2) == 20  # type: ignore[call-arg, arg-type]
    assert Rates().scaled(2) == 20
    assert Cheap.scaled(2) == 2  # type: ignore[call-arg, arg-type]
    assert Rates.calls == 3
    assert Rates.scaled.key(2) != Cheap.scaled.key(2)  # type: ignore[call-arg, arg-type]


async def test_partials_and_callable_instances(store: MemoryStore) -> None:
    """Functools.partial objects and callable instances can be cached."""

    def power(base: int, exponent: int) -> int:
        return int(base**exponent)

    square = cached(store)(functools.partial(power, exponent=2))
    cube = cached(store)(functools.partial(power, exponent=3))
    assert square(3) == 9
    assert cube(3) == 27

    class Fetch:
        def __init__(self) -> None:
            self.calls = 0

        async def __call__(self, item: str) -> str:
            self.calls += 1
            return item.upper()

    fetch = Fetch()
    cached_fetch = cached(store)(fetch)
    assert await cached_fetch("a") == "A"
    assert await cached_fetch("a") == "A"
    assert fetch.calls == 1
    assert cached_fetch.__name__ == "__call__"
