"""Two instrumented txrealtime nodes behind one real redis-server: one admin UI sees both as servers, their
sockets and events, and its commands reach sockets on the other node."""

from __future__ import annotations

from typing import Any

import pytest_twisted

from tests.adapters.cluster import WAIT, inbox, start_nodes, stop_links
from tests.peers import until
from tests.servers import RedisServer
from txrealtime.admin import instrument
from txrealtime.pytest_plugin import Realtime

LOGIN = {"username": "admin", "password": "pw"}


def named(seen: list[list[Any]], name: str) -> list[list[Any]]:
    return [event for event in seen if event[0] == name]


@pytest_twisted.ensureDeferred
async def test_two_nodes_show_up_as_two_servers(realtime: Realtime, redis_server: RedisServer) -> None:
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"])
    watchers = [instrument(n.server, auth=("admin", "pw"), server_id=f"node-{n.name}") for n in nodes]
    try:
        admin = await realtime.connect(a.test_server, "/admin", auth=LOGIN)
        seen = inbox(admin)
        await until(lambda: {e[1]["serverId"] for e in named(seen, "server_stats")} == {"node-a", "node-b"},
                    "server_stats of both nodes on node a", limit=WAIT)

        # A socket of node b: announced to the admin of node a, with its rooms.
        client = await realtime.connect(b.test_server)
        sid = client.id
        assert sid is not None
        await until(lambda: any(e[1]["id"] == sid for e in named(seen, "socket_connected")),
                    "socket_connected from node b", limit=WAIT)
        [[_, serialized, _]] = [e for e in named(seen, "socket_connected") if e[1]["id"] == sid]
        # Announced before the application's connection handler ran (it sets data["node"]), as in Node.
        assert serialized["transport"] == "polling" and serialized["data"] == {}
        await until(lambda: {"id": sid, "nsp": "/", "transport": "websocket"} in [
            e[1] for e in named(seen, "socket_updated")], "socket_updated from node b", limit=WAIT)
        assert await client.emit_with_ack("join", "lobby", timeout=10) == ["lobby"]
        await until(lambda: ["room_joined", "/", "lobby", sid] in [e[:4] for e in seen],
                    "room_joined from node b", limit=WAIT)

        # A new UI on node a lists node b's socket too (fetched through Redis).
        late = await realtime.connect(a.test_server, "/admin", auth=LOGIN)
        late_seen = inbox(late)
        await until(lambda: bool(named(late_seen, "all_sockets")), "all_sockets", limit=WAIT)
        [[_, sockets]] = named(late_seen, "all_sockets")
        [remote] = [s for s in sockets if s["id"] == sid]
        assert remote["rooms"] == sorted([sid, "lobby"])
        assert remote["transport"] == "websocket" and len(remote["clientId"]) == 12
        assert remote["data"] == {"node": "b"} and "auth" not in remote["handshake"]

        # A command given on node a reaches the socket on node b.
        reasons: list[Any] = []
        client.on("disconnect", reasons.append)
        admin.emit("_disconnect", "/", False, sid)
        await until(lambda: bool(reasons), "the socket on node b to be disconnected", limit=WAIT)
        assert str(reasons[0]) == "io server disconnect"
        await until(lambda: any(e[2] == sid for e in named(seen, "socket_disconnected")),
                    "socket_disconnected from node b", limit=WAIT)
    finally:
        for watcher in watchers:
            watcher.close()
        await stop_links(nodes)
