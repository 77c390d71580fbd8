"""The sharded adapter on a real three-master Redis Cluster: txrealtime nodes, a Node socket.io node, resharding."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.task import deferLater

from tests.adapters.cluster import WAIT, clients_on_every_node, inbox, start_nodes, stop_links, sync
from tests.adapters.mixed import broadcasts_both_ways, fetches_and_requests_both_ways, mixed
from tests.peers import until
from tests.servers import RedisCluster
from txrealtime.adapters.redis import RemoteSocket, ShardedRedisAdapter
from txrealtime.pytest_plugin import Realtime
from txrealtime.redis.slots import key_slot


@pytest_twisted.ensureDeferred
async def test_three_nodes_rooms_fetch_requests_and_acks(realtime: Realtime, redis_cluster: RedisCluster) -> None:
    a, b, c = nodes = await start_nodes(realtime, redis_cluster, ["a", "b", "c"])
    try:
        clients, boxes = await clients_on_every_node(realtime, nodes)
        ca, cb, cc = clients

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
    async with mixed(realtime, ours, redis_cluster.url_of(1), "sharded_node_server.js") as pair:
        on_ours, on_node, node_box, ours_box = pair.on_ours, pair.on_node, pair.node_box, pair.ours_box
        await broadcasts_both_ways(pair)

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

        await fetches_and_requests_both_ways(pair)


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


@pytest.mark.parametrize("mode", ["static", "dynamic-private"])
@pytest_twisted.ensureDeferred
async def test_mixed_with_node_in_the_other_subscription_modes(
    realtime: Realtime, redis_cluster: RedisCluster, mode: str
) -> None:
    """Node's subscriptionMode ``static`` (no room has a channel of its own) and ``dynamic-private`` (every room
    has, a socket's own included), each side publishing where the other listens: to rooms, to a socket's own room
    on the other side, broadcasts with acks and requests."""
    [ours] = await start_nodes(realtime, redis_cluster, ["py"], subscription_mode=mode)
    async with mixed(realtime, ours, redis_cluster.url_of(1), "sharded_node_server.js", [mode]) as pair:
        on_ours, on_node, node_box, ours_box = pair.on_ours, pair.on_node, pair.node_box, pair.ours_box
        await broadcasts_both_ways(pair)
        assert await on_node.emit_with_ack("join", "mixed", timeout=10) == ["mixed"]
        assert await on_ours.emit_with_ack("join", "mixed", timeout=10) == ["mixed"]
        adapter = ours.server.sockets.adapter
        assert isinstance(adapter, ShardedRedisAdapter) and adapter.mode == mode
        assert on_ours.id is not None and on_node.id is not None
        channels = [adapter.room_channel("mixed"), adapter.room_channel(on_ours.id), adapter.room_channel(on_node.id)]
        if mode == "dynamic-private":
            # Both sides subscribe to the room's channel, each to its own socket's: after the join's ack.
            counts: list[int] = []
            for _ in range(500):
                counts = [await ours.link.numsub(channel) for channel in channels]
                if counts == [2, 1, 1]:
                    break
                await deferLater(reactor, 0.02, lambda: None)
            assert counts == [2, 1, 1], counts

        ours.server.to("mixed").emit("to the room")
        ours.server.to(on_node.id).emit("to you")  # the Node side's socket, by its own room
        await until(lambda: ["to the room"] in node_box and ["to you"] in node_box, "python -> node rooms",
                    limit=WAIT)
        assert await on_node.emit_with_ack("to room", "mixed", 5, timeout=10) is True
        assert await on_node.emit_with_ack("to room", on_ours.id, 6, timeout=10) is True
        await until(lambda: ["room from node", 5] in ours_box and ["room from node", 6] in ours_box,
                    "node -> python rooms", limit=WAIT)
        await sync(on_ours, on_node)
        assert node_box.count(["to the room"]) == node_box.count(["to you"]) == 1
        assert ours_box.count(["room from node", 5]) == ours_box.count(["room from node", 6]) == 1
        if mode == "static":  # nothing but the namespace's channel, on either side
            assert [await ours.link.numsub(channel) for channel in channels] == [0, 0, 0]
        await fetches_and_requests_both_ways(pair)
