"""The FastAPI tutorial's shop: a login, a session cart, a cached repository.

    uvicorn shop:app
    LAPSE_REDIS_URL=redis://127.0.0.1:6379/0 uvicorn shop:app --workers 4

Everything is in memory unless ``LAPSE_REDIS_URL`` is set; then sessions and
the cache live in Redis, shared by every worker. `make_store` alone knows.
"""

# --8<-- [start:stores]
from __future__ import annotations

import asyncio
import os

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import fastapi

from lapse import LRU, TTL, FullStore, MemoryStore, cached
from lapse.sessions import SessionManager, SessionMiddleware, session_of


def make_store(purpose: str) -> FullStore:
    """Where sessions or the cache live: the one place that knows."""
    redis_url = os.environ.get("LAPSE_REDIS_URL")
    if redis_url:
        from lapse.redis import RedisStore

        prefix = f"shop:{purpose}:"
        return RedisStore(redis_url, prefix=prefix, expiry=TTL(3600))
    if purpose == "cache":
        return MemoryStore(expiry=TTL(3600), eviction=LRU(100_000))
    return MemoryStore()  # sessions: never evicted, they end by themselves


session_store = make_store("sessions")
cache = make_store("cache")
# --8<-- [end:stores]


# --8<-- [start:repository]
class Prices:
    """A repository, made per request by `Depends`, like a database one."""

    lookups = 0  # slow calls made so far

    @cached(cache, ttl=60, ignore=("self",))  # shared by every instance
    async def price(self, item: str) -> float:
        Prices.lookups += 1
        await asyncio.sleep(0.05)  # the slow part: a database, an API
        return round(1.5 * len(item), 2)


PricesDep = Annotated[Prices, fastapi.Depends(Prices)]
# --8<-- [end:repository]


# --8<-- [start:app]
@asynccontextmanager
async def lifespan(_app: fastapi.FastAPI) -> AsyncIterator[None]:
    yield
    await cache.aclose()  # closes Redis connections; nothing to do in memory
    await session_store.aclose()


app = fastapi.FastAPI(title="lapse shop", lifespan=lifespan)
sessions = SessionManager(store=session_store)
app.add_middleware(SessionMiddleware, manager=sessions)


@app.post("/login")
async def login(request: fastapi.Request, name: str) -> dict[str, str]:
    session_of(request).login(name)  # a new session ID, tied to the user
    request.session["user"] = name
    return {"user": name}


@app.get("/price/{item}")
async def get_price(item: str, prices: PricesDep) -> dict[str, Any]:
    price = await prices.price(item)
    return {"item": item, "price": price, "lookups": Prices.lookups}


@app.post("/cart/{item}")
async def add_to_cart(
    request: fastapi.Request,
    item: str,
    prices: PricesDep,
) -> dict[str, Any]:
    if "user" not in request.session:
        raise fastapi.HTTPException(401, "log in first")
    request.session.setdefault("cart", []).append(item)
    total = sum([await prices.price(i) for i in request.session["cart"]])
    return {"cart": request.session["cart"], "total": round(total, 2)}


@app.post("/logout")
async def logout(request: fastapi.Request) -> dict[str, bool]:
    request.session.clear()  # ends it on the server, clears the cookie
    return {"ok": True}


# --8<-- [end:app]
