"""examples/django_app.py: django.contrib.auth's login and logout on lapse's sessions,
through Django's test client and, in Chromium, under a real WSGI server."""

from __future__ import annotations

import concurrent.futures
import json

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from playwright.sync_api import Browser

from .django_setup import configure
from .servers import load_example, werkzeug_serving


configure()

from django.contrib.auth.models import User  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from lapse.django.sessions import sessions_of  # noqa: E402


T = TypeVar("T")
example = load_example("django_app")
SETTINGS = {
    name: example.SETTINGS[name]
    for name in (
        "ROOT_URLCONF",
        "MIDDLEWARE",
        "SESSION_ENGINE",
        "LAPSE_SESSIONS",
        "SESSION_COOKIE_SECURE",
        "CACHES",
        "ALLOWED_HOSTS",
    )
}


def _in_thread(fn: Callable[[], T]) -> T:
    """Run *fn* in a thread of its own: Playwright holds an event loop in this one, and
    Django's ORM refuses to run where a loop runs."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def _make_ann() -> User:
    user, _ = User.objects.get_or_create(username="ann")
    user.set_password("secret")
    user.save()
    return user


@pytest.fixture(name="ann")
def _ann() -> Iterator[User]:
    user = _in_thread(_make_ann)
    yield user
    _in_thread(user.delete)


def _cookie(client: Client) -> str:
    return client.cookies["sessionid"].value


@override_settings(**SETTINGS)
def test_login_keeps_the_data_under_a_new_key_and_logout_ends_it(ann: User) -> None:
    """Django's login() cycles the session key (the data stays, now tied to the user);
    the user is listed; revoke_all ends every device; logout() deletes the session."""
    client, phone = Client(), Client()
    assert client.get("/").json() == {"visits": 1, "user": None}
    anonymous = _cookie(client)
    assert client.post("/login", {"user": "ann", "password": "wrong"}).status_code == 403
    assert client.post("/login", {"user": "ann", "password": "secret"}).json() == {"user": "ann"}
    assert _cookie(client) != anonymous
    assert client.get("/").json() == {"visits": 2, "user": "ann"}
    phone.post("/login", {"user": "ann", "password": "secret"})
    assert sessions_of(ann.pk) == 2
    assert phone.post("/everywhere").json() == {"ended": 2}
    assert client.get("/").json() == {"visits": 1, "user": None}  # logged out everywhere
    client.post("/login", {"user": "ann", "password": "secret"})
    assert client.post("/logout").json() == {"user": None}
    assert client.get("/").json() == {"visits": 1, "user": None}
    assert client.get("/report").json() == {"report": "expensive"}


@pytest.fixture(name="served")
def _served(ann: User) -> Iterator[str]:
    with override_settings(**SETTINGS), werkzeug_serving(WSGIHandler()) as url:
        yield url


def test_in_a_browser(served: str, browser: Browser) -> None:
    """In Chromium: visits count, a login keeps them across a reload, a logout starts
    over; the session cookie is HttpOnly."""
    page = browser.new_page()
    try:

        def shown() -> object:
            return json.loads(page.inner_text("body"))

        page.goto(served + "/")
        assert shown() == {"visits": 1, "user": None}
        status = page.evaluate(
            "fetch('/login', {method: 'POST', body: new URLSearchParams("
            "{user: 'ann', password: 'secret'})}).then(r => r.status)"
        )
        assert status == 200
        page.reload()
        assert shown() == {"visits": 2, "user": "ann"}
        assert page.evaluate("document.cookie") == ""
        page.evaluate("fetch('/logout', {method: 'POST'}).then(r => r.status)")
        page.reload()
        assert shown() == {"visits": 1, "user": None}
    finally:
        page.close()
