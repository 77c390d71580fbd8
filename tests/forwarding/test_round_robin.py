"""Three real nodes on a real redis-server behind a proxy with no affinity: every client kind carries on.

The proxy (tests/interop/rrproxy.js) sends every HTTP request and every
upgrade to the next node on a fresh connection. Node's socket.io with
``@socket.io/redis-adapter`` behind it fails ("Session ID unknown"); one
node listed three times passes: the proxy is not what makes the difference.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import requests
import socketio
from twisted.internet import threads

from tests.adapters.cluster import start_node_server
from tests.forwarding.nodes import Nodes, Proxy
from tests.servers import (
    ARTIFACTS,
    INTEROP,
    NODE_MODULES,
    WAIT,
    RedisCluster,
    RedisServer,
    check_chat,
    node,
    node_peer,
    require_chromium,
)

HEARTBEATS = ("--ping-interval", "1", "--ping-timeout", "2")
"""Short heartbeats: a hold of 3.5 s spans three of them."""
HOLD = "3500"


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nodes(redis: RedisServer) -> Iterator[Nodes]:
    running = Nodes(redis, *HEARTBEATS)
    yield running
    running.stop()


def carried_on(report: dict[str, Any], transport: str, pids: set[int]) -> None:
    """Every client: its 20 acks, the room broadcast from another node's client, no reconnection, the same
    node at the end; and the clients' sessions are on two or more of the nodes ``pids``."""
    assert "error" not in report, report
    clients = report["clients"]
    for client in clients:
        assert client["echoes"] == list(range(20)), client
        assert client["heard"] == [["hello room", report["shouter"]]], client
        assert client["disconnects"] == [] and client["connected"], client
        assert len(client["sids"]) == 1 and client["again"] == client["pid"], client
        assert client["transport"] == transport, client
    held = {c["pid"] for c in clients}
    assert held <= pids and len(held) >= min(2, len(pids)), (held, pids)  # the broadcast crossed nodes


@pytest.mark.parametrize(("mode", "transport"), [("polling", "polling"), ("websocket", "websocket"),
                                                 ("upgrade", "websocket")])
@pytest_twisted.ensureDeferred
async def test_node_clients_through_round_robin(nodes: Nodes, mode: str, transport: str) -> None:
    report = await node_peer("forward_client.js", nodes.url, mode, "3", HOLD)
    carried_on(report, transport, {n.process.pid for n in nodes.nodes})


@pytest.mark.parametrize("adapter", ["redis-streams", "redis-sharded"])
@pytest_twisted.ensureDeferred
async def test_forwarding_on_the_streams_and_sharded_adapters(tmp_path: Path, adapter: str) -> None:
    """The newer adapters' links find the owner of a session too (the sharded one counting a node's
    subscribers with SHARDNUMSUB on a Redis Cluster): polling and upgrading clients carry on."""
    backend = RedisServer(tmp_path) if adapter == "redis-streams" else RedisCluster(tmp_path)
    running = Nodes(backend, *HEARTBEATS, adapter=adapter)
    try:
        pids = {n.process.pid for n in running.nodes}
        for mode, transport in (("polling", "polling"), ("upgrade", "websocket")):
            report = await node_peer("forward_client.js", running.url, mode, "3", HOLD)
            carried_on(report, transport, pids)
    finally:
        running.stop()
        if isinstance(backend, RedisServer):
            backend.stop()
        else:
            backend.stop_all()


def python_clients(url: str, count: int, hold: float) -> list[dict[str, Any]]:
    """python-socketio clients on long-polling only, doing what forward_client.js does (more than ``count``
    if they all landed on one node)."""
    import time

    clients: list[tuple[socketio.Client, dict[str, Any]]] = []
    seen: list[dict[str, Any]] = []
    try:
        while len(clients) < count or (len({s["pid"] for _, s in clients}) < 2 and len(clients) < count + 6):
            if clients and len({s["pid"] for _, s in clients}) < 2:
                requests.get(f"{url}/socket.io/?EIO=4&transport=none", timeout=WAIT)  # the next client: the next node
            client = socketio.Client(reconnection=False)
            state: dict[str, Any] = {"heard": [], "disconnects": 0}
            client.on("news", lambda text, pid, state=state: state["heard"].append([text, pid]))
            client.on("disconnect", lambda *_, state=state: state.__setitem__("disconnects", state["disconnects"] + 1))
            client.connect(url, transports=["polling"], wait_timeout=30)
            clients.append((client, state))
            state["pid"] = client.call("whoami", timeout=30)["pid"]
            client.call("join", "py", timeout=30)
            state["echoes"] = [client.call("echo", i, timeout=30)[0] for i in range(20)]
            state["sid"] = client.eio.sid
        shouter = clients[-1][0].call("shout", ("py", "hello py"), timeout=30)
        for _ in range(100):
            if all(s["heard"] for _, s in clients):
                break
            time.sleep(0.1)
        time.sleep(hold)
        for client, state in clients:
            state["again"] = client.call("whoami", timeout=30)["pid"]
            state["still"] = client.eio.sid
            state["shouted"] = shouter
            seen.append(dict(state))  # before the disconnects below
    finally:
        for client, _ in clients:
            client.disconnect()
    return seen


@pytest_twisted.ensureDeferred
async def test_python_socketio_polling_through_round_robin(nodes: Nodes) -> None:
    clients = await threads.deferToThread(python_clients, nodes.url, 3, 3.5)
    shouter = clients[-1]["pid"]
    for state in clients:
        assert state["echoes"] == list(range(20)), state
        assert state["heard"] == [["hello py", shouter]], state
        assert (state["disconnects"], state["again"], state["still"]) == (0, state["pid"], state["sid"]), state
    assert len({s["pid"] for s in clients}) >= 2


def raw(method: str, url: str, body: bytes = b"") -> requests.Response:
    return requests.request(method, url, data=body, timeout=WAIT)


@pytest_twisted.ensureDeferred
async def test_a_sid_nobody_holds_is_unknown(nodes: Nodes) -> None:
    base = f"{nodes.url}/socket.io/?EIO=4&transport=polling"
    for sid in ("nobody", "x" * 20 + "~ffffff", "x" * 20 + "~" + "a" * 6):
        for method in ("GET", "POST"):
            answer = await threads.deferToThread(raw, method, f"{base}&sid={sid}", b"4x")
            assert (answer.status_code, answer.json()) == (400, {"code": 1, "message": "Session ID unknown"})


@pytest_twisted.ensureDeferred
async def test_the_chat_page_in_two_browsers_through_round_robin(redis: RedisServer) -> None:
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    chat = Nodes(redis, "--static", "examples/chat/public", "--app", "examples.chat.app:setup", *HEARTBEATS,
                 "--redis-key", "chat")
    try:
        report = await node_peer("chat_browser.js", chat.url, str(ARTIFACTS), timeout=240)
    finally:
        chat.stop()
    check_chat(report)


@pytest_twisted.ensureDeferred
async def test_workers_on_two_hosts_through_round_robin(redis: RedisServer) -> None:
    hosts = Nodes(redis, *HEARTBEATS, "--redis-key", "workers", count=2, workers=2)
    try:
        pids = {int(h.wait_for(rf"Worker {i} ready \(pid (\d+)\)").group(1)) for h in hosts.nodes for i in (0, 1)}
        for mode, transport in (("polling", "polling"), ("upgrade", "websocket")):
            report = await node_peer("forward_client.js", hosts.url, mode, "4", "2500")
            assert "error" not in report, report
            for client in report["clients"]:
                assert client["echoes"] == list(range(20)), client
                assert client["heard"] == [["hello room", report["shouter"]]], client
                assert (client["disconnects"], client["again"]) == ([], client["pid"]), client
                assert client["transport"] == transport
            assert {c["pid"] for c in report["clients"]} <= pids
    finally:
        hosts.stop()


class HeldClients:
    """forward_client.js in the background: what it printed, line by line."""

    def __init__(self, url: str, modes: str, count: int, hold: int) -> None:
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        self.process = subprocess.Popen(
            [node(), str(INTEROP / "forward_client.js"), url, modes, str(count), str(hold), "--reconnect"],
            stdout=subprocess.PIPE, text=True, env=env, cwd=INTEROP,
        )

    def line(self) -> Any:
        assert self.process.stdout is not None
        text = self.process.stdout.readline()
        if not text:
            raise AssertionError("the clients exited")
        return json.loads(text)


@pytest_twisted.ensureDeferred
async def test_a_killed_node_loses_its_own_sessions_only(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    cluster = Nodes(redis, *HEARTBEATS)
    held = HeldClients(cluster.url, "polling,websocket", 6, 8000)
    try:
        ready = await threads.deferToThread(held.line)
        assert "ready" in ready, ready
        victim = cluster.nodes[0]
        victim.kill()
        report = await threads.deferToThread(held.line)
        held.process.wait(WAIT)
    finally:
        if held.process.poll() is None:
            held.process.kill()
        cluster.stop()
        redis.stop()
    assert "error" not in report, report
    dead = victim.process.pid
    assert dead in ready["ready"]
    for client in report["clients"]:
        assert client["echoes"] == list(range(20)), client
        assert client["connected"] and client["again"] != dead, client  # every client carries on
        if client["pid"] == dead:  # reconnected through the proxy, to a live node
            assert client["disconnects"] and len(client["sids"]) == 2, client
        elif client["kind"] == "websocket":  # held by a live node alone: saw nothing
            assert (client["disconnects"], client["again"], len(client["sids"])) == ([], client["pid"], 1), client
        else:  # polling: lost its session only if the dead node was carrying its pending poll then
            assert client["disconnects"] in ([], ["transport error"]), client


@pytest_twisted.ensureDeferred
async def test_a_redis_outage_makes_requests_fail_fast_and_nodes_recover(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    cluster = Nodes(redis, *HEARTBEATS)
    try:
        first, second = cluster.nodes[0], cluster.nodes[1]
        handshake = await threads.deferToThread(raw, "GET", f"{first.url}/socket.io/?EIO=4&transport=polling")
        sid = json.loads(handshake.text[1:])["sid"]
        redis.stop()
        second.wait_for(r"Redis link \w+ lost")
        post = f"{second.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
        for _ in range(5):
            answer = await threads.deferToThread(raw, "POST", post, b"40")
            assert (answer.status_code, answer.json()) == (400, {"code": 1, "message": "Session ID unknown"})
        assert second.count(r"link to the other nodes is down") == 1  # one clear line, not one per request
        starts = [len(each.log) for each in cluster.nodes]
        redis.start()
        for each, start in zip(cluster.nodes, starts, strict=True):
            each.wait_for(r"Redis link \w+ connected", start=start)
        report = await node_peer("forward_client.js", cluster.url, "polling", "3", "1500")
        carried_on(report, "polling", {n.process.pid for n in cluster.nodes})
    finally:
        cluster.stop()
        redis.stop()


@pytest_twisted.ensureDeferred
async def test_node_socketio_with_the_redis_adapter_fails_behind_round_robin(redis: RedisServer) -> None:
    servers = [start_node_server(redis.url) for _ in range(3)]
    ports = [int(url.rsplit(":", 1)[1]) for _, url in servers]
    spread, single = Proxy(ports), Proxy([ports[0]] * 3)
    try:
        base = f"{spread.url}/socket.io/?EIO=4&transport=polling"
        handshake = await threads.deferToThread(raw, "GET", base)
        sid = json.loads(handshake.text[1:])["sid"]
        answer = await threads.deferToThread(raw, "POST", f"{base}&sid={sid}", b"40")
        assert (answer.status_code, answer.json()) == (400, {"code": 1, "message": "Session ID unknown"})
        with pytest.raises(AssertionError, match="error"):
            await node_peer("forward_client.js", spread.url, "polling", "3", "500")
        # The same proxy in front of one node listed three times: the clients carry on.
        report = await node_peer("forward_client.js", single.url, "polling", "3", "500")
        carried_on(report, "polling", {servers[0][0].pid})
    finally:
        spread.stop()
        single.stop()
        for process, _ in servers:
            process.kill()
            process.wait(WAIT)

