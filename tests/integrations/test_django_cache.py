"""CACHES BACKEND "lapse.django.cache.LapseCache": Django's own cache backend tests
(``BaseCacheTests``, from Django's source, unchanged) on a MemoryStore and on a real
redis-server; the few that test another backend's internals are left out, each with its
reason, below."""

from __future__ import annotations

import contextlib
import importlib
import itertools

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from .django_setup import configure
from .servers import RedisServer, redis_server


configure()

from django.core.cache import caches  # noqa: E402
from django.test import TestCase, override_settings  # noqa: E402


_django = importlib.import_module("cache.tests")
DjangoCacheTests: Any = _django.BaseCacheTests  # Django's own, from its source
BACKEND = "lapse.django.cache.LapseCache"

LEFT_OUT = {
    # MAX_ENTRIES and CULL_FREQUENCY are the options of Django's LocMem, file and
    # database caches; lapse bounds a store by OPTIONS max_size, evicting with SIEVE
    # (tested in lapse's own eviction tests).
    "test_cull": "LocMem/file/DB culling options",
    "test_zero_cull": "LocMem/file/DB culling options",
    "test_cull_delete_when_store_empty": "LocMem/file/DB culling internals (_max_entries)",
}


LEFT_OUT_IN_MEMORY = {
    # A MemoryStore keeps values by reference and never pickles them (LocMemCache
    # pickles each value both ways), so an unpicklable value is stored like any other.
    "test_add_fail_on_pickleerror": "values are not pickled in memory",
    "test_set_fail_on_pickleerror": "values are not pickled in memory",
}


def _leave_out(*names: Mapping[str, str]) -> Callable[[type], type]:
    def leave_out(cls: type) -> type:
        for left_out in names:
            for name in left_out:
                setattr(cls, name, None)  # not collected: see LEFT_OUT* for why
        return cls

    return leave_out


@_leave_out(LEFT_OUT, LEFT_OUT_IN_MEMORY)
@override_settings(CACHES=_django.caches_setting_for_tests(BACKEND=BACKEND, LOCATION="memory://"))
class TestLapseCacheOnMemory(DjangoCacheTests, TestCase):  # type: ignore[misc]
    """Django's BaseCacheTests on a MemoryStore (values by reference, never pickled)."""


_redis: RedisServer | None = None
_serving = contextlib.ExitStack()
_databases = itertools.count(1)


def setUpModule() -> None:
    global _redis  # noqa: PLW0603
    _redis = _serving.enter_context(redis_server())


def tearDownModule() -> None:
    _serving.close()


@_leave_out(LEFT_OUT)
class TestLapseCacheOnRedis(DjangoCacheTests, TestCase):  # type: ignore[misc]
    """Django's BaseCacheTests on a real redis-server (pickled values, as Django's own
    Redis backend)."""

    def setUp(self) -> None:
        assert _redis is not None
        setting = _django.caches_setting_for_tests(
            BACKEND=BACKEND, LOCATION=_redis.url, OPTIONS={"serializer": "pickle"}
        )
        self.enterContext(override_settings(CACHES=setting))
        super().setUp()


def test_values_are_not_pickled_in_memory() -> None:
    """LocMemCache pickles every value both ways; lapse keeps it by reference."""
    setting = {"default": {"BACKEND": BACKEND, "LOCATION": "memory://no-pickle"}}
    with override_settings(CACHES=setting):
        value = {"rows": [1, 2, 3]}
        caches["default"].set("k", value)
        assert caches["default"].get("k") is value


def test_bad_options_are_named() -> None:
    setting = {"default": {"BACKEND": BACKEND, "OPTIONS": {"maxsize": 1}}}
    with override_settings(CACHES=setting), pytest.raises(ValueError, match="unknown keys"):
        caches["default"].get("k")


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"  # Django's async views, and redis-py's asyncio client


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["memory", "redis"])
async def test_async_methods_are_native(where: str, server: RedisServer) -> None:
    """Every a-method works on the store's coroutines, without the sync face (which is
    taken away here, so a thread wrapper around it would fail), with Django's rules."""
    location = "memory://async" if where == "memory" else server.url
    options = {} if where == "memory" else {"prefix": "async-cache:"}
    setting = {"default": {"BACKEND": BACKEND, "LOCATION": location, "OPTIONS": options}}
    with override_settings(CACHES=setting):
        cache = caches["default"]
        cache._sync = None  # type: ignore[attr-defined]  # no thread hop can reach it
        await cache.aset("a", [1, 2])
        assert await cache.aget("a") == [1, 2]
        assert await cache.aget("missing", "default") == "default"
        assert await cache.aadd("a", 0) is False
        assert await cache.aadd("b", 1, timeout=60) is True
        assert await cache.ahas_key("b") is True
        assert await cache.aincr("b", 10) == 11
        assert await cache.adecr("b", 1) == 10
        with pytest.raises(ValueError, match="not found"):
            await cache.aincr("nope")
        assert await cache.atouch("b", timeout=None) is True
        assert await cache.atouch("nope") is False
        assert await cache.aset_many({"c": 3, "d": 4}) == []
        assert await cache.aget_many(["a", "c", "d", "x"]) == {"a": [1, 2], "c": 3, "d": 4}
        await cache.aset("z", 1, timeout=0)  # Django: 0 means "do not keep"
        assert await cache.aget("z") is None
        await cache.adelete_many(["c", "d"])
        assert await cache.adelete("a") is True
        assert await cache.aget_many(["a", "c"]) == {}
        assert await cache.aget_or_set("e", lambda: 5) == 5
        await cache.aclear()
        assert await cache.aget("b") is None
        await cache.aclose()
