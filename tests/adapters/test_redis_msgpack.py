"""A mixed Redis cluster speaking the msgpack parser: a txrealtime node and a Node socket.io node.

Packets cross Redis as packet objects (the adapter's own MessagePack), and
each node encodes them for its own clients with its parser.
"""

from __future__ import annotations

import datetime

import pytest_twisted

from tests.adapters.cluster import WAIT, inbox, start_node_server, start_nodes, stop_links, sync, wait_for_servers
from tests.peers import until
from tests.servers import RedisServer
from txrealtime.client import Manager
from txrealtime.protocol.msgpack import MSGPACK
from txrealtime.pytest_plugin import Realtime


@pytest_twisted.ensureDeferred
async def test_mixed_msgpack_cluster(realtime: Realtime, redis_server: RedisServer) -> None:
    [ours] = await start_nodes(realtime, redis_server, ["py"], parser="msgpack")
    process, node_url = start_node_server(redis_server.url, "msgpack")
    node_manager = Manager(node_url, transports=["websocket"], reconnection=False, parser="msgpack")
    try:
        on_ours = await realtime.connect(ours.test_server)
        assert isinstance(on_ours.io, Manager) and on_ours.io.parser is MSGPACK  # the server's parser
        on_node = await node_manager.socket("/").connect()
        ours_box, node_box = inbox(on_ours), inbox(on_node)
        await wait_for_servers(ours.server, 2)

        # txrealtime -> Node's clients: binary and a Date, encoded by Node's msgpack parser.
        when = datetime.datetime(2023, 3, 4, 5, 6, 7, 890000, tzinfo=datetime.UTC)
        ours.server.emit("from python", {"n": 1}, b"\x07", when)
        expected = ["from python", {"n": 1}, b"\x07", when]
        await until(lambda: expected in node_box, "python's broadcast on the Node side", limit=WAIT)
        assert expected in ours_box

        # Node -> txrealtime's clients.
        assert await on_node.emit_with_ack("broadcast", "hi", b"\x08", timeout=10) is True
        await until(lambda: ["from node", "hi", b"\x08"] in ours_box, "node's broadcast on the python side", limit=WAIT)

        # A room that only the Node side's client is in.
        assert await on_node.emit_with_ack("join", "mixed", timeout=10) == ["mixed"]
        ours.server.to("mixed").emit("to the room", b"\x01")
        await until(lambda: ["to the room", b"\x01"] in node_box, "a room broadcast on the Node side", limit=WAIT)
        await sync(on_ours)
        assert ["to the room", b"\x01"] not in ours_box

        # A broadcast asking for acks, answered by the clients of both nodes.
        for socket in (on_ours, on_node):
            socket.on("question", lambda n: n + 1)
        assert await ours.server.timeout(10).emit_with_ack("question", 41) == [42, 42]
    finally:
        await node_manager.close()
        process.kill()
        process.wait(30)
        await stop_links([ours])
