"""The sharded adapter on a real three-master Redis Cluster: txrealtime nodes, a Node socket.io node, resharding."""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import threads

from tests.adapters.cluster import WAIT, inbox, start_node_server, start_nodes, stop_links, sync, wait_for_servers
from tests.peers import until
from tests.servers import RedisCluster
from txrealtime.adapters.redis import RemoteSocket, ShardedRedisAdapter
from txrealtime.client import Manager
from txrealtime.pytest_plugin import Realtime
from txrealtime.redis.slots import key_slot


@pytest_twisted.ensureDeferred
async def test_three_nodes_rooms_fetch_requests_and_acks(realtime: Realtime, redis_cluster: RedisCluster) -> None:
    a, b, c = nodes = await start_nodes(realtime, redis_cluster, ["a", "b", "c"])
    try:
        clients = [await realtime.connect(n.test_server) for n in nodes]
        ca, cb, cc = clients
        boxes = [inbox(s) for s in clients]
        await wait_for_servers(a.server, 3)

        assert a.server.emit("news", "hello", b"\x00\x01") is True
        await until(lambda: all(boxes), "the broadcast on every node", limit=WAIT)
        assert boxes == [[["news", "hello", b"\x00\x01"]]] * 3

        # A room held on b and c has a channel of its own: a's broadcast to it goes there.
        assert await cb.emit_with_ack("join", "r", timeout=10) == ["r"]
        assert await cc.emit_with_ack("join", "r", timeout=10) == ["r"]
        adapter = b.server.sockets.adapter
        assert isinstance(adapter, ShardedRedisAdapter)
        channel = adapter.room_channel("r")
        assert channel.encode() in b.link.cluster.shard_channels()
        a.server.to("r").emit("room only")
        a.server.except_("r").emit("not in room")
        await until(lambda: len(boxes[1]) == 2 and len(boxes[2]) == 2, "room messages", limit=WAIT)
        await sync(*clients)
        assert [m for m in boxes[0] if m[0] != "news"] == [["not in room"]]
        assert boxes[1][1:] == [["room only"]] and boxes[2][1:] == [["room only"]]

        found = await a.server.fetch_sockets()
        assert sorted(s.data["node"] for s in found) == ["a", "b", "c"]
        in_room = await a.server.in_("r").fetch_sockets()
        assert sorted(s.data["node"] for s in in_room) == ["b", "c"]
        a.server.in_("r").sockets_join("joined")
        found = await a.server.in_("joined").fetch_sockets()
        target = next(s for s in found if s.data["node"] == "c")
        assert isinstance(target, RemoteSocket)
        target.emit("just you", 1)
        await until(lambda: ["just you", 1] in boxes[2], "the message to one remote socket", limit=WAIT)

        assert sorted(await a.server.server_side_emit_with_ack("which node", 7)) == ["b got [7]", "c got [7]"]
        for s in clients:
            s.on("question", lambda n: n + 1)
        assert sorted(await a.server.timeout(10).emit_with_ack("question", 41)) == [42, 42, 42]

        gone: list[str] = []
        cc.on("disconnect", gone.append)
        a.server.in_(cc.id or "").disconnect_sockets()
        await until(lambda: gone == ["io server disconnect"], "the remote disconnection", limit=WAIT)
        assert all(n.link.missed == 0 and n.link.undelivered == 0 and n.link.malformed == 0 for n in nodes)
    finally:
        await stop_links(nodes)


@pytest_twisted.ensureDeferred
async def test_mixed_sharded_cluster_with_node(realtime: Realtime, redis_cluster: RedisCluster) -> None:
    [ours] = await start_nodes(realtime, redis_cluster, ["py"])
    process, node_url = start_node_server(redis_cluster.url_of(1), script="sharded_node_server.js")
    node_manager = Manager(node_url, transports=["websocket"], reconnection=False)
    try:
        on_ours = await realtime.connect(ours.test_server)
        on_node = await node_manager.socket("/").connect()
        ours_box, node_box = inbox(on_ours), inbox(on_node)
        await wait_for_servers(ours.server, 2)

        # Namespace-wide, both ways, binary included.
        ours.server.emit("from python", {"n": 1}, b"\x07")
        await until(lambda: ["from python", {"n": 1}, b"\x07"] in node_box, "python -> node", limit=WAIT)
        assert await on_node.emit_with_ack("broadcast", "hi", b"\x08", timeout=10) is True
        await until(lambda: ["from node", "hi", b"\x08"] in ours_box, "node -> python", limit=WAIT)

        # Rooms, both ways: each side subscribes to the room's channel when it gets the room.
        assert await on_node.emit_with_ack("join", "mixed", timeout=10) == ["mixed"]
        assert await on_ours.emit_with_ack("join", "mixed", timeout=10) == ["mixed"]
        adapter = ours.server.sockets.adapter
        assert isinstance(adapter, ShardedRedisAdapter)
        # Joining a room subscribes to its channel after the join's ack (on both sides, as in Node).
        subscribers: list[int] = [0]

        async def count() -> None:
            subscribers[0] = await ours.link.numsub(adapter.room_channel("mixed"))

        while subscribers[0] < 2:
            await count()
        ours.server.to("mixed").emit("to the room")
        await until(lambda: ["to the room"] in node_box, "a room broadcast reaching the Node side", limit=WAIT)
        assert await on_node.emit_with_ack("to room", "mixed", 5, timeout=10) is True
        await until(lambda: ["room from node", 5] in ours_box, "a room broadcast from the Node side", limit=WAIT)

        # fetch_sockets, both ways, with the other side's data.
        everyone = await ours.server.fetch_sockets()
        remote = [s for s in everyone if isinstance(s, RemoteSocket)]
        assert [(s.id, s.data, "mixed" in s.rooms) for s in remote] == [(on_node.id, {"node": "node.js"}, True)]
        seen_by_node = await on_node.emit_with_ack("fetch", timeout=10)
        mine = next(s for s in seen_by_node if s["id"] == on_ours.id)
        assert mine["data"] == {"node": "py"} and "mixed" in mine["rooms"]

        # Server-side emits with acks, both ways.
        assert await ours.server.server_side_emit_with_ack("hello from python", 5) == [{"node": "says hi", "value": 5}]
        ours.server.on("hello from node", lambda value: f"py got [{value}]")
        assert await on_node.emit_with_ack("ask servers", timeout=10) == ["py got [9]"]

        # Broadcasts with acks, both ways.
        on_ours.on("question", lambda n: n + 1)
        on_node.on("question", lambda n: n + 2)
        assert sorted(await ours.server.timeout(10).emit_with_ack("question", 40)) == [41, 42]
        assert sorted(await on_node.emit_with_ack("ask clients", timeout=10)) == [2, 3]
    finally:
        await node_manager.close()
        process.kill()
        process.wait(30)
        await ours.link.stop()


@pytest_twisted.ensureDeferred
async def test_broadcasts_go_on_through_resharding_and_a_restart(
    realtime: Realtime, redis_cluster: RedisCluster
) -> None:
    a, b = nodes = await start_nodes(realtime, redis_cluster, ["a", "b"])
    try:
        cb = await realtime.connect(b.test_server)
        box = inbox(cb)
        adapter = b.server.sockets.adapter
        assert isinstance(adapter, ShardedRedisAdapter)
        slot = key_slot(adapter.channel)
        owner = redis_cluster.owner(slot)

        # Move the namespace channel's slot: Redis unsubscribes it on its old master, the link follows it.
        await threads.deferToThread(redis_cluster.move_slot, slot, (owner + 1) % 3)
        await until(lambda: a.link.connected and b.link.connected, "both links after the move", limit=WAIT)
        a.server.emit("after the move", 1)
        await until(lambda: ["after the move", 1] in box, "a broadcast after the move", limit=WAIT)

        # Restart the master that serves it now: both links go down, come back, subscribe again.
        serving = redis_cluster.owner(slot)
        redis_cluster.stop(serving)
        await until(lambda: not b.link.connected, "the lost master", limit=WAIT)
        lost: list[Any] = [a.server.emit("while down", 2)]
        redis_cluster.start(serving)
        await threads.deferToThread(redis_cluster.wait_until_ok)
        await until(lambda: a.link.connected and b.link.connected, "both links after the restart", limit=WAIT)
        a.server.emit("after the restart", 3)
        await until(lambda: ["after the restart", 3] in box, "a broadcast after the restart", limit=WAIT)
        assert lost == [False] and a.link.undelivered >= 1
        assert ["while down", 2] not in box
        assert b.link.deafness.spans >= 1
    finally:
        await stop_links(nodes)
