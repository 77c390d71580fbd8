"""A ``twistd txrealtime --workers N`` server and long-lived Node clients, for the ``--workers`` tests."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from tests.servers import INTEROP, NODE_MODULES, WAIT, LoggedTwistd, node


class Cluster(LoggedTwistd):
    """``twistd -n txrealtime --workers N --app tests.cluster.app:setup`` on a free loopback port.

    A thread collects the master's log (its workers' lines included) so tests
    can wait for a line (:meth:`wait_for`) without blocking the reactor.
    """

    def __init__(self, *args: str, workers: int = 2) -> None:
        super().__init__("--workers", str(workers), "--app", "tests.cluster.app:setup", "--shutdown-grace", "5", *args)
        self.pids = {i: self.ready(i) for i in range(workers)}
        """Worker index -> pid, as the master logged them."""

    def ready(self, index: int, start: int = 0) -> int:
        """The pid of worker ``index`` once it is ready (the first time from log line ``start`` on)."""
        return int(self.wait_for(rf"Worker {index} ready \(pid (\d+)\)", start).group(1))

    def worker_of(self, pid: int) -> int:
        """The index of the worker running as ``pid``."""
        return next(i for i, p in self.pids.items() if p == pid)


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
