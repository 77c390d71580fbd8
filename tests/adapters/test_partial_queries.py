"""Cluster queries that tolerate a silent node, and room counts answered with a number, on one real redis-server:
txrealtime nodes in this process, one in a twistd process (frozen with SIGSTOP), and Node's socket.io."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import pytest_twisted

from tests.adapters.cluster import WAIT, app, start_node_server, wait_for_servers
from tests.peers import until
from tests.servers import RedisServer, Twistd
from txrealtime.adapters.redis import RedisLink, redis_adapter
from txrealtime.client import Manager
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio import ClusterAnswer


async def start(realtime: Realtime, redis: RedisServer, name: str) -> tuple[Any, RedisLink]:
    # Heartbeats kept for long: the frozen node stays known, so it can be named as silent.
    link = RedisLink(redis.url, heartbeat_interval=0.2, heartbeat_timeout=60.0, requests_timeout=2.0)
    running = await realtime.start_server(app(name), adapter=redis_adapter(link))
    return running, link


@pytest_twisted.ensureDeferred
async def test_a_frozen_node_is_named_and_counts_come_from_three_nodes(
    realtime: Realtime, redis_server: RedisServer
) -> None:
    a, a_link = await start(realtime, redis_server, "a")
    b, b_link = await start(realtime, redis_server, "b")
    c = Twistd("--app", "tests.socketio.app:install", "--redis", redis_server.url)
    frozen = False
    try:
        await wait_for_servers(a.server, 3)
        await until(lambda: len(a_link.nodes()) == 3, "node a to hear b and c", limit=WAIT)
        [c_uid] = set(a_link.nodes()) - {a_link.uid, b_link.uid}
        clients = [await realtime.connect(a), await realtime.connect(b), await realtime.connect(b)]
        c_client = await Manager(c.url, transports=["websocket"], reconnection=False).socket("/").connect()
        for client in [*clients[:2], c_client]:
            assert await client.emit_with_ack("join", "r", timeout=10) == ["r"]

        # Every node answers: a count is a number from each (a has 1 in "r", b 1, c 1; b 2 in all).
        counted = await a.server.in_("r").count()
        assert (counted.value, counted.expected, counted.missing) == (3, 2, 0)
        assert sorted(counted.answered) == sorted([b_link.uid, c_uid]) and counted.complete
        everyone = await a.server.count()
        assert everyone.value == 4 and everyone.complete
        found = await a.server.in_("r").fetch_sockets(partial=True)
        assert isinstance(found, ClusterAnswer) and found.complete and len(found.value) == 3

        # Node c freezes: a partial query answers by the timeout with what came, naming c.
        os.kill(c.process.pid, signal.SIGSTOP)
        frozen = True
        found = await a.server.in_("r").fetch_sockets(partial=True)
        assert sorted(s.data.get("node", "?") for s in found.value) == ["a", "b"]
        assert (found.expected, found.answered, found.missing, found.silent) == (2, (b_link.uid,), 1, (c_uid,))
        assert not found.complete
        counted = await a.server.in_("r").count()
        assert (counted.value, counted.missing, counted.silent) == (2, 1, (c_uid,))
        # Without partial, as in Node: the whole query fails.
        with pytest.raises(TimeoutError, match="only 1 of 2 other servers answered in time"):
            await a.server.in_("r").fetch_sockets()

        os.kill(c.process.pid, signal.SIGCONT)
        frozen = False
        await until(lambda: c_client.connected, "c to be back", limit=WAIT)
        counted = await a.server.in_("r").count()
        assert counted.value == 3 and counted.complete
    finally:
        if frozen:
            os.kill(c.process.pid, signal.SIGCONT)
        c.stop()
        await a_link.stop()
        await b_link.stop()


@pytest_twisted.ensureDeferred
async def test_a_node_node_answers_a_count_with_its_sockets(realtime: Realtime, redis_server: RedisServer) -> None:
    a, a_link = await start(realtime, redis_server, "a")
    process, node_url = start_node_server(redis_server.url)
    try:
        await wait_for_servers(a.server, 2)
        on_a = await realtime.connect(a)
        on_node = await Manager(node_url, transports=["websocket"], reconnection=False).socket("/").connect()
        for client in (on_a, on_node):
            assert await client.emit_with_ack("join", "r", timeout=10) == ["r"]
        # Node's adapter ignores "count" and describes its sockets: counted here, the node anonymous.
        counted = await a.server.in_("r").count()
        assert (counted.value, counted.expected, counted.answered, counted.anonymous) == (2, 1, (), 1)
        assert counted.complete
        found = await a.server.in_("r").fetch_sockets(partial=True)
        assert len(found.value) == 2 and found.anonymous == 1 and found.complete
    finally:
        process.terminate()
        process.wait(30)
        await a_link.stop()
