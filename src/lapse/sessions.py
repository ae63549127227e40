"""Server-side sessions: `SessionManager`, and `SessionMiddleware` for ASGI apps.

The manager runs on any `lapse.Store` and imports no web framework; the middleware is
pure ASGI (Starlette, FastAPI and any other ASGI app).
"""

from __future__ import annotations

from ._asgi import SessionMiddleware, session_of
from ._session import Session
from ._sessions import (
    AtomicStore,
    SessionInfo,
    SessionManager,
    SessionStats,
    SyncSessionManager,
)


__all__ = [
    "AtomicStore",
    "Session",
    "SessionInfo",
    "SessionManager",
    "SessionMiddleware",
    "SessionStats",
    "SyncSessionManager",
    "session_of",
]
