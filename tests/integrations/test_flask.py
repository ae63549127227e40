"""lapse.flask: flask.session kept server-side by a SessionManager, through Flask's own test
client and a real werkzeug server."""

from __future__ import annotations

import json

from collections.abc import Iterator

import flask
import httpx
import pytest

from playwright.sync_api import Browser

import lapse.flask

from lapse import MemoryStore
from lapse.redis import RedisStore
from lapse.sessions import SessionManager

from .servers import free_port, load_example, werkzeug_serving


def make_app(manager: SessionManager) -> flask.Flask:
    app = flask.Flask(__name__)
    app.session_interface = lapse.flask.SessionInterface(manager)

    @app.get("/count")
    def count() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        return str(flask.session["n"])

    @app.get("/peek")
    def peek() -> str:
        return str(flask.session.get("n"))

    @app.get("/plain")
    def plain() -> str:
        return "no session here"

    @app.post("/login/<user>")
    def login(user: str) -> str:
        lapse.flask.session_of(flask.session).login(user)
        return "ok"

    @app.post("/logout")
    def logout() -> str:
        lapse.flask.session_of(flask.session).clear()
        return "bye"

    return app


@pytest.fixture(name="store")
def _store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture(name="manager")
def _manager(store: MemoryStore) -> SessionManager:
    return SessionManager(store=store, renewal_grace=0)


@pytest.fixture(name="client")
def _client(manager: SessionManager) -> flask.testing.FlaskClient:
    return make_app(manager).test_client()


HTTPS = "https://localhost"


def test_the_session_lives_on_the_server(
    client: flask.testing.FlaskClient, store: MemoryStore
) -> None:
    """A counter counts across requests; the cookie holds a random ID only, and the data
    is in the store, under the ID's hash."""
    first = client.get("/count", base_url=HTTPS)
    assert first.text == "1"
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=Lax" in cookie
    assert first.headers["Cache-Control"] == "no-store"
    assert "Cookie" in first.headers["Vary"]
    sid = cookie.split(";")[0].split("=", 1)[1]
    assert len(sid) == 43
    assert client.get("/count", base_url=HTTPS).text == "2"
    assert client.get("/count", base_url=HTTPS).text == "3"
    assert len(store.sync) == 1
    assert sid not in next(iter(store.sync.keys()))


def test_reads_are_private_and_untouched_pages_get_nothing(
    client: flask.testing.FlaskClient, store: MemoryStore
) -> None:
    """A page that only reads the session is private and varies by cookie, with no new
    cookie; a page that never touches it gets no cookie and writes nothing."""
    plain = client.get("/plain", base_url=HTTPS)
    assert "Set-Cookie" not in plain.headers
    assert len(store.sync) == 0
    client.get("/count", base_url=HTTPS)
    peek = client.get("/peek", base_url=HTTPS)
    assert peek.text == "1"
    assert "Set-Cookie" not in peek.headers
    assert "private" in peek.headers["Cache-Control"]
    assert "Cookie" in peek.headers["Vary"]


def test_login_rotates_the_id_and_logout_ends_the_session(
    client: flask.testing.FlaskClient, manager: SessionManager
) -> None:
    """login(user): a new ID (the old one is dead), tied to the user; clear(): the
    session is deleted and the cookie cleared."""
    first = client.get("/count", base_url=HTTPS)
    old = first.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    login = client.post("/login/ann", base_url=HTTPS)
    new = login.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert new != old
    assert manager.sync.get(old) is None
    assert manager.sync.get(new) == {"n": 1}
    assert len(manager.sync.sessions_of("ann")) == 1
    logout = client.post("/logout", base_url=HTTPS)
    assert "Max-Age=0" in logout.headers["Set-Cookie"]
    assert manager.sync.get(new) is None
    assert manager.sync.sessions_of("ann") == []


def test_a_store_that_is_down_answers_503() -> None:
    """Nothing listens where the store should be: a page that writes the session gets
    503 with Retry-After; a page that does not touch it is served."""
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", prefix="down:", timeout=0.2)
    client = make_app(SessionManager(store=store)).test_client()
    failed = client.get("/count", base_url=HTTPS)
    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "5"
    assert "Set-Cookie" not in failed.headers
    assert client.get("/plain", base_url=HTTPS).status_code == 200


def test_session_of_needs_lapse() -> None:
    """session_of on Flask's own cookie session: a clear error, not an AttributeError."""
    app = flask.Flask(__name__)
    app.secret_key = "test"  # noqa: S105
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="session_interface"):
        lapse.flask.session_of(flask.session)
    with pytest.raises(TypeError, match="SessionManager"):
        lapse.flask.SessionInterface(object())  # type: ignore[arg-type]


@pytest.fixture(name="served")
def _served() -> Iterator[str]:
    manager = SessionManager(secure=False, insecure_development=True)
    with werkzeug_serving(make_app(manager)) as url:
        yield url


def test_under_werkzeugs_server(served: str) -> None:
    """Real HTTP against werkzeug's threaded server: two clients, two sessions, each
    counting on its own."""
    with httpx.Client(base_url=served) as ann, httpx.Client(base_url=served) as bob:
        assert [ann.get("/count").text for _ in range(3)] == ["1", "2", "3"]
        assert bob.get("/count").text == "1"
        assert ann.get("/peek").text == "3"


def test_the_example_app() -> None:
    """examples/flask_app.py: visits count, a login keeps them and names the user, a
    logout starts over."""
    module = load_example("flask_app")
    client = module.app.test_client()
    assert client.get("/").json == {"visits": 1, "user": None}
    assert client.post("/login", data={"user": "bob"}).json == {"user": "bob"}
    assert client.get("/").json == {"visits": 2, "user": "bob"}
    assert client.post("/logout").json == {"user": None}
    assert client.get("/").json == {"visits": 1, "user": None}


def test_in_a_browser(browser: Browser) -> None:
    """The example app under werkzeug's server, in Chromium: visits count, a login keeps
    them across a reload, a logout starts over; the cookie is HttpOnly."""
    module = load_example("flask_app")
    with werkzeug_serving(module.app) as url:
        page = browser.new_page()
        try:

            def shown() -> object:
                return json.loads(page.inner_text("body"))

            page.goto(url + "/")
            assert shown() == {"visits": 1, "user": None}
            page.reload()
            assert shown() == {"visits": 2, "user": None}
            status = page.evaluate(
                "fetch('/login', {method: 'POST', body: new URLSearchParams({user: 'ann'})})"
                ".then(r => r.status)"
            )
            assert status == 200
            page.reload()
            assert shown() == {"visits": 3, "user": "ann"}
            assert page.evaluate("document.cookie") == ""  # HttpOnly: not visible to scripts
            page.evaluate("fetch('/logout', {method: 'POST'}).then(r => r.status)")
            page.reload()
            assert shown() == {"visits": 1, "user": None}
        finally:
            page.close()


def test_a_secure_cookie_over_plain_http_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A Secure cookie set over plain http to a host that is not localhost: a browser
    would never send it back (werkzeug's test client does), and one log line says so;
    over https, none."""
    app = make_app(SessionManager(store=MemoryStore()))
    app.test_client().get("/count", base_url="https://testserver")
    assert not any("plain-http" in r.getMessage() for r in caplog.records)
    for _ in range(2):
        app.test_client().get("/count", base_url="http://testserver")
    assert sum("plain-http" in r.getMessage() for r in caplog.records) == 1
