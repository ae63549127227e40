"""`SessionMiddleware`: server-side sessions for any ASGI app (Starlette, FastAPI, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._sessions import Headers, Session, SessionManager


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _with_headers(headers: list[tuple[bytes, bytes]], extra: Headers) -> list[tuple[bytes, bytes]]:
    """*headers* plus *extra*: Cache-Control replaced, Vary extended, Set-Cookie added."""
    if not extra:
        return headers
    names = {name for name, _ in extra}
    out = []
    vary_done = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"cache-control" and lower in names:
            continue  # ours, no-store, replaces the app's
        if lower == b"vary" and lower in names:
            vary_done = True
            out.append((name, value if b"cookie" in value.lower() else value + b", Cookie"))
            continue
        out.append((name, value))
    out.extend((n, v) for n, v in extra if not (n == b"vary" and vary_done))
    return out


class SessionMiddleware:
    """Server-side sessions for an ASGI app: ``request.session`` in every handler.

    ::

        app.add_middleware(SessionMiddleware, manager=SessionManager())

    A drop-in for Starlette's ``SessionMiddleware``: ``request.session`` is a mutable
    mapping (a `lapse.sessions.Session`), but the data stays on the server and the cookie
    holds only a random ID. Pure ASGI: it handles ``http`` and ``websocket`` scopes and
    passes the others through.

    - The store is read only for a request that carries a well-formed session cookie, and
      written only when the session changed (nested changes included). A visitor who puts
      nothing in the session gets no store entry and no cookie.
    - Changes are saved when the response starts, and the cookie set then, with
      ``Cache-Control: no-store`` and ``Vary: Cookie``.
    - ``request.session.clear()`` ends the session: the entry is deleted and the cookie
      cleared. ``request.session.regenerate()`` gives it a new ID (call it on login).
    - A change made after the response started is saved when the handler returns; if it
      would create a new session, whose cookie can no longer be sent, `RuntimeError` is
      raised instead of losing it silently.
    - On a WebSocket, ``websocket.session`` is loaded at connect; call
      ``await websocket.session.save()`` to write changes.

    Args:
        app: The ASGI app to wrap.
        manager: The `lapse.sessions.SessionManager` that holds the sessions.

    Added in 0.2.
    """

    def __init__(self, app: ASGIApp, manager: SessionManager) -> None:
        if not isinstance(manager, SessionManager):
            msg = f"manager must be a lapse.sessions.SessionManager, not {type(manager).__name__}"
            raise TypeError(msg)
        self.app = app
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        session = await self.manager.open(list(scope.get("headers", [])))
        scope["session"] = session
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_cookie(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                extra = await self.manager.save(session)
                message["headers"] = _with_headers(list(message.get("headers", [])), extra)
            await send(message)

        await self.app(scope, receive, send_with_cookie)
        if started and session.changed:
            await self._late(session)

    async def _late(self, session: Session) -> None:
        """Changes made after the headers went out: saved, or a clear error."""
        if session.id is None and not session.ended:
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

    Added in 0.2.
    """
    session = getattr(connection, "scope", {}).get("session")
    if not isinstance(session, Session):
        msg = "lapse.sessions.SessionMiddleware is not installed in front of this app"
        raise RuntimeError(msg)  # noqa: TRY004 -- a set-up error, not a wrong argument
    return session
