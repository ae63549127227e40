"""Run every Python code block of the documentation as a test (Sybil).

Blocks on the Redis page find ``REDIS_URL`` in the environment, as the page tells readers
to export it: a real redis-server, started on a free loopback port for the
documentation's tests (by the integration tests' `RedisServer`) and stopped after them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

from pathlib import Path
from typing import Any

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser
from sybil.sybil import SybilCollection


def _servers() -> Any:
    path = Path(__file__).parent / "tests" / "integrations" / "servers.py"
    spec = importlib.util.spec_from_file_location("lapse_test_servers", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _start_redis(namespace: dict[str, Any]) -> None:
    server = _servers().RedisServer()
    server.start()  # raises, and fails the docs' tests, if it cannot
    namespace["_redis_server"] = server
    namespace["_redis_url_before"] = os.environ.get("REDIS_URL")
    os.environ["REDIS_URL"] = server.url  # what the page tells readers to export


def _stop_redis(namespace: dict[str, Any]) -> None:
    namespace.pop("_redis_server").close()
    before = namespace.pop("_redis_url_before")
    if before is None:
        os.environ.pop("REDIS_URL", None)
    else:
        os.environ["REDIS_URL"] = before


def _as_module(namespace: dict[str, Any]) -> None:
    """Run a page's blocks as a module's code: Litestar reads a handler's annotations from
    the module it was defined in."""
    module = types.ModuleType("lapse_docs_page")
    sys.modules[module.__name__] = module
    module.__dict__.update(namespace)
    namespace["__name__"] = module.__name__


def _drop_module(namespace: dict[str, Any]) -> None:
    sys.modules.pop(namespace["__name__"], None)


_docs = Sybil(
    parsers=[PythonCodeBlockParser()],
    patterns=["*.md"],
    path="docs",
    excludes=["redis.md", "litestar.md", "flask.md"],
)
_litestar_docs = Sybil(
    parsers=[PythonCodeBlockParser()],
    patterns=["litestar.md", "flask.md"],
    path="docs",
    setup=_as_module,
    teardown=_drop_module,
)
_redis_docs = Sybil(
    parsers=[PythonCodeBlockParser()],
    patterns=["redis.md"],
    path="docs",
    setup=_start_redis,
    teardown=_stop_redis,
)
pytest_collect_file = SybilCollection([_docs, _redis_docs, _litestar_docs]).pytest()
