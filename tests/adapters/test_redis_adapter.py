"""The Redis adapter's bookkeeping on a real redis-server: timers end with their requests, old request forms.

A second :class:`RedisLink` plays a peer that speaks the wire format directly:
a node that never answers, or an older adapter and an emitter.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import CancelledError

from tests.adapters.cluster import WAIT, inbox, start_nodes, stop_links, wait_for_servers
from tests.peers import until
from tests.servers import RedisServer
from txrealtime.adapters.redis import RedisAdapter, RedisLink
from txrealtime.adapters.redis.requests import (
    DoneResponse,
    SocketDisconnectRequest,
    SocketJoinRequest,
    SocketLeaveRequest,
    SocketsRequest,
    SocketsResponse,
    decode_response,
)
from txrealtime.adapters.redis.wire import (
    Broadcast,
    Channels,
    RequestType,
    WireFlags,
    WireOptions,
    WirePacket,
    decode_broadcast,
    encode,
)
from txrealtime.engineio import CloseReason
from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio import BroadcastFlags, BroadcastOptions, Server, StateRecovery


def main_adapter(server: Server) -> RedisAdapter:
    adapter = server.sockets.adapter
    assert isinstance(adapter, RedisAdapter)
    return adapter


def pending_calls(adapter: RedisAdapter) -> list[Any]:
    """The reactor's delayed calls that belong to ``adapter``."""
    owners = (adapter, adapter._requests, adapter._ack_requests)
    calls = cast(Any, reactor).getDelayedCalls()
    return [c for c in calls if any(getattr(c.func, "__self__", None) is o for o in owners)]


async def peer(redis: RedisServer, *channels: str) -> tuple[RedisLink, list[bytes]]:
    """A bare link subscribed to ``channels``, recording what arrives there."""
    link = RedisLink(redis.url, reconnect_max_delay=0.2)
    received: list[bytes] = []
    for channel in channels:
        link.subscribe(channel, lambda _, message: received.append(message))
    link.start()
    await until(lambda: link.connected, "the peer link to connect", limit=WAIT)
    return link, received


@pytest_twisted.ensureDeferred
async def test_broadcast_acks_end_with_the_last_answer(realtime: Realtime, redis_server: RedisServer) -> None:
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"])
    try:
        clients = [await realtime.connect(n.test_server) for n in nodes] + [await realtime.connect(b.test_server)]
        for client in clients:
            client.on("question", lambda n: n + 1)
        adapter = main_adapter(a.server)
        answers = a.server.timeout(60).emit_with_ack("question", 1)
        [request] = adapter._ack_requests.values()
        assert await answers == [2, 2, 2]
        # Every answer is in long before the 60 seconds: the request is over, its timer cancelled.
        await until(lambda: not adapter._ack_requests, "the broadcast's ack request to end", limit=WAIT)
        assert (request.servers, request.clients, request.answered) == (1, 2, 2)
        assert pending_calls(adapter) == []
    finally:
        await stop_links(nodes)


@pytest_twisted.ensureDeferred
async def test_a_closed_adapter_leaves_no_pending_call(realtime: Realtime, redis_server: RedisServer) -> None:
    [a] = nodes = await start_nodes(realtime, redis_server, ["a"])
    adapter = main_adapter(a.server)
    # A second subscriber to the request channel that never answers: requests wait for it.
    silent, _ = await peer(redis_server, adapter.request_channel)
    try:
        await wait_for_servers(a.server, 2)

        # A cancelled request is forgotten, with its timer.
        cancelled = adapter.fetch_sockets(BroadcastOptions())
        await until(lambda: bool(adapter._requests), "the fetch request to be published", limit=WAIT)
        assert len(pending_calls(adapter)) == 1
        cancelled.cancel()
        with pytest.raises(CancelledError):
            await cancelled
        assert len(adapter._requests) == 0 and pending_calls(adapter) == []

        # Closing gives up on a pending request and a pending broadcast ack.
        fetching = adapter.fetch_sockets(BroadcastOptions())
        await until(lambda: bool(adapter._requests), "the fetch request to be published", limit=WAIT)
        counts: list[int] = []
        adapter.broadcast_with_ack(
            Packet(PacketType.EVENT, "/", ["question"]),
            BroadcastOptions(flags=BroadcastFlags(timeout=60)),
            counts.append,
            lambda args: None,
        )
        assert counts == [0] and len(adapter._ack_requests) == 1
        assert len(pending_calls(adapter)) == 2
        adapter.close()
        assert pending_calls(adapter) == []
        assert len(adapter._requests) == 0 and len(adapter._ack_requests) == 0
        with pytest.raises(ConnectionError, match="0 of 1 other servers answered"):
            await fetching
    finally:
        await stop_links([*nodes])
        await silent.stop()


@pytest_twisted.ensureDeferred
async def test_older_requests_and_a_python_emitter(realtime: Realtime, redis_server: RedisServer) -> None:
    [a] = nodes = await start_nodes(realtime, redis_server, ["a"])
    channels = Channels(a.link.key, "/")
    other, responses = await peer(redis_server, channels.response)
    try:
        client = await realtime.connect(a.test_server)
        box = inbox(client)
        assert client.id is not None
        sockets = a.server.sockets.sockets
        kinds: dict[str, RequestType] = {}

        async def ask(request: Any, request_id: str, kind: RequestType) -> Any:
            kinds[request_id] = kind
            seen = len(responses)
            other.publish(channels.request, encode(request))
            await until(lambda: len(responses) > seen, f"the answer to {type(request).__name__}", limit=WAIT)
            return decode_response(responses[seen], kinds.get)

        join = SocketJoinRequest(uid="old", request_id="j1", sid=client.id, room="legacy")
        assert await ask(join, "j1", RequestType.REMOTE_JOIN) == DoneResponse(request_id="j1")
        assert "legacy" in sockets[client.id].rooms

        listing = SocketsRequest(uid="old", request_id="s1", rooms=("legacy",))
        assert await ask(listing, "s1", RequestType.SOCKETS) == SocketsResponse(request_id="s1", sockets=(client.id,))

        # An emitter written with the wire module: a broadcast to the room, binary included.
        flags = WireOptions(rooms=("legacy",), flags=WireFlags())
        packet = WirePacket(data=["from a python emitter", b"\x01"])
        other.publish(channels.room("legacy"), encode(Broadcast(uid="emitter", packet=packet, opts=flags)))
        await until(lambda: ["from a python emitter", b"\x01"] in box, "the emitter's broadcast", limit=WAIT)

        leave = SocketLeaveRequest(uid="old", request_id="l1", sid=client.id, room="legacy")
        assert await ask(leave, "l1", RequestType.REMOTE_LEAVE) == DoneResponse(request_id="l1")
        assert "legacy" not in sockets[client.id].rooms

        gone: list[str] = []
        client.on("disconnect", gone.append)
        disconnect = SocketDisconnectRequest(uid="old", request_id="d1", sid=client.id)
        assert await ask(disconnect, "d1", RequestType.REMOTE_DISCONNECT) == DoneResponse(request_id="d1")
        await until(lambda: gone == ["io server disconnect"], "the disconnection", limit=WAIT)
    finally:
        await stop_links(nodes)
        await other.stop()


@pytest_twisted.ensureDeferred
async def test_recovery_stays_local_and_replays_what_other_nodes_sent(
    realtime: Realtime, redis_server: RedisServer
) -> None:
    """With the Redis adapter, a client that comes back to its node recovers, other nodes' broadcasts included
    (each node logs what it delivers); the packets published carry no offset (Node's adapter sends none)."""
    a, b = await start_nodes(realtime, redis_server, ["a", "b"], connection_state_recovery=StateRecovery())
    watcher, published = await peer(redis_server, Channels(a.link.key, "/").room("r"))
    try:
        client = await realtime.connect(a.test_server, reconnection=True, reconnection_delay=0.2,
                                        randomization_factor=0)
        seen: list[list[Any]] = []
        client.on("news", lambda *args: seen.append(list(args)))
        assert await client.emit_with_ack("join", "r", timeout=WAIT) == ["r"]
        b.server.to("r").emit("news", "from b")
        await until(lambda: seen == [["from b"]], "the broadcast from node b", limit=WAIT)
        first = client.id
        for session in list(a.server.manager):
            session.close(CloseReason.TRANSPORT_CLOSE)
        b.server.to("r").emit("news", "missed")
        await until(lambda: client.connected and len(seen) == 2, "the recovery", limit=WAIT)
        assert client.recovered and client.id == first
        assert seen == [["from b"], ["missed"]]
        # What node b published is Node's packet, without the offset node a added for its own client.
        assert [decode_broadcast(m).packet.data for m in published] == [["news", "from b"], ["news", "missed"]]
    finally:
        await watcher.stop()
        await stop_links([a, b])
