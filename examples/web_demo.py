"""lapse in the browser: server-side sessions with idle and absolute expiry.

Run it with ``./scripts/demo`` (``./scripts/demo --terminal`` for the terminal demo).
It serves a small Starlette app with uvicorn on 127.0.0.1 and prints its URL: log in,
count, log out, log out your other sessions, and watch the time left before the idle
and the absolute expiry, and the store's stats. Everything lives in one ``MemoryStore``.
"""

from __future__ import annotations

import argparse
import html
import socket
import urllib.parse

from collections.abc import Callable
from datetime import timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from lapse import LRU, MemoryStore
from lapse.sessions import SessionManager, SessionMiddleware, session_of


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lapse sessions</title>
<link rel="icon" href="data:,">
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto}}
form{{display:inline-block;margin:.2rem}}code{{background:#eee;padding:0 .2rem}}</style>
</head><body><h1>lapse sessions</h1>{body}</body></html>"""

LOGIN = """<p>Not logged in.</p>
<form method="post" action="/login">
  <label>Name <input name="user" id="user" required></label>
  <button id="login">Log in</button>
</form>"""

DOCS = """<p><small>How this works: the Sessions guide, <code>docs/sessions.md</code>
(<code>./scripts/docs serve</code> shows the docs site at http://127.0.0.1:8000/).
Try <code>./scripts/demo --idle 20</code> to watch a session end.</small></p>"""


def build_app(manager: SessionManager | None = None) -> Starlette:
    """The demo app on *manager* (by default: 30 min idle, 8 h absolute, in memory)."""
    manager = manager or SessionManager(
        store=MemoryStore(eviction=LRU(10_000)),
        idle_timeout=timedelta(minutes=30),
        absolute_timeout=timedelta(hours=8),
    )

    async def home(request: Request) -> Response:
        user = request.session.get("user")
        if user is None:
            return HTMLResponse(PAGE.format(body=_note(request, manager) + LOGIN + DOCS))
        sid = session_of(request).id  # the middleware's ID, not a (duplicable) cookie
        mine = None if sid is None else manager.key_of(sid)
        sessions = await manager.sessions_of(user)
        now = manager.clock()
        rows = []
        current = None
        for info in sessions:
            here = info.key == mine
            current = info if here else current
            rows.append(
                f"<li>{'this browser' if here else 'another session'}: "
                f"created {_human(now - info.created)} ago, last seen "
                f"{_human(now - info.last_seen)} ago</li>"
            )
        idle = "never" if current is None else _human(current.expires - now)
        absolute = manager.absolute_timeout
        ends = (
            "never"
            if absolute is None or current is None
            else _human(current.created + _seconds(absolute) - now)
        )
        stats = manager.store.stats() if isinstance(manager.store, MemoryStore) else None
        body = f"""<p>Logged in as <b id="name">{html.escape(str(user))}</b>.</p>
<p>Counter: <b id="counter">{request.session.get("count", 0)}</b>
<form method="post" action="/count"><button id="count">+1</button></form></p>
<p>Idle expiry in <span id="idle">{idle}</span>; absolute expiry in
<span id="absolute">{ends}</span>.</p>
<p>Your sessions ({len(sessions)}):</p><ul id="sessions">{"".join(rows)}</ul>
<form method="post" action="/logout"><button id="logout">Log out</button></form>
<form method="post" action="/logout-others">
<button id="others">Log out my other sessions</button></form>
<p>Store: <code id="stats">{html.escape(repr(stats))}</code></p>{DOCS}"""
        return HTMLResponse(PAGE.format(body=body))

    async def login(request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode())  # no multipart needed
        user = form.get("user", [""])[0].strip()[:64] or "anonymous"
        session_of(request).login(user)  # a new ID, tied to the user: log out everywhere
        request.session["user"] = user
        request.session.setdefault("count", 0)
        return RedirectResponse("/", status_code=303)

    async def count(request: Request) -> Response:
        if "user" in request.session:
            request.session["count"] = request.session.get("count", 0) + 1
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        request.session.clear()  # ends the session for good; what follows is a new one
        request.session["flash"] = "You are logged out."
        return RedirectResponse("/", status_code=303)

    async def logout_others(request: Request) -> Response:
        user = request.session.get("user")
        if user is not None:
            await manager.revoke_all(user, keep=session_of(request).id)
        return RedirectResponse("/", status_code=303)

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["POST"]),
            Route("/count", count, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/logout-others", logout_others, methods=["POST"]),
        ]
    )
    app.add_middleware(SessionMiddleware, manager=manager)
    return app


def _note(request: Request, manager: SessionManager) -> str:
    """The message above the login form: the session's flash, or why there is no session."""
    flash = request.session.pop("flash", "")
    if not flash and manager.cookie_name in request.cookies:
        # A session cookie, but no session behind it: it ended on the server.
        flash = (
            "Your session has ended (idle too long, or logged out elsewhere): please log in again."
        )
    return f'<p id="flash">{html.escape(flash)}</p>' if flash else ""


def _human(seconds: float) -> str:
    """A duration as people read it: "45 s", "12 min", "7 h 59 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:  # noqa: PLR2004
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:  # noqa: PLR2004
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main(argv: list[str] | None = None, serve: Callable[..., object] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--idle", type=float, default=1800, help="idle timeout, seconds")
    args = parser.parse_args(argv)
    manager = SessionManager(
        store=MemoryStore(eviction=LRU(10_000)),
        idle_timeout=args.idle,
        absolute_timeout=timedelta(hours=8),
    )
    port = args.port or free_port()
    print(f"lapse web demo: http://127.0.0.1:{port}/  (Ctrl-C to stop)", flush=True)
    if serve is None:
        import uvicorn  # noqa: PLC0415

        serve = uvicorn.run
    serve(build_app(manager), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
