"""Real servers for the integration tests: redis-server (single and a 3-node cluster), uvicorn.

Each server runs on 127.0.0.1 and a free port, writes nothing to disk but its own
temporary directory, and is stopped by the fixture that started it. If one cannot start,
the test fails loudly: nothing here skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from werkzeug.serving import make_server


def free_port(below: int = 65536) -> int:
    """A free TCP port on 127.0.0.1, lower than *below*."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port < below:
            return port
    msg = f"no free port below {below}"
    raise RuntimeError(msg)


class RedisServer:
    """One redis-server process on 127.0.0.1: start, stop, pause (SIGSTOP), resume."""

    def __init__(self, *, cluster: bool = False, port: int | None = None) -> None:
        if shutil.which("redis-server") is None:
            msg = "redis-server is not installed: run ./scripts/install-system"
            raise RuntimeError(msg)
        # A cluster node also listens on its port + 10000 (the cluster bus).
        self.port = port or free_port(below=55536 if cluster else 65536)
        self.cluster = cluster
        self.dir = Path(tempfile.mkdtemp(prefix="lapse-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        args += ["--enable-debug-command", "local"]  # DEBUG POPULATE, from loopback
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        self.process = subprocess.Popen(  # noqa: S603 -- our own server, on loopback
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        msg = f"redis-server did not start on port {self.port}"
        raise RuntimeError(msg)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def redis_cluster() -> Iterator[list[RedisServer]]:
    """Three masters on loopback, all 16384 slots assigned."""
    nodes = [RedisServer(cluster=True) for _ in range(3)]
    try:
        for node in nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        subprocess.run(  # noqa: S603
            [
                "redis-cli",
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            out = subprocess.run(  # noqa: S603
                ["redis-cli", "-p", str(nodes[0].port), "cluster", "info"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            if "cluster_state:ok" in out:
                break
            time.sleep(0.1)
        else:
            msg = "the Redis cluster did not reach cluster_state:ok"
            raise RuntimeError(msg)
        yield nodes
    finally:
        for node in nodes:
            node.close()


class DropReplyProxy:
    """A loopback TCP proxy to a real Redis that, once armed, forwards the next command
    holding *marker* to the server, waits for the server's reply, and then drops the
    client's connection instead of passing the reply on: a write that ran, unconfirmed.

    With ``hang=True`` it passes the command on and then holds the reply back for good,
    the connection open: a network path that died silently after the write.
    """

    def __init__(self, port: int, marker: bytes, *, hang: bool = False) -> None:
        self.port, self.marker, self.hang = port, marker, hang
        self.armed = False
        self.dropped = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop listening and cut every connection still open (a hung one included), so
        that none outlives the test's event loop."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        if self._serving:
            await asyncio.wait(self._serving, timeout=5)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.port)
        self._writers |= {client_w, server_w}
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        drop = asyncio.Event()

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if self.armed and self.marker in data:
                    self.armed = False
                    drop.set()
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if drop.is_set():
                    self.dropped += 1
                    if self.hang:
                        await asyncio.Event().wait()  # never answers, never closes
                    client_w.transport.abort()  # the reply is lost with the connection
                    return
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for each in tasks:
                each.cancel()
            await asyncio.wait(tasks)
            client_w.close()
            server_w.close()
            self._writers -= {client_w, server_w}
            self._serving.discard(task)


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run *app* under a real uvicorn on 127.0.0.1 and a free port; yield its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            thread.join(0.01)
        if not server.started:
            msg = "uvicorn did not start"
            raise RuntimeError(msg)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def load_example(name: str) -> Any:
    """Import ``examples/<name>.py`` as a module (the examples are not a package)."""
    path = Path(__file__).parent.parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import does: Litestar reads annotations from it
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def werkzeug_serving(app: Any) -> Iterator[str]:
    """Run the WSGI *app* under werkzeug's threaded server on 127.0.0.1 and a free port."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
