"""Requests through Flask and Django with lapse against what those frameworks users use
today, interleaved in one run, on one local redis-server started here.

- Django: a view that does one ``cache.get`` (a hit), through Django's test client with
  no middleware, on ``LocMemCache``, lapse's ``LapseCache`` (memory and Redis),
  django-redis' ``RedisCache`` and Django's own ``RedisCache``.
- Flask: a request that reads and writes a counter in ``flask.session``, through Flask's
  test client, with lapse's session interface (memory and Redis), Flask-Session on Redis
  and Flask's default signed-cookie session.

Prints µs per request (median of interleaved repeats) and the ratio to the first row of
each table; writes ``benchmarks/results/frameworks.{md,json}``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time

from pathlib import Path
from typing import Any

import redis_bench  # next to this file: starts a loopback redis-server


RESULTS = Path(__file__).parent / "results"
REQUESTS = 2000
REPEATS = 5


def timed(fn: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def django_subjects(url: str) -> dict[str, Any]:
    import django  # noqa: PLC0415

    from django.conf import settings  # noqa: PLC0415
    from django.core.cache import caches  # noqa: PLC0415
    from django.http import HttpRequest, HttpResponse  # noqa: PLC0415
    from django.test import Client  # noqa: PLC0415
    from django.urls import path  # noqa: PLC0415

    backends = {
        "Django LocMemCache": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "lapse LapseCache (memory)": {
            "BACKEND": "lapse.django.cache.LapseCache",
            "LOCATION": "memory://bench",
        },
        "django-redis RedisCache": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "dr",
        },
        "Django RedisCache": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "dj",
        },
        "lapse LapseCache (Redis, pickle)": {
            "BACKEND": "lapse.django.cache.LapseCache",
            "LOCATION": url,
            "OPTIONS": {"serializer": "pickle", "prefix": "lapse-bench:"},
        },
    }
    aliases = {name: f"c{i}" for i, name in enumerate(backends)}

    def view(request: HttpRequest, alias: str) -> HttpResponse:
        return HttpResponse(str(caches[alias].get("greeting")))

    module = sys.modules[__name__]
    module.urlpatterns = [path("<str:alias>", view)]  # type: ignore[attr-defined]
    settings.configure(
        SECRET_KEY="bench",  # noqa: S106
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["testserver"],
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        CACHES={"default": backends["Django LocMemCache"]}
        | {aliases[name]: config for name, config in backends.items()},
    )
    django.setup()
    client = Client()
    subjects = {}
    for name, alias in aliases.items():
        caches[alias].set("greeting", {"text": "hello", "n": 1}, None)
        if client.get(f"/{alias}").status_code != 200:
            msg = f"the view on {name} failed"
            raise RuntimeError(msg)
        subjects[name] = lambda alias=alias: client.get(f"/{alias}")
    return subjects


def flask_subjects(url: str) -> dict[str, Any]:
    import flask  # noqa: PLC0415
    import redis  # noqa: PLC0415

    from flask_session import Session as FlaskSession  # noqa: PLC0415

    import lapse.flask  # noqa: PLC0415

    from lapse import MemoryStore  # noqa: PLC0415
    from lapse.redis import RedisStore  # noqa: PLC0415
    from lapse.sessions import SessionManager  # noqa: PLC0415

    def app_with(configure: Any) -> Any:
        app = flask.Flask(__name__)
        app.secret_key = "bench"  # noqa: S105
        configure(app)

        @app.get("/")
        def count() -> str:
            flask.session["n"] = flask.session.get("n", 0) + 1
            return str(flask.session["n"])

        return app

    def lapse_memory(app: Any) -> None:
        app.session_interface = lapse.flask.SessionInterface(SessionManager(store=MemoryStore()))

    def lapse_redis(app: Any) -> None:
        store = RedisStore(url, prefix="lapse-flask:")
        app.session_interface = lapse.flask.SessionInterface(SessionManager(store=store))

    def flask_session_redis(app: Any) -> None:
        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(url))
        FlaskSession(app)

    apps = {
        "Flask signed cookie (client-side)": app_with(lambda _: None),
        "lapse SessionInterface (memory)": app_with(lapse_memory),
        "Flask-Session (Redis)": app_with(flask_session_redis),
        "lapse SessionInterface (Redis)": app_with(lapse_redis),
    }
    subjects = {}
    for name, app in apps.items():
        client = app.test_client()
        counts = [client.get("/", base_url="https://localhost").text for _ in range(2)]
        if counts != ["1", "2"]:
            msg = f"{name}: the session did not count ({counts})"
            raise RuntimeError(msg)
        subjects[name] = lambda client=client: client.get("/", base_url="https://localhost")
    return subjects


def run(subjects: dict[str, Any]) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(REPEATS):
        for name, fn in subjects.items():  # interleaved
            samples[name].append(timed(fn, REQUESTS))
    return {name: statistics.median(values) for name, values in samples.items()}


def table(title: str, results: dict[str, float]) -> str:
    first = next(iter(results.values()))
    rows = [f"### {title}", "", "| subject | µs per request | vs first row |", "|---|---|---|"]
    rows += [f"| {name} | {us:.1f} | {us / first:.2f}x |" for name, us in results.items()]
    return "\n".join(rows) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        port = redis_bench._free_port()
        server = redis_bench._start(port, directory)
        try:
            time.sleep(0.3)  # the server starting, not an expiry
            url = f"redis://127.0.0.1:{port}/0"
            results = {
                "django_view_cache_get": run(django_subjects(url)),
                "flask_session_request": run(flask_subjects(url)),
            }
        finally:
            server.terminate()
            server.wait()
    text = (
        f"{REQUESTS} requests per sample, median of {REPEATS} interleaved repeats, one "
        "local redis-server; lower is better.\n\n"
        + table("Django: a view doing one cache.get (hit)", results["django_view_cache_get"])
        + "\n"
        + table(
            "Flask: a request reading and writing the session", results["flask_session_request"]
        )
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "frameworks.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "frameworks.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
