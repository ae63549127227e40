"""SessionManager: lifetimes, IDs, regenerate, log out everywhere, races, bad data."""

from __future__ import annotations

import asyncio
import json
import logging

from datetime import timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from freezegun import freeze_time

from lapse import MemoryStore
from lapse.sessions import AtomicStore, Session, SessionManager


pytestmark = pytest.mark.anyio


class ThreeMethodStore:
    """Harpia's store: get, set, delete, and it ignores TTLs entirely."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.writes = 0

    async def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    async def set(self, key: str, value: Any, *, ttl: Any = None) -> None:
        self.writes += 1
        self.data[key] = value

    async def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None


async def opened(manager: SessionManager, sid: str) -> Session:
    """The session a request with the cookie *sid* gets, as the middleware opens it."""
    return await manager.open([(b"cookie", f"{manager.cookie_name}={sid}".encode())])


@pytest.fixture(name="manager")
def _manager() -> SessionManager:
    return SessionManager(
        store=MemoryStore(),
        idle_timeout=timedelta(minutes=30),
        absolute_timeout=timedelta(hours=8),
    )


async def test_create_get_update_delete(manager: SessionManager) -> None:
    """The Harpia API: create, get, update (shallow merge, False if unknown), delete."""
    sid = await manager.create({"user_id": 1, "prefs": {"a": 1}})
    assert await manager.get(sid) == {"user_id": 1, "prefs": {"a": 1}}
    assert await manager.update(sid, {"role": "admin", "prefs": {"b": 2}}) is True
    assert await manager.get(sid) == {"user_id": 1, "role": "admin", "prefs": {"b": 2}}
    assert await manager.update("x" * 43, {"role": "x"}) is False
    assert await manager.delete(sid) is True
    assert await manager.get(sid) is None
    assert await manager.update(sid, {"role": "back"}) is False  # never brought back
    assert await manager.get(sid) is None


async def test_ids_are_random_and_only_their_hash_is_stored(manager: SessionManager) -> None:
    """256-bit IDs; the raw ID is in no store key and no stored value."""
    sids = {await manager.create({"n": i}) for i in range(50)}
    assert len(sids) == 50
    assert all(len(sid) == 43 for sid in sids)
    store = manager.store
    assert isinstance(store, MemoryStore)
    dump = [(key, await store.get(key)) async for key in store.keys()]
    for sid in sids:
        assert all(sid not in key and sid not in str(value) for key, value in dump)


async def test_idle_timeout_ends_a_quiet_session(manager: SessionManager) -> None:
    """A session nobody uses for the idle timeout ends; each use starts it again."""
    with freeze_time("2026-12-02 09:00:00", real_asyncio=True) as frozen:
        sid = await manager.create({"n": 1})
        frozen.tick(timedelta(minutes=29))
        assert await manager.get(sid) == {"n": 1}  # a use: 30 more minutes
        frozen.tick(timedelta(minutes=29))
        assert await manager.get(sid) == {"n": 1}
        frozen.tick(timedelta(minutes=30))
        assert await manager.get(sid) is None


async def test_absolute_timeout_ends_an_active_session(manager: SessionManager) -> None:
    """However active, a session ends 8 hours after it was created."""
    with freeze_time("2026-12-02 09:00:00", real_asyncio=True) as frozen:
        sid = await manager.create({"n": 1})
        for _ in range(31):  # a request every 15 minutes for 7 h 45
            frozen.tick(timedelta(minutes=15))
            assert await manager.get(sid) is not None
        frozen.tick(timedelta(minutes=14))
        assert await manager.get(sid) is not None
        frozen.tick(timedelta(minutes=1))
        assert await manager.get(sid) is None


async def test_remember_me_overrides_the_lifetimes(manager: SessionManager) -> None:
    """create() takes per-session timeouts: 30 days, no idle limit."""
    with freeze_time("2026-12-02 09:00:00", real_asyncio=True) as frozen:
        sid = await manager.create({"n": 1}, idle_timeout=None, absolute_timeout=timedelta(days=30))
        frozen.tick(timedelta(days=29))
        assert await manager.get(sid) == {"n": 1}
        frozen.tick(timedelta(days=1))
        assert await manager.get(sid) is None


async def test_a_store_that_ignores_ttls_never_yields_an_ended_session() -> None:
    """On a three-method store the manager enforces both deadlines from the record."""
    store = ThreeMethodStore()
    manager = SessionManager(store=store, idle_timeout=600, absolute_timeout=3600)
    with freeze_time("2026-12-02 09:00:00", real_asyncio=True) as frozen:
        sid = await manager.create({"n": 1})
        writes = store.writes
        for _ in range(10):
            frozen.tick(30)
            assert await manager.get(sid) == {"n": 1}
        # Reads are activity, rewritten at most once per idle / 10 (60 s): 5 in 300 s.
        assert store.writes - writes == 5
        frozen.tick(601)
        assert await manager.get(sid) is None
        assert len(store.data) == 1  # still stored: the store ignores TTLs


async def test_reads_refresh_the_deadline_without_rewriting(manager: SessionManager) -> None:
    """On a store with expire(), activity moves the store deadline; the record is rewritten
    at most once per tenth of the idle timeout."""
    store = manager.store
    assert isinstance(store, MemoryStore)
    with freeze_time("2026-12-02 09:00:00", real_asyncio=True) as frozen:
        sid = await manager.create({"n": 1})
        sets = store.stats().sets
        frozen.tick(170)  # under a tenth of the idle timeout: the record is not rewritten
        assert await manager.get(sid) == {"n": 1}
        assert store.stats().sets == sets
        assert await store.ttl(manager.key_of(sid)) == pytest.approx(1800)
        frozen.tick(20)  # past a tenth: "seen" is rewritten, with the TTL, in one write
        assert await manager.get(sid) == {"n": 1}
        assert store.stats().sets == sets + 1
        assert await store.ttl(manager.key_of(sid)) == pytest.approx(1800)


async def test_strict_mode_never_adopts_an_id(manager: SessionManager) -> None:
    """Unknown, malformed, oversized or non-str IDs are no session and store nothing."""
    store = manager.store
    assert isinstance(store, MemoryStore)
    for sid in ["A" * 43, "short", "é" * 43, "x" * 5000, "", "a;b=c" * 9, None, 42]:
        assert await manager.get(sid) is None  # type: ignore[arg-type]
        assert await manager.update(sid, {"x": 1}) is False  # type: ignore[arg-type]
        assert await manager.regenerate(sid) is None  # type: ignore[arg-type]
    assert len(store) == 0


async def test_regenerate_kills_the_old_id_and_keeps_the_deadline(
    manager: SessionManager,
) -> None:
    """The new ID has the data and the same absolute deadline; the old one is dead."""
    with freeze_time("2026-12-02 09:00:00", real_asyncio=True) as frozen:
        old = await manager.create({"cart": [1, 2]}, user="alice", idle_timeout=None)
        frozen.tick(timedelta(hours=7))
        await manager.get(old)
        new = await manager.regenerate(old)
        assert new is not None
        assert new != old
        assert await manager.get(old) == {"cart": [1, 2]}  # in flight: the renewal grace
        frozen.tick(6)
        assert await manager.get(old) is None
        assert await manager.get(new) == {"cart": [1, 2]}
        assert [s.key for s in await manager.sessions_of("alice")] == [manager.key_of(new)]
        frozen.tick(timedelta(hours=1))
        assert await manager.get(new) is None  # 8 h after the original creation


async def test_log_out_everywhere(manager: SessionManager) -> None:
    """sessions_of lists a user's sessions; revoke_all ends them all but the current one."""
    with freeze_time("2026-12-02 09:00:00", real_asyncio=True) as frozen:
        laptop = await manager.create({"d": "laptop"}, user=7)
        frozen.tick(60)
        phone = await manager.create({"d": "phone"}, user=7)
        other = await manager.create({"d": "x"}, user=8)
        frozen.tick(60)
        await manager.get(laptop)
        listed = await manager.sessions_of(7)
        assert [s.key for s in listed] == [manager.key_of(laptop), manager.key_of(phone)]
        assert listed[0].last_seen == pytest.approx(listed[0].created + 120)
        assert await manager.revoke_all(7, keep=phone) == 1
        assert await manager.get(laptop) is None
        assert await manager.get(phone) == {"d": "phone"}
        assert await manager.get(other) == {"d": "x"}
        assert await manager.revoke_all(7) == 1
        assert await manager.sessions_of(7) == []
        assert await manager.get(phone) is None


async def test_user_index_lives_as_long_as_its_sessions(manager: SessionManager) -> None:
    """The helper key has a TTL: the absolute deadline, never forever."""
    store = manager.store
    assert isinstance(store, MemoryStore)
    with freeze_time("2026-12-02 09:00:00", real_asyncio=True) as frozen:
        sid = await manager.create({}, user="bob")
        for _ in range(6):  # active far past one idle timeout
            frozen.tick(timedelta(minutes=20))
            await manager.get(sid)
        assert await manager.revoke_all("bob") == 1
        await manager.create({}, user="bob")
        ttls = [await store.ttl(key) async for key in store.keys()]
        assert all(ttl is not None and ttl <= 8 * 3600 for ttl in ttls)


async def test_concurrent_saves_keep_both_changes(manager: SessionManager) -> None:
    """Two requests changing different keys both keep theirs; the later one wins on one key."""
    sid = await manager.create({"a": 0, "b": 0})
    first = await opened(manager, sid)
    second = await opened(manager, sid)
    first["a"] = 1
    second["b"] = 2
    second["a"] = 5
    await manager.save(first)
    await manager.save(second)
    assert await manager.get(sid) == {"a": 5, "b": 2}
    many = [await opened(manager, sid) for _ in range(50)]
    for i, session in enumerate(many):
        session[f"k{i}"] = i

    async def save(session: Session) -> None:
        await anyio.lowlevel.checkpoint()
        await manager.save(session)

    async with anyio.create_task_group() as tg:
        for session in many:
            tg.start_soon(save, session)
    data = await manager.get(sid)
    assert data is not None
    assert all(data[f"k{i}"] == i for i in range(50))


async def test_a_save_after_delete_or_revoke_does_not_bring_it_back(
    manager: SessionManager,
) -> None:
    """A request still running when its session ended saves nothing, clears its cookie;
    one running when it got a new ID saves into the new one and leaves the cookie."""
    for end in ("delete", "revoke", "regenerate"):
        sid = await manager.create({"n": 1}, user="u")
        running = await opened(manager, sid)
        running["n"] = 2
        if end == "delete":
            await manager.delete(sid)
        elif end == "revoke":
            await manager.revoke_all("u")
        else:
            assert await manager.regenerate(sid) is not None
        headers = await manager.save(running)
        if end == "regenerate":  # in its grace: the change lands, the new cookie stands
            assert headers == []
            assert await manager.get(sid) == {"n": 2}
            continue
        assert await manager.get(sid) is None
        assert any(b"Max-Age=0" in value for name, value in headers if name == b"set-cookie")


async def test_unserializable_data_is_refused_and_changes_nothing(
    manager: SessionManager,
) -> None:
    """A value JSON cannot hold raises TypeError at write time; the session stays."""
    with pytest.raises(TypeError, match="JSON-serializable"):
        await manager.create({"when": object()})
    sid = await manager.create({"n": 1})
    with pytest.raises(TypeError, match="JSON-serializable"):
        await manager.update(sid, {"bad": {1, 2}})
    with pytest.raises(TypeError, match="JSON-serializable"):
        await manager.update(sid, {"nan": float("nan")})
    session = await opened(manager, sid)
    session["n"] = 2
    session["bad"] = b"bytes"
    with pytest.raises(TypeError, match="JSON-serializable"):
        await manager.save(session)
    assert await manager.get(sid) == {"n": 1}


async def test_corrupt_records_are_no_session(
    manager: SessionManager, caplog: pytest.LogCaptureFixture
) -> None:
    """A record that cannot be decoded is treated as no session and logged, never raised."""
    sid = await manager.create({"n": 1})
    key = manager.key_of(sid)
    for garbage in ["{not json", json.dumps({"v": 99, "data": {}}), json.dumps([1]), b"\xff", 42]:
        await manager.store.set(key, garbage)
        with caplog.at_level(logging.WARNING, logger="lapse.sessions"):
            assert await manager.get(sid) is None
            assert await manager.update(sid, {"x": 1}) is False
    assert "cannot be decoded" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"store": object()}, TypeError, "store must be a lapse.Store"),
        ({"idle_timeout": 0}, ValueError, "idle_timeout"),
        ({"absolute_timeout": -1}, ValueError, "absolute_timeout"),
        ({"idle_timeout": "30m"}, TypeError, "idle_timeout"),
        (
            {"same_site": "none", "secure": False, "insecure_development": True},
            ValueError,
            "secure",
        ),
        ({"same_site": "sideways"}, ValueError, "same_site"),
        ({"secure": False}, ValueError, "insecure_development"),
        ({"cookie_name": "__Host-sid", "domain": "example.com"}, ValueError, "__Host-"),
        ({"cookie_name": "__Host-sid", "path": "/app"}, ValueError, "__Host-"),
        ({"cookie_name": "bad name;"}, ValueError, "cookie name"),
        ({"secure": "yes"}, TypeError, "secure"),
        ({"path": "app"}, ValueError, "path"),
        ({"host_prefix": "yes"}, TypeError, "host_prefix"),
        ({"key_prefix": 3}, TypeError, "key_prefix"),
        ({"max_sessions_per_user": 0}, ValueError, "max_sessions_per_user"),
        ({"max_sessions_per_user": True}, ValueError, "max_sessions_per_user"),
        ({"principal_keys": ["user_id"]}, TypeError, "principal_keys"),
        ({"on_store_error": "ignore"}, ValueError, "on_store_error"),
        ({"renewal_grace": -1}, ValueError, "renewal_grace"),
        ({"cookie_name": 3}, TypeError, "cookie_name"),
        ({"persistent_cookie": 1}, TypeError, "persistent"),
    ],
)
async def test_bad_configuration_is_refused(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Wrong types and insecure combinations fail at construction, with a clear message."""
    with pytest.raises(error, match=match):
        SessionManager(**kwargs)


async def test_host_prefixed_cookies_and_development_mode() -> None:
    """__Host- names work with their rules; insecure_development allows plain http."""
    host = SessionManager(cookie_name="__Host-sid")
    headers = host.cookie_headers("a" * 43)
    assert headers[0][1].startswith(b"__Host-sid=")
    assert b"Domain" not in headers[0][1]
    dev = SessionManager(secure=False, insecure_development=True)
    assert b"Secure" not in dev.cookie_headers("a" * 43)[0][1]


async def test_memory_store_is_an_atomic_store() -> None:
    """MemoryStore.update is the read-modify-write sessions need (AtomicStore)."""
    store = MemoryStore()
    assert isinstance(store, AtomicStore)
    assert not isinstance(ThreeMethodStore(), AtomicStore)
    assert await store.update("n", lambda old: (old or 0) + 1) == 1
    assert await store.update("n", lambda old: old + 1) == 2
    assert await store.update("n", lambda old: None) is None
    assert not await store.has("n")
    with pytest.raises(ZeroDivisionError):
        await store.update("n", lambda old: 1 / 0)
    assert not await store.has("n")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_threads_and_tasks_updating_one_key_lose_nothing() -> None:
    """update() is atomic across tasks and threads: every increment counts."""
    store = MemoryStore()

    def worker() -> None:
        for _ in range(500):
            store.sync.update("n", lambda old: (old or 0) + 1)

    await asyncio.gather(*(asyncio.to_thread(worker) for _ in range(4)))
    assert await store.get("n") == 2000


async def test_session_mapping_and_edges(manager: SessionManager) -> None:
    """Session behaves as a mapping; removals, regenerate of an ended one, WebSocket save."""
    sid = await manager.create({"a": 1, "b": 2})
    data = await manager.get(sid)
    assert data is not None
    session = await opened(manager, sid)
    del session["a"]
    assert list(session) == ["b"]
    assert len(session) == 1
    assert "b" in repr(session)
    assert "2" not in repr(session)  # keys, never values
    assert await session.save() == sid
    assert await manager.get(sid) == {"b": 2}
    session.regenerate()
    await manager.delete(sid)
    assert await session.save() is None  # it ended meanwhile: no new ID, no resurrection
    fresh = Session(manager)
    fresh.clear()
    assert await manager.save(fresh) == []  # ending a session that never was: nothing
    for bad in (["not", "a", "mapping"], {1: "int key"}):
        with pytest.raises(TypeError, match="session"):
            await manager.create(bad)  # type: ignore[arg-type]


async def test_response_helpers_and_requests(manager: SessionManager) -> None:
    """delete(sid, response) clears the cookie; set_cookie; from_request reads .cookies."""

    class Headers:
        def __init__(self) -> None:
            self.items: list[tuple[str, str]] = []

        def append(self, name: str, value: str) -> None:
            self.items.append((name, value))

    class Response:
        def __init__(self) -> None:
            self.headers = Headers()

    class Request:
        def __init__(self, cookies: dict[str, str]) -> None:
            self.cookies = cookies

    sid = await manager.create({"n": 1})
    assert await manager.from_request(Request({"session_id": sid})) == {"n": 1}
    assert await manager.from_request(Request({})) is None
    response = Response()
    manager.set_cookie(response, sid)
    assert response.headers.items[0] == ("set-cookie", manager.cookie_headers(sid)[0][1].decode())
    cleared = Response()
    assert await manager.delete(sid, cleared) is True
    assert ("cache-control", "no-store") in cleared.headers.items
    assert "Max-Age=0" in cleared.headers.items[0][1]
    assert await manager.delete("not-an-id", Response()) is False


async def test_login_ties_a_session_to_a_user(manager: SessionManager) -> None:
    """Session.login regenerates and ties the session to the user; a second login moves it."""
    anonymous = Session(manager)
    anonymous.login("dora")
    headers = await manager.save(anonymous)
    assert headers
    assert anonymous.id is not None
    assert [s.key for s in await manager.sessions_of("dora")] == [manager.key_of(anonymous.id)]
    anonymous.login("erin")
    await manager.save(anonymous)
    assert await manager.sessions_of("dora") == []
    assert len(await manager.sessions_of("erin")) == 1
    with pytest.raises(TypeError, match="JSON-serializable"):
        anonymous.login(object())


async def test_listing_prunes_ended_sessions(manager: SessionManager) -> None:
    """sessions_of drops sessions that ended by themselves from the user's index."""
    with freeze_time("2026-12-02 09:00:00", real_asyncio=True) as frozen:
        short = await manager.create({}, user="fay", idle_timeout=60)
        await manager.create({}, user="fay")
        frozen.tick(61)
        assert len(await manager.sessions_of("fay")) == 1
        assert await manager.get(short) is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cookie_name": 42}, TypeError, "cookie_name"),
        ({"domain": 7}, TypeError, "domain"),
        (
            {"cookie_name": "__Secure-sid", "secure": False, "insecure_development": True},
            ValueError,
            "__Secure-",
        ),
    ],
)
async def test_more_bad_configuration(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """The remaining argument checks."""
    with pytest.raises(error, match=match):
        SessionManager(**kwargs)


async def test_domain_cookies_are_cleared_with_their_domain() -> None:
    """A cookie set with a Domain is cleared with the same Domain and Path."""
    manager = SessionManager(domain="example.com", path="/app")
    set_cookie = manager.cookie_headers("a" * 43)[0][1]
    clear = manager.clear_cookie_headers()[0][1]
    for header in (set_cookie, clear):
        assert b"Domain=example.com" in header
        assert b"Path=/app" in header


async def test_three_method_store_saves_and_deletes() -> None:
    """Without update() or expire(), saves are a read then a write, and still never revive."""
    store = ThreeMethodStore()
    manager = SessionManager(store=store, idle_timeout=None, absolute_timeout=None)
    sid = await manager.create({"n": 1}, user="gus")
    assert await manager.update(sid, {"n": 2}) is True
    assert await manager.get(sid) == {"n": 2}
    assert await manager.revoke_all("gus") == 1
    assert await manager.update(sid, {"n": 3}) is False
    assert store.data == {}  # the user index went with its last session


async def test_regenerate_for_another_user_starts_empty(manager: SessionManager) -> None:
    """manager.regenerate(sid, user=other) on a session of another user: a new, empty
    session for *other*; the old one ends at once (no grace to another user)."""
    sid = await manager.create({"role": "admin"}, user="ann")
    new = await manager.regenerate(sid, user="bob")
    assert new is not None
    assert await manager.get(new) == {}
    assert await manager.get(sid) is None
    assert await manager.sessions_of("ann") == []
    assert len(await manager.sessions_of("bob")) == 1
    same = await manager.regenerate(new, user="bob")
    assert same is not None
    assert await manager.get(same) == {}


async def test_a_late_request_with_an_old_id_lands_in_the_new_session(
    manager: SessionManager, caplog: pytest.LogCaptureFixture
) -> None:
    """Requests with the old ID during the grace: reads touch the new session, writes land
    there; after a logout elsewhere, their writes go nowhere (logged) and set no cookie."""
    sid = await manager.create({"n": 1})
    late_read = await opened(manager, sid)
    late_write = await opened(manager, sid)
    new = await manager.regenerate(sid)
    assert new is not None
    reader = await opened(manager, sid)  # the old ID, within its grace
    assert reader.get("n") == 1
    assert await manager.save(reader) == []
    writer = await opened(manager, sid)
    writer["m"] = 2
    assert await manager.save(writer) == []
    assert await manager.get(new) == {"n": 1, "m": 2}
    assert late_read.get("n") == 1
    assert await manager.save(late_read) == []
    late_write["k"] = 3
    assert await manager.save(late_write) == []
    assert await manager.get(new) == {"n": 1, "m": 2, "k": 3}
    ending = await opened(manager, new)
    ending.clear()
    await manager.save(ending)
    orphan = await opened(manager, new)  # logged out a moment ago
    orphan["x"] = 1
    with caplog.at_level(logging.WARNING, logger="lapse.sessions"):
        assert await manager.save(orphan) == []
    assert "wrote to no session" in caplog.text


async def test_reads_near_the_absolute_end_write_nothing() -> None:
    """In a session's last idle period, reads move its deadline but never rewrite the
    user's index (its entry already ends at the absolute deadline)."""
    store = MemoryStore()
    manager = SessionManager(store=store, idle_timeout=600, absolute_timeout=3600)
    with freeze_time("2026-12-05 09:00:00", real_asyncio=True) as frozen:
        sid = await manager.create({"n": 1}, user="una")
        for _ in range(11):  # a request every 5 minutes: 55 minutes in
            frozen.tick(300)
            assert await manager.get(sid) == {"n": 1}
        sets = store.stats().sets
        for _ in range(3):
            frozen.tick(10)
            assert await manager.get(sid) == {"n": 1}
        assert store.stats().sets == sets


def test_the_default_store_is_bounded_by_sieve() -> None:
    """The default store: 100 000 entries under SIEVE, the policy that kept every user
    through the floods of benchmarks/session_flood.py."""
    from lapse import SIEVE  # noqa: PLC0415

    store = SessionManager().store
    assert isinstance(store, MemoryStore)
    assert store.eviction == SIEVE(100_000)


@pytest.mark.parametrize("how", ["create", "regenerate"])
async def test_a_login_survives_a_flood_of_one_time_sessions(how: str) -> None:
    """A login counts as a use of the session and of its index: on a SIEVE-bounded
    store, anonymous sessions nobody comes back to are evicted before them."""
    from lapse import SIEVE  # noqa: PLC0415

    manager = SessionManager(store=MemoryStore(eviction=SIEVE(50)))
    regulars = [await manager.create({"n": n}, user=n) for n in range(5)]
    for sid in regulars:
        assert await manager.get(sid) is not None
    if how == "create":
        sid = await manager.create({"user_id": "new"}, user="new")
    else:
        sid = await manager.regenerate(await manager.create({"cart": 1}), user="new")  # type: ignore[assignment]
    for _ in range(500):  # ten times the bound, none of them ever read again
        await manager.create({"csrf": "x"})
    assert await manager.get(sid) is not None
    assert all([await manager.get(regular) is not None for regular in regulars])


async def test_a_touch_that_fails_does_not_undo_a_login() -> None:
    """The login's touch is a hint: a store failing on it leaves the login done, logged."""
    from lapse.exceptions import StoreError  # noqa: PLC0415

    class TouchFails(MemoryStore):
        async def touch(self, key: str) -> bool:
            msg = "the store is down"
            raise StoreError(msg)

    manager = SessionManager(store=TouchFails())
    sid = await manager.create({"user_id": 1}, user=1)
    assert await manager.get(sid) == {"user_id": 1}
    assert manager.stats().store_errors == 1
