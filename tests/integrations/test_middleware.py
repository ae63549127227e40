"""SessionMiddleware over real HTTP: httpx against the ASGI app, a real uvicorn, a WebSocket."""

from __future__ import annotations

import asyncio

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import fastapi
import httpx
import pytest
import websockets.sync.client

from freezegun import freeze_time
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from lapse import MemoryStore
from lapse._session_record import Record, decode
from lapse.sessions import SessionManager, SessionMiddleware, session_of

from .servers import serving


pytestmark = pytest.mark.anyio


def build_app(manager: SessionManager) -> Starlette:
    async def counter(request: Request) -> Response:
        request.session["n"] = request.session.get("n", 0) + 1
        return PlainTextResponse(str(request.session["n"]))

    async def peek(request: Request) -> Response:
        return PlainTextResponse(str(request.session.get("n")))

    async def cart(request: Request) -> Response:
        request.session.setdefault("cart", [])
        request.session["cart"].append(request.query_params["item"])  # a nested change
        return PlainTextResponse(",".join(request.session["cart"]))

    async def login(request: Request) -> Response:
        session_of(request).regenerate()
        request.session["user"] = "alice"
        return PlainTextResponse("in")

    async def logout(request: Request) -> Response:
        request.session.clear()
        return PlainTextResponse("out")

    async def cached_page(request: Request) -> Response:
        request.session["seen"] = True
        return PlainTextResponse(
            "page", headers={"cache-control": "public, max-age=600", "vary": "Accept"}
        )

    async def late(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"first "
            request.session["late"] = "saved"  # after the headers went out
            yield b"second"

        return StreamingResponse(body())

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(str(websocket.session.get("n")))
        websocket.session["ws"] = "hello"
        await session_of(websocket).save()
        await websocket.close()

    app = Starlette(
        routes=[
            Route("/", counter),
            Route("/peek", peek),
            Route("/cart", cart),
            Route("/login", login),
            Route("/logout", logout),
            Route("/cached", cached_page),
            Route("/late", late),
            WebSocketRoute("/ws", ws),
        ]
    )
    app.add_middleware(SessionMiddleware, manager=manager)
    return app


@pytest.fixture(name="manager")
def _manager() -> SessionManager:
    return SessionManager(store=MemoryStore())


@pytest.fixture(name="client")
async def _client(manager: SessionManager) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(manager))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


def store_of(manager: SessionManager) -> MemoryStore:
    store = manager.store
    assert isinstance(store, MemoryStore)
    return store


def sessions_in(manager: SessionManager) -> int:
    """How many session records the store holds (a logout leaves a short renewal mark)."""
    store = store_of(manager)
    return sum(
        isinstance(decode(value), Record)
        for value in store.sync.get_many(list(store.sync.keys())).values()
    )


async def test_cookie_attributes_and_private_headers(client: httpx.AsyncClient) -> None:
    """The cookie is HttpOnly, Secure, SameSite=Lax, Path=/; no-store and Vary: Cookie."""
    response = await client.get("/")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("session_id=")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=28800"):
        assert attribute in cookie
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["vary"] == "Cookie"
    assert (await client.get("/")).text == "2"


async def test_app_cache_headers_are_made_private(client: httpx.AsyncClient) -> None:
    """A response that sets the cookie is never cacheable; the app's Vary is kept."""
    response = await client.get("/cached")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["vary"] == "Accept, Cookie"


async def test_anonymous_visitors_cost_nothing(
    client: httpx.AsyncClient, manager: SessionManager
) -> None:
    """A visitor who puts nothing in the session gets no cookie and no store entry."""
    store = store_of(manager)
    response = await client.get("/peek")
    assert response.text == "None"
    assert "set-cookie" not in response.headers
    assert len(store) == 0
    assert store.stats().misses == 0  # no cookie: the store was not even read


async def test_an_unchanged_session_is_not_rewritten(
    client: httpx.AsyncClient, manager: SessionManager
) -> None:
    """Reading the session writes nothing and sends no cookie."""
    await client.get("/")
    sets = store_of(manager).stats().sets
    response = await client.get("/peek")
    assert response.text == "1"
    assert "set-cookie" not in response.headers
    assert store_of(manager).stats().sets == sets


async def test_nested_changes_are_saved(client: httpx.AsyncClient) -> None:
    """Appending to a list inside the session counts as a change."""
    await client.get("/cart", params={"item": "apple"})
    assert (await client.get("/cart", params={"item": "pear"})).text == "apple,pear"


async def test_logout_clears_the_store_and_the_cookie(
    client: httpx.AsyncClient, manager: SessionManager
) -> None:
    """session.clear() deletes the entry and clears the cookie with the same Path."""
    await client.get("/")
    response = await client.get("/logout")
    cookie = response.headers["set-cookie"]
    assert "Max-Age=0" in cookie
    assert "Path=/" in cookie
    assert response.headers["cache-control"] == "no-store"
    assert sessions_in(manager) == 0
    assert (await client.get("/peek")).text == "None"


async def test_login_regenerates_the_id(client: httpx.AsyncClient) -> None:
    """regenerate() on login: a new cookie, the data kept, the old ID dead after the grace."""
    with freeze_time("2026-12-05 09:00:00", real_asyncio=True) as frozen:
        await client.get("/")
        old = client.cookies["session_id"]
        await client.get("/login")
        new = client.cookies["session_id"]
        assert new != old
        assert (await client.get("/peek")).text == "1"
        client.cookies.clear()
        frozen.tick(6)
        response = await client.get("/peek", headers={"cookie": f"session_id={old}"})
        assert response.text == "None"


@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        "A" * 43,  # well-formed, never issued: strict mode
        "x" * 10_000,
        "\u00e9t\u00e9" * 15,
        '"; Path=/evil',
        "",
    ],
)
async def test_tampered_and_chosen_cookies_create_nothing(
    manager: SessionManager, cookie: str
) -> None:
    """Bad cookies never break a request and never create state."""
    app = build_app(manager)
    transport = httpx.ASGITransport(app=app)
    headers = {b"cookie": b"session_id=" + cookie.encode()}
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        response = await client.get("/peek", headers=headers)
    assert response.status_code == 200
    assert response.text == "None"
    assert "set-cookie" not in response.headers
    assert len(store_of(manager)) == 0


async def test_a_change_after_the_headers_is_saved(client: httpx.AsyncClient) -> None:
    """A change made while the body streams is saved for an existing session."""
    await client.get("/")
    assert (await client.get("/late")).text == "first second"
    assert (await client.get("/peek")).text == "1"
    response = await client.get("/late")  # the session has "late" now
    assert response.status_code == 200


async def test_a_new_session_after_the_headers_is_a_clear_error(
    manager: SessionManager,
) -> None:
    """A session created after the headers went out cannot send its cookie: RuntimeError."""
    transport = httpx.ASGITransport(app=build_app(manager))
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        with pytest.raises(RuntimeError, match="after the response started"):
            await client.get("/late")


async def test_fastapi_one_line_swap() -> None:
    """FastAPI: add_middleware(SessionMiddleware, manager=...) and request.session works."""
    manager = SessionManager(store=MemoryStore())
    app = fastapi.FastAPI()

    @app.get("/")
    async def home(request: fastapi.Request) -> dict[str, int]:
        request.session["n"] = request.session.get("n", 0) + 1
        return {"n": request.session["n"]}

    app.add_middleware(SessionMiddleware, manager=manager)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        assert (await client.get("/")).json() == {"n": 1}
        assert (await client.get("/")).json() == {"n": 2}


def test_a_real_uvicorn_server() -> None:
    """A real HTTP client against uvicorn: the session survives across connections."""
    manager = SessionManager(store=MemoryStore(), secure=False, insecure_development=True)
    with serving(build_app(manager)) as url:
        with httpx.Client(base_url=url) as client:
            assert client.get("/").text == "1"
            assert client.get("/").text == "2"
            sid = client.cookies["session_id"]
        with httpx.Client(base_url=url, cookies={"session_id": sid}) as other:
            assert other.get("/peek").text == "2"  # a new connection, the same session
            assert "Max-Age=0" in other.get("/logout").headers["set-cookie"]
    assert sessions_in(manager) == 0


def test_websocket_reads_and_saves_the_session() -> None:
    """A WebSocket on a real server sees the session of its cookie, and saves explicitly."""
    manager = SessionManager(store=MemoryStore(), secure=False, insecure_development=True)
    with serving(build_app(manager)) as url:
        with httpx.Client(base_url=url) as client:
            client.get("/")
            sid = client.cookies["session_id"]
        ws_url = url.replace("http://", "ws://") + "/ws"
        with websockets.sync.client.connect(
            ws_url, additional_headers={"Cookie": f"session_id={sid}"}
        ) as ws:
            assert ws.recv() == "1"
    assert asyncio.run(manager.get(sid)) == {"n": 1, "ws": "hello"}


async def test_other_scopes_pass_through_and_set_up_errors() -> None:
    """Lifespan scopes pass through; a wrong manager and a missing middleware are clear."""
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = SessionMiddleware(app, manager=SessionManager(store=MemoryStore()))
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
    with pytest.raises(TypeError, match="SessionManager"):
        SessionMiddleware(app, manager=object())  # type: ignore[arg-type]

    class Bare:
        scope: ClassVar[dict[str, Any]] = {}

    with pytest.raises(RuntimeError, match="not installed"):
        session_of(Bare())


@pytest.mark.parametrize(
    ("base_url", "secure", "warned"),
    [
        ("http://testserver", True, True),  # the trap: the cookie never comes back
        ("http://192.168.1.20:8000", True, True),  # a dev server opened by LAN IP
        ("https://testserver", True, False),
        ("http://localhost:8000", True, False),  # browsers treat localhost as secure
        ("http://127.0.0.1:8000", True, False),
        ("http://[::1]:8000", True, False),
        ("http://testserver", False, False),  # insecure_development: said so already
    ],
)
async def test_a_secure_cookie_over_plain_http_is_logged_once(
    base_url: str, secure: bool, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A Secure session cookie set on a plain-http request to a host browsers do not
    treat as secure is never sent back (the counter reads 1, 1, 1): one log line says
    why and what to do, once per manager."""
    manager = SessionManager(store=MemoryStore(), secure=secure, insecure_development=not secure)
    transport = httpx.ASGITransport(app=build_app(manager))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        counts = [(await client.get("/")).text for _ in range(3)]
    lines = [r.getMessage() for r in caplog.records if "plain-http" in r.getMessage()]
    assert len(lines) == (1 if warned else 0)
    if warned:
        assert "base_url='https://testserver'" in lines[0]
        assert counts == ["1", "1", "1"]
    elif base_url.startswith("https") or not secure:
        assert counts == ["1", "2", "3"]
    # http://localhost: browsers send Secure cookies there (httpx does not), so no warning
