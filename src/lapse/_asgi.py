"""`SessionMiddleware`: server-side sessions for any ASGI app (Starlette, FastAPI, ...)."""

from __future__ import annotations

import logging

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._cookies import merge, private_headers
from ._session import Session
from ._sessions import SessionManager
from .exceptions import SessionUnavailableError, StoreError


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_UNAVAILABLE = b"Service Unavailable: the session store cannot be reached; try again shortly."
_log = logging.getLogger("lapse.sessions")


def _host(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return str(value.decode("latin-1"))
    return None


async def _unavailable(send: Send) -> None:
    """Answer 503, sent instead of a response that depends on an unusable session."""
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(_UNAVAILABLE)).encode()),
        (b"cache-control", b"no-store"),
        (b"retry-after", b"5"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _UNAVAILABLE})


class SessionMiddleware:
    """Server-side sessions for an ASGI app: ``request.session`` in every handler.

    ```python
    app.add_middleware(SessionMiddleware, manager=SessionManager())
    ```

    A drop-in for Starlette's ``SessionMiddleware``: ``request.session`` is a mutable
    mapping (a `lapse.sessions.Session`), but the data stays on the server and the cookie
    holds only a random ID. Pure ASGI: it handles ``http`` and ``websocket`` scopes and
    passes the others through.

    - The store is read only for a request that carries a well-formed session cookie, and
      written only when the session changed (nested changes included). A visitor who puts
      nothing in the session gets no store entry and no cookie.
    - Changes are saved when the response starts, and the cookie set then, with
      ``Cache-Control: no-store`` and ``Vary: Cookie``. A response that only read the
      session gets ``Vary: Cookie`` and ``Cache-Control: private`` (the app's own value
      is kept if it is as strict, and loses ``public`` otherwise).
    - If the store fails, a request whose handler uses the session is answered
      ``503`` (see *on_store_error* of `lapse.sessions.SessionManager`); pages that
      never touch the session are served as usual.
    - ``request.session.clear()`` ends the session: the entry is deleted and the cookie
      cleared. ``request.session.regenerate()`` gives it a new ID (call it on login).
    - A change made after the response started is saved when the handler returns; if it
      would create a new session, whose cookie can no longer be sent, `RuntimeError` is
      raised instead of losing it silently; so is a `Session.login` or
      `Session.regenerate` after the response started.
    - On a WebSocket, ``websocket.session`` is loaded at connect; call
      ``await websocket.session.save()`` to write changes.

    Args:
        app: The ASGI app to wrap.
        manager: The `lapse.sessions.SessionManager` that holds the sessions.
    """

    def __init__(self, app: ASGIApp, manager: SessionManager) -> None:
        if not isinstance(manager, SessionManager):
            msg = f"manager must be a lapse.sessions.SessionManager, not {type(manager).__name__}"
            raise TypeError(msg)
        self.app = app
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: C901 -- one ASGI flow
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        session = await self.manager.open(list(scope.get("headers", [])))
        scope["session"] = session
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        started = replaced = False

        async def send_with_cookie(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return  # the app's response was answered 503 instead
            if message["type"] == "http.response.start" and not started:
                started = True
                session._started = True  # noqa: SLF001 -- no new cookie from here on
                try:
                    extra = await self.manager.save(session)
                except StoreError as e:
                    _log.error("session store failed while saving a session: %s", e)
                    replaced = True
                    await _unavailable(send)
                    return
                if any(name == b"set-cookie" for name, _ in extra):
                    self.manager.check_transport(scope.get("scheme", "http"), _host(scope))
                if not extra and session.accessed:
                    extra = private_headers()
                message["headers"] = merge(list(message.get("headers", [])), extra)
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookie)
        except SessionUnavailableError:
            if started:
                raise
            await _unavailable(send)
            return
        if started and not replaced and session.changed:
            await self._late(session)

    async def _late(self, session: Session) -> None:
        """Changes made after the headers went out: saved, or a clear error."""
        if session.id is None and (session._data or session._login):  # noqa: SLF001
            msg = (
                "the session was created after the response started, so its cookie cannot "
                "be sent: put values in request.session before returning the response"
            )
            raise RuntimeError(msg)
        await self.manager.save(session)


def session_of(connection: Any) -> Session:
    """The `lapse.sessions.Session` of a request or WebSocket, typed as such.

    ``request.session`` is the same object, but Starlette types it as a ``dict``; use
    this to call `Session.regenerate`, `Session.login` or `Session.save` with types.

    Raises:
        RuntimeError: `SessionMiddleware` is not installed in front of this app.
    """
    session = getattr(connection, "scope", {}).get("session")
    if not isinstance(session, Session):
        msg = "lapse.sessions.SessionMiddleware is not installed in front of this app"
        raise RuntimeError(msg)  # noqa: TRY004 -- a set-up error, not a wrong argument
    return session
