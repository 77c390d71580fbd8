"""Scale-out through a real redis-server: txrealtime nodes, Node socket.io nodes and the Node emitter together."""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.adapters.cluster import WAIT, inbox, start_node_server, start_nodes, stop_links, sync, wait_for_servers
from tests.peers import until
from tests.servers import RedisServer, node_peer
from txrealtime.adapters.redis import RedisUp, RemoteSocket
from txrealtime.pytest_plugin import Realtime


@pytest_twisted.ensureDeferred
async def test_lone_surrogate_crosses_nodes(realtime: Realtime, redis_server: RedisServer) -> None:
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"])
    try:
        client = await realtime.connect(b.test_server)
        box = inbox(client)
        assert a.server.emit("odd", "x\ud800y", {"k\udc00": 1}) is True
        await until(lambda: bool(box), "the broadcast on node b", limit=WAIT)
        assert box == [["odd", "x\ud800y", {"k\udc00": 1}]]
    finally:
        await stop_links(nodes)


@pytest_twisted.ensureDeferred
async def test_three_nodes_broadcast_rooms_fetch_and_requests(realtime: Realtime, redis_server: RedisServer) -> None:
    a, b, c = nodes = await start_nodes(realtime, redis_server, ["a", "b", "c"])
    try:
        clients = [await realtime.connect(n.test_server) for n in nodes]
        ca, cb, cc = clients
        boxes = [inbox(s) for s in clients]

        # A broadcast from one node reaches the clients of all three, binary included.
        assert a.server.emit("news", "hello", b"\x00\x01") is True
        await until(lambda: all(box for box in boxes), "the broadcast on every node", limit=WAIT)
        assert [box for box in boxes] == [[["news", "hello", b"\x00\x01"]]] * 3

        # Rooms and except across nodes.
        assert await cb.emit_with_ack("join", "r", timeout=10) == ["r"]
        assert await cc.emit_with_ack("join", "r", timeout=10) == ["r"]
        a.server.to("r").emit("room only")
        a.server.except_("r").emit("not in room")
        await until(lambda: len(boxes[1]) == 2 and len(boxes[2]) == 2, "room messages", limit=WAIT)
        await sync(*clients)
        assert [m for m in boxes[0] if m[0] != "news"] == [["not in room"]]
        assert boxes[1][1:] == [["room only"]] and boxes[2][1:] == [["room only"]]

        # fetch_sockets sees every node's sockets; remote ones come with their rooms and data.
        found = await a.server.fetch_sockets()
        assert sorted(s.data["node"] for s in found) == ["a", "b", "c"]
        remote = [s for s in found if isinstance(s, RemoteSocket)]
        assert len(remote) == 2 and all({"r", "sync"} <= s.rooms for s in remote)
        in_room = await a.server.in_("r").fetch_sockets()
        assert sorted(s.data["node"] for s in in_room) == ["b", "c"]

        # sockets_join across nodes, then a remote socket operated from node A.
        a.server.in_("r").sockets_join("joined")
        found = await a.server.in_("joined").fetch_sockets()
        assert sorted(s.data["node"] for s in found) == ["b", "c"]
        target = next(s for s in found if s.data["node"] == "c")
        assert isinstance(target, RemoteSocket)
        target.emit("just you", 1)
        await until(lambda: ["just you", 1] in boxes[2], "the message to one remote socket", limit=WAIT)

        # Server-side emits with acknowledgements from every other node.
        answers = await a.server.server_side_emit_with_ack("which node", 7)
        assert sorted(answers) == ["b got [7]", "c got [7]"]

        # Broadcast acknowledgements are collected from the clients of every node.
        for s in clients:
            s.on("question", lambda n: n + 1)
        assert sorted(await a.server.timeout(10).emit_with_ack("question", 41)) == [42, 42, 42]

        # disconnect_sockets across nodes: c's client is told by its own node.
        gone: list[str] = []
        cc.on("disconnect", gone.append)
        a.server.in_(cc.id or "").disconnect_sockets()
        await until(lambda: gone == ["io server disconnect"], "the remote disconnection", limit=WAIT)

        # A node that leaves is forgotten by the others.
        await c.link.stop()
        await until(lambda: len(a.link.nodes()) == 2, "node c to be forgotten", limit=WAIT)
        assert c.link.uid not in b.link.nodes()
    finally:
        await stop_links(nodes)


@pytest_twisted.ensureDeferred
async def test_mixed_cluster_with_node_adapter_and_emitter(realtime: Realtime, redis_server: RedisServer) -> None:
    [ours] = await start_nodes(realtime, redis_server, ["py"])
    process, node_url = start_node_server(redis_server.url)
    try:
        on_node = await realtime.connect(ours.test_server, path="/socket.io/")
        # The same txrealtime client type, pointed at the Node server.
        from txrealtime.client import Manager

        node_manager = Manager(node_url, transports=["websocket"], reconnection=False)
        on_node_socket = await node_manager.socket("/").connect()
        ours_box, node_box = inbox(on_node), inbox(on_node_socket)
        await wait_for_servers(ours.server, 2)

        # txrealtime -> Node's clients.
        ours.server.emit("from python", {"n": 1}, b"\x07")
        await until(
            lambda: ["from python", {"n": 1}, b"\x07"] in node_box,
            "python's broadcast on the Node side",
            limit=WAIT,
        )

        # Node -> txrealtime's clients.
        assert await on_node_socket.emit_with_ack("broadcast", "hi", b"\x08", timeout=10) is True
        await until(lambda: ["from node", "hi", b"\x08"] in ours_box, "node's broadcast on the python side", limit=WAIT)

        # Rooms across implementations, and fetch_sockets answered by the Node server.
        assert await on_node_socket.emit_with_ack("join", "mixed", timeout=10) == ["mixed"]
        ours.server.to("mixed").emit("to the room")
        await until(lambda: ["to the room"] in node_box, "a room broadcast reaching the Node side", limit=WAIT)
        everyone = await ours.server.fetch_sockets()
        assert len(everyone) == 2
        assert any(isinstance(s, RemoteSocket) and s.id == on_node_socket.id and "mixed" in s.rooms for s in everyone)

        # Server-side emit with ack, answered by the Node server.
        assert await ours.server.server_side_emit_with_ack("hello from python", 5) == [{"node": "says hi", "value": 5}]

        # The Node emitter reaches txrealtime's clients in the room, and only them.
        await on_node.emit_with_ack("join", "emitted", timeout=10)
        other = await realtime.connect(ours.test_server)
        other_box = inbox(other)
        report = await node_peer("redis_emit.js", redis_server.url, "emitted", "from emitter", '{"ok": true}')
        assert report == {"sent": True}
        await until(
            lambda: ["from emitter", {"ok": True}, b"\x01\x02\x03"] in ours_box,
            "the emitter's event",
            limit=WAIT,
        )
        await sync(other)
        assert other_box == []
        await node_manager.close()
    finally:
        process.kill()
        process.wait(30)
        await ours.link.stop()


@pytest_twisted.ensureDeferred
async def test_redis_outage(realtime: Realtime, redis_server: RedisServer) -> None:
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"])
    try:
        ca, cb = await realtime.connect(a.test_server), await realtime.connect(b.test_server)
        box_a, box_b = inbox(ca), inbox(cb)
        ups: list[RedisUp] = []
        a.link.subscribe_events(lambda e: ups.append(e) if isinstance(e, RedisUp) else None)
        b.link.subscribe_events(lambda e: ups.append(e) if isinstance(e, RedisUp) else None)

        redis_server.stop()
        await until(
            lambda: not a.link.connected and not b.link.connected,
            "both links to notice the outage",
            limit=WAIT,
        )
        # Local delivery goes on; the cross-node part is reported as not delivered.
        assert a.server.emit("during outage", 1) is False
        await sync(ca, cb)
        assert box_a == [["during outage", 1]]
        assert box_b == []
        assert a.link.undelivered == 1
        with pytest.raises(ConnectionError):
            await a.server.fetch_sockets()

        redis_server.start()
        await until(
            lambda: len(ups) >= 2 and a.link.connected and b.link.connected,
            "both links to reconnect",
            limit=WAIT,
        )
        assert a.server.emit("after outage", 2) is True
        await until(lambda: ["after outage", 2] in box_b, "cross-node delivery to resume", limit=WAIT)
        assert ["during outage", 1] not in box_b
    finally:
        await stop_links(nodes)


def test_redis_url_parsing() -> None:
    from txrealtime.adapters.redis import RedisURL

    assert RedisURL.parse("redis://127.0.0.1:6380/2") == RedisURL("127.0.0.1", 6380, 2)
    assert RedisURL.parse("rediss://u:p%40ss@h") == RedisURL("h", 6379, None, "u", "p@ss", True)
    with pytest.raises(ValueError):
        RedisURL.parse("http://h")
    with pytest.raises(ValueError):
        RedisURL.parse("redis://h/x")

