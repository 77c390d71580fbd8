"""Fixtures shared by the test suite: servers on loopback and real client peers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import Site

from txrealtime._logging import reset_throttles
from txrealtime.engineio import EngineIOOptions, EngineIOResource, MessageReceived, SessionEvent, SessionManager

INTEROP = Path(__file__).parent / "interop"
NODE_MODULES = INTEROP / "node_modules"


@pytest.fixture(autouse=True)
def fresh_log_throttles() -> None:
    """Each test sees every log line a throttle would let through in a new period."""
    reset_throttles()


def node() -> str:
    path = shutil.which("node")
    if path is None or not NODE_MODULES.is_dir():
        pytest.fail("Node.js and tests/interop/node_modules are required: run `npm ci` in tests/interop")
    return path


def run_peer(args: list[str], timeout: float = 60) -> Deferred[Any]:
    """Run a client peer process without blocking the reactor; fire with its JSON report."""

    def run() -> Any:
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=INTEROP)
        if done.returncode != 0 or not done.stdout.strip():
            raise AssertionError(f"peer {args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    return threads.deferToThread(run)


def node_peer(script: str, *args: str, timeout: float = 60) -> Deferred[Any]:
    return run_peer([node(), str(INTEROP / script), *args], timeout=timeout)


def python_peer(script: str, *args: str) -> Deferred[Any]:
    return run_peer([sys.executable, str(INTEROP / script), *args])


@dataclass
class EchoServer:
    """An Engine.IO endpoint on loopback that echoes every message."""

    manager: SessionManager
    url: str
    events: list[SessionEvent] = field(default_factory=list)

    def of_type(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    manager = SessionManager(EngineIOOptions(ping_interval=1, ping_timeout=2))
    root = Resource()
    root.putChild(b"engine.io", EngineIOResource(manager))
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")  # type: ignore[attr-defined]
    server = EchoServer(manager, f"http://127.0.0.1:{port.getHost().port}")

    def on_event(event: SessionEvent) -> None:
        server.events.append(event)
        if isinstance(event, MessageReceived):
            manager.send(event.sid, event.data)

    manager.subscribe(on_event)
    yield server
    manager.shutdown()
    pytest_twisted.blockon(port.stopListening())


class Twistd:
    """``twistd -n txrealtime ...`` in a child process on a free loopback port."""

    def __init__(
        self, *args: str, cwd: Path | None = None, listen: str = "tcp:0:interface=127.0.0.1", scheme: str = "http"
    ) -> None:
        import re
        import subprocess as sp

        self.process = sp.Popen(
            [
                str(Path(sys.executable).parent / "twistd"),
                "-n",
                "--pidfile=",
                "txrealtime",
                "--listen",
                listen,
                *args,
            ],
            stdout=sp.PIPE,
            stderr=sp.STDOUT,
            text=True,
            cwd=cwd or Path(__file__).parent.parent,
        )
        self.log: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line)
            match = re.search(r"Site (?:\(TLS\) )?starting on (\d+)", line)
            if match:
                self.url = f"{scheme}://127.0.0.1:{match.group(1)}"
                return
        raise AssertionError("twistd did not start:\n" + "".join(self.log))

    def stop(self) -> int:
        """SIGTERM, then the exit code; the rest of the log lands in ``self.log``."""
        self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        self.log.append(out)
        return self.process.returncode


@dataclass
class SocketIOServer:
    """A Socket.IO server on loopback running :mod:`tests.socketio.app`."""

    server: Any
    url: str
    record: Any
    test_server: Any = None


@pytest.fixture
def sio_server() -> Iterator[SocketIOServer]:
    from tests.socketio.app import install
    from txrealtime.testing import start_server

    records: list[Any] = []
    running = pytest_twisted.blockon(
        start_server(lambda s: records.append(install(s)), options=EngineIOOptions(ping_interval=1, ping_timeout=2))
    )
    yield SocketIOServer(running.server, running.url, records[0], running)
    pytest_twisted.blockon(running.stop())


class NodeServer:
    """Node's socket.io 4.x running tests/interop/sio_server.js; can be killed and restarted on its port."""

    def __init__(self, port: int = 0, recovery_ms: int | None = None) -> None:
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        extra = [str(recovery_ms)] if recovery_ms is not None else []
        self.process = subprocess.Popen(
            [node(), str(INTEROP / "sio_server.js"), str(port), *extra], stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError("the Node socket.io server did not start")
        self.port = int(json.loads(line)["port"])
        self.url = f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)


@pytest.fixture
def node_server() -> Iterator[NodeServer]:
    server = NodeServer()
    yield server
    server.kill()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A private redis-server on a free loopback port, stoppable and restartable on that port."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is required (Debian package redis-server; run-tests installs it)")
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        import socket
        import time

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")],
        )
        for _ in range(500):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.01)  # redis-server is still starting up
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()
