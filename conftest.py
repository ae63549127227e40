"""Run every Python code block of the documentation as a test (Sybil).

Blocks on the Redis page get ``redis_url``: a real redis-server, started on a free
loopback port for the documentation's tests and stopped after them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

from typing import Any

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser


_servers: list[tuple[subprocess.Popen[bytes], str]] = []


def _start_redis(namespace: dict[str, Any]) -> None:
    if shutil.which("redis-server") is None:
        msg = "redis-server is not installed: run ./scripts/install-system"
        raise RuntimeError(msg)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="lapse-docs-redis-")
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    server = subprocess.Popen(  # noqa: S603 -- our own server, on loopback
        [*args, "--dir", directory], stdout=subprocess.DEVNULL
    )
    _servers.append((server, directory))
    for _ in range(500):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.01)
    else:
        msg = "redis-server did not start for the docs"
        raise RuntimeError(msg)
    namespace["redis_url"] = f"redis://127.0.0.1:{port}/0"


def _stop_redis(namespace: dict[str, Any]) -> None:  # noqa: ARG001 -- Sybil's signature
    while _servers:
        server, directory = _servers.pop()
        server.terminate()
        server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


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
