"""Server-side sessions on any `lapse.Store`: `SessionManager`, `Session`, `SessionMiddleware`.

The manager imports no web framework. A session is a JSON record in the store under a key
derived from a hash of its ID, so a dump of the store gives no usable cookie:

    {"v": 1, "data": {...}, "created": t, "seen": t, "idle": s|null, "abs": s|null,
     "user": u|null}

Times are wall-clock seconds (``time.time()``, looked up at call time), so several
processes and freezegun agree. The record's store TTL is the time left before the
earlier of its idle and absolute deadlines, so the store purges it by itself; the manager
also checks both deadlines on every read, so a store that ignores TTLs never yields an
ended session.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import re
import secrets
import time

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from datetime import timedelta
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from ._clock import as_seconds
from ._memory import MemoryStore
from ._policies import LRU
from ._store import Store


_log = logging.getLogger("lapse.sessions")
_VERSION = 1
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32): 256 bits
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a cookie name (RFC 6265 token)
_REWRITE_FRACTION = 10  # a three-method store rewrites "seen" once per idle / 10
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
_DEFAULT: Any = object()
Headers = list[tuple[bytes, bytes]]


def wall_clock() -> float:
    """Return ``time.time()``, looked up at call time (so freezegun moves it)."""
    return time.time()


def _timeout(value: float | timedelta | None, what: str) -> float | None:
    return None if value is None else as_seconds(value, what=what)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@runtime_checkable
class AtomicStore(Protocol):
    """A store that can read, change and write one key with nothing in between.

    Sessions use it, when the store has it, so that two requests on one session never
    lose each other's changes and a save never brings back a deleted session.
    `lapse.MemoryStore` has it; a store without it gets a plain read then write.

    Added in 0.2.
    """

    async def update(
        self, key: str, fn: Callable[[Any], Any], *, ttl: float | timedelta | None = None
    ) -> Any:
        """Set *key* to ``fn(value or None)`` atomically; ``None`` from *fn* deletes it."""
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

    Added in 0.2.
    """

    key: str
    created: float
    last_seen: float
    expires: float


class Session(MutableMapping[str, Any]):
    """``request.session``: the data of one session, a mutable mapping of JSON values.

    Changes are tracked by comparing each key's JSON with what was loaded, so changes
    deep inside (appending to a list in the session) count too. `clear` ends the
    session; `regenerate` gives it a new ID when it is saved (call it on login).

    Added in 0.2.
    """

    def __init__(self, manager: SessionManager, sid: str | None, data: dict[str, Any]) -> None:
        self._manager = manager
        self._id = sid
        self._data = data
        self._saved = {key: _dumps(value) for key, value in data.items()}
        self.ended = False
        """Whether `clear` ended the session (the middleware then deletes it)."""
        self.regenerating = False
        """Whether `regenerate` asked for a new ID at the next save."""
        self.login_user: Any = None
        """The user `login` ties the session to at the next save, if any."""

    @property
    def id(self) -> str | None:
        """The session ID, or ``None`` for a session not stored yet."""
        return self._id

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self.ended = False

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Session(keys={sorted(self._data)!r})"

    def clear(self) -> None:
        """Empty the session and end it: its store entry is deleted, its cookie cleared."""
        self._data.clear()
        self.ended = True

    def regenerate(self) -> None:
        """Give the session a new ID when it is saved; the old ID dies at once then."""
        self.regenerating = True

    def login(self, user: Any) -> None:
        """On login: a new ID at the next save, and the session tied to *user* (any JSON
        value), so that `SessionManager.revoke_all` and `SessionManager.sessions_of` see it.
        """
        _dumps(user)
        self.regenerating = True
        self.login_user = user
        self.ended = False

    def mark_accessed(self) -> None:
        """Starlette's hook when ``request.session`` is read; nothing to do."""

    def changes(self) -> tuple[dict[str, Any], set[str]]:
        """Return the keys set or changed since the last save, and the keys removed.

        Raises:
            TypeError: A value is not JSON-serializable.
        """
        saved = self._saved
        changed = {k: v for k, v in self._data.items() if saved.get(k) != _dumps(v)}
        return changed, set(saved) - set(self._data)

    @property
    def changed(self) -> bool:
        """Whether saving would write anything."""
        changed, removed = self.changes()
        return bool(changed or removed or self.ended or self.regenerating)

    def _saved_as(self, sid: str | None) -> None:
        self._id = sid
        self._saved = {key: _dumps(value) for key, value in self._data.items()}
        self.regenerating = False
        self.login_user = None

    async def save(self) -> str | None:
        """Write the changes now (for a WebSocket, which has no response to wait for).

        Returns the session ID (a new one if the session was created or regenerated),
        or ``None`` if the session is ended or empty. A new ID must reach the client
        some other way, since there is no response to carry a cookie.
        """
        await self._manager.save(self)
        return self._id


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        msg = (
            "session values must be JSON-serializable "
            f"(str, int, float, bool, None, list, dict): {e}"
        )
        raise TypeError(msg) from None


def _check_data(data: object) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        msg = f"session data must be a mapping, not {type(data).__name__}"
        raise TypeError(msg)
    data = dict(data)
    for key in data:
        if not isinstance(key, str):
            msg = f"session keys must be str, not {type(key).__name__}"
            raise TypeError(msg)
    _dumps(data)
    return data


@attrs.define(kw_only=True, eq=False)
class SessionManager:
    """Server-side sessions with idle and absolute lifetimes, on any `lapse.Store`.

    ::

        manager = SessionManager(idle_timeout=timedelta(minutes=30))
        sid = await manager.create({"user_id": 1}, user=1)
        await manager.get(sid)               # {'user_id': 1}, and counts as activity
        await manager.update(sid, {"role": "admin"})
        new_sid = await manager.regenerate(sid)   # on login: the old ID is dead

    IDs are 256 random bits from `secrets`; the store key is a SHA-256 of the ID. Only
    IDs the manager issued are ever used: an unknown, malformed or oversized ID is no
    session, and nothing is stored for it.

    Attributes:
        store: Any `lapse.Store`. The default is a `MemoryStore` bounded to 100 000
            entries by `LRU`. A store with ``update`` (`AtomicStore`) makes concurrent
            saves safe; one with ``expire`` refreshes the idle deadline without rewriting
            the session.
        idle_timeout: A session ends this long after its last request (seconds or a
            timedelta; ``None``: never). Default 30 minutes.
        absolute_timeout: A session ends this long after it was created, whatever
            happens. Default 8 hours.
        cookie_name: The cookie's name; a name starting ``__Host-`` requires *secure*,
            ``path="/"`` and no *domain*, as browsers do.
        secure: Send the cookie over HTTPS only (browsers count ``http://localhost``
            and ``http://127.0.0.1`` as secure too). ``False`` needs
            *insecure_development*.
        http_only: Hide the cookie from JavaScript.
        same_site: ``"lax"``, ``"strict"`` or ``"none"`` (which requires *secure*).
        path: The cookie's path.
        domain: The cookie's domain, or ``None`` for the host only.
        insecure_development: Allow ``secure=False``, for plain http during development.
        key_prefix: Prepended to the store keys of sessions (and ``user:`` indexes).
        clock: Wall-clock seconds; the default reads ``time.time()`` at each call.

    Raises:
        TypeError: An argument has the wrong type (a store without async get, set and
            delete, for instance).
        ValueError: A timeout is zero, negative or NaN; a cookie setting is insecure or
            contradicts a ``__Host-`` name.

    Added in 0.2.
    """

    store: Store = attrs.field(factory=lambda: MemoryStore(eviction=LRU(100_000)))
    idle_timeout: float | timedelta | None = timedelta(minutes=30)
    absolute_timeout: float | timedelta | None = timedelta(hours=8)
    cookie_name: str = "session_id"
    secure: bool = True
    http_only: bool = True
    same_site: Literal["lax", "strict", "none"] = "lax"
    path: str = "/"
    domain: str | None = None
    insecure_development: bool = False
    key_prefix: str = "session:"
    clock: Callable[[], float] = wall_clock
    _idle: float | None = attrs.field(init=False)
    _absolute: float | None = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:  # noqa: C901, PLR0912 -- one check per argument
        for name in ("get", "set", "delete"):
            if not inspect.iscoroutinefunction(getattr(self.store, name, None)):
                msg = f"store must be a lapse.Store (async get, set, delete), got {self.store!r}"
                raise TypeError(msg)
        self._idle = _timeout(self.idle_timeout, "idle_timeout")
        self._absolute = _timeout(self.absolute_timeout, "absolute_timeout")
        for name in ("secure", "http_only", "insecure_development"):
            if not isinstance(getattr(self, name), bool):
                msg = f"{name} must be a bool"
                raise TypeError(msg)
        for name in ("cookie_name", "path", "key_prefix"):
            if not isinstance(getattr(self, name), str):
                msg = f"{name} must be a str"
                raise TypeError(msg)
        if not _TOKEN.fullmatch(self.cookie_name):
            msg = f"cookie_name {self.cookie_name!r} is not a valid cookie name"
            raise ValueError(msg)
        if self.domain is not None and not isinstance(self.domain, str):
            msg = "domain must be a str or None"
            raise TypeError(msg)
        if not isinstance(self.same_site, str) or self.same_site.lower() not in {
            "lax",
            "strict",
            "none",
        }:
            msg = f"same_site must be 'lax', 'strict' or 'none', not {self.same_site!r}"
            raise ValueError(msg)
        self.same_site = self.same_site.lower()  # type: ignore[assignment]
        if not self.path.startswith("/") or any(c in self.path for c in ";\r\n"):
            msg = f"path must start with '/' and hold no ';', got {self.path!r}"
            raise ValueError(msg)
        if not self.secure and not self.insecure_development:
            msg = (
                "secure=False lets the session cookie travel over plain http; for local "
                "development pass insecure_development=True as well"
            )
            raise ValueError(msg)
        if self.same_site == "none" and not self.secure:
            msg = "same_site='none' requires secure=True (browsers refuse it otherwise)"
            raise ValueError(msg)
        if self.cookie_name.startswith("__Host-") and (
            not self.secure or self.path != "/" or self.domain is not None
        ):
            msg = "a __Host- cookie needs secure=True, path='/' and domain=None"
            raise ValueError(msg)
        if self.cookie_name.startswith("__Secure-") and not self.secure:
            msg = "a __Secure- cookie needs secure=True"
            raise ValueError(msg)

    # -- keys and records --------------------------------------------------------------

    def key_of(self, sid: str) -> str:
        """Return the store key of the session *sid*: a hash, never the ID itself."""
        return f"{self.key_prefix}{_digest(sid)}"

    def _user_key(self, user: object) -> str:
        return f"{self.key_prefix}user:{_digest(json.dumps(user, sort_keys=True))}"

    @staticmethod
    def _valid(sid: object) -> bool:
        return isinstance(sid, str) and _ID_PATTERN.fullmatch(sid) is not None

    def _decode(self, raw: Any, key: str) -> dict[str, Any] | None:
        """The record stored at *key*, or ``None`` (logged) if it cannot be read."""
        if raw is None:
            return None
        try:
            record = json.loads(raw) if isinstance(raw, (str, bytes)) else None
            if (
                not isinstance(record, dict)
                or record.get("v") != _VERSION
                or not isinstance(record.get("data"), dict)
                or not all(isinstance(record.get(f), (int, float)) for f in ("created", "seen"))
            ):
                record = None
        except ValueError:
            record = None
        if record is None:
            _log.warning("session record %s cannot be decoded; treated as no session", key)
        return record

    def _deadline(self, record: Mapping[str, Any]) -> float:
        idle, absolute = record.get("idle"), record.get("abs")
        ends = math.inf
        if idle is not None:
            ends = min(ends, record["seen"] + idle)
        if absolute is not None:
            ends = min(ends, record["created"] + absolute)
        return ends

    def _lifetime(self, record: Mapping[str, Any]) -> float:
        """The store TTL of *record* written now: until its earlier deadline."""
        return max(self._deadline(record) - self.clock(), 1e-3)

    def _expires_with_store(self) -> bool:
        """Whether the store can move a deadline alone (and so keeps the idle clock)."""
        return callable(getattr(self.store, "expire", None))

    def _alive(self, record: Mapping[str, Any], now: float) -> bool:
        absolute = record.get("abs")
        if absolute is not None and now >= record["created"] + absolute:
            return False
        idle = record.get("idle")
        if idle is None or self._expires_with_store():
            return True  # the store's own deadline is the idle clock
        return bool(now < record["seen"] + idle)

    async def _load(self, sid: object, *, touch: bool = True) -> dict[str, Any] | None:
        """The live record of *sid*, counting a use of it; ``None`` if there is none."""
        if not self._valid(sid):
            return None
        key = self.key_of(sid)  # type: ignore[arg-type]
        record = self._decode(await self.store.get(key), key)
        now = self.clock()
        if record is None or not self._alive(record, now):
            return None
        if touch and record.get("idle") is not None:
            await self._touch(key, record, now)
        return record

    async def _touch(self, key: str, record: dict[str, Any], now: float) -> None:
        """A request on the session: its idle deadline starts again."""
        lifetime = min(record["idle"], self._absolute_left(record, now))
        if self._expires_with_store():
            await self.store.expire(key, lifetime)  # type: ignore[attr-defined]
            return
        if now - record["seen"] >= record["idle"] / _REWRITE_FRACTION:
            record["seen"] = now
            await self._write(key, lambda current: self._reseen(current, now), self._record_ttl)

    def _reseen(self, current: Any, now: float) -> Any:
        record = self._decode(current, "")
        if record is None:
            return None
        record["seen"] = now
        return json.dumps(record)

    @staticmethod
    def _absolute_left(record: Mapping[str, Any], now: float) -> float:
        absolute = record.get("abs")
        return math.inf if absolute is None else record["created"] + absolute - now

    async def _write(
        self, key: str, change: Callable[[Any], Any], ttl: Callable[[Any], float]
    ) -> Any:
        """Apply *change* (old raw value -> new raw value, or None: delete) to *key*.

        Atomic on an `AtomicStore` (the deadline, ``ttl(new)``, is set right after);
        elsewhere a read, then a write: what a three-method store can do.
        """
        if isinstance(self.store, AtomicStore):
            new = await self.store.update(key, change, ttl=math.inf)
            if new is not None:
                await self._set_deadline(key, ttl(new))
            return new
        new = change(await self.store.get(key))
        if new is None:
            await self.store.delete(key)
        else:
            await self.store.set(key, new, ttl=ttl(new))
        return new

    def _record_ttl(self, raw: str) -> float:
        """`_lifetime` of a record as stored (its JSON)."""
        return self._lifetime(json.loads(raw))

    async def _set_deadline(self, key: str, ttl: float) -> None:
        if ttl == math.inf:
            persist = getattr(self.store, "persist", None)
            if persist is not None:
                await persist(key)
            return
        expire = getattr(self.store, "expire", None)
        if expire is not None:
            await expire(key, ttl)

    # -- the public API ----------------------------------------------------------------

    async def create(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        user: Any = None,
        idle_timeout: float | timedelta | None = _DEFAULT,
        absolute_timeout: float | timedelta | None = _DEFAULT,
    ) -> str:
        """Start a session holding *data*; return its new ID.

        *user* ties the session to a user (any JSON value: an id, a name) for
        `sessions_of` and `revoke_all`. *idle_timeout* and *absolute_timeout* override the
        manager's for this session ("remember me").

        Raises:
            TypeError: *data* is not a mapping of JSON-serializable values.
        """
        data = _check_data({} if data is None else data)
        idle = self._idle if idle_timeout is _DEFAULT else _timeout(idle_timeout, "idle_timeout")
        absolute = (
            self._absolute
            if absolute_timeout is _DEFAULT
            else _timeout(absolute_timeout, "absolute_timeout")
        )
        if user is not None:
            _dumps(user)
        now = self.clock()
        sid = secrets.token_urlsafe(32)
        record = {"v": _VERSION, "data": data, "created": now, "seen": now, "idle": idle}
        record.update({"abs": absolute, "user": user})
        raw = json.dumps(record)
        await self.store.set(self.key_of(sid), raw, ttl=self._lifetime(record))
        if user is not None:
            await self._index(user, add=self.key_of(sid), record=record)
        return sid

    async def get(self, sid: str) -> dict[str, Any] | None:
        """Return the data of session *sid*, or ``None`` if it is unknown or has ended.

        Counts as activity: the idle deadline starts again.
        """
        record = await self._load(sid)
        return None if record is None else dict(record["data"])

    async def update(self, sid: str, data: Mapping[str, Any]) -> bool:
        """Merge *data* into session *sid* (shallow); return ``False`` if it is unknown.

        Raises:
            TypeError: *data* is not a mapping of JSON-serializable values.
        """
        return await self._apply(sid, _check_data(data), set())

    async def _apply(self, sid: str | None, changed: dict[str, Any], removed: set[str]) -> bool:
        """Apply key changes to a live session atomically; never creates one."""
        if not self._valid(sid):
            return False
        key = self.key_of(sid)  # type: ignore[arg-type]
        now = self.clock()
        alive = [False]

        def change(current: Any) -> Any:
            record = self._decode(current, key)
            if record is None or not self._alive(record, now):
                return None  # gone, ended or unreadable: never brought back
            record["data"].update(changed)
            for name in removed:
                record["data"].pop(name, None)
            record["seen"] = now
            alive[0] = True
            return json.dumps(record)

        await self._write(key, change, self._record_ttl)
        return alive[0]

    async def save(self, session: Session) -> Headers:  # noqa: PLR0911 -- one per outcome
        """Write what changed in *session*; return the cookie headers a response needs.

        Used by the middleware at the start of each response, and by `Session.save`.
        A session that ended (``clear()``) is deleted; a new one is created only if it
        holds something; a session deleted or revoked meanwhile is not brought back.

        Raises:
            TypeError: A value is not JSON-serializable; nothing is written.
        """
        changed, removed = session.changes()  # raises before anything is written
        if session.ended:
            if session.id is not None:
                await self.delete(session.id)
                session._saved_as(None)  # noqa: SLF001
                return self.clear_cookie_headers()
            return []
        sid = session.id
        if sid is None:
            if not session._data and session.login_user is None:  # noqa: SLF001 -- anonymous
                return []
            sid = await self.create(session._data, user=session.login_user)  # noqa: SLF001
            session._saved_as(sid)  # noqa: SLF001
            return self.cookie_headers(sid)
        headers: Headers = []
        if session.regenerating:
            new = await self.regenerate(sid, user=session.login_user)
            if new is None:  # it ended meanwhile
                session._saved_as(None)  # noqa: SLF001
                return self.clear_cookie_headers()
            sid = new
            headers = self.cookie_headers(sid)
        if (changed or removed) and not await self._apply(sid, changed, removed):
            session._saved_as(None)  # noqa: SLF001 -- deleted or revoked: stays so
            return self.clear_cookie_headers()
        session._saved_as(sid)  # noqa: SLF001
        return headers

    async def regenerate(self, sid: str, *, user: Any = None) -> str | None:
        """Move session *sid* to a new ID; return it, or ``None`` if *sid* is unknown.

        The data, the creation time (so the absolute deadline) and the user stay; the
        old ID is dead at once. Call it when a user logs in (session fixation), with
        *user* to tie the session to that user from now on.
        """
        record = await self._load(sid, touch=False)
        if record is None:
            return None
        new = secrets.token_urlsafe(32)
        now = self.clock()
        record["seen"] = now
        previous = record.get("user")
        if user is not None:
            _dumps(user)
            record["user"] = user
        old_key, new_key = self.key_of(sid), self.key_of(new)
        await self.store.set(new_key, json.dumps(record), ttl=self._lifetime(record))
        await self.store.delete(old_key)
        if previous is not None and previous != record["user"]:
            await self._index(previous, drop={old_key})
        if record.get("user") is not None:
            await self._index(record["user"], add=new_key, drop={old_key}, record=record)
        return new

    async def delete(self, sid: str, response: Any = None) -> bool:
        """End session *sid*; return whether it existed. Clears the cookie on *response*.

        *response* is anything with ``headers.append(name, value)`` (a Starlette
        `Response`), or ``None``.
        """
        existed = False
        if self._valid(sid):
            key = self.key_of(sid)
            record = self._decode(await self.store.get(key), key)
            existed = await self.store.delete(key) is True
            if record is not None and record.get("user") is not None:
                await self._index(record["user"], drop={key})
        if response is not None:
            for name, value in self.clear_cookie_headers():
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

    async def _index(
        self,
        user: Any,
        *,
        add: str | None = None,
        drop: set[str] | frozenset[str] = frozenset(),
        record: Mapping[str, Any] | None = None,
    ) -> None:
        """Add and drop session keys in the index of *user*: ``{key: created}``."""
        key = self._user_key(user)
        now = self.clock()
        # A session may live until its absolute deadline (activity keeps moving its idle
        # one): the index must live as long.
        ends = now + self._absolute_left(record, now) if record is not None else now

        def change(current: Any) -> Any:
            index = json.loads(current) if isinstance(current, str) else {}
            sessions = index.get("sessions", {})
            for gone in drop:
                sessions.pop(gone, None)
            if add is not None:
                sessions[add] = now
            if not sessions:
                return None
            index["sessions"] = sessions
            index["ends"] = max(index.get("ends", now), ends)
            return json.dumps(index)

        # The index lives as long as the longest of its sessions can.
        await self._write(key, change, lambda raw: max(json.loads(raw)["ends"] - now, 1e-3))

    async def sessions_of(self, user: Any) -> list[SessionInfo]:
        """List the live sessions of *user*, oldest first, without scanning the store.

        Runtime complexity: `O(s)` store reads for *s* sessions of the user.
        """
        raw = await self.store.get(self._user_key(user))
        sessions = json.loads(raw).get("sessions", {}) if isinstance(raw, str) else {}
        now = self.clock()
        found, gone = [], set()
        for key in sessions:
            record = self._decode(await self.store.get(key), key)
            if record is None or not self._alive(record, now):
                gone.add(key)
                continue
            seen = record["seen"]
            expires = self._deadline(record)
            ttl = getattr(self.store, "ttl", None)
            if ttl is not None and record.get("idle") is not None:
                left = await ttl(key)
                if left is not None and left != math.inf:
                    expires = now + left
                    seen = max(seen, min(now, expires - record["idle"]))
            found.append(SessionInfo(key, record["created"], seen, expires))
        if gone:
            await self._index(user, drop=gone)
        return sorted(found, key=lambda info: info.created)

    async def revoke_all(self, user: Any, *, keep: str | None = None) -> int:
        """End every session of *user* but the one with ID *keep*; return how many ended."""
        raw = await self.store.get(self._user_key(user))
        sessions = json.loads(raw).get("sessions", {}) if isinstance(raw, str) else {}
        kept = self.key_of(keep) if keep is not None and self._valid(keep) else None
        ended = 0
        gone = set()
        for key in sessions:
            if key != kept:
                ended += bool(await self.store.delete(key))
                gone.add(key)
        if gone:
            await self._index(user, drop=gone)
        return ended

    # -- cookies -----------------------------------------------------------------------

    def _attributes(self) -> str:
        parts = [f"Path={self.path}"]
        if self.domain is not None:
            parts.append(f"Domain={self.domain}")
        if self.http_only:
            parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        parts.append(f"SameSite={self.same_site.capitalize()}")
        return "; ".join(parts)

    def cookie_headers(self, sid: str) -> Headers:
        """The headers that set the cookie of *sid*: Set-Cookie, no-store, Vary."""
        max_age = "" if self._absolute is None else f"; Max-Age={int(self._absolute)}"
        cookie = f"{self.cookie_name}={sid}{max_age}; {self._attributes()}"
        return [(b"set-cookie", cookie.encode()), *_PRIVATE]

    def clear_cookie_headers(self) -> Headers:
        """The headers that clear the cookie, with the Path and Domain it was set with."""
        cookie = f"{self.cookie_name}=; Max-Age=0; Expires={_EPOCH}; {self._attributes()}"
        return [(b"set-cookie", cookie.encode()), *_PRIVATE]

    def session_id(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """The well-formed session ID in a request's ``Cookie`` headers, if any."""
        name = self.cookie_name
        for header, value in headers:
            if header.lower() != b"cookie" or len(value) > 8192:  # noqa: PLR2004
                continue
            for part in value.decode("latin-1").split(";"):
                cookie, _, sid = part.strip().partition("=")
                if cookie == name and self._valid(sid):
                    return sid
        return None

    async def open(self, headers: list[tuple[bytes, bytes]]) -> Session:
        """The session of a request with these headers; a new, empty one if none."""
        sid = self.session_id(headers)
        record = None if sid is None else await self._load(sid)
        if record is None:
            return Session(self, None, {})
        return Session(self, sid, dict(record["data"]))


_PRIVATE: Headers = [(b"cache-control", b"no-store"), (b"vary", b"Cookie")]
