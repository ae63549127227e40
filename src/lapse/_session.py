"""`Session`: ``request.session``, the data of one session as a request sees it.

It tracks what a request changed (by comparing JSON), what it ended (`Session.clear`)
and what it asked for (`Session.regenerate`, `Session.login`); `SessionManager.save`
writes that at the end of the request.
"""

# Session and SessionManager are one unit: the manager saves the session's own state.
# ruff: noqa: SLF001

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

from ._session_index import Entry
from ._session_record import Record, dumps
from .exceptions import SessionUnavailableError, StoreError


if TYPE_CHECKING:
    from ._sessions import SessionManager

DEFAULT: Any = object()
"""An argument not given (``None`` means "no limit" for lifetimes)."""
Lifetimes = tuple[float | None, float | None]  # idle, absolute


@attrs.frozen
class Loaded:
    """A live session found for an ID: where it is stored and what it holds."""

    key: str
    record: Record
    renewal: bool  # the ID is an old one in its grace, standing for *key*
    entry: Entry | None  # its line in the user's index, for a session with a user


class Session(MutableMapping[str, Any]):
    """``request.session``: the data of one session, a mutable mapping of JSON values.

    Changes are tracked by comparing each key's JSON with what was loaded, so changes
    deep inside (appending to a list in the session) count too. `clear` ends the
    session; `regenerate` and `login` give it a new ID when it is saved.
    """

    def __init__(
        self,
        manager: SessionManager,
        sid: str | None = None,
        loaded: Loaded | None = None,
        *,
        renewal: bool = False,
        unavailable: StoreError | None = None,
    ) -> None:
        self._manager = manager
        self._id = sid
        self._key = None if loaded is None else loaded.key
        self._record = None if loaded is None else loaded.record
        self._entry = None if loaded is None else loaded.entry
        self._renewal = renewal or (loaded is not None and loaded.renewal)
        self._data: dict[str, Any] = {} if loaded is None else dict(loaded.record.data)
        self._saved = {key: dumps(value) for key, value in self._data.items()}
        self._unavailable = unavailable
        self._ending: Record | None = None  # a session this request ended
        self._ending_key: str | None = None
        self._rotate = False
        self._login: tuple[Any, str | None, Lifetimes | None] | None = None
        self._touched = False
        self._started = False
        self.accessed = False
        """Whether the request read or wrote the session (the response then varies by
        cookie and is private)."""

    @property
    def id(self) -> str | None:
        """The session ID, or ``None`` for a session not stored yet."""
        return self._id

    @property
    def user(self) -> Any:
        """The user the session is tied to (after a `login`, the new one), or ``None``."""
        if self._login is not None:
            return self._login[0]
        return None if self._record is None else self._record.user

    @property
    def ended(self) -> bool:
        """Whether `clear` ended the session in this request (and nothing new began)."""
        return self._ending_key is not None and self._key is None and not self._data

    def _use(self, *, write: bool = False) -> None:
        self.accessed = True
        if self._unavailable is not None and (
            write or self._manager.on_store_error == "fail_closed"
        ):
            msg = "the session store is unavailable, so this request's session cannot be used"
            raise SessionUnavailableError(msg) from self._unavailable

    def __getitem__(self, key: str) -> Any:
        self._use()
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._use(write=True)
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        self._use(write=True)
        del self._data[key]

    def __contains__(self, key: object) -> bool:
        self._use()
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        self._use()
        return iter(self._data)

    def __len__(self) -> int:
        self._use()
        return len(self._data)

    def __repr__(self) -> str:
        return f"Session(keys={sorted(self._data)!r})"

    def _not_started(self, what: str) -> None:
        if self._started:
            msg = (
                f"{what}() after the response started: the new session cookie can no "
                "longer be sent; call it before returning the response"
            )
            raise RuntimeError(msg)

    def clear(self) -> None:
        """End the session for good (logout): its entry is deleted when the response
        starts and the cookie cleared. Values set afterwards in the same request go into
        a new session, with a new ID and no user.
        """
        self._use(write=True)
        if self._key is not None:
            self._ending_key, self._ending = self._key, self._record
        self._id = self._key = self._record = self._entry = None
        self._data.clear()
        self._saved = {}
        self._rotate = False
        self._login = None

    def regenerate(self) -> None:
        """Give the session a new ID when it is saved; the old one dies then (after the
        manager's *renewal_grace*, for requests already in flight).

        Raises:
            RuntimeError: The response has started, so the new cookie cannot be sent.
        """
        self._not_started("regenerate")
        self._use(write=True)
        self._rotate = True

    def login(
        self,
        user: Any,
        *,
        descriptor: str | None = None,
        idle_timeout: float | timedelta | None = DEFAULT,
        absolute_timeout: float | timedelta | None = DEFAULT,
    ) -> None:
        """On login: a new ID at the next save, and the session tied to *user* (any JSON
        value), for `SessionManager.revoke_all` and `SessionManager.sessions_of`.

        If the session belongs to another user, it is ended first and the new one starts
        empty: nothing of the previous user's data (a role, a CSRF token) carries over.
        *descriptor* (a user agent, a device name) is shown by `sessions_of`.
        *idle_timeout* and *absolute_timeout* give this session its own lifetimes
        ("remember me"), counted from the login; the cookie then lives as long.

        Raises:
            RuntimeError: The response has started, so the new cookie cannot be sent.
            TypeError: *user* is not JSON, or *descriptor* not a str.
        """
        self._not_started("login")
        dumps(user)
        if descriptor is not None and not isinstance(descriptor, str):
            msg = f"descriptor must be a str, not {type(descriptor).__name__}"
            raise TypeError(msg)
        lifetimes = self._manager._lifetimes(idle_timeout, absolute_timeout)
        current = self.user
        if current is not None and current != user:
            self.clear()
        self._use(write=True)
        self._login = (user, descriptor, lifetimes)
        self._rotate = True

    def mark_accessed(self) -> None:
        """Starlette's hook when ``request.session`` is read."""
        self.accessed = True

    def changes(self) -> tuple[dict[str, Any], set[str]]:
        """Return the keys set or changed since the last save, and the keys removed.

        Raises:
            TypeError: A value is not JSON-serializable.
        """
        saved = self._saved
        changed = {k: v for k, v in self._data.items() if saved.get(k) != dumps(v)}
        return changed, set(saved) - set(self._data)

    @property
    def changed(self) -> bool:
        """Whether saving would write anything."""
        changed, removed = self.changes()
        return bool(changed or removed or self._ending_key or self._rotate)

    def _saved_as(self, sid: str | None, loaded: Loaded | None = None) -> None:
        if loaded is not None or sid is None:
            self._key = None if loaded is None else loaded.key
            self._record = None if loaded is None else loaded.record
            self._entry = None if loaded is None else loaded.entry
        self._id = sid
        self._saved = {key: dumps(value) for key, value in self._data.items()}
        self._rotate = False
        self._login = None
        self._ending = self._ending_key = None
        self._touched = True

    async def save(self) -> str | None:
        """Write the changes now (for a WebSocket, which has no response to wait for).

        Returns the session ID (a new one if the session was created or regenerated),
        or ``None`` if the session is ended or empty. A new ID must reach the client
        some other way, since there is no response to carry a cookie.
        """
        await self._manager.save(self)
        return self._id
