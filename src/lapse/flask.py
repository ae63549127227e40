"""Server-side sessions for Flask: ``app.session_interface = SessionInterface(manager)``.

```python
import flask
import lapse.flask
from lapse.sessions import SessionManager

app = flask.Flask(__name__)
app.session_interface = lapse.flask.SessionInterface(SessionManager())

@app.post("/login")
def login():
    lapse.flask.session_of(flask.session).login(user_id)   # a new ID, tied to the user
    return "ok"
```

``flask.session`` then holds its data on the server (a `lapse.sessions.SessionManager`'s
store: a bounded `MemoryStore` by default, or ``RedisStore``), and the cookie only a
random ID. The rules are the ASGI middleware's, run through ``manager.sync``: no event
loop, no thread hop. Needs the ``flask`` extra: ``pip install 'lapse[flask]'``.
"""

from __future__ import annotations

import logging

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import flask

from flask.sessions import SessionInterface as _FlaskSessionInterface
from flask.sessions import SessionMixin
from werkzeug.exceptions import ServiceUnavailable

from ._cookies import merge, private_headers
from ._session import Session
from ._sessions import SessionManager
from .exceptions import SessionUnavailableError, StoreError


if TYPE_CHECKING:
    from flask import Flask, Request, Response

__all__ = ["FlaskSession", "SessionInterface", "session_of"]

_log = logging.getLogger("lapse.sessions")
_UNAVAILABLE = "Service Unavailable: the session store cannot be reached; try again shortly."


class _Unavailable(ServiceUnavailable):
    """503, with Retry-After, for a request whose session the store cannot serve."""

    description = _UNAVAILABLE

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs), ("Retry-After", "5")]


class FlaskSession(SessionMixin):
    """``flask.session``: a mutable mapping over a `lapse.sessions.Session`.

    Reads and writes go to the lapse session (so its change tracking and rules apply);
    a store failure that makes the session unusable becomes a 503 response, as with the
    ASGI middleware. ``permanent`` is kept as Flask keeps it (a ``_permanent`` key); the
    session's lifetimes are the manager's. `session_of` gives the `Session` itself.
    """

    def __init__(self, session: Session) -> None:
        self.lapse = session

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.lapse, method)(*args)
        except SessionUnavailableError as e:
            raise _Unavailable from e

    def __getitem__(self, key: str) -> Any:
        return self._call("__getitem__", key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._call("__setitem__", key, value)

    def __delitem__(self, key: str) -> None:
        self._call("__delitem__", key)

    def __contains__(self, key: object) -> bool:
        return bool(self._call("__contains__", key))

    def __iter__(self) -> Iterator[str]:
        return iter(self._call("__iter__"))

    def __len__(self) -> int:
        return int(self._call("__len__"))

    def __repr__(self) -> str:
        return f"FlaskSession({self.lapse!r})"

    @property
    def new(self) -> bool:  # type: ignore[override]
        """Whether the session is not stored yet."""
        return self.lapse.id is None

    @property
    def modified(self) -> bool:
        """Whether saving would write anything (deep changes are seen without help:
        setting it, as Flask's docs suggest for nested changes, changes nothing)."""
        return self.lapse.changed

    @modified.setter
    def modified(self, value: bool) -> None:
        pass

    @property
    def accessed(self) -> bool:
        """Whether the request read or wrote the session (Flask sets it on access)."""
        return self.lapse.accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        if value:
            self.lapse.mark_accessed()


def session_of(session: Any) -> Session:
    """The `lapse.sessions.Session` behind ``flask.session``: for `Session.regenerate`,
    `Session.login` and `Session.clear`.

    Raises:
        RuntimeError: The app's session interface is not lapse's.
    """
    if not isinstance(session, FlaskSession):
        msg = "app.session_interface is not lapse.flask.SessionInterface"
        raise RuntimeError(msg)  # noqa: TRY004 -- a setup mistake, not a type error
    return session.lapse


class SessionInterface(_FlaskSessionInterface):
    """Flask's session interface on a `lapse.sessions.SessionManager`.

    Per request: the session is read only if the request has a well-formed session
    cookie, and written only when it changed, when Flask finishes the response; the
    cookie and headers are the ASGI middleware's (``Cache-Control: no-store`` and ``Vary:
    Cookie`` with a new cookie; ``Cache-Control: private`` when the session was only
    read). A store failure answers 503 for requests that need the session.
    """

    def __init__(self, manager: SessionManager) -> None:
        if not isinstance(manager, SessionManager):
            msg = f"manager must be a lapse.sessions.SessionManager, not {type(manager).__name__}"
            raise TypeError(msg)
        self.manager = manager
        self._sync = manager.sync

    def open_session(self, app: Flask, request: Request) -> FlaskSession:  # noqa: ARG002
        """Load the session of *request* (no store read without a session cookie)."""
        cookies = [
            (b"cookie", value.encode("latin-1")) for value in request.headers.getlist("Cookie")
        ]
        return FlaskSession(self._sync.open(cookies))

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:  # noqa: ARG002
        """Write what changed and put the cookie headers on *response*."""
        if not isinstance(session, FlaskSession):  # pragma: no cover -- Flask's null session
            return
        lapse_session = session.lapse
        lapse_session._started = True  # noqa: SLF001 -- the headers go out now
        try:
            extra = self._sync.save(lapse_session)
        except StoreError as e:
            _log.error("session store failed while saving a session: %s", e)
            unavailable = _Unavailable()
            response.status_code = unavailable.code or 503
            response.set_data(_UNAVAILABLE)
            response.headers.clear()
            for name, value in unavailable.get_headers():
                response.headers[name] = value
            response.headers["Content-Type"] = "text/plain; charset=utf-8"
            response.headers["Cache-Control"] = "no-store"
            return
        if any(name == b"set-cookie" for name, _ in extra):
            request = flask.request
            self.manager.check_transport(request.scheme, request.host)
        if not extra and lapse_session.accessed:
            extra = private_headers()
        if extra:
            current = [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in response.headers.items()
            ]
            response.headers.clear()
            for raw_name, raw_value in merge(current, extra):
                response.headers.add(raw_name.decode("latin-1"), raw_value.decode("latin-1"))
