"""A FastAPI app with login, a cached slow function and sessions: the end-to-end tutorial.

Run it with ``uvicorn --app-dir examples fastapi_app:app``. It keeps everything in
memory; set ``LAPSE_REDIS_URL=redis://127.0.0.1:6379/0`` to keep it in Redis instead,
shared by every worker: the one line that changes is `make_store`.
"""

from __future__ import annotations

import asyncio
import os

from typing import Any

import fastapi

from lapse import LRU, TTL, MemoryStore, Store, cached
from lapse.sessions import SessionManager, SessionMiddleware, session_of


def make_store(redis_url: str | None = None) -> Store:
    """The one line that changes: a MemoryStore, or a RedisStore for several processes."""
    if redis_url:
        from lapse.redis import RedisStore  # noqa: PLC0415

        return RedisStore(redis_url, prefix="shop:", expiry=TTL(3600))
    return MemoryStore(expiry=TTL(3600), eviction=LRU(100_000))


def build_app(store: Store, *, secure: bool = True) -> fastapi.FastAPI:
    """The shop: log in, look at (slow, cached) prices, and a cart kept in the session."""
    sessions = SessionManager(store=store, secure=secure, insecure_development=not secure)
    app = fastapi.FastAPI(title="lapse shop")
    app.add_middleware(SessionMiddleware, manager=sessions)
    app.state.price_lookups = 0

    @cached(store, ttl=60)
    async def price(item: str) -> float:
        """The slow part: a database, an API. Loaded once per minute, per item."""
        app.state.price_lookups += 1
        await asyncio.sleep(0.05)
        return round(1.5 * len(item), 2)

    @app.post("/login")
    async def login(request: fastapi.Request, name: str) -> dict[str, str]:
        session_of(request).login(name)  # a new session ID, tied to the user
        request.session["user"] = name
        return {"user": name}

    @app.get("/price/{item}")
    async def get_price(item: str) -> dict[str, Any]:
        return {"item": item, "price": await price(item)}

    @app.post("/cart/{item}")
    async def add_to_cart(request: fastapi.Request, item: str) -> dict[str, Any]:
        if "user" not in request.session:
            raise fastapi.HTTPException(401, "log in first")
        request.session.setdefault("cart", []).append(item)
        total = sum([await price(i) for i in request.session["cart"]])
        return {"cart": request.session["cart"], "total": round(total, 2)}

    @app.post("/logout")
    async def logout(request: fastapi.Request) -> dict[str, bool]:
        request.session.clear()
        return {"ok": True}

    return app


app = build_app(make_store(os.environ.get("LAPSE_REDIS_URL")))
