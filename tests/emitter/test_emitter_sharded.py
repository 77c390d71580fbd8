"""The emitter for servers on the sharded adapter: the messages it writes, and a real Redis Cluster with a
txrealtime node and a Node node."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest_twisted
import redis
import redis.cluster
from twisted.internet import threads

from tests.adapters.cluster import WAIT, inbox, start_node_server, start_nodes, sync, wait_for_servers
from tests.peers import until
from tests.servers import RedisCluster, RedisServer
from txrealtime.adapters.cluster_messages import ClusterMessage, decode_message
from txrealtime.adapters.redis import ShardedRedisLink, sharded_adapter
from txrealtime.adapters.redis.requests import DisconnectRequest, JoinRequest, ServerSideEmitRequest
from txrealtime.adapters.redis.wire import Broadcast, WireFlags, WireOptions, WirePacket
from txrealtime.client import Manager
from txrealtime.emitter import BaseEmitter, Emitter, TwistedEmitter
from txrealtime.emitter_acks import Gathering
from txrealtime.pytest_plugin import Realtime

FIXTURE = Path(__file__).parent.parent / "adapters" / "fixtures" / "node_sharded_adapter.json"
"""What tests/interop/capture_sharded_adapter.js recorded of Node's sharded adapter (socket.io 4.8.1)."""


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

        # emit_with_ack, through the sharded adapter's own broadcast-with-acks request (SPUBLISH, answers on
        # the emitter's shard channel): both servers count their clients, every client answers.
        on_ours.on("question", lambda n: ["ours", n + 1])
        on_node.on("question", lambda n: ["node", n + 1])
        acks = await twisted.emit_with_ack("question", 1, timeout=10)
        assert sorted(acks.answers) == [["node", 2], ["ours", 2]]
        assert (acks.servers, acks.reported, acks.clients, acks.complete) == (2, 2, 2, True)
        in_room = await twisted.emit_with_ack("question", 2, timeout=10, except_rooms=["nowhere"], rooms=["room"])
        assert (sorted(in_room.answers), in_room.complete) == ([["node", 3], ["ours", 3]], True)

        def blocking(n: int, timeout: float) -> Any:
            with Emitter(redis_cluster.url_of(1), sharded=True) as emitter:
                return emitter.emit_with_ack("question", n, timeout=timeout)

        gathered = await threads.deferToThread(blocking, 5, 10)
        assert sorted(gathered.answers) == [["node", 6], ["ours", 6]]
        assert (gathered.servers, gathered.clients, gathered.complete) == (2, 2, True)
        # A client that does not answer: the timeout gives what came, marked incomplete.
        on_node.off("question")
        late = await twisted.emit_with_ack("question", 7, timeout=1)
        assert (late.answers, late.clients, late.complete) == ([["ours", 8]], 2, False)
        late = await threads.deferToThread(blocking, 9, 1)
        assert (late.answers, late.clients, late.complete) == ([["ours", 10]], 2, False)
    finally:
        await node_manager.close()
        process.kill()
        process.wait(30)
        await ours.link.stop()


def test_the_ack_request_and_answers_are_the_sharded_adapters() -> None:
    """``emit_with_ack`` for the sharded adapter publishes, byte for byte, the request Node's sharded adapter
    publishes for ``io.timeout(5).emitWithAck("question", 41)`` (but its ids, and the timeout, the emitter's own),
    and counts the answers Node's adapter sent back."""
    captured = [(m["channel"], base64.b64decode(m["base64"])) for m in json.loads(FIXTURE.read_text())["messages"]
                if m["step"] == "broadcast_with_ack"]
    [(channel, request)] = [(c, m) for c, m in captured if json.loads(m)["type"] == 3]
    answers = [json.loads(m) for c, m in captured if json.loads(m)["type"] in (11, 12)]
    gathering = Gathering("socket.io", "/", "question", [41], [], [], sharded=True)
    uid = json.loads(gathering.request)["uid"]
    node_request = json.loads(request)
    assert gathering.request_channel == channel
    assert gathering.answer_channels == [f"socket.io#/#{uid}#"]
    expected = request.replace(node_request["uid"].encode(), uid.encode())
    expected = expected.replace(node_request["data"]["requestId"].encode(), gathering.request_id.encode())
    assert gathering.request == expected.replace(b'"flags":{"timeout":5000}', b'"flags":{}')
    gathering.result.servers = 1
    for answer in answers:
        ours = dict(answer, data=dict(answer["data"], requestId=gathering.request_id))
        assert not gathering.receive(json.dumps(answer).encode())  # another request's answer: not counted
        gathering.receive(json.dumps(ours).encode())
    assert gathering.result.answers == [42] and gathering.result.complete


@pytest_twisted.ensureDeferred
async def test_emit_with_ack_through_a_single_redis_7(realtime: Realtime, redis_server: RedisServer) -> None:
    """Sharded pub/sub on one Redis (not a cluster): redis-py's plain ``redis.Redis`` client, as the docs offer."""
    link = ShardedRedisLink(redis_server.url)
    ours = await realtime.start_server(adapter=sharded_adapter(link))
    ours.server.on("connection", lambda socket: socket.join("room"))
    try:
        await link.when_connected()
        client = await realtime.connect(ours)
        client.on("question", lambda n: n * 2)

        def blocking() -> Any:
            with Emitter(redis.Redis.from_url(redis_server.url), sharded=True) as emitter:
                return emitter.emit_with_ack("question", 21, timeout=10, rooms=["room"])

        acks = await threads.deferToThread(blocking)
        assert (acks.answers, acks.servers, acks.reported, acks.clients, acks.complete) == ([42], 1, 1, 1, True)
    finally:
        await link.stop()


def test_blocking_acks_through_a_shared_cluster_client_leave_no_connection_open(redis_cluster: RedisCluster) -> None:
    """Each call reads answers on a pub/sub connection to one node of the cluster, given back after the call
    (redis-py 5.0's cluster pub/sub kept them taken: a new connection each call), so a client shared by a
    long-lived process keeps at most a command and a pub/sub connection per node, whatever the calls."""

    def connections() -> int:  # INFO's own connection included
        return sum(int(redis_cluster.cli(index, "INFO", "clients").split("connected_clients:")[1].split()[0])
                   for index in range(len(redis_cluster.ports)))

    alone = connections()
    client = redis.cluster.RedisCluster.from_url(redis_cluster.url)
    try:
        emitter = Emitter(client, sharded=True)
        for n in range(30):
            assert emitter.emit_with_ack("question", n, timeout=5).complete  # no server: complete at once
        # A command and a pub/sub connection per node, and the one the client discovered the cluster with.
        assert connections() - alone <= 2 * len(redis_cluster.ports) + 1
    finally:
        client.close()
