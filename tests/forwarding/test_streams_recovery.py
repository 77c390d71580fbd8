"""Recovery across nodes with the Redis Streams adapter: twistd nodes behind the round-robin proxy, Node's
socket.io-client, the client's node killed (SIGKILL) or stopped (SIGTERM)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.forwarding.nodes import Proxy, failover, streams_nodes, twistd_ends
from tests.servers import INTEROP, NODE_MODULES, WAIT, LoggedTwistd, RedisServer, free_port, node


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_client_recovers_on_another_node_when_its_node_goes(redis_server: RedisServer, how: str) -> None:
    nodes = streams_nodes(redis_server, 2)
    proxy = Proxy([n.port for n in nodes])
    try:
        report = failover(proxy, twistd_ends(nodes, how))
    finally:
        proxy.stop()
        for each in nodes:
            each.stop()
    assert "timedOut" not in report, report
    assert report["disconnect"] in ("transport close", "transport error")
    assert report["recovered"] is True and report["otherNode"] is True
    assert report["secondId"] == report["firstId"]
    assert report["rooms"] == ["r"] and report["data"] == {"note": "kept"}
    assert report["messages"] == ["before", "missed 1", "missed 2", "after"]
    assert report["offsets"] == ["string"] * 4


def test_rolling_restart_loses_and_doubles_nothing(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """3 nodes behind the proxy, 200 recovering clients in one room; each node is stopped (SIGTERM) and started
    again in turn while every node broadcasts ticks to the room: every tick reaches every client once."""
    monkeypatch.setenv("TICKS", "300")
    monkeypatch.setenv("TICK_INTERVAL", "0.04")
    ports = [free_port() for _ in range(3)]
    ticker = ("--app", "tests.forwarding.ticker:setup")

    started: list[LoggedTwistd] = []

    def start(port: int) -> LoggedTwistd:
        started.append(LoggedTwistd("--adapter", "redis-streams", "--redis", redis_server.url, "--state-recovery",
                                    "60", *ticker, "--no-access-log", "--shutdown-grace", "10",
                                    "--listen", f"tcp:{port}:interface=127.0.0.1"))
        return started[-1]

    nodes = [start(port) for port in ports]
    for each in nodes:
        each.count(r"Redis link: node \w+ joined", at_least=2)
    proxy = Proxy(ports)
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    clients = subprocess.Popen([node(), str(INTEROP / "streams_rolling_clients.js"), proxy.url, "200"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert clients.stdout is not None and clients.stdin is not None
        assert json.loads(clients.stdout.readline()) == {"ready": True}
        for index, port in enumerate(ports):
            assert nodes[index].stop() == 0, "".join(nodes[index].log[-40:])
            nodes[index] = start(port)
            nodes[index].count(r"Redis link: node \w+ joined", at_least=2)
        for each in nodes:
            each.wait_for(r"ticks done: 300")
        clients.stdin.write("end\n")
        clients.stdin.flush()
        report = json.loads(clients.stdout.readline())
        clients.wait(WAIT)
    finally:
        if clients.poll() is None:
            clients.kill()
            clients.wait(WAIT)
        proxy.stop()
        for each in nodes:
            each.stop()
    print("rolling restart:", json.dumps({k: v for k, v in report.items() if k != "sample"}))
    said = [line for each in started for line in each.log if "warn" in line or "error" in line.lower()]
    assert report["lost"] == 0 and report["duplicated"] == 0, (report, said[-40:])
    assert report["notRecovered"] == 0 and report["recovered"] >= 200, report
    assert report["nodes"] >= 4 and report["received"] > 200 * 300 * 3, report
