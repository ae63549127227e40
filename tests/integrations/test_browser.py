"""The web demo in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

from collections.abc import Coroutine
from typing import Any, TypeVar

import anyio.to_thread

from playwright.sync_api import Browser, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from lapse import MemoryStore
from lapse.sessions import SessionManager, SessionMiddleware
from lapse.testing import ManualClock

from .servers import load_example, serving


T = TypeVar("T")


def in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run *coroutine* to completion in its own thread (Playwright holds this one's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def log_in(page: Page, url: str, name: str) -> None:
    page.goto(url)
    page.fill("#user", name)
    page.click("#login")
    page.wait_for_selector("#name")


def test_log_in_count_reload_log_out_and_idle_expiry(browser: Browser) -> None:
    """Log in, count, reload (the counter stays), log out; a short idle timeout ends it."""
    clock = ManualClock(time.time())
    manager = SessionManager(
        store=MemoryStore(clock=clock), clock=clock, idle_timeout=60, absolute_timeout=3600
    )
    app = load_example("web_demo").build_app(manager)
    with serving(app) as url:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        log_in(page, url, "alice")
        assert page.text_content("#name") == "alice"
        for expected in ("1", "2", "3"):
            page.click("#count")
            page.wait_for_selector("#counter")
            assert page.text_content("#counter") == expected
        page.reload()
        assert page.text_content("#counter") == "3"  # kept in the session, server-side
        cookie = next(c for c in page.context.cookies() if c["name"] == "session_id")
        assert cookie["httpOnly"]
        assert cookie["secure"]
        assert cookie["sameSite"] == "Lax"
        assert page.text_content("#idle") == "1 min"  # 60 s, as people read it
        before = next(c for c in page.context.cookies() if c["name"] == "session_id")
        page.click("#logout")
        page.wait_for_selector("#user")
        assert page.text_content("#flash") == "You are logged out."  # logout, then a flash
        after = [c for c in page.context.cookies() if c["name"] == "session_id"]
        assert [c["value"] for c in after] != [before["value"]]  # never the old session

        log_in(page, url, "bob")
        clock.advance(30)
        page.reload()
        assert page.text_content("#name") == "bob"  # 30 s idle: still there
        clock.advance(61)
        page.reload()
        page.wait_for_selector("#user")  # 61 s idle: the session has ended, and it says so
        assert "please log in again" in (page.text_content("#flash") or "")
        assert errors == []
        page.close()


def test_log_out_my_other_sessions(browser: Browser) -> None:
    """Two browsers as one user: "log out my other sessions" ends the other one only."""
    manager = SessionManager(store=MemoryStore())
    app = load_example("web_demo").build_app(manager)
    with serving(app) as url:
        laptop = browser.new_context().new_page()
        phone = browser.new_context().new_page()
        log_in(laptop, url, "carol")
        log_in(phone, url, "carol")
        laptop.reload()
        assert laptop.locator("#sessions li").count() == 2
        laptop.click("#others")
        laptop.wait_for_selector("#name")
        assert laptop.locator("#sessions li").count() == 1
        phone.reload()
        phone.wait_for_selector("#user")  # logged out
        laptop.context.close()
        phone.context.close()


def test_login_logout_flash_and_a_second_tab_during_login(browser: Browser) -> None:
    """Login, logout then a flash message, and a second tab whose request is in flight
    while the first logs in: the user stays logged in and the tab's change is kept."""
    entered, go = threading.Event(), threading.Event()

    async def slow(request: Request) -> Response:
        request.session.get("user")  # loaded with the ID from before the login
        entered.set()
        await anyio.to_thread.run_sync(go.wait, 10)
        request.session["note"] = "second tab"
        return PlainTextResponse("slow")

    manager = SessionManager(store=MemoryStore())
    demo = load_example("web_demo").build_app(manager)
    tab = SessionMiddleware(Starlette(routes=[Route("/", slow, methods=["POST"])]), manager)
    app = Starlette(routes=[Mount("/slow", app=tab), Mount("/", app=demo)])
    fetch = "() => { window.p = fetch('/slow/', {method: 'POST'}).then(r => r.text()); }"
    with serving(app) as url:
        context = browser.new_context()
        first, second = context.new_page(), context.new_page()
        go.set()
        second.goto(url)
        second.evaluate(fetch)
        assert second.evaluate("window.p") == "slow"  # an anonymous session, with a note
        anonymous = next(c["value"] for c in context.cookies() if c["name"] == "session_id")
        go.clear()
        entered.clear()
        second.evaluate(fetch)
        assert entered.wait(10)  # the second tab's request has loaded the anonymous ID
        log_in(first, url, "dora")  # meanwhile the first tab logs in: a new ID
        go.set()
        assert second.evaluate("window.p") == "slow"
        first.reload()
        assert first.text_content("#name") == "dora"  # the in-flight response left the cookie
        sid = next(c["value"] for c in context.cookies() if c["name"] == "session_id")
        assert sid != anonymous
        data = in_thread(manager.get(sid))
        assert data == {"note": "second tab", "user": "dora", "count": 0}  # its change landed
        first.click("#logout")
        first.wait_for_selector("#flash")
        assert in_thread(manager.sessions_of("dora")) == []
        assert in_thread(manager.get(sid)) is None
        context.close()
