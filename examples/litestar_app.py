"""A Litestar app on lapse: server-side sessions (lapse's ASGI middleware) and Litestar's
response cache on a bounded, expiring MemoryStore.

Run it with ``uvicorn --app-dir examples litestar_app:app`` and open
http://127.0.0.1:8000/.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, get, post
from litestar.config.response_cache import ResponseCacheConfig

import lapse.litestar

from lapse import SIEVE, TTL, MemoryStore
from lapse.sessions import SessionManager, session_of


# The development server speaks plain http on localhost: Secure cookies would never come
# back. In production, keep the defaults.
manager = SessionManager(secure=False, insecure_development=True)
cache = MemoryStore(expiry=TTL(3600), eviction=SIEVE(10_000))


@get("/", sync_to_thread=False)
def index(request: Request[Any, Any, Any]) -> dict[str, object]:
    session = request.session
    session["visits"] = session.get("visits", 0) + 1
    return {"visits": session["visits"], "user": session.get("user")}


@post("/login", status_code=200)
async def login(request: Request[Any, Any, Any]) -> dict[str, object]:
    form = await request.form()
    user = str(form.get("user", "ann"))
    session = session_of(request)
    session.login(user)  # a new session ID, tied to the user
    session["user"] = user
    return {"user": user}


@post("/logout", sync_to_thread=False, status_code=200)
def logout(request: Request[Any, Any, Any]) -> dict[str, object]:
    session_of(request).clear()  # deleted on the server, cookie cleared
    return {"user": None}


@get("/report", cache=60, sync_to_thread=False)
def report() -> dict[str, str]:
    return {"report": "expensive to build, cached for a minute in lapse"}


app = Litestar(
    route_handlers=[index, login, logout, report],
    middleware=[lapse.litestar.session_middleware(manager)],
    stores={"response_cache": lapse.litestar.Store(cache, "response_cache")},
    response_cache_config=ResponseCacheConfig(store="response_cache"),
)
