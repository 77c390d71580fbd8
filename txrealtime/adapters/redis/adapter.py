"""Rooms of one namespace shared through Redis (or any pub/sub link), as Node's ``@socket.io/redis-adapter``
(v8) shares them.

Each namespace gets a :class:`RedisAdapter` on the process's
:class:`txrealtime.adapters.redis.RedisLink`. It decides what to publish for
each adapter operation and acts on what other nodes publish; the bytes are
:mod:`txrealtime.adapters.redis.wire`'s and :mod:`txrealtime.adapters.redis.requests`' business,
the connections :mod:`txrealtime.adapters.redis.link`'s.
Requests from other nodes go through a table from request class to handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..._logging import gate
from ...socketio.acks import Pending
from ...socketio.adapter import Adapter, BroadcastFlags, BroadcastOptions
from ...socketio.packets import Packet, PacketType
from ..pubsub import PubSubLink
from .requests import (
    AllRoomsRequest,
    AllRoomsResponse,
    BroadcastAckRequest,
    BroadcastAckResponse,
    ClientCountResponse,
    DisconnectRequest,
    DoneResponse,
    FetchRequest,
    FetchResponse,
    JoinRequest,
    LeaveRequest,
    Request,
    Response,
    ServerSideEmitRequest,
    ServerSideEmitResponse,
    SocketDetails,
    SocketDisconnectRequest,
    SocketJoinRequest,
    SocketLeaveRequest,
    SocketsRequest,
    SocketsResponse,
    decode_request,
    decode_response,
)
from .wire import (
    Broadcast,
    Channels,
    Encodable,
    RequestType,
    WireError,
    WireFlags,
    WireOptions,
    WirePacket,
    decode_broadcast,
    encode,
    new_id,
)

__all__ = ["RedisAdapter", "RemoteSocket", "redis_adapter"]

log = Logger(observer=gate)

_EVENTS = (PacketType.EVENT, PacketType.BINARY_EVENT)


def _wire_options(opts: BroadcastOptions, with_flags: bool = True) -> WireOptions:
    """Rooms sorted (sets have no order); flags for broadcasts only, the timeout in milliseconds."""
    flags = None
    if with_flags:
        timeout = opts.flags.timeout
        flags = WireFlags(
            volatile=opts.flags.volatile,
            compress=None if opts.flags.compress else False,  # Node's adapter leaves it out unless set
            timeout=None if timeout is None else int(timeout * 1000),
        )
    return WireOptions(rooms=tuple(sorted(opts.rooms)), except_=tuple(sorted(opts.except_)), flags=flags)


def _options(opts: WireOptions) -> BroadcastOptions:
    flags = opts.flags
    volatile = flags.volatile if flags is not None else False
    compress = flags is None or flags.compress is not False
    return BroadcastOptions(
        frozenset(opts.rooms), frozenset(opts.except_), BroadcastFlags(volatile=volatile, compress=compress)
    )


@dataclass
class RemoteSocket:
    """A socket found by ``fetch_sockets`` on another node: its details and the same operations."""

    adapter: RedisAdapter
    """The adapter that found it, through which its operations go."""
    id: str
    """The socket's id."""
    handshake: dict[str, Any]
    """Its handshake, as its node sent it (Node's format)."""
    rooms: set[str]
    """The rooms it is in."""
    data: Any = field(default_factory=dict)
    """Its ``socket.data``."""

    def _only_me(self) -> BroadcastOptions:
        return BroadcastOptions(rooms=frozenset({self.id}))

    def emit(self, event: str, *args: Any) -> bool:
        """Emit to this socket, wherever it is (through Redis)."""
        from ...socketio.operator import BroadcastOperator

        return BroadcastOperator(self.adapter, frozenset({self.id})).emit(event, *args)

    def join(self, rooms: str | Iterable[str]) -> None:
        """Make this socket join ``rooms`` on its node."""
        self.adapter.add_sockets(self._only_me(), [rooms] if isinstance(rooms, str) else rooms)

    def leave(self, room: str) -> None:
        """Make this socket leave ``room`` on its node."""
        self.adapter.del_sockets(self._only_me(), [room])

    def disconnect(self, close: bool = False) -> None:
        """Disconnect this socket (and its connection with ``close``) on its node."""
        self.adapter.disconnect_sockets(self._only_me(), close)


@dataclass
class _Request:
    """A request to every other server, gathering one answer from each."""

    type: RequestType
    expected: int
    result: Deferred[list[Any]]
    replies: int = 0
    items: list[Any] = field(default_factory=list)


@dataclass
class _AckRequest:
    """A broadcast awaiting acks from other servers' clients; done once every counted client answered."""

    client_count: Callable[[int], object]
    ack: Callable[[list[Any]], object]
    servers: int | None = None
    """How many other servers will report a client count (``PUBSUB NUMSUB``), once known."""
    reported: int = 0
    clients: int = 0
    answered: int = 0

    @property
    def done(self) -> bool:
        return self.servers is not None and self.reported >= self.servers and self.answered >= self.clients


class RedisAdapter(Adapter):
    """Rooms of one namespace, with broadcasts and requests shared through Redis."""

    def __init__(self, namespace: Any, link: PubSubLink) -> None:
        """The adapter of ``namespace`` (``redis_adapter(link)`` makes them).

        :param namespace: The namespace whose rooms these are.
        :param link: The connections to Redis (or to a ``--workers`` master) shared by every namespace.
        """
        super().__init__(namespace)
        self.link = link
        """The connections to Redis shared by every namespace."""
        self.uid = new_id()
        """This adapter's id among the cluster's servers."""
        self.channels = Channels(link.key, namespace.name)
        """The namespace's channel names."""
        self.channel = self.channels.broadcast
        """The broadcast channel (Node's ``channel``)."""
        self.request_channel = self.channels.request
        """The channel requests to the other servers go to."""
        self.response_channel = self.channels.response
        """The channel the other servers answer on."""
        self.specific_response_channel = self.channels.specific_response(self.uid)
        """The channel answers meant for this server alone come on."""
        self._pattern = self.channels.broadcast_pattern
        self._requests: Pending[str, _Request] = Pending(link.reactor)
        self._ack_requests: Pending[str, _AckRequest] = Pending(link.reactor)
        self._handlers: dict[type[Request], Callable[[Any], None]] = {
            SocketsRequest: self._answer_sockets,
            AllRoomsRequest: self._answer_all_rooms,
            JoinRequest: self._join,
            LeaveRequest: self._leave,
            DisconnectRequest: self._disconnect,
            SocketJoinRequest: self._socket_join,
            SocketLeaveRequest: self._socket_leave,
            SocketDisconnectRequest: self._socket_disconnect,
            FetchRequest: self._answer_fetch,
            ServerSideEmitRequest: self._server_side_emit,
            BroadcastAckRequest: self._broadcast_for_acks,
        }
        link.psubscribe(self._pattern, self._on_broadcast)
        link.subscribe(self.request_channel, self._on_request)
        link.subscribe(self.response_channel, self._on_response)
        link.subscribe(self.specific_response_channel, self._on_response)

    def close(self) -> None:
        """Unsubscribe, and give up on pending requests: no timer is left, pending results fail."""
        self.link.punsubscribe(self._pattern, self._on_broadcast)
        self.link.unsubscribe(self.request_channel, self._on_request)
        self.link.unsubscribe(self.response_channel, self._on_response)
        self.link.unsubscribe(self.specific_response_channel, self._on_response)
        self._ack_requests.take_all()
        for request in self._requests.take_all():
            if not request.result.called:
                got, expected = request.replies, request.expected
                request.result.errback(ConnectionError(f"adapter closed: {got} of {expected} other servers answered"))

    def _publish(self, channel: str, message: Encodable) -> bool:
        return self.link.publish(channel, encode(message))

    def _wire_packet(self, packet: Packet) -> WirePacket:
        return WirePacket(data=packet.data, nsp=self.namespace.name, id=packet.id)

    # -- broadcasting ------------------------------------------------------------------------

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> bool:
        super().broadcast(packet, opts)
        if opts.flags.local:
            return True
        wire_opts = _wire_options(opts)
        message = Broadcast(uid=self.uid, packet=self._wire_packet(packet), opts=wire_opts)
        return self._publish(self.channels.for_rooms(wire_opts.rooms), message)

    def _on_broadcast(self, channel: str, message: bytes) -> None:
        room = self.channels.room_of(channel)
        if room and room not in self.rooms and self.recovery is None:
            return  # nobody here; with recovery on, a socket that left may come back for it: it is logged
        try:
            broadcast = decode_broadcast(message)
        except WireError as e:
            log.warn("Ignoring a malformed broadcast on {channel}: {error}", channel=channel, error=str(e))
            return
        packet = broadcast.packet
        if broadcast.uid == self.uid or packet.nsp != self.namespace.name:
            return
        if packet.type not in _EVENTS or not packet.data:
            return
        local = Packet(PacketType.EVENT, self.namespace.name, packet.data)
        Adapter.broadcast(self, local, _options(broadcast.opts))

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], object],
        ack: Callable[[list[Any]], object],
    ) -> None:
        if not opts.flags.local:
            request_id = new_id()
            request = BroadcastAckRequest(
                uid=self.uid, request_id=request_id, packet=self._wire_packet(packet), opts=_wire_options(opts)
            )
            if self._publish(self.request_channel, request):
                timeout = opts.flags.timeout or self.link.requests_timeout
                self._ack_requests.add(request_id, _AckRequest(client_count, ack), timeout)
                self.link.numsub(self.request_channel).addCallbacks(
                    lambda servers: self._ack_servers(request_id, servers - 1), lambda _: None
                )
        super().broadcast_with_ack(packet, opts, client_count, ack)

    def _ack_servers(self, request_id: str, others: int) -> None:
        ack_request = self._ack_requests.get(request_id)
        if ack_request is not None:
            ack_request.servers = others
            self._ack_progress(request_id, ack_request)

    def _ack_progress(self, request_id: str, ack_request: _AckRequest) -> None:
        if ack_request.done:
            self._ack_requests.take(request_id)

    def server_count(self) -> Deferred[int]:
        def unreachable(failure: Failure) -> int:
            log.warn("Counting servers failed ({error}): counting this one only", error=failure.getErrorMessage())
            return 1

        return self.link.numsub(self.request_channel).addErrback(unreachable)

    # -- requests to every node ------------------------------------------------------------------

    def _ask(self, make: Callable[[str], Request], local: list[Any]) -> Deferred[list[Any]]:
        """Publish the request ``make(request_id)`` and gather one reply from every other server.

        The result is ``local`` (this server's own share of the answer, empty
        for a server-side emit, which its sender does not answer) followed by
        what the others answered. This server is one of the subscribers
        ``PUBSUB NUMSUB`` counts, so it waits for one answer fewer.
        """

        def publish(servers: int) -> Deferred[list[Any]]:
            others = servers - 1
            if others <= 0:
                return succeed(local)
            request_id = new_id()
            request = make(request_id)
            def forget(_: Deferred[list[Any]]) -> None:
                self._requests.take(request_id)  # the caller cancelled: no answer is awaited any more

            result: Deferred[list[Any]] = Deferred(forget)
            pending = _Request(request.request_type, others, result, items=list(local))
            self._requests.add(request_id, pending, self.link.requests_timeout, self._timed_out)
            self._publish(self.request_channel, request)
            return result

        return self.link.numsub(self.request_channel).addCallback(publish)

    def _timed_out(self, request: _Request) -> None:
        self.link.requests_timed_out += 1
        if not request.result.called:
            got, expected = request.replies, request.expected
            request.result.errback(TimeoutError(f"only {got} of {expected} other servers answered in time"))

    def fetch_sockets(self, opts: BroadcastOptions) -> Deferred[list[Any]]:
        local: list[Any] = list(self._matching(opts))
        if opts.flags.local:
            return succeed(local)
        wire_opts = _wire_options(opts, with_flags=False)
        return self._ask(lambda request_id: FetchRequest(uid=self.uid, request_id=request_id, opts=wire_opts), local)

    def all_rooms(self) -> Deferred[set[str]]:
        """Every room of this namespace, across all nodes."""
        d = self._ask(lambda request_id: AllRoomsRequest(uid=self.uid, request_id=request_id), list(self.rooms))
        return d.addCallback(set)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().add_sockets(opts, rooms)
        if not opts.flags.local:
            request = JoinRequest(uid=self.uid, opts=_wire_options(opts, with_flags=False), rooms=tuple(rooms))
            self._publish(self.request_channel, request)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().del_sockets(opts, rooms)
        if not opts.flags.local:
            request = LeaveRequest(uid=self.uid, opts=_wire_options(opts, with_flags=False), rooms=tuple(rooms))
            self._publish(self.request_channel, request)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        super().disconnect_sockets(opts, close)
        if not opts.flags.local:
            request = DisconnectRequest(uid=self.uid, opts=_wire_options(opts, with_flags=False), close=close)
            self._publish(self.request_channel, request)

    def server_side_emit(self, data: list[Any]) -> bool:
        return self._publish(self.request_channel, ServerSideEmitRequest(uid=self.uid, data=data))

    def server_side_emit_with_ack(self, data: list[Any]) -> Deferred[list[Any]]:
        return self._ask(lambda request_id: ServerSideEmitRequest(uid=self.uid, request_id=request_id, data=data), [])

    # -- answering other nodes -------------------------------------------------------------------

    def _on_request(self, channel: str, message: bytes) -> None:
        try:
            request = decode_request(message)
        except WireError as e:
            log.warn("Ignoring a malformed request on {channel}: {error}", channel=channel, error=str(e))
            return
        if request is None or request.uid == self.uid:
            return
        request_id = getattr(request, "request_id", None)
        if request_id is not None and (request_id in self._requests or request_id in self._ack_requests):
            return
        self._handlers[type(request)](request)

    def _respond(self, response: Response) -> None:
        self._publish(self.response_channel, response)

    def _answer_sockets(self, request: SocketsRequest) -> None:
        sockets = tuple(sorted(Adapter.sockets(self, request.rooms)))
        self._respond(SocketsResponse(request_id=request.request_id, sockets=sockets))

    def _answer_all_rooms(self, request: AllRoomsRequest) -> None:
        self._respond(AllRoomsResponse(request_id=request.request_id, rooms=tuple(sorted(self.rooms))))

    def _answer_fetch(self, request: FetchRequest) -> None:
        found = tuple(self._describe(s) for s in self._matching(_options(request.opts)))
        self._respond(FetchResponse(request_id=request.request_id, sockets=found))

    def _join(self, request: JoinRequest) -> None:
        Adapter.add_sockets(self, _options(request.opts), list(request.rooms))

    def _leave(self, request: LeaveRequest) -> None:
        Adapter.del_sockets(self, _options(request.opts), list(request.rooms))

    def _disconnect(self, request: DisconnectRequest) -> None:
        Adapter.disconnect_sockets(self, _options(request.opts), request.close)

    # The older one-socket forms, answered once done.

    def _socket_join(self, request: SocketJoinRequest) -> None:
        socket = self.namespace.sockets.get(request.sid)
        if socket is not None:
            socket.join(request.room)
            self._done(request.request_id)

    def _socket_leave(self, request: SocketLeaveRequest) -> None:
        socket = self.namespace.sockets.get(request.sid)
        if socket is not None:
            socket.leave(request.room)
            self._done(request.request_id)

    def _socket_disconnect(self, request: SocketDisconnectRequest) -> None:
        socket = self.namespace.sockets.get(request.sid)
        if socket is not None:
            socket.disconnect(request.close)
            self._done(request.request_id)

    def _done(self, request_id: str | None) -> None:
        if request_id is not None:
            self._respond(DoneResponse(request_id=request_id))

    def _server_side_emit(self, request: ServerSideEmitRequest) -> None:
        request_id = request.request_id
        if request_id is None:
            self.namespace._on_server_side_emit(request.data)
            return
        answered: list[bool] = []

        def ack(value: Any) -> None:
            if not answered:
                answered.append(True)
                self._respond(ServerSideEmitResponse(request_id=request_id, data=value))

        self.namespace._on_server_side_emit(request.data, ack)

    def _broadcast_for_acks(self, request: BroadcastAckRequest) -> None:
        request_id = request.request_id
        packet = Packet(PacketType.EVENT, self.namespace.name, request.packet.data)

        def count(n: int) -> None:
            self._respond(ClientCountResponse(request_id=request_id, client_count=n))

        def answer(args: list[Any]) -> None:
            self._respond(BroadcastAckResponse(request_id=request_id, value=args[0] if args else None))

        Adapter.broadcast_with_ack(self, packet, _options(request.opts), count, answer)

    @staticmethod
    def _describe(socket: Any) -> SocketDetails:
        hs = socket.handshake
        handshake = {
            "headers": dict(hs.headers),
            "time": hs.time,
            "address": hs.address,
            "xdomain": hs.xdomain,
            "secure": hs.secure,
            "issued": hs.issued,
            "url": hs.url,
            "query": dict(hs.query),
            "auth": hs.auth,
        }
        return SocketDetails(id=socket.id, handshake=handshake, rooms=tuple(sorted(socket.rooms)), data=socket.data)

    # -- answers to this node's requests ------------------------------------------------------------

    def _pending_kind(self, request_id: str) -> RequestType | None:
        if request_id in self._ack_requests:
            return RequestType.BROADCAST
        request = self._requests.get(request_id)
        return request.type if request is not None else None

    def _on_response(self, channel: str, message: bytes) -> None:
        try:
            response = decode_response(message, self._pending_kind)
        except WireError as e:
            log.warn("Ignoring a malformed response on {channel}: {error}", channel=channel, error=str(e))
            return
        if isinstance(response, (ClientCountResponse, BroadcastAckResponse)):
            self._on_ack_response(response)
            return
        request = self._requests.get(response.request_id) if response is not None else None
        if response is None or request is None:
            return
        request.items.extend(self._items(response))
        request.replies += 1
        if request.replies >= request.expected:
            self._requests.take(response.request_id)
            request.result.callback(request.items)

    def _on_ack_response(self, response: ClientCountResponse | BroadcastAckResponse) -> None:
        ack_request = self._ack_requests.get(response.request_id)
        if ack_request is None:
            return
        if isinstance(response, ClientCountResponse):
            ack_request.reported += 1
            ack_request.clients += response.client_count
            ack_request.client_count(response.client_count)
        else:
            ack_request.answered += 1
            ack_request.ack([response.value])
        self._ack_progress(response.request_id, ack_request)

    def _items(self, response: Response) -> list[Any]:
        """What one answer adds to the result of the request."""
        if isinstance(response, FetchResponse):
            return [self._remote(s) for s in response.sockets]
        if isinstance(response, AllRoomsResponse):
            return list(response.rooms)
        if isinstance(response, SocketsResponse):
            return list(response.sockets)
        if isinstance(response, ServerSideEmitResponse):
            return [response.data]
        return []

    def _remote(self, details: SocketDetails) -> RemoteSocket:
        data = details.data if details.data is not None else {}
        return RemoteSocket(self, details.id, details.handshake, set(details.rooms), data)


def redis_adapter(link: PubSubLink) -> Callable[[Any], RedisAdapter]:
    """An adapter factory for :class:`txrealtime.socketio.Server`: ``Server(adapter=redis_adapter(link))``.

    ``link`` is a :class:`txrealtime.adapters.redis.RedisLink`, or any other
    :class:`txrealtime.adapters.pubsub.PubSubLink` (the workers of one host share
    a :class:`txrealtime.cluster.link.ClusterLink`).

    Starts the link if it is not started yet.
    """
    link.start()
    return lambda namespace: RedisAdapter(namespace, link)
