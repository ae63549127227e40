"""Django sessions on a lapse store: ``SESSION_ENGINE = "lapse.django.sessions"``.

Configured by ``settings.LAPSE_SESSIONS`` (every key optional):

```python
LAPSE_SESSIONS = {
    "store": "memory://",          # or "redis://host:6379/0", "redis+cluster://host:7000"
    "idle_timeout": 1800,          # seconds after the last request; None: no idle limit
    "absolute_timeout": 8 * 3600,  # seconds after login/creation; None: no limit
    "max_size": 100_000,           # memory:// only: entries kept, evicted by SIEVE
    "prefix": "django-session:",   # the store's key prefix
}
```

What it adds to Django's own backends:

- Session keys are never stored: an entry is kept under the SHA-256 of its key, so a
  dump of the store gives no usable session.
- Both lifetimes at once: Django's expiry (``SESSION_COOKIE_AGE``, ``set_expiry``) as
  usual, the idle limit (each request restarts it), and the absolute one (counted from
  creation, whatever the activity): the earliest wins.
- "Log out everywhere": a session with a logged-in user (``django.contrib.auth``) is
  listed in that user's index, and is valid only while listed; `revoke_all` ends every
  session of a user at once, whatever the store evicted meanwhile.
- A corrupt or foreign record is no session (logged), never an exception.
- A save never brings back a session deleted meanwhile (``UpdateError``, as Django's
  database backend).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

from lapse._eviction import SIEVE
from lapse._memory import MemoryStore
from lapse._session_index import Entry, UserIndex, decode_index
from lapse.exceptions import CorruptValueError


__all__ = ["SessionStore", "revoke_all", "sessions_of"]

_log = logging.getLogger("lapse.sessions")
_DEFAULTS: dict[str, Any] = {
    "store": "memory://",
    "idle_timeout": 30 * 60,
    "absolute_timeout": 8 * 3600,
    "max_size": 100_000,
    "prefix": "django-session:",
}
_stores: dict[str, Any] = {}
_stores_lock = threading.Lock()


def _config() -> dict[str, Any]:
    given = getattr(settings, "LAPSE_SESSIONS", {})
    if not isinstance(given, Mapping):
        msg = f"settings.LAPSE_SESSIONS must be a dict, not {type(given).__name__}"
        raise TypeError(msg)
    unknown = set(given) - set(_DEFAULTS)
    if unknown:
        msg = f"settings.LAPSE_SESSIONS has unknown keys: {sorted(unknown)}"
        raise ValueError(msg)
    return {**_DEFAULTS, **given}


def _store(config: dict[str, Any]) -> Any:
    """The sync face of the store *config* names: made once per process and config."""
    url, prefix = config["store"], config["prefix"]
    name = f"{url} {prefix} {config['max_size']}"
    with _stores_lock:
        store = _stores.get(name)
        if store is None:
            if url == "memory://":
                store = MemoryStore(eviction=SIEVE(config["max_size"])).sync
            elif url.startswith(("redis://", "rediss://", "unix://", "redis+cluster://")):
                from lapse.redis import RedisStore  # noqa: PLC0415 -- only with Redis

                store = RedisStore(url, prefix=prefix).sync
            else:
                msg = f'LAPSE_SESSIONS["store"] must be "memory://" or a redis:// URL, not {url!r}'
                raise ValueError(msg)
            _stores[name] = store
        return store


def _hashed(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


def _user_key(config: dict[str, Any], user: Any) -> str:
    prefix = config["prefix"] if config["store"] == "memory://" else ""
    return f"{prefix}user:{user}"


class SessionStore(SessionBase):
    """A Django session whose data lives in a lapse store (see the module's docs).

    Each request that uses the session costs one store read (two for a logged-in user:
    the user's index) and, with an idle limit, one ``expire``; a save is one atomic
    ``update`` (plus one on the user's index when a user logs in or out).
    """

    def __init__(self, session_key: str | None = None) -> None:
        self._config = _config()
        self._lapse = _store(self._config)
        self._created: float | None = None
        self._user: Any = None
        super().__init__(session_key)

    def _key(self, session_key: str) -> str:
        prefix = self._config["prefix"] if self._config["store"] == "memory://" else ""
        return prefix + _hashed(session_key)

    def _ttl(self, data: dict[str, Any], created: float, now: float) -> float:
        """Seconds the entry may live: Django's expiry, the idle and the absolute limits."""
        ttl = float(self.get_expiry_age(expiry=data.get("_session_expiry")))
        idle, absolute = self._config["idle_timeout"], self._config["absolute_timeout"]
        if idle is not None:
            ttl = min(ttl, float(idle))
        if absolute is not None:
            ttl = min(ttl, created + float(absolute) - now)
        return ttl

    def _record(self, key: str) -> dict[str, Any] | None:
        try:
            record = self._lapse.get(key)
        except CorruptValueError:
            record = "corrupt"
        if record is None:
            return None
        if not (
            isinstance(record, dict)
            and isinstance(record.get("data"), str)
            and isinstance(record.get("created"), (int, float))
        ):
            _log.warning("session record %s... cannot be decoded (no session)", key[-16:])
            return None
        return record

    # -- SessionBase --------------------------------------------------------------------

    def exists(self, session_key: str) -> bool:
        return bool(session_key) and bool(self._lapse.has(self._key(session_key)))

    def load(self) -> dict[str, Any]:
        session_key = self.session_key
        record = None if session_key is None else self._record(self._key(session_key))
        now = time.time()
        if record is not None:
            absolute = self._config["absolute_timeout"]
            user = record.get("user")
            if absolute is not None and now >= record["created"] + absolute:
                record = None
            elif user is not None and not self._listed(user, self._key(session_key)):  # type: ignore[arg-type]
                record = None  # revoked, or the index was lost: never accepted
        if record is None:
            self._session_key = None
            return {}
        self._created, self._user = float(record["created"]), record.get("user")
        data: dict[str, Any] = self.decode(record["data"])
        if self._config["idle_timeout"] is not None:  # a request: the idle limit restarts
            ttl = self._ttl(data, self._created, now)
            if ttl > 0:
                self._lapse.expire(self._key(session_key), ttl)  # type: ignore[arg-type]
        return data

    def create(self) -> None:
        for _ in range(100):
            self._session_key = self._get_new_session_key()  # type: ignore[attr-defined]
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        msg = "could not find an unused session key in 100 tries"  # pragma: no cover
        raise RuntimeError(msg)  # pragma: no cover

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            self.create()
            return
        data: dict[str, Any] = self._get_session(no_load=must_create)  # type: ignore[attr-defined]
        now = time.time()
        created = now if must_create or self._created is None else self._created
        user = data.get(SESSION_KEY)
        record = {"data": self.encode(data), "created": created, "user": user}
        key = self._key(self.session_key)
        ttl = self._ttl(data, created, now)
        if must_create:
            if ttl <= 0:
                return  # expired already: nothing to keep
            if not self._lapse.add(key, record, ttl=ttl):
                raise CreateError
        else:

            def change(current: Any) -> Any:
                if current is None:
                    raise UpdateError  # deleted meanwhile (a logout): stays deleted
                return record if ttl > 0 else None

            self._lapse.update(key, change, ttl=max(ttl, 1e-3))
        self._created = created
        if user != self._user:
            if self._user is not None:
                self._unlist(self._user, key)
            if user is not None and ttl > 0:
                self._list(user, key, created, now + ttl)
            self._user = user

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        key = self._key(session_key)
        record = self._record(key)
        self._lapse.delete(key)
        if record is not None and record.get("user") is not None:
            self._unlist(record["user"], key)

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: the store drops expired sessions by itself."""

    # -- the user index -----------------------------------------------------------------

    def _index_write(self, user: Any, change: Any) -> None:
        now = time.time()
        ttl = [1.0]

        def write(current: Any) -> Any:
            index = decode_index(current) or UserIndex()
            index.prune(now)
            change(index)
            ttl[0] = index.ttl(now)
            return index.encode() if index.sessions else None

        self._lapse.update(_user_key(self._config, user), write, ttl=lambda _: ttl[0])

    def _list(self, user: Any, key: str, created: float, ends: float) -> None:
        absolute = self._config["absolute_timeout"]
        if absolute is not None:
            ends = max(ends, created + absolute)
        elif self._config["idle_timeout"] is not None:
            ends = math.inf
        self._index_write(user, lambda index: index.add(key, Entry(created, ends, None), 10_000))

    def _unlist(self, user: Any, key: str) -> None:
        self._index_write(user, lambda index: index.sessions.pop(key, None))

    def _listed(self, user: Any, key: str) -> bool:
        index = decode_index(self._lapse.get(_user_key(self._config, user)))
        return index is not None and key in index.sessions


def sessions_of(user_id: Any) -> int:
    """How many live sessions the user with this ``pk`` (``request.user.pk``) has."""
    config = _config()
    index = decode_index(_store(config).get(_user_key(config, str(user_id))))
    return 0 if index is None else len(index.sessions)


def revoke_all(user_id: Any) -> int:
    """End every session of the user with this ``pk`` ("log out everywhere"); return
    how many were listed. From then on none of them is accepted, whatever the store
    evicted or lost meanwhile."""
    config = _config()
    store = _store(config)
    revoked: list[str] = []

    def drop(current: Any) -> None:
        index = decode_index(current)
        revoked.extend(() if index is None else index.sessions)

    store.update(_user_key(config, str(user_id)), drop)
    store.delete_many(revoked)
    return len(revoked)
