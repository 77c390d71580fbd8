"""The streams adapter on a real redis-server: txrealtime nodes, a Node socket.io node on
@socket.io/redis-streams-adapter, recovery across nodes, catching up after a Redis restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from tests.adapters.cluster import (
    WAIT,
    clients_on_every_node,
    inbox,
    movable_manager,
    start_nodes,
    stop_links,
    sync,
    wait_for_servers,
)
from tests.adapters.mixed import broadcasts_both_ways, fetches_and_requests_both_ways, mixed
from tests.peers import until
from tests.servers import RedisServer
from txrealtime.adapters.redis import RedisStreamsAdapter, RemoteSocket
from txrealtime.adapters.redis.streams_wire import entry_id
from txrealtime.engineio.events import CloseReason
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio import StateRecovery


@pytest_twisted.ensureDeferred
async def test_two_nodes_rooms_fetch_requests_and_acks(realtime: Realtime, redis_server: RedisServer) -> None:
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"], streams=True)
    try:
        clients, boxes = await clients_on_every_node(realtime, nodes)
        ca, cb = clients

        assert await cb.emit_with_ack("join", "r", timeout=10) == ["r"]
        a.server.to("r").emit("room only")
        a.server.except_("r").emit("not in room")
        await until(lambda: len(boxes[1]) == 2 and len(boxes[0]) == 2, "room messages", limit=WAIT)
        await sync(*clients)
        assert boxes[0][1:] == [["not in room"]] and boxes[1][1:] == [["room only"]]

        found = await a.server.fetch_sockets()
        assert sorted(s.data["node"] for s in found) == ["a", "b"]
        a.server.in_("r").sockets_join("joined")
        await until(lambda: "joined" in b.server.sockets.adapter.rooms, "the remote join", limit=WAIT)
        [target] = await a.server.in_("joined").fetch_sockets()
        assert isinstance(target, RemoteSocket) and target.data["node"] == "b"
        target.emit("just you", 1)
        await until(lambda: ["just you", 1] in boxes[1], "the message to one remote socket", limit=WAIT)

        assert await a.server.server_side_emit_with_ack("which node", 7) == ["b got [7]"]
        for s in clients:
            s.on("question", lambda n: n + 1)
        assert sorted(await a.server.timeout(10).emit_with_ack("question", 41)) == [42, 42]

        gone: list[str] = []
        cb.on("disconnect", gone.append)
        a.server.in_(cb.id or "").disconnect_sockets()
        await until(lambda: gone == ["io server disconnect"], "the remote disconnection", limit=WAIT)
        assert all(n.link.undelivered == 0 and n.link.malformed == 0 for n in nodes)
        adapter = a.server.sockets.adapter
        assert isinstance(adapter, RedisStreamsAdapter)
        assert ca.connected
    finally:
        await stop_links(nodes)


@pytest_twisted.ensureDeferred
async def test_mixed_streams_cluster_with_node(realtime: Realtime, redis_server: RedisServer) -> None:
    [ours] = await start_nodes(realtime, redis_server, ["py"], streams=True)
    async with mixed(realtime, ours, redis_server.url, "streams_node_server.js") as pair:
        on_ours, on_node, node_box, ours_box = pair.on_ours, pair.on_node, pair.node_box, pair.ours_box
        await broadcasts_both_ways(pair)  # (the Node side has recovery on: its offsets come along)

        # Rooms, both ways.
        assert await on_node.emit_with_ack("join", "mixed", timeout=10) == ["mixed"]
        assert await on_ours.emit_with_ack("join", "mixed", timeout=10) == ["mixed"]
        ours.server.to("mixed").emit("to the room")
        ours.server.to("elsewhere").emit("not for them")
        await until(lambda: ["to the room"] in node_box, "a room broadcast reaching Node", limit=WAIT)
        assert await on_node.emit_with_ack("to room", "mixed", 5, timeout=10) is True
        await until(lambda: ["room from node", 5] in ours_box, "a room broadcast from the Node side", limit=WAIT)
        assert not any(m[0] == "not for them" for m in node_box)

        # Another namespace, both ways.
        ours.server.of("/chat")
        chat_ours = await realtime.connect(ours.test_server, namespace="/chat")
        chat_node = await pair.node_manager.socket("/chat").connect()
        chat_ours_box, chat_node_box = inbox(chat_ours), inbox(chat_node)
        assert await chat_node.emit_with_ack("join", "c", timeout=10) == ["c"]
        ours.server.of("/chat").to("c").emit("chat", "py")
        await until(lambda: ["chat", "py"] in chat_node_box, "a /chat room broadcast", limit=WAIT)
        assert not chat_ours_box and ["chat", "py"] not in node_box

        await fetches_and_requests_both_ways(pair)

        # socketsJoin from our side reaches the Node side's sockets (through the stream).
        ours.server.in_("mixed").sockets_join("both")
        found: list[Any] = []
        for _ in range(200):
            found = [s for s in await ours.server.in_("both").fetch_sockets() if isinstance(s, RemoteSocket)]
            if found:
                break
            await deferLater(reactor, 0.05, lambda: None)
        assert [s.id for s in found] == [on_node.id]
        assert ours.link.malformed == 0 and ours.link.undelivered == 0


@pytest_twisted.ensureDeferred
async def test_recovery_on_another_node(realtime: Realtime, redis_server: RedisServer) -> None:
    """A client of node a comes back on node b: same id, same rooms, each missed room broadcast once, in order."""
    recovery = StateRecovery(max_disconnection_duration=60)
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"], streams=True,
                                     connection_state_recovery=recovery)
    manager, target = movable_manager(a.test_server.url)
    try:
        client = await manager.socket("/").connect()
        box = inbox(client)
        assert await client.emit_with_ack("join", "r", timeout=10) == ["r"]
        await wait_for_servers(a.server, 2)
        b.server.to("r").emit("before", 0)
        await until(lambda: box == [["before", 0]], "the first room broadcast", limit=WAIT)
        first_id = client.id

        # The client is cut off; both nodes go on broadcasting to its room (a's own entries, and b's).
        gone: list[str] = []
        client.on("disconnect", gone.append)
        [server_socket] = a.server.sockets.sockets.values()
        server_socket.conn.close(CloseReason.TRANSPORT_CLOSE)
        await until(lambda: bool(gone), "the disconnection", limit=WAIT)
        await until(lambda: not a.server.sockets.sockets, "node a to keep the session", limit=WAIT)
        for i in range(1, 4):
            a.server.to("r").emit("missed", "a", i)
            b.server.to("r").emit("missed", "b", i)
        b.server.to("other").emit("not for it")
        b.server.emit("missed", "everyone", 4)
        await until(lambda: b.link.last_read is not None and a.link.last_read == b.link.last_read,
                    "both nodes to read every entry", limit=WAIT)

        # It comes back on node b.
        target[0] = b.test_server.url
        await client.connect()
        assert client.recovered and client.id == first_id
        [back] = b.server.sockets.sockets.values()
        assert back.rooms == {first_id, "r"}
        a.server.to("r").emit("after", "a")
        b.server.to("r").emit("after", "b")
        await until(lambda: len([m for m in box if m[0] == "after"]) == 2, "the broadcasts after", limit=WAIT)
        await sync(client)
        missed = [m for m in box if m[0] == "missed"]
        assert sorted(map(tuple, missed)) == sorted([("missed", who, i) for who in "ab" for i in (1, 2, 3)]
                                                    + [("missed", "everyone", 4)])
        assert [m for m in missed if m[1] == "a"] == [["missed", "a", i] for i in (1, 2, 3)]  # each node's in order
        assert [m for m in missed if m[1] == "b"] == [["missed", "b", i] for i in (1, 2, 3)]
        assert ["not for it"] not in box
        assert box.index(missed[-1]) < box.index(["after", "a"])
        assert await client.emit_with_ack("join", "s", timeout=10) == ["r", "s", "sync"]
    finally:
        await manager.close()
        await stop_links(nodes)


@pytest_twisted.ensureDeferred
async def test_each_socket_gets_the_stream_in_its_order(realtime: Realtime, redis_server: RedisServer) -> None:
    """Both nodes broadcast at once: node a's client gets a's own entries and b's in the stream's order (offsets
    rising), so the last offset it got covers everything it got (a recovery from it doubles nothing)."""
    recovery = StateRecovery(max_disconnection_duration=60)
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"], streams=True,
                                     connection_state_recovery=recovery)
    try:
        client = await realtime.connect(a.test_server)
        assert await client.emit_with_ack("join", "r", timeout=10) == ["r"]
        await wait_for_servers(a.server, 2)
        offsets: list[tuple[int, int]] = []
        client.on_any(lambda event, *args: offsets.append(entry_id(client._last_offset or "") or (0, 0)))
        for i in range(100):  # b's entries first: a reads them while Redis answers a's own
            b.server.to("r").emit("n", "b", i)
        for i in range(100):
            a.server.to("r").emit("n", "a", i)
        await until(lambda: len(offsets) == 200, "every broadcast", limit=WAIT)
        assert (0, 0) not in offsets
        assert offsets == sorted(offsets) and len(set(offsets)) == 200
    finally:
        await stop_links(nodes)


@pytest_twisted.ensureDeferred
async def test_a_node_cut_off_from_redis_catches_up(realtime: Realtime, tmp_path: Path) -> None:
    """Redis is restarted (it keeps its stream: append-only file) while node a broadcasts: b misses nothing."""
    redis = RedisServer(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    try:
        a, b = nodes = await start_nodes(realtime, redis, ["a", "b"], streams=True)
        try:
            client = await realtime.connect(b.test_server)
            box = inbox(client)
            await wait_for_servers(a.server, 2)
            sent = 0
            for _ in range(50):
                a.server.emit("n", sent)
                sent += 1
            await until(lambda: len(box) == sent, "the first broadcasts", limit=WAIT)

            # b loses its reading connection only: a goes on adding entries that b must catch up on.
            b.link._reader.protocol.transport.abortConnection()
            for _ in range(50):
                a.server.emit("n", sent)
                sent += 1
            await until(lambda: len(box) == sent, "the entries added while b could not read", limit=WAIT)

            # Redis itself goes down and comes back: what a added before is still in the stream.
            redis.stop()
            await until(lambda: not a.link.connected and not b.link.connected, "both links down", limit=WAIT)
            undelivered = a.link.undelivered
            assert a.server.emit("n", "lost") is False  # not in the stream: counted as not delivered
            assert a.link.undelivered == undelivered + 1
            redis.start()
            await until(lambda: a.link.connected and b.link.connected, "both links back", limit=WAIT)
            for _ in range(50):
                a.server.emit("n", sent)
                sent += 1
            await until(lambda: len([m for m in box if m[0] == "n" and m[1] != "lost"]) == sent,
                        "the broadcasts after the restart", limit=WAIT)
            assert [m[1] for m in box if m[1] != "lost"] == list(range(sent))
        finally:
            await stop_links(nodes)
    finally:
        redis.stop()
