"""Real servers and peers for tests: Node, python-socketio, twistd and redis-server processes, loopback servers."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import threads
from twisted.internet.defer import Deferred

from tests.socketio.app import install
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionClosed, SessionEvent, SessionManager
from txrealtime.pytest_plugin import Realtime
from txrealtime.testing import TestServer

INTEROP = Path(__file__).parent / "interop"
NODE_MODULES = INTEROP / "node_modules"


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


ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
"""Screenshots and failure reports of the page tests."""


async def page_report(script: str, *twistd_options: str) -> dict[str, Any]:
    """Serve with ``twistd -n txrealtime OPTIONS``, run the headless-Chromium ``script`` against it, and
    return its report, with ``notFound`` (the paths the server answered 404); when the page reports an error,
    the report and the server's log are kept in ``test-artifacts/<script>-failure.txt``."""
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    server = Twistd(*twistd_options, "--shutdown-grace", "1")
    try:
        report: dict[str, Any] = await node_peer(script, server.url, str(ARTIFACTS), timeout=240)
    finally:
        server.stop()
    # What the server's access log says it could not find (a page's favicon.ico, say).
    report["notFound"] = re.findall(r'"[A-Z]+ (\S+) HTTP/[\d.]+" 404 ', "".join(server.log))
    if report.get("error") is not None:
        failure = ARTIFACTS / f"{Path(script).stem}-failure.txt"
        failure.write_text(json.dumps(report, indent=1) + "\n" + "".join(server.log))
    return report


def check_chat(report: dict[str, Any]) -> None:
    """What tests/interop/chat_browser.js must report: alice and bob chatted, bob upgraded, bob left."""
    assert report.get("error") is None, (report["error"], report.get("state"))
    assert report["errors"] == []
    assert report["bobSees"] == "alicehello from alice <b>not bold</b>"
    assert report["bobBold"] == 0  # text, never markup
    assert report["bobStatus"] == "connected (websocket)"
    assert report["aliceMessages"] == [
        "you joined as alice (1 online)",
        "bob joined (2 online)",
        "alicehello from alice <b>not bold</b>",
    ]
    assert report["aliceAfter"][-1] == "bob left (1 online)"


def require_chromium() -> None:
    """Fail (not skip) when Debian's Chromium, which the page tests drive, is missing."""
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not shutil.which(chromium):
        pytest.fail(f"Chromium is required at {chromium} (Debian package chromium; run-tests installs it)")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EchoServer:
    """An Engine.IO endpoint on loopback that echoes every message."""

    manager: SessionManager
    url: str
    events: list[SessionEvent] = field(default_factory=list)

    def of_type(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class Twistd:
    """``twistd -n txrealtime ...`` in a child process on a free loopback port."""

    def __init__(
        self, *args: str, cwd: Path | None = None, listen: str = "tcp:0:interface=127.0.0.1", scheme: str = "http"
    ) -> None:
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "twistd"),
                "-n",
                "--pidfile=",
                "txrealtime",
                "--listen",
                listen,
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
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
        assert self.process.stdout is not None
        # read(), not communicate(): the lines after "starting on" may sit in stdout's buffer already,
        # where communicate(timeout=...), reading the pipe itself, would never see them.
        self.log.append(self.process.stdout.read())
        return self.process.wait(30)


@dataclass
class SocketIOServer:
    """A Socket.IO server on loopback running :mod:`tests.socketio.app`."""

    server: Any
    url: str
    record: Any
    test_server: Any = None


class NodeServer:
    """Node's socket.io 4.x running tests/interop/sio_server.js; can be killed and restarted on its port."""

    def __init__(
        self, port: int = 0, recovery_ms: int | None = None, parser: str = "json", allow_eio3: bool = False,
        transports: tuple[str, ...] = (),
    ) -> None:
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES), ALLOW_EIO3="1" if allow_eio3 else "0",
                   TRANSPORTS=",".join(transports))
        extra = [str(recovery_ms)] if recovery_ms is not None else []
        if parser != "json":
            extra += ["--parser", parser]
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


class RedisServer:
    """A private redis-server on a free loopback port, stoppable and restartable on that port."""

    def __init__(self, directory: Path, *args: str) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is required (Debian package redis-server; run-tests installs it)")
        self.directory = directory
        self.args = args
        """More redis-server options (``--requirepass``, ``--rename-command`` ...)."""
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log"), *self.args],
        )
        for _ in range(500):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                time.sleep(0.01)  # redis-server is still starting up
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)
            self.process = None


async def serve(realtime: Realtime, **options: Any) -> tuple[TestServer, list[SessionEvent]]:
    """:mod:`tests.socketio.app` on loopback with these Engine.IO options, and the list its session events go to."""
    running = await realtime.start_server(install, options=EngineIOOptions(**options))
    events: list[SessionEvent] = []
    running.server.manager.subscribe(events.append)
    return running, events


def closes(events: list[SessionEvent]) -> list[tuple[CloseReason, str]]:
    """Reason and description of each session close among ``events``."""
    return [(e.reason, e.description) for e in events if isinstance(e, SessionClosed)]


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports nothing listens on right now."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class RedisCluster:
    """A private Redis Cluster of ``masters`` masters (redis-server 7 in cluster mode, no replicas) on free
    loopback ports: nodes can be stopped, restarted and have slots moved between them.

    ``cluster-require-full-coverage no``: while one master is down, the others keep serving their slots.
    """

    def __init__(self, directory: Path, masters: int = 3, node_timeout_ms: int = 3000) -> None:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            pytest.fail("redis-server and redis-cli are required (Debian package redis-server)")
        self.directory = directory
        ports = free_ports(2 * masters)
        self.ports, self.bus_ports = ports[:masters], ports[masters:]
        self.node_timeout_ms = node_timeout_ms
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * masters
        for index in range(masters):
            self.start(index)
        done = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-replicas", "0",
             "--cluster-yes"], capture_output=True, text=True, timeout=60,
        )
        if done.returncode != 0:
            raise AssertionError(f"redis-cli --cluster create failed:\n{done.stdout}\n{done.stderr}")
        self.ids = [self.cli(index, "CLUSTER", "MYID") for index in range(masters)]
        self.wait_until_ok()

    @property
    def url(self) -> str:
        """The URL of the first node (any node lets a client discover the others)."""
        return self.url_of(0)

    def url_of(self, index: int) -> str:
        return f"redis://127.0.0.1:{self.ports[index]}"

    def start(self, index: int) -> None:
        port = self.ports[index]
        self.processes[index] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
             "--cluster-port", str(self.bus_ports[index]), "--cluster-node-timeout", str(self.node_timeout_ms),
             "--cluster-require-full-coverage", "no", "--dir", str(self.directory),
             "--logfile", str(self.directory / f"redis-{port}.log")],
        )
        for _ in range(500):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.01)  # redis-server is still starting up
        raise AssertionError(f"redis-server on {port} did not start")

    def stop(self, index: int) -> None:
        process = self.processes[index]
        if process is not None:
            process.kill()
            process.wait(30)
            self.processes[index] = None

    def stop_all(self) -> None:
        for index in range(len(self.ports)):
            self.stop(index)

    def cli(self, index: int, *args: str) -> str:
        """``redis-cli`` against node ``index``: its answer, as text."""
        done = subprocess.run(["redis-cli", "-p", str(self.ports[index]), *args], capture_output=True, text=True,
                              timeout=30)
        if done.returncode != 0 or done.stdout.startswith("ERR"):
            raise AssertionError(f"redis-cli {args} on node {index}: {done.stdout}{done.stderr}")
        return done.stdout.strip()

    def wait_until_ok(self, timeout: float = 60) -> None:
        """Block until every running node reports ``cluster_state:ok`` and agrees on who serves every slot."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [i for i, p in enumerate(self.processes) if p is not None]
            if all("cluster_state:ok" in self.cli(i, "CLUSTER", "INFO") for i in running):
                views = {self.cli(i, "CLUSTER", "SLOTS") for i in running}
                if len(views) == 1:
                    return
            time.sleep(0.05)  # gossip is still converging
        raise AssertionError("the Redis Cluster did not settle")

    def owner(self, slot: int) -> int:
        """The index of the node serving ``slot`` (as node 0 sees it)."""
        for line in self.cli(0, "CLUSTER", "NODES").splitlines():
            fields = line.split()
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            for part in fields[8:]:
                start, _, end = part.partition("-")
                if start.isdigit() and int(start) <= slot <= int(end or start):
                    return self.ports.index(port)
        raise AssertionError(f"no node serves slot {slot}")

    def move_slot(self, slot: int, target: int, between: Callable[[], object] | None = None) -> None:
        """Migrate ``slot`` (and its keys) to node ``target``, as ``redis-cli --cluster reshard`` does;
        ``between()`` runs while the slot is half moved (MIGRATING on its owner, IMPORTING on ``target``)."""
        source = self.owner(slot)
        if source == target:
            return
        self.cli(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", self.ids[source])
        self.cli(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", self.ids[target])
        if between is not None:
            between()
        while True:
            keys = self.cli(source, "CLUSTER", "GETKEYSINSLOT", str(slot), "100").split()
            if not keys:
                break
            self.cli(source, "MIGRATE", "127.0.0.1", str(self.ports[target]), "", "0", "5000", "KEYS", *keys)
        for index in (target, source, *(i for i in range(len(self.ports)) if i not in (source, target))):
            if self.processes[index] is not None:
                self.cli(index, "CLUSTER", "SETSLOT", str(slot), "NODE", self.ids[target])
        self.wait_until_ok()
WAIT = 60.0
"""Seconds to wait for a process to say something (a safety net: nothing is timed)."""


class LoggedTwistd:
    """``twistd -n txrealtime ARGS`` on a free loopback port, its log collected by a thread.

    Tests wait for a line (:meth:`wait_for`) without blocking the reactor and
    without the process ever blocking on a full pipe.
    """

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "twistd"), "-n", "--pidfile=", "txrealtime",
             "--listen", "tcp:0:interface=127.0.0.1", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).parent.parent,
        )
        self.log: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = int(self.wait_for(r"Site starting on (\d+)").group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.log.append(line)
                self._changed.notify_all()
        with self._changed:
            self.log.append("<EOF>")
            self._changed.notify_all()

    def wait_for(self, pattern: str, start: int = 0) -> re.Match[str]:
        """The first match of ``pattern`` in the log from line ``start`` on, waiting for it if need be."""
        regex = re.compile(pattern)
        with self._changed:
            seen = start
            while True:
                for line in self.log[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.log)
                if self.log and self.log[-1] == "<EOF>":
                    raise AssertionError(f"no {pattern!r} in the log:\n" + "".join(self.log))
                if not self._changed.wait(WAIT):
                    raise AssertionError(f"no {pattern!r} in the log yet:\n" + "".join(self.log))

    def count(self, pattern: str, at_least: int = 0) -> int:
        """How many lines of the log match ``pattern``, once at least ``at_least`` do."""
        regex = re.compile(pattern)
        with self._changed:
            while True:
                found = sum(1 for line in self.log if regex.search(line))
                if found >= at_least:
                    return found
                if self.log and self.log[-1] == "<EOF>":
                    raise AssertionError(f"not {at_least} lines like {pattern!r} in the log:\n" + "".join(self.log))
                if not self._changed.wait(WAIT):
                    raise AssertionError(f"not {at_least} lines like {pattern!r} yet:\n" + "".join(self.log))

    def stop(self) -> int:
        """SIGTERM; the exit status once it exited."""
        if self.process.poll() is None:
            self.process.terminate()
        status = self.process.wait(WAIT)
        self._reader.join(WAIT)
        return status

    def kill(self) -> None:
        """SIGKILL: the process ends at once, saying goodbye to nobody."""
        self.process.kill()
        self.process.wait(WAIT)
