"""Server-side sessions on any `lapse.Store`: `SessionManager`.

The manager imports no web framework. `Session` (what a request sees) lives in
`_session`; the record, the renewal left under an old ID and their decoding in
`_session_record`; the per-user index in `_session_index`; the cookie and every header
in `_cookies`. Times are wall-clock seconds (``time.time()``,
looked up at call time), so several processes and freezegun agree.
"""

# Session and SessionManager are one unit: the manager saves the session's own state.
# ruff: noqa: SLF001

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import re
import secrets
import time

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import attrs

from ._clock import as_seconds
from ._cookies import HOST_PREFIX, Cookie, Headers
from ._eviction import SIEVE
from ._memory import MemoryStore
from ._sansio import Op, adrive, drive
from ._session import DEFAULT, Lifetimes, Loaded, Session
from ._session_index import Entry, UserIndex, decode_index, user_key
from ._session_record import Record, Renewal, decode, dumps
from ._store import Store
from .exceptions import CorruptValueError, StoreError


_log = logging.getLogger("lapse.sessions")
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32): 256 bits
_REWRITE_FRACTION = 10  # "seen" is rewritten once per idle / 10 at most
_KEEP: Any = object()
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})  # secure contexts over http
_CORRUPT: Any = object()  # what _read gives for a value the store cannot decode
T = TypeVar("T")


@attrs.frozen
class _StoreCall:
    """One step of a session operation: a call of the store method *method*.

    The manager's operations are written once, as generators that yield their store
    calls and get each result back (or its exception, thrown in): `SessionManager`
    awaits them on the store, `SyncSessionManager` calls them on ``store.sync``.
    """

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def _store(method: str, *args: Any, **kwargs: Any) -> _StoreCall:
    return _StoreCall(method, args, kwargs)


# A session operation (`Op`): yields store calls, gets their results, returns its own.


def wall_clock() -> float:
    """Return ``time.time()``, looked up at call time (so freezegun moves it)."""
    return time.time()


def _timeout(value: float | timedelta | None, what: str) -> float | None:
    return None if value is None else as_seconds(value, what=what)


@runtime_checkable
class AtomicStore(Protocol):
    """A store that can read, change and write one key with nothing in between.

    Sessions use it, when the store has it, so that two requests on one session never
    lose each other's changes and a save never brings back a deleted session.
    `lapse.MemoryStore` and `lapse.redis.RedisStore` have it; a store without it gets a
    plain read then write.
    """

    async def update(self, key: str, fn: Callable[[Any], Any], *, ttl: Any = None) -> Any:
        """Set *key* to ``fn(value or None)`` atomically; ``None`` from *fn* deletes it.

        *ttl* is the new value's lifetime, or a function of the new value returning it,
        written in the same atomic step as the value.
        """
        ...


@attrs.frozen
class SessionInfo:
    """One live session of a user, as `SessionManager.sessions_of` lists it.

    Attributes:
        key: The session's store key: a hash of its ID, never the ID itself. Compare it
            with `SessionManager.key_of` of the current ID to mark "this device".
        created: When the session was created (wall-clock seconds).
        last_seen: When it was last used, at the precision the store allows.
        expires: When it ends if nobody uses it again.
        descriptor: What the app said of the device at login (``login(user,
            descriptor=...)``), for example its user agent; ``None`` if nothing.
    """

    key: str
    created: float
    last_seen: float
    expires: float
    descriptor: str | None = None


@attrs.frozen
class SessionStats:
    """Counters of a `SessionManager`, as `SessionManager.stats` returns them.

    Attributes:
        created: Sessions created.
        renewed: Sessions moved to a new ID (`Session.regenerate`, a login).
        ended: Sessions ended by the app (`Session.clear`, `SessionManager.delete`).
        expired: Sessions found past their idle or absolute deadline.
        revoked: Sessions ended by `SessionManager.revoke_all`, or presented after it.
        unknown_ids: Requests that presented a session ID the store does not know (or
            no longer knows), or a malformed one: a steady stream of them is someone
            guessing IDs.
        corrupt: Records found that could not be decoded (read as no session).
        store_errors: Store failures met while loading sessions.
    """

    created: int = 0
    renewed: int = 0
    ended: int = 0
    expired: int = 0
    revoked: int = 0
    unknown_ids: int = 0
    corrupt: int = 0
    store_errors: int = 0


def _check_data(data: object) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        msg = f"session data must be a mapping, not {type(data).__name__}"
        raise TypeError(msg)
    data = dict(data)
    for key in data:
        if not isinstance(key, str):
            msg = f"session keys must be str, not {type(key).__name__}"
            raise TypeError(msg)
    dumps(data)
    return data


def _check_store(store: object) -> None:
    for name in ("get", "set", "delete"):
        if not inspect.iscoroutinefunction(getattr(store, name, None)):
            msg = f"store must be a lapse.Store (async get, set, delete), got {store!r}"
            raise TypeError(msg)
    serializer = getattr(store, "serializer", None)
    if serializer is not None and getattr(serializer, "safe", False) is not True:
        msg = (
            f"sessions refuse a store whose serializer ({type(serializer).__name__}) may run "
            "code when it decodes: anyone able to write to the store could then run code "
            "through a cookie. Use the JSON serializer (the default), or one that declares "
            "safe = True because its loads() runs no code whatever the bytes"
        )
        raise ValueError(msg)


@attrs.define(kw_only=True, eq=False)
class SessionManager:
    """Server-side sessions with idle and absolute lifetimes, on any `lapse.Store`.

    ```python
    manager = SessionManager(idle_timeout=timedelta(minutes=30))
    sid = await manager.create({"user_id": 1}, user=1)
    await manager.get(sid)               # {'user_id': 1}, and counts as activity
    await manager.update(sid, {"role": "admin"})
    new_sid = await manager.regenerate(sid)   # on login: the old ID is dead
    ```

    IDs are 256 random bits from `secrets`; the store key is a SHA-256 of the ID. Only
    IDs the manager issued are ever used: an unknown, malformed or oversized ID is no
    session, and nothing is stored for it. Both lifetimes are checked from the record
    on every load, and each record is written with its store TTL in one atomic step.
    A session tied to a user is valid only while the user's index lists it, so nothing
    the store evicts or loses can keep a revoked session alive.

    Attributes:
        store: Any `lapse.Store`. The default is a `MemoryStore` bounded to 100 000
            entries by `SIEVE`, which keeps logged-in users through a flood of one-time
            anonymous sessions (see "Sessions under a flood" in the eviction guide). A
            store with ``update`` (`AtomicStore`) makes concurrent saves safe; one with
            ``expire`` refreshes the idle deadline without rewriting the session; on one
            with ``touch``, a login counts as a use of the session and of the user's
            index. A store whose serializer may run code is refused.
        idle_timeout: A session ends this long after its last request (seconds or a
            timedelta; ``None``: never). Default 30 minutes.
        absolute_timeout: A session ends this long after it was created, whatever
            happens. Default 8 hours.
        cookie_name: The cookie's name.
        host_prefix: Name the cookie ``__Host-`` + *cookie_name*: browsers then accept
            it only with ``Secure``, ``Path=/`` and no ``Domain``, so no subdomain can
            set or overwrite it. Recommended.
        persistent_cookie: ``True`` (the default): the cookie's ``Max-Age`` is the
            session's absolute lifetime, so a "remember me" session outlives a browser
            restart and the browser drops the cookie when the session must have ended.
            ``False``: a browser-session cookie, gone when the browser closes (if it
            does not restore sessions).
        secure: Send the cookie over HTTPS only (browsers count ``http://localhost``
            and ``http://127.0.0.1`` as secure too). ``False`` needs
            *insecure_development*.
        http_only: Hide the cookie from JavaScript.
        same_site: ``"lax"``, ``"strict"`` or ``"none"`` (which requires *secure*).
        path: The cookie's path.
        domain: The cookie's domain, or ``None`` for the host only.
        insecure_development: Allow ``secure=False``, for plain http during development.
        key_prefix: Prepended to the store keys of sessions (and ``user:`` indexes).
        renewal_grace: For this long after a session gets a new ID (login, regenerate),
            requests already in flight with the old ID reach the new session: their
            changes land there and their responses never clear the new cookie. After a
            logout the old ID reaches nothing, but its responses still leave the cookie
            alone. ``0`` turns it off. Default 5 seconds (OWASP's renewal timeout).
        max_sessions_per_user: At most this many sessions per user; a login beyond it
            ends the user's oldest. ``None``: no bound (a login then costs time linear in
            the user's sessions). Default 100.
        principal_keys: Keys of the session data that make who the user is (for example
            ``("user_id", "role")``): a request that changes one gets a new session ID
            before its response goes out, as with `Session.regenerate`; if one held
            another value before, the new session keeps only what this request wrote.
        on_store_error: What a request gets when the store fails while loading its
            session. ``"fail_closed"`` (the default): reading or writing
            ``request.session`` raises `lapse.exceptions.SessionUnavailableError`,
            answered ``503``; pages that never touch the session work. ``"fail_open"``:
            the session reads as empty, and only a write gives the ``503``. A save that
            fails is a ``503`` in both cases: no change is reported done when it is not.
        clock: Wall-clock seconds; the default reads ``time.time()`` at each call.

    Raises:
        TypeError: An argument has the wrong type (a store without async get, set and
            delete, for instance).
        ValueError: A timeout is zero, negative or NaN; a cookie setting is insecure or
            contradicts a ``__Host-`` name; the store's serializer may run code.
    """

    store: Store = attrs.field(factory=lambda: MemoryStore(eviction=SIEVE(100_000)))
    idle_timeout: float | timedelta | None = timedelta(minutes=30)
    absolute_timeout: float | timedelta | None = timedelta(hours=8)
    cookie_name: str = "session_id"
    host_prefix: bool = False
    persistent_cookie: bool = True
    secure: bool = True
    http_only: bool = True
    same_site: Literal["lax", "strict", "none"] = "lax"
    path: str = "/"
    domain: str | None = None
    insecure_development: bool = False
    key_prefix: str = "session:"
    renewal_grace: float | timedelta = timedelta(seconds=5)
    max_sessions_per_user: int | None = 100
    principal_keys: tuple[str, ...] = ()
    on_store_error: Literal["fail_closed", "fail_open"] = "fail_closed"
    clock: Callable[[], float] = wall_clock
    _idle: float | None = attrs.field(init=False)
    _absolute: float | None = attrs.field(init=False)
    _grace: float = attrs.field(init=False)
    _cookie: Cookie = attrs.field(init=False)
    _counts: dict[str, int] = attrs.field(init=False, factory=dict)
    _warned_plain_http: bool = attrs.field(init=False, default=False)

    def __attrs_post_init__(self) -> None:  # noqa: C901 -- one check per argument
        _check_store(self.store)
        self._idle = _timeout(self.idle_timeout, "idle_timeout")
        self._absolute = _timeout(self.absolute_timeout, "absolute_timeout")
        grace = self.renewal_grace
        self._grace = 0.0 if grace in (0, timedelta(0)) else as_seconds(grace, what="renewal_grace")
        for name in ("host_prefix", "insecure_development"):
            if not isinstance(getattr(self, name), bool):
                msg = f"{name} must be a bool"
                raise TypeError(msg)
        if not isinstance(self.key_prefix, str):
            msg = "key_prefix must be a str"
            raise TypeError(msg)
        cap = self.max_sessions_per_user
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
            msg = f"max_sessions_per_user must be a positive int or None, not {cap!r}"
            raise ValueError(msg)
        if not isinstance(self.principal_keys, tuple) or not all(
            isinstance(k, str) for k in self.principal_keys
        ):
            msg = "principal_keys must be a tuple of str"
            raise TypeError(msg)
        if self.on_store_error not in ("fail_closed", "fail_open"):
            msg = (
                f"on_store_error must be 'fail_closed' or 'fail_open', not {self.on_store_error!r}"
            )
            raise ValueError(msg)
        if isinstance(self.same_site, str):
            self.same_site = self.same_site.lower()  # type: ignore[assignment]
        if not isinstance(self.cookie_name, str):
            msg = "cookie_name must be a str"
            raise TypeError(msg)
        if self.host_prefix and not self.cookie_name.startswith(HOST_PREFIX):
            self.cookie_name = HOST_PREFIX + self.cookie_name
        if self.secure is False and not self.insecure_development:
            msg = (
                "secure=False lets the session cookie travel over plain http; for local "
                "development pass insecure_development=True as well"
            )
            raise ValueError(msg)
        self._cookie = Cookie(
            name=self.cookie_name,
            secure=self.secure,
            http_only=self.http_only,
            same_site=self.same_site,
            path=self.path,
            domain=self.domain,
            persistent=self.persistent_cookie,
        )

    def _lifetimes(self, idle: Any, absolute: Any) -> Lifetimes | None:
        """Per-session lifetimes from a call's arguments; ``None`` if both are defaults."""
        if idle is DEFAULT and absolute is DEFAULT:
            return None
        return (
            self._idle if idle is DEFAULT else _timeout(idle, "idle_timeout"),
            self._absolute if absolute is DEFAULT else _timeout(absolute, "absolute_timeout"),
        )

    # -- keys, records, events ---------------------------------------------------------

    def key_of(self, sid: str) -> str:
        """Return the store key of the session *sid*: a hash, never the ID itself."""
        return f"{self.key_prefix}{hashlib.sha256(sid.encode()).hexdigest()}"

    @staticmethod
    def _valid(sid: object) -> bool:
        return isinstance(sid, str) and _ID_PATTERN.fullmatch(sid) is not None

    def _event(
        self, what: str, key: str | None, *, level: int = logging.INFO, detail: object = ""
    ) -> None:
        """Count and log a lifecycle event, naming the session by its hashed ID only."""
        self._counts[what] = self._counts.get(what, 0) + 1
        if _log.isEnabledFor(level):
            name = "-" if key is None else key[len(self.key_prefix) :][:16]
            _log.log(level, "session %s: %s%s", name, what.replace("_", " "), detail)

    def stats(self) -> SessionStats:
        """Counters of what happened to sessions since the manager was created."""
        fields = attrs.fields_dict(SessionStats)
        return SessionStats(**{k: v for k, v in self._counts.items() if k in fields})

    def check_transport(self, scheme: str, host: str | None) -> None:
        """Log a warning, once, when a Secure session cookie is set on a plain-http
        request to a host that browsers do not treat as secure (``localhost`` and
        ``127.0.0.1`` they do): neither a browser nor a test client sends that cookie
        back, so every request would start a new, empty session. The integrations call
        it with the request's scheme and ``Host``.
        """
        if not self.secure or scheme != "http" or self._warned_plain_http:
            return
        name = (host or "").lower()
        name = name[1 : name.index("]")] if name.startswith("[") else name.partition(":")[0]
        if name in _LOCAL_HOSTS or name.endswith(".localhost"):
            return
        self._warned_plain_http = True
        _log.warning(
            "a Secure session cookie was set on a plain-http request to %r: browsers and "
            "test clients never send it back, so each request starts a new session. Use "
            "https (with a test client: base_url='https://testserver'), or for local "
            "development only SessionManager(secure=False, insecure_development=True)",
            host,
        )

    def _slack(self, record: Record) -> float:
        """How far *seen* may lag: a tenth of the idle lifetime where the store keeps the
        exact idle deadline (``expire``), since the record is rewritten that seldom."""
        if record.idle is None or not callable(getattr(self.store, "expire", None)):
            return 0.0
        return record.idle / _REWRITE_FRACTION

    @staticmethod
    def _lifetime(record: Record, now: float) -> float:
        """The store TTL of *record* written at *now*: until its earlier deadline."""
        return max(record.deadline() - now, 1e-3)

    async def _drive(self, op: Op[T]) -> T:
        """Run the session operation *op* on the store's coroutines."""
        return await adrive(op, self._call, Exception)

    async def _call(self, step: _StoreCall) -> Any:
        return await getattr(self.store, step.method)(*step.args, **step.kwargs)

    @property
    def sync(self) -> SyncSessionManager:
        """This manager for threads and sync code (Flask, Django): the same sessions, the
        same rules, on the store's sync face (``store.sync``).

        Raises:
            TypeError: The store has no ``sync`` face.
        """
        return SyncSessionManager(self, _sync_face(self.store))

    def _read(self, key: str) -> Op[Any]:
        """The raw value at *key*, or `_CORRUPT` if the store cannot decode it (which no
        decoder accepts, and which is not ``None``: it is logged as corrupt)."""
        try:
            return (yield _store("get", key))
        except CorruptValueError:
            return _CORRUPT

    def _write(
        self, key: str, change: Callable[[Any], Any], ttl: Callable[[Any], float]
    ) -> Op[None]:
        """Apply *change* (old raw value -> new raw value, or None: delete) to *key*, with
        the TTL ``ttl(new)`` in the same step.

        Atomic on an `AtomicStore`; elsewhere a read, then a write: what a three-method
        store can do.
        """
        if isinstance(self.store, AtomicStore):
            try:
                yield _store("update", key, change, ttl=ttl)
            except CorruptValueError:  # not ours: replaced by what change makes of nothing
                yield _store("delete", key)
                yield _store("update", key, change, ttl=ttl)
            return
        new = change((yield from self._read(key)))
        if new is None:
            yield _store("delete", key)
        else:
            yield _store("set", key, new, ttl=ttl(new))

    # -- loading -----------------------------------------------------------------------

    def _resolve(self, sid: str) -> Op[Loaded | Renewal | None]:
        """The live session *sid* stands for; a `Renewal` to nothing; or ``None``.

        One read, a second one for a session tied to a user (its index), and one more
        for an old ID during its renewal grace.
        """
        key = self.key_of(sid)
        found = decode(raw := (yield from self._read(key)))
        renewal = False
        if isinstance(found, Renewal):
            if self.clock() >= found.until:  # the grace is over, whatever the store kept
                self._event("unknown_ids", key)
                return None
            if found.target is None:
                return found
            key, renewal = found.target, True
            found = decode(raw := (yield from self._read(key)))
        if not isinstance(found, Record):
            if raw is None:
                self._event("unknown_ids", key)
            else:
                self._event(
                    "corrupt", key, level=logging.WARNING, detail=" cannot be decoded (no session)"
                )
            return None
        now = self.clock()
        why = found.ended(now, slack=self._slack(found))
        if why is not None:
            self._event("expired", key)
            return None
        entry = None
        if found.user is not None:
            index = decode_index((yield from self._read(user_key(self.key_prefix, found.user))))
            entry = None if index is None else index.sessions.get(key)
            if entry is None:  # revoked, or the index was lost: never accepted
                self._event("revoked", key)
                return None
        return Loaded(key, found, renewal, entry)

    def _load(self, sid: object) -> Op[Loaded | None]:
        if not self._valid(sid):
            return None
        found = yield from self._resolve(sid)  # type: ignore[arg-type]
        return found if isinstance(found, Loaded) else None

    async def open(self, headers: list[tuple[bytes, bytes]]) -> Session:
        """The session of a request with these headers; a new, empty one if none.

        The first well-formed ID among the request's session cookies is used. A store
        failure does not raise here: the session is marked unavailable, per
        *on_store_error*.
        """
        return await self._drive(self._op_open(headers))

    def _op_open(self, headers: list[tuple[bytes, bytes]]) -> Op[Session]:
        values = self._cookie.values(headers)
        sid = next((value for value in values if self._valid(value)), None)
        if sid is None:
            if values:
                self._event("unknown_ids", None)
            return Session(self)
        try:
            found = yield from self._resolve(sid)
        except StoreError as e:
            self._event("store_errors", None, level=logging.ERROR, detail=f" while loading: {e}")
            return Session(self, unavailable=e)
        if isinstance(found, Renewal):  # logged out in another request a moment ago
            return Session(self, sid, renewal=True)
        if found is None:
            return Session(self)
        return Session(self, sid, found)

    def session_id(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """The first well-formed session ID in a request's ``Cookie`` headers, if any."""
        return next((v for v in self._cookie.values(headers) if self._valid(v)), None)

    # -- writing -----------------------------------------------------------------------

    def _apply(
        self, key: str, changed: Mapping[str, Any], removed: set[str]
    ) -> Op[Literal["live", "renewed", "gone"]]:
        """Apply key changes to the live session at *key*, atomically with its new TTL;
        never creates one.

        Returns ``"live"``; ``"gone"`` if it ended (nothing is written); or ``"renewed"``
        if it got a new ID meanwhile: the changes then land in the new session, within
        the renewal grace, and the caller must leave the cookie alone.
        """
        now = self.clock()
        lifetime = [0.0]
        renewed: list[Renewal] = []

        def change(current: Any) -> Any:
            record = decode(current)
            renewed[:] = [record] if isinstance(record, Renewal) and now < record.until else []
            if renewed:
                lifetime[0] = self._grace
                return current  # left as it is, for the rest of its grace
            if not isinstance(record, Record) or record.ended(now, slack=self._slack(record)):
                lifetime[0] = 0.0
                return None  # gone, ended or unreadable: never brought back
            record.data.update(changed)
            for name in removed:
                record.data.pop(name, None)
            record.seen = now
            lifetime[0] = self._lifetime(record, now)
            return record.encode()

        yield from self._write(key, change, lambda _: lifetime[0])
        if renewed:
            target = renewed[0].target
            if target is not None and target != key:
                yield from self._apply(target, changed, removed)
            return "renewed"
        return "live" if lifetime[0] > 0 else "gone"

    def _touch(self, found: Loaded) -> Op[None]:
        """A request on the session: its idle deadline starts again."""
        record = found.record
        if record.idle is None:
            return
        now = self.clock()
        if now - record.seen >= record.idle / _REWRITE_FRACTION:
            yield from self._apply(found.key, {}, set())  # the record's own idle clock
        elif callable(getattr(self.store, "expire", None)):
            yield _store("expire", found.key, min(record.idle, record.absolute_end() - now))
        entry = found.entry
        if record.absolute is None and entry is not None and entry.ends < now + record.idle:
            yield from self._extend(record.user, found.key, self._listed_until(record, now))

    def _index(self, user: Any, change: Callable[[UserIndex], Any]) -> Op[Any]:
        """Change the index of *user* atomically (pruning ended sessions), with its TTL;
        return what *change* returned. A corrupt index is rebuilt from empty."""
        now = self.clock()
        result: list[Any] = [None]
        lifetime = [0.0]

        def write(current: Any) -> Any:
            index = decode_index(current)
            if index is None:
                if current is not None:
                    _log.warning("session index of a user cannot be decoded; rebuilt")
                index = UserIndex()
            index.prune(now)
            result[0] = change(index)
            lifetime[0] = index.ttl(now)
            return index.encode() if index.sessions else None

        yield from self._write(user_key(self.key_prefix, user), write, lambda _: lifetime[0])
        return result[0]

    def _extend(self, user: Any, key: str, ends: float) -> Op[None]:
        def extend(index: UserIndex) -> None:
            entry = index.sessions.get(key)
            if entry is not None and entry.ends < ends:
                index.sessions[key] = attrs.evolve(entry, ends=ends)

        yield from self._index(user, extend)

    @staticmethod
    def _listed_until(record: Record, now: float) -> float:
        """How long the index keeps a session: until its absolute end, or for one with
        only an idle lifetime, two idle periods (extended when it is used past one)."""
        ends = record.absolute_end()
        if ends == math.inf and record.idle is not None:
            return now + 2 * record.idle
        return ends

    def _list(self, record: Record, key: str, *, replacing: str | None = None) -> Op[bool]:
        """Put the session at *key* in its user's index, in place of *replacing* if given;
        ``False`` if *replacing* is no longer listed (revoked meanwhile)."""
        ends = self._listed_until(record, self.clock())
        entry = Entry(record.created, ends, record.descriptor)

        def add(index: UserIndex) -> tuple[bool, list[str]]:
            if replacing is not None and index.sessions.pop(replacing, None) is None:
                return False, []
            return True, index.add(key, entry, self.max_sessions_per_user)

        listed, dropped = yield from self._index(record.user, add)
        for gone in dropped:
            self._event("revoked", gone)
            yield _store("delete", gone)
        if listed and callable(getattr(self.store, "touch", None)):
            # A login is a use of the session and of the index: an eviction policy
            # then ranks them above one-time anonymous sessions. Only a hint: the login
            # is done, so a store failing here does not undo it.
            try:
                yield _store("touch", key)
                yield _store("touch", user_key(self.key_prefix, record.user))
            except StoreError as e:
                self._event("store_errors", key, level=logging.WARNING, detail=f" on touch: {e}")
        return bool(listed)

    def _unlist(self, user: Any, keys: set[str]) -> Op[None]:
        def drop(index: UserIndex) -> None:
            for gone in keys:
                index.sessions.pop(gone, None)

        yield from self._index(user, drop)

    def _create(
        self, data: dict[str, Any], user: Any, descriptor: str | None, idle: Any, absolute: Any
    ) -> Op[tuple[str, Loaded]]:
        now = self.clock()
        sid = secrets.token_urlsafe(32)
        key = self.key_of(sid)
        record = Record(data, now, now, idle, absolute, user, descriptor)
        yield _store("set", key, record.encode(), ttl=self._lifetime(record, now))
        if user is not None:
            yield from self._list(record, key)
        self._event("created", key)
        return sid, Loaded(key, record, False, None)

    def _retire(self, key: str, target: str | None, *, grace: bool) -> Op[Record | None]:
        """Atomically take the live session at *key* out of use; return its record, or
        ``None`` if it was not live. With *grace*, the key holds a `Renewal` to *target*
        (the new session, or ``None``) for *renewal_grace*; otherwise it is deleted."""
        now = self.clock()
        taken: list[Record] = []

        def retire(current: Any) -> Any:
            record = decode(current)
            live = isinstance(record, Record) and not record.ended(now, slack=self._slack(record))
            taken[:] = [record] if live else []  # type: ignore[list-item]
            if live and grace and self._grace:
                return Renewal(target, now + self._grace).encode()
            return None

        yield from self._write(key, retire, lambda _: self._grace)
        return taken[0] if taken else None

    def _end(self, key: str, *, grace: bool) -> Op[bool]:
        """End the session at *key*; with *grace*, its old ID leaves the cookie alone for
        a while. Return whether it was live."""
        record = yield from self._retire(key, None, grace=grace)
        if record is None:
            return False
        self._event("ended", key)
        if record.user is not None:
            yield from self._unlist(record.user, {key})
        return True

    def _rotate(  # noqa: PLR0917 -- private, called twice
        self,
        key: str,
        user: Any,
        descriptor: str | None,
        changed: Mapping[str, Any],
        removed: set[str],
        lifetimes: Lifetimes | None = None,
    ) -> Op[tuple[str, Loaded] | None]:
        """Move the session at *key* to a new ID with these changes; ``None`` if it ended.

        The old key is replaced atomically by a renewal naming the new one (for
        *renewal_grace*), so no change is lost and no in-flight request clears the new
        cookie; if the session was revoked meanwhile, the new one is dropped.
        """
        sid = secrets.token_urlsafe(32)
        new_key = self.key_of(sid)
        record = yield from self._retire(key, new_key, grace=True)
        if record is None:
            return None
        now = self.clock()
        previous = record.user
        record.data.update(changed)
        for name in removed:
            record.data.pop(name, None)
        record.seen = now
        if user is not _KEEP:
            record.user = user
            record.descriptor = descriptor
        if lifetimes is not None:  # "remember me": its own lifetimes, from the login
            record.idle, record.absolute = lifetimes
            record.created = now
        yield _store("set", new_key, record.encode(), ttl=self._lifetime(record, now))
        if record.user is not None and not (
            yield from self._list(
                record, new_key, replacing=key if previous == record.user else None
            )
        ):
            yield _store("delete", new_key)  # revoked while it moved: stays revoked
            self._event("revoked", key)
            return None
        self._event("renewed", new_key)
        return sid, Loaded(new_key, record, False, None)

    def _headers_for(self, sid: str, record: Record) -> Headers:
        lifetime = record.absolute_end() - self.clock()
        return self._cookie.set_headers(sid, None if lifetime == math.inf else lifetime)

    def _principal_changed(
        self, session: Session, changed: dict[str, Any], removed: set[str]
    ) -> bool:
        """Rotate on a change of a principal key; start over if it held another value.
        Return whether the session started over (its changes are then new)."""
        touched = [k for k in self.principal_keys if k in changed or k in removed]
        if not touched or session._key is None:
            return False
        switched = any(
            session._saved.get(k) not in (None, "null") and k in changed and changed[k] is not None
            for k in touched
        )
        if switched:  # another principal: nothing of the previous one carries over
            login = session._login
            session.clear()
            session._data.update(changed)
            session._login = login
            return True
        session._rotate = True
        return False

    async def save(self, session: Session) -> Headers:
        """Write what changed in *session*; return the cookie headers a response needs.

        Used by the middleware at the start of each response, and by `Session.save`.
        A session that ended (``clear()``) is deleted; a new one is created only if it
        holds something; a session deleted or revoked meanwhile is not brought back. An
        old ID in its renewal grace never changes the cookie.

        Raises:
            TypeError: A value is not JSON-serializable; nothing is written.
            lapse.exceptions.StoreError: The store failed.
        """
        return await self._drive(self._op_save(session))

    def _op_save(self, session: Session) -> Op[Headers]:  # noqa: C901, PLR0911, PLR0912 -- one branch per outcome
        changed, removed = session.changes()  # raises before anything is written
        if session._unavailable is not None:
            return []
        if self._principal_changed(session, changed, removed):
            changed, removed = session.changes()
        headers: Headers = []
        if session._ending_key is not None:
            yield from self._end(session._ending_key, grace=True)
            headers = [] if session._renewal else self._cookie.clear_headers()
        key = session._key
        if session._renewal:
            if key and (changed or removed or session._rotate):
                yield from self._apply(key, changed, removed)
            elif key and session._record and not session._touched:
                yield from self._touch(Loaded(key, session._record, True, session._entry))
            elif session._data or session._login:
                _log.warning("a request with a renewed session ID wrote to no session; dropped")
            session._saved_as(session._id)
            return []
        if key is None:
            login = session._login
            if not session._data and login is None:
                session._saved_as(None)
                return headers
            user, descriptor, lifetimes = login or (None, None, None)
            idle, absolute = lifetimes or (self._idle, self._absolute)
            sid, loaded = yield from self._create(
                dict(session._data), user, descriptor, idle, absolute
            )
            if login is not None:
                self._event("logged_in", loaded.key)
            session._saved_as(sid, loaded)
            return self._headers_for(sid, loaded.record)
        if session._rotate:
            user, descriptor, lifetimes = session._login or (_KEEP, None, None)
            moved = yield from self._rotate(key, user, descriptor, changed, removed, lifetimes)
            if moved is None:  # it ended meanwhile
                session._saved_as(None)
                return self._cookie.clear_headers()
            sid, loaded = moved
            session._saved_as(sid, loaded)
            return self._headers_for(sid, loaded.record)
        if changed or removed:
            outcome = yield from self._apply(key, changed, removed)
            if outcome == "gone":  # deleted or revoked: stays so
                session._saved_as(None)
                return self._cookie.clear_headers()
            if outcome == "renewed":  # another request renewed it: its cookie stands
                session._saved_as(None)
                return []
        elif not session._touched and session._record is not None:
            yield from self._touch(Loaded(key, session._record, False, session._entry))
        session._saved_as(session._id)
        return headers

    # -- the public API ----------------------------------------------------------------

    async def create(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        user: Any = None,
        descriptor: str | None = None,
        idle_timeout: float | timedelta | None = DEFAULT,
        absolute_timeout: float | timedelta | None = DEFAULT,
    ) -> str:
        """Start a session holding *data*; return its new ID.

        *user* ties the session to a user (any JSON value: an id, a name) for
        `sessions_of` and `revoke_all`; *descriptor* describes the device for
        `sessions_of`. *idle_timeout* and *absolute_timeout* override the manager's for
        this session ("remember me"); the cookie then lives as long.

        Raises:
            TypeError: *data* is not a mapping of JSON-serializable values.
        """
        return await self._drive(
            self._op_create(
                data,
                user=user,
                descriptor=descriptor,
                idle_timeout=idle_timeout,
                absolute_timeout=absolute_timeout,
            )
        )

    def _op_create(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        user: Any = None,
        descriptor: str | None = None,
        idle_timeout: float | timedelta | None = DEFAULT,
        absolute_timeout: float | timedelta | None = DEFAULT,
    ) -> Op[str]:
        data = _check_data({} if data is None else data)
        idle, absolute = self._lifetimes(idle_timeout, absolute_timeout) or (
            self._idle,
            self._absolute,
        )
        if user is not None:
            dumps(user)
        if descriptor is not None and not isinstance(descriptor, str):
            msg = f"descriptor must be a str, not {type(descriptor).__name__}"
            raise TypeError(msg)
        sid, _ = yield from self._create(data, user, descriptor, idle, absolute)
        return sid

    def cookie_headers(self, sid: str, *, lifetime: float | None = DEFAULT) -> Headers:
        """The headers that set the cookie of *sid*: Set-Cookie, no-store, Vary.

        *lifetime* is the cookie's Max-Age in seconds (the manager's absolute timeout by
        default; ``None``: a browser-session cookie).
        """
        return self._cookie.set_headers(sid, self._absolute if lifetime is DEFAULT else lifetime)

    def clear_cookie_headers(self) -> Headers:
        """The headers that clear the cookie, with the Path and Domain it was set with."""
        return self._cookie.clear_headers()

    async def get(self, sid: str) -> dict[str, Any] | None:
        """Return the data of session *sid*, or ``None`` if it is unknown or has ended.

        Counts as activity: the idle deadline starts again.
        """
        return await self._drive(self._op_get(sid))

    def _op_get(self, sid: str) -> Op[dict[str, Any] | None]:
        found = yield from self._load(sid)
        if found is None:
            return None
        yield from self._touch(found)
        return dict(found.record.data)

    async def update(self, sid: str, data: Mapping[str, Any]) -> bool:
        """Merge *data* into session *sid* (shallow); return ``False`` if it is unknown.

        The change and the session's new deadline are written in one atomic step.

        Raises:
            TypeError: *data* is not a mapping of JSON-serializable values.
        """
        return await self._drive(self._op_update(sid, data))

    def _op_update(self, sid: str, data: Mapping[str, Any]) -> Op[bool]:
        data = _check_data(data)
        found = yield from self._load(sid)
        return found is not None and (yield from self._apply(found.key, data, set())) != "gone"

    async def regenerate(self, sid: str, *, user: Any = _KEEP) -> str | None:
        """Move session *sid* to a new ID; return it, or ``None`` if *sid* is unknown.

        The data, the creation time (so the absolute deadline) and the user stay; the
        old ID then stands for the new session for *renewal_grace* only. Call it when a
        user logs in (session fixation), with *user* to tie the session to that user.
        If the session belongs to another user, it ends and the new one starts empty.
        """
        return await self._drive(self._op_regenerate(sid, user=user))

    def _op_regenerate(self, sid: str, *, user: Any = _KEEP) -> Op[str | None]:
        found = yield from self._load(sid)
        if found is None:
            return None
        if user is not _KEEP:
            dumps(user)
            if found.record.user is not None and found.record.user != user:
                yield from self._end(found.key, grace=True)
                new, _ = yield from self._create({}, user, None, self._idle, self._absolute)
                return new
        moved = yield from self._rotate(found.key, user, found.record.descriptor, {}, set())
        return None if moved is None else moved[0]

    async def delete(self, sid: str, response: Any = None) -> bool:
        """End session *sid*; return whether it existed. Clears the cookie on *response*.

        *response* is anything with ``headers.append(name, value)`` (a Starlette
        `Response`), or ``None``.
        """
        return await self._drive(self._op_delete(sid, response))

    def _op_delete(self, sid: str, response: Any = None) -> Op[bool]:
        existed = self._valid(sid) and (yield from self._end(self.key_of(sid), grace=False))
        if response is not None:
            for name, value in self._cookie.clear_headers():
                response.headers.append(name.decode(), value.decode())
        return existed

    async def from_request(self, request: Any) -> dict[str, Any] | None:
        """The session data of a request or WebSocket (anything with ``.cookies``)."""
        return await self.get(request.cookies.get(self.cookie_name, ""))

    def set_cookie(self, response: Any, sid: str) -> None:
        """Put the session cookie for *sid* on *response* (``headers.append``)."""
        for name, value in self.cookie_headers(sid):
            response.headers.append(name.decode(), value.decode())

    # -- users -------------------------------------------------------------------------

    async def sessions_of(self, user: Any) -> list[SessionInfo]:
        """List the live sessions of *user*, oldest first, without scanning the store.

        Never shows IDs: each session is named by its store key, with when it was
        created, last seen and ends, and the descriptor given at login.

        Runtime complexity: `O(s)` store reads for *s* sessions of the user.
        """
        return await self._drive(self._op_sessions_of(user))

    def _op_sessions_of(self, user: Any) -> Op[list[SessionInfo]]:
        index = decode_index((yield from self._read(user_key(self.key_prefix, user))))
        if index is None:
            return []
        now = self.clock()
        found, gone = [], set()
        ttl = getattr(self.store, "ttl", None)
        for key, entry in index.sessions.items():
            record = decode((yield from self._read(key)))
            if not isinstance(record, Record) or record.ended(now, slack=self._slack(record)):
                gone.add(key)
                continue
            seen, expires = record.seen, record.deadline()
            if ttl is not None and record.idle is not None:
                left = yield _store("ttl", key)
                if left is not None and left != math.inf:
                    expires = min(now + left, record.absolute_end())
                    seen = max(seen, min(now, expires - record.idle))
            found.append(SessionInfo(key, record.created, seen, expires, entry.descriptor))
        if gone:
            yield from self._unlist(user, gone)
        return sorted(found, key=lambda info: info.created)

    async def revoke_all(self, user: Any, *, keep: str | None = None) -> int:
        """End every session of *user* but the one with ID *keep*; return how many ended.

        From the moment it returns, no session of *user* created before it is accepted
        again, whatever the store evicted or lost meanwhile: a session of a user is only
        valid while the user's index lists it.
        """
        return await self._drive(self._op_revoke_all(user, keep=keep))

    def _op_revoke_all(self, user: Any, *, keep: str | None = None) -> Op[int]:
        kept = self.key_of(keep) if keep is not None and self._valid(keep) else None

        def drop(index: UserIndex) -> list[str]:
            revoked = [key for key in index.sessions if key != kept]
            for key in revoked:
                del index.sessions[key]
            return revoked

        revoked: list[str] = yield from self._index(user, drop)
        ended = 0
        for key in revoked:
            ended += bool((yield _store("delete", key)))
            self._event("revoked", key)
        return ended


def _sync_face(store: object) -> Any:
    sync = getattr(store, "sync", None)
    if sync is None:
        msg = (
            f"SessionManager.sync needs a store with a sync face (store.sync), which "
            f"{type(store).__name__} has not: use MemoryStore or RedisStore"
        )
        raise TypeError(msg)
    return sync


@attrs.frozen
class SyncSessionManager:
    """A `SessionManager`'s operations as plain methods, for threads and sync code:
    ``manager.sync``.

    The same sessions, cookies and rules as the manager it comes from (the operations
    are written once and run here on the store's sync face), with no event loop and no
    thread hop per call. Each method behaves and raises as the coroutine of the same
    name.
    """

    manager: SessionManager
    store: Any  # the store's sync face

    def _drive(self, op: Op[T]) -> T:
        return drive(op, self._call, Exception)

    def _call(self, step: _StoreCall) -> Any:
        return getattr(self.store, step.method)(*step.args, **step.kwargs)

    def open(self, headers: list[tuple[bytes, bytes]]) -> Session:
        """The session of a request with these headers. See `SessionManager.open`."""
        return self._drive(self.manager._op_open(headers))

    def save(self, session: Session) -> Headers:
        """Write what changed in *session*. See `SessionManager.save`."""
        return self._drive(self.manager._op_save(session))

    def create(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        user: Any = None,
        descriptor: str | None = None,
        idle_timeout: float | timedelta | None = DEFAULT,
        absolute_timeout: float | timedelta | None = DEFAULT,
    ) -> str:
        """Start a session holding *data*; return its ID. See `SessionManager.create`."""
        op = self.manager._op_create(
            data,
            user=user,
            descriptor=descriptor,
            idle_timeout=idle_timeout,
            absolute_timeout=absolute_timeout,
        )
        return self._drive(op)

    def get(self, sid: str) -> dict[str, Any] | None:
        """Return the data of session *sid*. See `SessionManager.get`."""
        return self._drive(self.manager._op_get(sid))

    def update(self, sid: str, data: Mapping[str, Any]) -> bool:
        """Merge *data* into session *sid*. See `SessionManager.update`."""
        return self._drive(self.manager._op_update(sid, data))

    def regenerate(self, sid: str, *, user: Any = _KEEP) -> str | None:
        """Move session *sid* to a new ID. See `SessionManager.regenerate`."""
        return self._drive(self.manager._op_regenerate(sid, user=user))

    def delete(self, sid: str, response: Any = None) -> bool:
        """End session *sid*. See `SessionManager.delete`."""
        return self._drive(self.manager._op_delete(sid, response))

    def sessions_of(self, user: Any) -> list[SessionInfo]:
        """List the live sessions of *user*. See `SessionManager.sessions_of`."""
        return self._drive(self.manager._op_sessions_of(user))

    def revoke_all(self, user: Any, *, keep: str | None = None) -> int:
        """End every session of *user* but *keep*. See `SessionManager.revoke_all`."""
        return self._drive(self.manager._op_revoke_all(user, keep=keep))
