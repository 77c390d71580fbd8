"""The emitter for servers on the sharded adapter: the messages it writes, and a real Redis Cluster with a
txrealtime node and a Node node."""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import threads

from tests.adapters.cluster import WAIT, inbox, start_node_server, start_nodes, sync, wait_for_servers
from tests.peers import until
from tests.servers import RedisCluster
from txrealtime.adapters.cluster_messages import ClusterMessage, decode_message
from txrealtime.adapters.redis.requests import DisconnectRequest, JoinRequest, ServerSideEmitRequest
from txrealtime.adapters.redis.wire import Broadcast, WireFlags, WireOptions, WirePacket
from txrealtime.client import Manager
from txrealtime.emitter import BaseEmitter, Emitter, TwistedEmitter
from txrealtime.pytest_plugin import Realtime


def recording() -> tuple[BaseEmitter[None], list[tuple[str, bytes]]]:
    sent: list[tuple[str, bytes]] = []
    return BaseEmitter(lambda channel, data: sent.append((channel, data)), sharded=True), sent


def test_the_messages_the_sharded_adapter_expects() -> None:
    emitter, sent = recording()
    emitter.to("room1").except_("room2").volatile.emit("news", 1, b"\x00")
    emitter.of("/chat").in_("r").sockets_join(["a", "b"])
    emitter.disconnect_sockets(close=True)
    emitter.server_side_emit("note", "x")
    # Every message on the namespace's channel, even to one room: every server subscribes to it.
    assert [channel for channel, _ in sent] == ["socket.io#/#", "socket.io#/chat#", "socket.io#/#", "socket.io#/#"]
    messages = [decode_message(data) for _, data in sent]
    flags = WireFlags(volatile=True)
    assert messages == [
        ClusterMessage("emitter", "/", Broadcast(uid="emitter", packet=WirePacket(data=["news", 1, b"\x00"]),
                                                  opts=WireOptions(rooms=("room1",), except_=("room2",), flags=flags))),
        ClusterMessage("emitter", "/chat", JoinRequest(opts=WireOptions(rooms=("r",), flags=WireFlags()),
                                                       rooms=("a", "b"), uid="emitter")),
        ClusterMessage("emitter", "/", DisconnectRequest(opts=WireOptions(flags=WireFlags()), close=True,
                                                         uid="emitter")),
        ClusterMessage("emitter", "/", ServerSideEmitRequest(data=["note", "x"], uid="emitter")),
    ]
    assert sent[1][1].startswith(b'{"type":4,"data":{"opts":{"rooms":["r"],"except":[],"flags":{}},')


@pytest_twisted.ensureDeferred
async def test_both_emitters_reach_txrealtime_and_node_servers(
    realtime: Realtime, redis_cluster: RedisCluster
) -> None:
    [ours] = await start_nodes(realtime, redis_cluster, ["py"])
    process, node_url = start_node_server(redis_cluster.url_of(2), script="sharded_node_server.js")
    node_manager = Manager(node_url, transports=["websocket"], reconnection=False)
    try:
        on_ours = await realtime.connect(ours.test_server)
        on_node = await node_manager.socket("/").connect()
        boxes = [inbox(on_ours), inbox(on_node)]
        await wait_for_servers(ours.server, 2)
        assert await on_node.emit_with_ack("join", "room", timeout=10) == ["room"]
        assert await on_ours.emit_with_ack("join", "room", timeout=10) == ["room"]

        def synchronous() -> list[Any]:
            with Emitter(redis_cluster.url_of(1), sharded=True) as emitter:
                return [emitter.to("room").emit("from python", {"ok": True}, b"\x01"),
                        emitter.server_side_emit("note", "sync")]

        received = await threads.deferToThread(synchronous)
        assert received == [2, 2]  # both servers subscribe to the namespace's channel
        await until(lambda: all(["from python", {"ok": True}, b"\x01"] in box for box in boxes), "the emit",
                    limit=WAIT)
        await until(lambda: all(["note", "sync"] in box for box in boxes[1:]), "the server-side emit", limit=WAIT)

        twisted = TwistedEmitter(ours.link)
        assert twisted.sharded
        assert await twisted.in_("room").sockets_join("joined") == 2
        await twisted.to("joined").emit("after joining")
        await until(lambda: all(["after joining"] in box for box in boxes), "the emit to the joined room",
                    limit=WAIT)
        await sync(on_ours)
    finally:
        await node_manager.close()
        process.kill()
        process.wait(30)
        await ours.link.stop()
