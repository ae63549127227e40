"""The web demo in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import time

from playwright.sync_api import Browser, Page

from lapse import MemoryStore
from lapse.sessions import SessionManager
from lapse.testing import ManualClock

from .servers import load_example, serving


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
        assert page.text_content("#idle") == "60 s"
        page.click("#logout")
        page.wait_for_selector("#user")
        assert not [c for c in page.context.cookies() if c["name"] == "session_id"]

        log_in(page, url, "bob")
        clock.advance(30)
        page.reload()
        assert page.text_content("#name") == "bob"  # 30 s idle: still there
        clock.advance(61)
        page.reload()
        page.wait_for_selector("#user")  # 61 s idle: the session has ended
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
