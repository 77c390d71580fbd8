"""Nodes sharing one real redis-server behind the round-robin proxy, for the forwarding tests."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

from tests.servers import INTEROP, NODE_MODULES, WAIT, LoggedTwistd, RedisCluster, RedisServer, node

APP = ("--app", "tests.forwarding.app:setup")


class Proxy:
    """tests/interop/rrproxy.js in front of ``ports``: round robin, or ``sticky``."""

    def __init__(self, ports: list[int], sticky: bool = False) -> None:
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        self.process = subprocess.Popen(
            [node(), str(INTEROP / "rrproxy.js"), *(["--sticky"] if sticky else []), *map(str, ports)],
            stdout=subprocess.PIPE, text=True, env=env,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError("the proxy did not start")
        self.url = f"http://127.0.0.1:{json.loads(line)['port']}"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(WAIT)


def streams_nodes(redis: RedisServer, count: int, *args: str) -> list[LoggedTwistd]:
    """``count`` twistd nodes on the streams adapter with connection state recovery (60 s), running
    tests/forwarding/app.py, each having heard the others."""
    nodes = [
        LoggedTwistd("--adapter", "redis-streams", "--redis", redis.url, "--state-recovery", "60", *APP,
                     "--no-access-log", "--shutdown-grace", "1", *args)
        for _ in range(count)
    ]
    for each in nodes:
        each.count(r"Redis link: node \w+ joined", at_least=count - 1)
    return nodes


def twistd_ends(nodes: list[LoggedTwistd], how: str) -> Callable[[int], object]:
    """For :func:`failover`: end the one of ``nodes`` of that pid, with SIGKILL or SIGTERM (``how``)."""

    def end(pid: int) -> None:
        [victim] = [n for n in nodes if n.process.pid == pid]
        if how == "SIGKILL":
            victim.kill()
        else:
            assert victim.stop() == 0

    return end


def failover(proxy: Proxy, end: Callable[[int], object], bound_ms: int = 30000) -> dict[str, Any]:
    """Run tests/interop/streams_failover_client.js through ``proxy``; once it says which node it is on,
    ``end(pid)`` ends that node. What the client saw (by ``bound_ms`` at the latest)."""
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES), FAILOVER_TIMEOUT_MS=str(bound_ms))
    client = subprocess.Popen([node(), str(INTEROP / "streams_failover_client.js"), proxy.url],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert client.stdout is not None
        ready: dict[str, Any] = json.loads(client.stdout.readline())
        end(ready["pid"])
        report: dict[str, Any] = json.loads(client.stdout.readline())
        client.wait(WAIT)
        return report
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(WAIT)


class Nodes:
    """``count`` txrealtime nodes on ``redis`` (through ``adapter``: ``redis``, ``redis-streams``, or
    ``redis-sharded`` on a cluster) running tests/forwarding/app.py, each knowing the others, behind a
    round-robin :class:`Proxy`."""

    def __init__(self, redis: RedisServer | RedisCluster, *args: str, count: int = 3, workers: int = 1,
                 adapter: str = "redis") -> None:
        extra = ("--workers", str(workers)) if workers > 1 else ()
        self.nodes = [
            LoggedTwistd("--adapter", adapter, "--redis", redis.url, *APP, "--no-access-log", "--shutdown-grace", "1",
                         *extra, *args)
            for _ in range(count)
        ]
        links = count * workers
        for each in self.nodes:  # every link heard the others: forwarding can find them
            each.count(r"Redis link: node \w+ joined", at_least=workers * (links - 1))
        self.proxy = Proxy([n.port for n in self.nodes])
        self.url = self.proxy.url

    def stop(self) -> None:
        self.proxy.stop()
        for each in self.nodes:
            each.stop()
