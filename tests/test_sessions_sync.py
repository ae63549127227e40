"""SessionManager.sync: the manager's rules for threads and sync code, with no event loop.

The operations are the async manager's own, run on the store's sync face; these tests
check that each rule holds there too (the async face's tests are in test_sessions.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading

from datetime import timedelta
from pathlib import Path

import pytest

from freezegun import freeze_time

from lapse import MemoryStore
from lapse.sessions import SessionManager, SyncSessionManager


def _manager(store: MemoryStore | None = None) -> SessionManager:
    return SessionManager(
        store=store if store is not None else MemoryStore(),
        idle_timeout=timedelta(minutes=30),
        absolute_timeout=timedelta(hours=8),
    )


def _no_loop() -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_create_get_update_delete() -> None:
    """The Harpia API, synchronously: create, get, update, delete; never brought back."""
    _no_loop()
    manager = _manager().sync
    assert isinstance(manager, SyncSessionManager)
    sid = manager.create({"user_id": 1, "prefs": {"a": 1}})
    assert manager.get(sid) == {"user_id": 1, "prefs": {"a": 1}}
    assert manager.update(sid, {"role": "admin", "prefs": {"b": 2}}) is True
    assert manager.get(sid) == {"user_id": 1, "role": "admin", "prefs": {"b": 2}}
    assert manager.update("x" * 43, {"role": "x"}) is False
    assert manager.delete(sid) is True
    assert manager.get(sid) is None
    assert manager.update(sid, {"role": "back"}) is False
    with pytest.raises(TypeError):
        manager.create({"x": object()})


def test_the_sync_face_and_the_async_face_share_sessions() -> None:
    """One manager, two faces: a session made by one is seen and ended by the other."""
    async_manager = _manager()
    sid = async_manager.sync.create({"n": 1}, user="ann")
    assert asyncio.run(async_manager.get(sid)) == {"n": 1}
    assert asyncio.run(async_manager.revoke_all("ann")) == 1
    assert async_manager.sync.get(sid) is None


def test_idle_and_absolute_lifetimes() -> None:
    """A session ends 30 minutes after its last use, and 8 hours after it began, however
    often it is used."""
    with freeze_time("2026-12-06 10:00:00") as frozen:
        manager = _manager().sync
        sid = manager.create({"n": 1})
        frozen.tick(timedelta(minutes=29))
        assert manager.get(sid) == {"n": 1}  # a use: 30 more minutes
        frozen.tick(timedelta(minutes=29))
        assert manager.get(sid) == {"n": 1}
        frozen.tick(timedelta(minutes=31))
        assert manager.get(sid) is None
        other = manager.create({"n": 2})
        created = frozen.time_to_freeze
        for _ in range(19):  # 7 h 55 min of uses, 25 minutes apart: still live
            frozen.tick(timedelta(minutes=25))
            assert manager.get(other) == {"n": 2}
        frozen.tick(timedelta(minutes=6))  # 8 h 1 min after it began
        assert frozen.time_to_freeze - created == timedelta(hours=8, minutes=1)
        assert manager.get(other) is None


def test_regenerate_keeps_data_and_a_user_switch_starts_empty() -> None:
    """regenerate moves a session to a new ID (the old one is dead after the grace); to
    another user, the session ends and the new one starts with nothing of the old."""
    with freeze_time("2026-12-06 10:00:00") as frozen:
        manager = _manager().sync
        sid = manager.create({"cart": [1]}, user="ann")
        new = manager.regenerate(sid)
        assert new is not None
        assert new != sid
        assert manager.get(new) == {"cart": [1]}
        frozen.tick(timedelta(seconds=6))  # past the renewal grace
        assert manager.get(sid) is None
        switched = manager.regenerate(new, user="bob")
        assert switched is not None
        assert manager.get(switched) == {}
        assert manager.regenerate("x" * 43) is None


def test_sessions_of_and_revoke_all() -> None:
    """A user's sessions are listed without IDs; revoke_all ends all but the one kept."""
    manager = _manager().sync
    first = manager.create({}, user="ann", descriptor="laptop")
    second = manager.create({}, user="ann", descriptor="phone")
    listed = manager.sessions_of("ann")
    assert [info.descriptor for info in listed] == ["laptop", "phone"]
    assert all(first not in info.key and second not in info.key for info in listed)
    assert manager.revoke_all("ann", keep=second) == 1
    assert manager.get(first) is None
    assert manager.get(second) == {}
    assert [info.descriptor for info in manager.sessions_of("ann")] == ["phone"]


def test_open_and_save_a_request_session() -> None:
    """What a framework integration does per request: open from the Cookie header, change,
    save; the cookie headers come back; a second request sees the data."""
    manager = _manager()
    sync = manager.sync
    session = sync.open([])
    session["n"] = 1
    headers = sync.save(session)
    cookie = dict(headers)[b"set-cookie"].split(b";")[0]
    again = sync.open([(b"cookie", cookie)])
    assert again["n"] == 1
    again.clear()
    cleared = dict(sync.save(again))[b"set-cookie"]
    assert b"Max-Age=0" in cleared or b"max-age=0" in cleared.lower()
    assert sync.open([(b"cookie", cookie)]).get("n") is None


def test_threads_update_one_session_without_losing_a_change() -> None:
    """20 threads each add their own key to one session at once: every change lands."""
    manager = _manager().sync
    sid = manager.create({})
    barrier = threading.Barrier(20)

    def work(n: int) -> None:
        barrier.wait()
        assert manager.update(sid, {f"k{n}": n})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert manager.get(sid) == {f"k{n}": n for n in range(20)}


def test_a_corrupt_record_is_no_session() -> None:
    """Garbage where a session was: no session and no exception, as on the async face."""
    store = MemoryStore()
    manager = _manager(store)
    sid = manager.sync.create({"n": 1})
    store.sync.set(manager.key_of(sid), "not a session record")
    assert manager.sync.get(sid) is None
    assert manager.stats().corrupt == 1


def test_a_store_without_a_sync_face_is_refused() -> None:
    """A three-method store of your own has no sync face: a clear TypeError."""

    class Minimal:
        async def get(self, key: str, default: object = None) -> object:
            return default

        async def set(self, key: str, value: object, *, ttl: object = None) -> None:
            return None

        async def delete(self, key: str) -> bool:
            return False

    manager = SessionManager(store=Minimal())
    with pytest.raises(TypeError, match="sync face"):
        _ = manager.sync


def test_the_lifetimes_figure_shows_what_the_manager_does() -> None:
    """The sessions page's timeline figure: replayed against a real manager, every
    request before the drawn end is served, and the first one after it is refused."""
    path = Path(__file__).parent.parent / "docs" / "figures" / "session_lifetimes.py"
    spec = importlib.util.spec_from_file_location("session_lifetimes", path)
    assert spec is not None
    assert spec.loader is not None
    figure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figure)
    for requests in figure.USERS.values():
        end = figure.ends(requests)
        assert any(t >= end for t in requests)  # the figure shows a refused request
        with freeze_time("2026-12-06 09:00:00") as frozen:
            manager = _manager().sync
            start = frozen.time_to_freeze
            sid = manager.create({"n": 1})
            for t in requests[1:]:
                frozen.move_to(start + timedelta(hours=t))
                served = manager.get(sid) is not None
                assert served == (t < end), (t, end)
                if not served:
                    break
