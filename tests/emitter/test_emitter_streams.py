"""The emitter for servers on the streams adapter: the entries it adds (the bytes Node's adapter writes), and a
real redis-server with a txrealtime node and a Node node on ``@socket.io/redis-streams-adapter``, both front
ends; a client that recovers gets the emitter's broadcasts it missed."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import msgpack
import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import threads

from tests.adapters.cluster import (
    WAIT,
    inbox,
    movable_manager,
    start_node_server,
    start_nodes,
    stop_links,
    sync,
    wait_for_servers,
)
from tests.emitter.mixed import front_end, rooms_become, sent, six_clients
from tests.peers import until
from tests.servers import RedisServer
from txrealtime.adapters.redis.requests import JoinRequest
from txrealtime.adapters.redis.streams_wire import decode_entry
from txrealtime.adapters.redis.wire import Broadcast, WireFlags, WireOptions, WirePacket
from txrealtime.emitter import BaseEmitter, Emitter, Sender, StreamEntry, TwistedEmitter
from txrealtime.emitter_acks import Gathering
from txrealtime.engineio.events import CloseReason
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio import StateRecovery

FIXTURE = Path(__file__).parent.parent / "adapters" / "fixtures" / "node_streams_adapter.json"


def recording() -> tuple[BaseEmitter[None], list[StreamEntry]]:
    added: list[StreamEntry] = []

    def publish(channel: str, data: bytes) -> None:
        raise AssertionError("the streams emitter publishes nothing")

    return BaseEmitter(Sender(publish, added.append), streams=True), added


def test_the_entries_are_the_ones_nodes_adapter_writes() -> None:
    """The same calls as tests/interop/capture_streams_adapter.js makes on a server: the same fields, but the uid."""
    node = [entry["message"] for entry in json.loads(FIXTURE.read_text())["entries"]]
    emitter, added = recording()
    emitter.emit("hello", "world", 1)
    emitter.to("room1").except_("room3").emit("room", {"a": [1, 2.5, None, True]})
    emitter.to("room2").emit("bin", b"\x01\x02\x03", "text")
    emitter.volatile.emit("volatile", 1)
    emitter.compress(False).emit("nocompress", "x")
    emitter.in_("room1").sockets_join("room4")
    emitter.in_("room4").sockets_leave("room1")
    assert [dict(e.fields) for e in added] == [dict(m, uid="emitter") for m in node[:7]]
    assert [[name for name, _ in e.fields] for e in added] == [list(m) for m in node[:7]]  # in Node's order
    assert {(e.stream, e.max_len, e.servers_channel) for e in added} == {("socket.io", 10_000, "socket.io#/#")}

    emitter.of("chat").in_("r").disconnect_sockets(close=True)
    emitter.server_side_emit("note", {"n": 1})
    assert [e.fields for e in added[7:]] == [
        (("uid", "emitter"), ("nsp", "/chat"), ("type", "6"),
         ("data", '{"opts":{"rooms":["r"],"except":[],"flags":{}},"close":true}')),
        (("uid", "emitter"), ("nsp", "/"), ("type", "9"), ("data", '{"packet":["note",{"n":1}]}')),
    ]
    assert added[7].servers_channel == "socket.io#/chat#"
    with pytest.raises(ValueError, match="not both"):
        BaseEmitter(lambda channel, data: None, sharded=True, streams=True)


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_rooms = st.lists(st.text(min_size=1, max_size=6), max_size=3, unique=True)


@given(st.text(min_size=1, max_size=10).filter(lambda e: e not in {"connect", "connect_error", "disconnect",
                                                                    "disconnecting", "newListener", "removeListener"}),
       st.lists(_values, max_size=3), _rooms, _rooms, st.booleans())
def test_what_the_servers_read_back_is_what_was_emitted(
    event: str, args: list[Any], rooms: list[str], except_rooms: list[str], volatile: bool
) -> None:
    emitter, added = recording()
    selection = emitter.to(rooms).except_(except_rooms)
    (selection.volatile if volatile else selection).emit(event, *args)
    emitter.in_(rooms).sockets_join(except_rooms)
    broadcast, join = (decode_entry(dict(e.fields)) for e in added)
    flags = WireFlags(volatile=True) if volatile else WireFlags()
    assert broadcast is not None and (broadcast.uid, broadcast.nsp) == ("emitter", "/")
    assert broadcast.body == Broadcast(uid="emitter", packet=WirePacket(data=[event, *args]),
                                       opts=WireOptions(rooms=tuple(rooms), except_=tuple(except_rooms), flags=flags))
    assert join is not None and join.body == JoinRequest(
        opts=WireOptions(rooms=tuple(rooms), flags=WireFlags()), rooms=tuple(except_rooms), uid="emitter")


@pytest.mark.parametrize("kind", ["sync", "twisted"])
@pytest_twisted.ensureDeferred
async def test_the_emitter_reaches_txrealtime_and_node_on_the_streams_adapter(
    realtime: Realtime, redis_server: RedisServer, kind: str
) -> None:
    recovery = StateRecovery(max_disconnection_duration=60)
    [ours] = await start_nodes(realtime, redis_server, ["py"], streams=True, connection_state_recovery=recovery)
    process, node_url = start_node_server(redis_server.url, script="streams_node_server.js")
    try:
        async with six_clients(ours, node_url) as clients, front_end(kind, redis_server.url, streams=True) as emitter:
            boxes, gone, got = clients.boxes, clients.gone, clients.got
            t1, t2, n1, n2 = (clients.sockets[n] for n in ("t1", "t2", "n1", "n2"))
            # A room, with binary: both servers' clients in r1, and only them; each count is the servers reading.
            assert await sent(emitter.to("r1").emit("news", "hello", b"\x00\xff")) == 2
            await until(got("t1", "n1"), "the room event on both servers", limit=WAIT)
            assert boxes["t1"] == boxes["n1"] == [["news", "hello", b"\x00\xff"]]

            assert await sent(emitter.except_("r1").emit("not r1", 1)) == 2
            await until(got("t2", "n2"), "the except event on both servers", limit=WAIT)
            assert await sent(emitter.of("chat").emit("chat news", {"n": 2})) == 2
            await until(got("tc", "nc"), "the /chat event on both servers", limit=WAIT)
            await sync(t1, t2, n1, n2)
            assert boxes["t2"] == boxes["n2"] == [["not r1", 1]]
            assert boxes["tc"] == boxes["nc"] == [["chat news", {"n": 2}]]
            assert boxes["t1"] == boxes["n1"] == [["news", "hello", b"\x00\xff"]]

            assert await sent(emitter.in_("r1").sockets_join(["r2", "r3"])) == 2
            for socket in (t1, n1):
                await rooms_become(socket, {"r1", "r2", "r3"})
            assert await sent(emitter.sockets_leave("r3")) == 2
            for socket in (t1, n1):
                await rooms_become(socket, {"r1", "r2"})
            for socket in (t2, n2):
                await rooms_become(socket, set())

            # emit_with_ack, through the streams adapter's own request: both servers count, every client answers.
            for name, socket in clients.sockets.items():
                socket.on("question", lambda n, name=name: f"{name} got {n}")
            if isinstance(emitter, TwistedEmitter):
                acks = await emitter.emit_with_ack("question", 1, timeout=10, rooms=["r1"])
            else:
                assert isinstance(emitter, Emitter)
                acks = await threads.deferToThread(emitter.emit_with_ack, "question", 1, timeout=10, rooms=["r1"])
            assert acks.complete and (acks.servers, acks.reported, acks.clients) == (2, 2, 2)
            assert sorted(acks.answers) == ["n1 got 1", "t1 got 1"]

            # server_side_emit: the servers' own handlers (the Node server passes it on to its clients).
            assert await sent(emitter.server_side_emit("note", {"n": 3})) == 2
            await until(lambda: clients.notes == [[{"n": 3}]], "the txrealtime server's handler", limit=WAIT)
            await until(lambda: ["note", {"n": 3}] in boxes["n2"], "the Node server's", limit=WAIT)

            assert await sent(emitter.in_("r1").disconnect_sockets()) == 2
            await until(lambda: bool(gone["t1"] and gone["n1"]), "r1's sockets to be disconnected", limit=WAIT)
            assert gone["t1"] == gone["n1"] == ["io server disconnect"]
            assert await sent(emitter.of("/chat").disconnect_sockets(close=True)) == 2
            await until(lambda: all(gone[n] for n in ("tc", "nc", "t2", "n2")), "the connections to close", limit=WAIT)
        assert ours.link.malformed == 0
    finally:
        process.kill()
        process.wait(30)
        await ours.link.stop()


@pytest_twisted.ensureDeferred
async def test_a_recovering_client_gets_the_emitter_broadcasts_it_missed(
    realtime: Realtime, redis_server: RedisServer
) -> None:
    """The servers give the emitter's entries offsets: a client cut off from node a comes back on node b and gets
    the emitter's room broadcasts it missed, once each, in order, and not the others."""
    recovery = StateRecovery(max_disconnection_duration=60)
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"], streams=True,
                                     connection_state_recovery=recovery)
    manager, target = movable_manager(a.test_server.url)
    try:
        with Emitter(redis_server.url, streams=True) as emitter:
            client = await manager.socket("/").connect()
            box = inbox(client)
            assert await client.emit_with_ack("join", "r", timeout=10) == ["r"]
            await wait_for_servers(a.server, 2)
            emitter.to("r").emit("before", 0)
            await until(lambda: box == [["before", 0]], "the first emitted broadcast", limit=WAIT)
            first_id = client.id

            gone: list[str] = []
            client.on("disconnect", gone.append)
            [server_socket] = a.server.sockets.sockets.values()
            server_socket.conn.close(CloseReason.TRANSPORT_CLOSE)
            await until(lambda: bool(gone) and not a.server.sockets.sockets, "node a to keep the session", limit=WAIT)
            for i in range(1, 4):
                emitter.to("r").emit("missed", i)
            emitter.to("other").emit("not for it")
            emitter.volatile.emit("volatile")  # no offset: not kept for recovering clients
            emitter.emit("missed", "everyone")
            await until(lambda: b.link.last_read is not None and a.link.last_read == b.link.last_read,
                        "both nodes to read every entry", limit=WAIT)

            target[0] = b.test_server.url
            await client.connect()
            assert client.recovered and client.id == first_id
            emitter.to("r").emit("after")
            await until(lambda: ["after"] in box, "the broadcast after", limit=WAIT)
            await sync(client)
            assert box == [["before", 0], ["missed", 1], ["missed", 2], ["missed", 3], ["missed", "everyone"],
                           ["after"]]
    finally:
        await manager.close()
        await stop_links(nodes)


def test_the_ack_request_and_answers_are_the_streams_adapters() -> None:
    """``emit_with_ack`` for the streams adapter publishes the request Node's adapter publishes for
    ``io.emitWithAck`` (but the timeout, the emitter's own), and counts the answers Node's adapter sent back."""
    captured = json.loads(FIXTURE.read_text())["published"]
    node = [(p["channel"], msgpack.unpackb(base64.b64decode(p["message"]))) for p in captured]
    [(channel, request)] = [(c, m) for c, m in node if m["type"] == 3]
    answers = [m for c, m in node if m["type"] in (11, 12)]
    gathering = Gathering("socket.io", "/", "with-ack", ["x"], [], [], streams=True)
    mine = msgpack.unpackb(gathering.request)
    assert gathering.request_channel == channel
    assert gathering.answer_channels == [f"socket.io#/#{mine['uid']}#"]
    expected = dict(request, uid=mine["uid"], data=dict(request["data"], requestId=gathering.request_id,
                                                         opts=dict(request["data"]["opts"], flags={})))
    assert list(mine) == list(expected) and list(mine["data"]) == list(expected["data"]) and mine == expected
    gathering.result.servers = 1
    for answer in answers:
        ours = dict(answer, data=dict(answer["data"], requestId=gathering.request_id))
        assert not gathering.receive(msgpack.packb(dict(answer)))  # another request's answer: not counted
        gathering.receive(msgpack.packb(ours))
    assert gathering.result.answers == ["got x"] and gathering.result.complete
