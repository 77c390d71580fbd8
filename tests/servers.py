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
    return its report; when the page reports an error, the report and the server's log are kept in
    ``test-artifacts/<script>-failure.txt``."""
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    server = Twistd(*twistd_options, "--shutdown-grace", "1")
    try:
        report: dict[str, Any] = await node_peer(script, server.url, str(ARTIFACTS), timeout=240)
    finally:
        server.stop()
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
        self, port: int = 0, recovery_ms: int | None = None, parser: str = "json", allow_eio3: bool = False
    ) -> None:
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES), ALLOW_EIO3="1" if allow_eio3 else "0")
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

    def __init__(self, directory: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is required (Debian package redis-server; run-tests installs it)")
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
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


async def serve(realtime: Realtime, **options: Any) -> tuple[TestServer, list[SessionEvent]]:
    """:mod:`tests.socketio.app` on loopback with these Engine.IO options, and the list its session events go to."""
    running = await realtime.start_server(install, options=EngineIOOptions(**options))
    events: list[SessionEvent] = []
    running.server.manager.subscribe(events.append)
    return running, events


def closes(events: list[SessionEvent]) -> list[tuple[CloseReason, str]]:
    """Reason and description of each session close among ``events``."""
    return [(e.reason, e.description) for e in events if isinstance(e, SessionClosed)]


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
