"""A ``twistd txrealtime --workers N`` server and long-lived Node clients, for the ``--workers`` tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.servers import INTEROP, NODE_MODULES, node

ROOT = Path(__file__).parent.parent.parent
WAIT = 60.0
"""Seconds to wait for a process to say something (a safety net: nothing is timed)."""


class Cluster:
    """``twistd -n txrealtime --workers N --app tests.cluster.app:setup`` on a free loopback port.

    A thread collects the master's log (its workers' lines included) so tests
    can wait for a line (:meth:`wait_for`) without blocking the reactor.
    """

    def __init__(self, *args: str, workers: int = 2) -> None:
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "twistd"), "-n", "--pidfile=", "txrealtime",
             "--listen", "tcp:0:interface=127.0.0.1", "--workers", str(workers), "--app", "tests.cluster.app:setup",
             "--shutdown-grace", "5", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )
        self.log: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        port = self.wait_for(r"Site starting on (\d+)").group(1)
        self.url = f"http://127.0.0.1:{port}"
        self.pids = {i: self.ready(i) for i in range(workers)}
        """Worker index -> pid, as the master logged them."""

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

    def ready(self, index: int, start: int = 0) -> int:
        """The pid of worker ``index`` once it is ready (the first time from log line ``start`` on)."""
        return int(self.wait_for(rf"Worker {index} ready \(pid (\d+)\)", start).group(1))

    def worker_of(self, pid: int) -> int:
        """The index of the worker running as ``pid``."""
        return next(i for i, p in self.pids.items() if p == pid)

    def stop(self) -> int:
        """SIGTERM to the master; its exit status once it exited."""
        if self.process.poll() is None:
            self.process.terminate()
        status = self.process.wait(WAIT)
        self._reader.join(WAIT)
        return status


class NodeClients:
    """tests/interop/workers_hold.js: clients that stay connected and follow commands on stdin."""

    def __init__(self, url: str, count: int, *modes: str) -> None:
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        self.process = subprocess.Popen(
            [node(), str(INTEROP / "workers_hold.js"), url, str(count), *modes],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=INTEROP,
        )

    def report(self) -> Any:
        """The next JSON line the clients print."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            assert self.process.stderr is not None
            raise AssertionError(f"the Node clients exited: {self.process.stderr.read()}")
        report = json.loads(line)
        if "error" in report:
            raise AssertionError(report["error"])
        return report

    def command(self, text: str) -> Any:
        """Send ``text`` as a line, then the report that answers it."""
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        return self.report()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(WAIT)
