"""The documentation site as a reader gets it: built strictly, complete, and shown in Chromium."""

from __future__ import annotations

import functools
import http.server
import importlib
import os
import subprocess
import sys
import tempfile
import threading

from collections.abc import Iterator
from pathlib import Path

import pytest

from playwright.sync_api import Browser
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .servers import free_port


ROOT = Path(__file__).parent.parent.parent
MODULES = [
    "lapse",
    "lapse.policies",
    "lapse.sessions",
    "lapse.redis",
    "lapse.flask",
    "lapse.django.sessions",
    "lapse.django.cache",
    "lapse.litestar",
    "lapse.testing",
    "lapse.exceptions",
]


@pytest.fixture(name="site", scope="module")
def _site() -> Iterator[Path]:
    """``mkdocs build --strict`` into a temporary directory; any warning fails it."""
    with tempfile.TemporaryDirectory() as directory:
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", directory],
            cwd=ROOT,
            env=env,
            check=True,
        )
        yield Path(directory)


@pytest.fixture(name="url", scope="module")
def _url(site: Path) -> Iterator[str]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    handler = functools.partial(Handler, directory=str(site))

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass

    port = free_port()
    server = Quiet(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_every_public_name_is_in_the_api_reference(site: Path) -> None:
    """Each name of each public module's __all__ is documented on the API pages (one page
    per module), once: a name lapse re-exports from lapse.policies is on that page."""
    pages = "".join(p.read_text() for p in (site / "api").glob("**/index.html"))
    missing = []
    for name in MODULES:
        module = importlib.import_module(name)
        for n in module.__all__:
            home = getattr(getattr(module, n), "__module__", name)
            documented = {f'id="{name}.{n}"', f'id="lapse.policies.{n}"'}
            if not any(anchor in pages for anchor in documented):
                missing.append(f"{name}.{n} (from {home})")
    assert missing == []


@pytest.mark.parametrize("path", ["/", "/sessions/", "/api/", "/redis/", "/performance/"])
def test_pages_render_without_errors_or_broken_images(
    browser: Browser, url: str, path: str
) -> None:
    """The page loads, has its title, every image has loaded, the console has no error."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(url + path)
    assert response is not None
    assert response.ok
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").first.is_visible()
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.src)"
    )
    assert broken == []
    assert errors == []
    page.close()


def test_search_finds_the_session_middleware(browser: Browser, url: str) -> None:
    """The site's own search (offline) returns a result for SessionMiddleware."""
    page = browser.new_page()
    page.goto(url + "/")
    page.wait_for_load_state("networkidle")  # the search index is fetched by a worker
    page.locator("label.md-search__icon, .md-search__input").first.click()
    results = page.locator(".md-search-result__item")
    for _ in range(10):  # typed before the index is ready, a query finds nothing: again
        page.fill("input.md-search__input", "")
        page.type("input.md-search__input", "SessionMiddleware")
        try:
            results.first.wait_for(timeout=2000)
            break
        except PlaywrightTimeout:
            continue
    assert results.count() > 0
    assert "SessionMiddleware" in page.locator(".md-search-result").inner_text()
    page.close()


def test_no_code_block_overflows_at_1280_px_on_any_page(
    browser: Browser, url: str, site: Path
) -> None:
    """Every page at 1280x900: no code block wider than its box (nothing cut off, nothing
    to scroll sideways), and no console error."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    overflowing: list[str] = []
    folders = [p.parent.relative_to(site) for p in site.glob("**/index.html")]
    paths = sorted("/" if f == Path() else f"/{f.as_posix()}/" for f in folders)
    assert len(paths) > 20  # every page of the site, not a sample
    for path in paths:
        page.goto(url + path)
        wide = page.evaluate(
            "Array.from(document.querySelectorAll('pre > code'))"
            ".filter(c => c.scrollWidth > c.clientWidth + 1).length"
        )
        if wide:
            overflowing.append(f"{path}: {wide}")
    page.close()
    assert overflowing == []
    assert errors == []
