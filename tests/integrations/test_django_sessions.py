"""SESSION_ENGINE = "lapse.django.sessions": Django's own session test suite
(``SessionTestsMixin``, from Django's source, unchanged) on a MemoryStore and on a real
redis-server, then what lapse adds: hashed keys at rest, both lifetimes, "log out
everywhere", corrupt records."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools

from datetime import timedelta
from typing import Any

import pytest

from freezegun import freeze_time

from .django_setup import configure
from .servers import RedisServer, redis_server


configure()

from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.test import SimpleTestCase, override_settings  # noqa: E402

from lapse.django import sessions  # noqa: E402
from lapse.django.sessions import SessionStore  # noqa: E402


_django = importlib.import_module("sessions_tests.tests")
DjangoSessionTests: Any = _django.SessionTestsMixin  # Django's own, from its source
_prefixes = itertools.count()


class TestLapseSessionsOnMemory(DjangoSessionTests, SimpleTestCase):  # type: ignore[misc]
    """Django's SessionTestsMixin, every test, on lapse's backend over a MemoryStore."""

    backend = SessionStore


_redis: RedisServer | None = None
_serving = contextlib.ExitStack()


def setUpModule() -> None:
    """One real redis-server for the Redis-backed run of Django's suite."""
    global _redis  # noqa: PLW0603
    _redis = _serving.enter_context(redis_server())


def tearDownModule() -> None:
    _serving.close()


class TestLapseSessionsOnRedis(DjangoSessionTests, SimpleTestCase):  # type: ignore[misc]
    """Django's SessionTestsMixin, every test, on lapse's backend over a real Redis."""

    backend = SessionStore

    def setUp(self) -> None:
        assert _redis is not None
        config = {"store": _redis.url, "prefix": f"dj{next(_prefixes)}:"}
        self.enterContext(override_settings(LAPSE_SESSIONS=config))
        super().setUp()


# -- what lapse adds ----------------------------------------------------------------------


def _login(session: SessionStore, user_id: str) -> None:
    """What django.contrib.auth.login does to the session: a new key, then the user."""
    session.cycle_key()
    session[SESSION_KEY] = user_id
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session.save()


@override_settings(LAPSE_SESSIONS={"prefix": "hashed:"})
def test_keys_are_hashed_at_rest() -> None:
    """The store holds the SHA-256 of each session key, never the key."""
    session = SessionStore()
    session["n"] = 1
    session.save()
    key = session.session_key
    assert key is not None
    stored = list(sessions._store(sessions._config()).keys())
    assert stored == ["hashed:" + hashlib.sha256(key.encode()).hexdigest()]
    assert all(key not in name for name in stored)
    session.delete()


@override_settings(LAPSE_SESSIONS={"idle_timeout": 600, "absolute_timeout": 3600, "prefix": "t:"})
def test_idle_and_absolute_lifetimes() -> None:
    """A session ends 10 minutes after its last request, and 1 hour after it began
    however busy, while Django's own expiry (2 weeks here) would keep it."""
    with freeze_time("2026-12-06 10:00:00", tick=False) as frozen:
        idle = SessionStore()
        idle["n"] = 1
        idle.save()
        frozen.tick(timedelta(minutes=9))
        assert SessionStore(idle.session_key).load() == {"n": 1}  # a request
        frozen.tick(timedelta(minutes=9))
        assert SessionStore(idle.session_key).load() == {"n": 1}
        frozen.tick(timedelta(minutes=11))
        assert SessionStore(idle.session_key).load() == {}
        busy = SessionStore()
        busy["n"] = 2
        busy.save()
        for _ in range(7):  # 56 minutes of requests, 8 minutes apart
            frozen.tick(timedelta(minutes=8))
            assert SessionStore(busy.session_key).load() == {"n": 2}
        frozen.tick(timedelta(minutes=5))  # 61 minutes after it began
        assert SessionStore(busy.session_key).load() == {}


@override_settings(LAPSE_SESSIONS={"prefix": "everywhere:"})
def test_log_out_everywhere_holds_whatever_the_store_lost() -> None:
    """revoke_all ends every session of a user; a login cycles the key and keeps the
    user listed once; a session whose user index is gone is never accepted."""
    laptop, phone = SessionStore(), SessionStore()
    for session in (laptop, phone):
        session["cart"] = [1]
        session.save()
        _login(session, "7")
    assert sessions.sessions_of(7) == 2
    assert SessionStore(laptop.session_key).load()[SESSION_KEY] == "7"
    assert sessions.revoke_all(7) == 2
    assert SessionStore(laptop.session_key).load() == {}
    assert SessionStore(phone.session_key).load() == {}
    again = SessionStore()
    _login(again, "8")
    store = sessions._store(sessions._config())
    store.delete("everywhere:user:8")  # the index evicted or lost
    assert SessionStore(again.session_key).load() == {}
    logout = SessionStore()
    _login(logout, "9")
    logout.flush()  # what django.contrib.auth.logout does
    assert sessions.sessions_of(9) == 0


@override_settings(LAPSE_SESSIONS={"prefix": "corrupt:"})
def test_a_corrupt_record_is_no_session(caplog: pytest.LogCaptureFixture) -> None:
    """Garbage under a session's key: an empty session and a log line, no exception."""
    session = SessionStore()
    session["n"] = 1
    session.save()
    key = session.session_key
    assert key is not None
    store = sessions._store(sessions._config())
    store.set("corrupt:" + hashlib.sha256(key.encode()).hexdigest(), ["not", "a", "record"])
    assert SessionStore(key).load() == {}
    assert "cannot be decoded" in caplog.text


def test_bad_configuration_is_named() -> None:
    """A wrong LAPSE_SESSIONS says what is wrong."""
    with (
        override_settings(LAPSE_SESSIONS={"stor": "memory://"}),
        pytest.raises(ValueError, match="unknown keys"),
    ):
        SessionStore()
    with (
        override_settings(LAPSE_SESSIONS={"store": "mysql://"}),
        pytest.raises(ValueError, match="memory://"),
    ):
        SessionStore()
