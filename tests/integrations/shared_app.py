"""An app that keeps its sessions in Redis: run twice, as two processes, by the tests."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lapse.redis import RedisStore
from lapse.sessions import SessionManager, SessionMiddleware


manager = SessionManager(
    store=RedisStore(os.environ["LAPSE_REDIS_URL"], prefix="shared:"),
    secure=False,
    insecure_development=True,
)


async def count(request: Request) -> Response:
    request.session["n"] = request.session.get("n", 0) + 1
    return JSONResponse({"n": request.session["n"], "pid": os.getpid()})


app = Starlette(routes=[Route("/", count)])
app.add_middleware(SessionMiddleware, manager=manager)
