"""Recovery across nodes of different kinds on the Redis Streams adapter: a twistd node and a Node socket.io
node (@socket.io/redis-streams-adapter, tests/interop/streams_node_server.js) behind the round-robin proxy,
Node's socket.io-client (tests/interop/streams_failover_client.js) on one of them, that node killed or stopped;
and the Twisted client, recovering through the proxy after its twistd node is killed."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted

from tests.adapters.cluster import start_node_server
from tests.forwarding.nodes import Proxy, failover, streams_nodes, twistd_ends
from tests.peers import until
from tests.servers import WAIT, RedisServer
from txrealtime.client import ClientSocket, Manager


def node_ends(process: subprocess.Popen[str], how: str) -> Callable[[int], object]:
    def end(pid: int) -> None:
        assert pid == process.pid  # the proxy's round robin put the client on the first backend
        if how == "SIGKILL":
            process.kill()
        else:
            process.send_signal(signal.SIGTERM)  # io.close(): its sockets go with "server shutting down"
        process.wait(WAIT)

    return end


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_from_our_node_to_nodes(redis_server: RedisServer, how: str) -> None:
    """Our node A goes (killed, or stopped): the client comes back on Node's node B, recovered, with the same id,
    its room, and the room broadcasts it missed once each (B's own, with their offsets)."""
    [ours] = streams_nodes(redis_server, 1)
    process, node_url = start_node_server(redis_server.url, script="streams_node_server.js")
    proxy = Proxy([ours.port, int(node_url.rsplit(":", 1)[1])])
    try:
        report = failover(proxy, twistd_ends([ours], how))  # it must be the client's node
    finally:
        proxy.stop()
        ours.stop()
        process.kill()
        process.wait(WAIT)
    assert "timedOut" not in report, report
    assert report["recovered"] is True and report["otherNode"] is True, report
    assert report["secondId"] == report["firstId"]
    assert report["rooms"] == ["r"] and report["data"] == {"note": "kept"}
    assert report["messages"] == ["before", "missed 1", "missed 2", "after"]
    assert report["offsets"] == ["string"] * 4


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_from_nodes_node_to_ours(redis_server: RedisServer, how: str) -> None:
    """Node's node A goes. Stopped (``io.close()``), it keeps its sessions in Redis as ours reads them: the client
    recovers on our node B. Killed, it never wrote the session (Node's adapter writes one only when a socket
    disconnects from a live server: redis-streams-adapter #27), so the client gets a new session there."""
    [ours] = streams_nodes(redis_server, 1)
    process, node_url = start_node_server(redis_server.url, script="streams_node_server.js")
    proxy = Proxy([int(node_url.rsplit(":", 1)[1]), ours.port])
    try:
        # Killed, it is not recovered: the client would wait for a room broadcast that cannot come.
        report = failover(proxy, node_ends(process, how), 10_000 if how == "SIGKILL" else 30_000)
    finally:
        proxy.stop()
        ours.stop()
        if process.poll() is None:
            process.kill()
            process.wait(WAIT)
    assert report["otherNode"] is True, report
    if how == "SIGKILL":  # a new socket, in no room: the client waits in vain for the room's "after"
        assert report["recovered"] is False and report["secondId"] != report["firstId"], report
        assert report["rooms"] == [] and report["timedOut"] is True, report
        return
    assert "timedOut" not in report, report
    assert report["disconnect"] == "transport close"
    assert report["recovered"] is True, report
    assert report["secondId"] == report["firstId"]
    assert report["rooms"] == ["r"] and report["data"] == {"note": "kept"}
    assert report["messages"] == ["before", "missed 1", "missed 2", "after"]
    assert report["offsets"] == ["string"] * 4


@pytest_twisted.ensureDeferred
async def test_the_twisted_client_recovers_through_the_proxy(redis_server: RedisServer) -> None:
    """txrealtime.client on node A through the proxy; A is killed; it comes back by itself on B, recovered."""
    nodes = streams_nodes(redis_server, 2)
    proxy = Proxy([n.port for n in nodes])
    managers: list[Manager] = []

    async def connect() -> tuple[ClientSocket, int]:
        manager = Manager(proxy.url, transports=["websocket"], reconnection_delay=0.05, reconnection_delay_max=0.2)
        managers.append(manager)
        socket = await manager.socket("/").connect()
        return socket, (await socket.emit_with_ack("whoami", timeout=10))["pid"]

    try:
        client, pid = await connect()
        witness, other = await connect()
        assert other != pid  # round robin: the next connection went to the other node
        news: list[list[Any]] = []
        client.on("news", lambda *args: news.append(list(args)))
        first_id = client.id
        await client.emit_with_ack("join", "r", timeout=10)
        await witness.emit_with_ack("shout", "r", "before", timeout=10)
        await until(lambda: len(news) == 1, "the first broadcast", limit=WAIT)

        reasons: list[str] = []
        client.on("disconnect", reasons.append)
        [victim] = [n for n in nodes if n.process.pid == pid]
        victim.kill()
        await until(lambda: bool(reasons), "the client to lose its node", limit=WAIT)
        for text in ("missed 1", "missed 2"):
            await witness.emit_with_ack("shout", "r", text, timeout=10)
        await until(lambda: client.connected, "the client to come back", limit=WAIT)
        assert client.recovered and client.id == first_id
        assert (await client.emit_with_ack("whoami", timeout=10))["pid"] == other
        assert await client.emit_with_ack("rooms", timeout=10) == ["r"]
        await witness.emit_with_ack("shout", "r", "after", timeout=10)
        await until(lambda: len(news) == 4, "the broadcast after", limit=WAIT)
        assert [m[0] for m in news] == ["before", "missed 1", "missed 2", "after"]
        assert all(isinstance(m[-1], int) for m in news)  # the pid (offsets are the client's, not the app's)
    finally:
        for manager in managers:
            await manager.close()
        proxy.stop()
        for each in nodes:
            each.stop()
