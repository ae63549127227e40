"""Fixtures shared by the integration tests: a real headless Chromium, a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from playwright.sync_api import Browser, sync_playwright

from .servers import RedisServer, redis_cluster, redis_server


CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by scripts/install-system
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(name="browser", scope="module")
def _browser() -> Iterator[Browser]:
    """Debian's Chromium, per module: Playwright's sync API holds an event loop while it runs,
    so it must be gone before the async tests of other modules. It never skips."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(name="server", scope="module")
def _server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, per module; it never skips."""
    with redis_server() as server:
        yield server


@pytest.fixture(name="cluster_url", scope="module")
def _cluster_url() -> Iterator[str]:
    """A real 3-master Redis Cluster on loopback, per module, as a lapse URL."""
    with redis_cluster() as nodes:
        yield f"redis+cluster://127.0.0.1:{nodes[0].port}"
