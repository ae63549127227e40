"""Run every Python code block of the documentation as a test (Sybil).

Blocks on the Redis page get ``redis_url``: a real redis-server, started on a free
loopback port for the documentation's tests (by the integration tests' `RedisServer`)
and stopped after them.
"""

from __future__ import annotations

import importlib.util

from pathlib import Path
from typing import Any

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser


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
    namespace["redis_url"] = server.url


def _stop_redis(namespace: dict[str, Any]) -> None:
    namespace.pop("_redis_server").close()


_docs = Sybil(
    parsers=[PythonCodeBlockParser()], patterns=["*.md"], path="docs", excludes=["redis.md"]
)
_redis_docs = Sybil(
    parsers=[PythonCodeBlockParser()],
    patterns=["redis.md"],
    path="docs",
    setup=_start_redis,
    teardown=_stop_redis,
)
pytest_collect_file = (_docs + _redis_docs).pytest()
