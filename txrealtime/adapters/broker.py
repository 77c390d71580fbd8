"""What every adapter that shares rooms through a message broker does, whatever its wire format.

:class:`BrokerAdapter` holds the one request table (requests to every other
server, gathering one answer from each, with a timeout), the one ack path (a
broadcast whose clients' acks come back from every server), and the answers
this node gives to the others' requests. Its subclasses say how messages look
and where they go: :class:`txrealtime.adapters.classic.ClassicAdapter` (Node's
``@socket.io/redis-adapter`` channels and messages, over Redis or the workers'
link) and :class:`txrealtime.adapters.redis.ShardedRedisAdapter` (Node's
``createShardedAdapter``, ``socket.io-adapter``'s cluster messages over
sharded pub/sub). Both speak in the typed messages of
:mod:`txrealtime.adapters.redis.requests`.

A broadcast is encoded for the other nodes before any local client gets it:
one whose payload the format cannot carry raises (``TypeError`` or
``ValueError``, counted in the link's ``refused``) and reaches no one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import Throttle, gate
from ..protocol.acks import Pending
from ..protocol.packets import Packet, PacketType
from ..socketio.adapter import Adapter, BroadcastFlags, BroadcastOptions, ClusterAnswer
from .redis.requests import (
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
)
from .redis.wire import Broadcast, RequestType, WireFlags, WireOptions, WirePacket, new_id
from .remote import RemoteSocket

__all__ = ["BrokerAdapter", "BrokerLink", "RemoteSocket"]

log = Logger(__name__, observer=gate)
throttled = Throttle(log)
"""For the lines a stream of bad messages from the broker would repeat."""

_EVENTS = (PacketType.EVENT, PacketType.BINARY_EVENT)


class BrokerLink(Protocol):
    """What :class:`BrokerAdapter` needs of its link, beyond what its subclass uses."""

    reactor: Any
    requests_timeout: float
    requests_timed_out: int
    """Requests whose answers did not all come within ``requests_timeout``."""
    refused: int
    """Broadcasts and requests refused because their payload cannot be carried to the other nodes."""
    malformed: int
    """Messages from the broker ignored because they are not well-formed."""
    missed: int
    """Broadcasts from other txrealtime nodes that never arrived (see :mod:`txrealtime.adapters.sequence`)."""
    uid: str
    """This node's id among the txrealtime nodes (what its answers name it by)."""

    def nodes(self) -> list[str]:
        """The uids of the txrealtime nodes heard from lately, this one included."""


def wire_options(opts: BroadcastOptions, with_flags: bool = True) -> WireOptions:
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


def options(opts: WireOptions) -> BroadcastOptions:
    """The broadcast options a wire selection stands for."""
    flags = opts.flags
    volatile = flags.volatile if flags is not None else False
    compress = flags is None or flags.compress is not False
    return BroadcastOptions(
        frozenset(opts.rooms), frozenset(opts.except_), BroadcastFlags(volatile=volatile, compress=compress)
    )


@dataclass
class _Request:
    """A request to every other server, gathering one answer from each."""

    type: RequestType
    expected: int
    result: Deferred[Any]
    replies: int = 0
    items: list[Any] = field(default_factory=list)
    partial: bool = False
    """Fire with what came by the timeout (a :class:`ClusterAnswer`) rather than fail."""
    known: tuple[str, ...] = ()
    """The other txrealtime nodes heard from lately when the request went out."""
    answered: list[str] = field(default_factory=list)
    """The other nodes that answered and said who they are."""
    counting: bool = False
    """Each answer is a number of sockets (a count request)."""

    def answer(self) -> ClusterAnswer[list[Any]]:
        """What came so far."""
        anonymous = self.replies - len(self.answered)
        missing = max(0, self.expected - self.replies)
        silent = tuple(uid for uid in self.known if uid not in self.answered)[:missing]
        return ClusterAnswer(self.items, self.expected, tuple(self.answered), anonymous, silent)


@dataclass
class _AckRequest:
    """A broadcast awaiting acks from other servers' clients; done once every counted client answered."""

    client_count: Callable[[int], object]
    ack: Callable[[list[Any]], object]
    servers: int | None = None
    """How many other servers will report a client count, once known."""
    reported: int = 0
    clients: int = 0
    answered: int = 0

    @property
    def done(self) -> bool:
        return self.servers is not None and self.reported >= self.servers and self.answered >= self.clients


class BrokerAdapter(Adapter):
    """Rooms of one namespace, with broadcasts and requests shared through a broker.

    A subclass encodes and publishes (:meth:`_encode_broadcast`, :meth:`_publish_encoded`,
    :meth:`_publish_request`, :meth:`_publish_response`),
    counts the servers (:meth:`_servers`), and hands what it decodes to :meth:`_received_broadcast`,
    :meth:`_received_request` and :meth:`_received_response`.
    """

    def __init__(self, namespace: Any, link: BrokerLink, uid: str | None = None) -> None:
        """The adapter of ``namespace`` on ``link``.

        :param namespace: The namespace whose rooms these are.
        :param link: The connections shared by every namespace.
        :param uid: This adapter's id among the cluster's servers (a new one if not given).
        """
        super().__init__(namespace)
        self.link = link
        """The connections shared by every namespace."""
        self.uid = uid if uid is not None else new_id()
        """This adapter's id among the cluster's servers."""
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

    # -- what a subclass provides ------------------------------------------------------------

    def _encode_broadcast(self, message: Broadcast) -> tuple[str, bytes]:
        """The channel and the bytes of a broadcast (raising for a payload the format cannot carry)."""
        raise NotImplementedError

    def _publish_encoded(self, channel: str, data: bytes) -> bool:
        """Hand bytes to the link; ``False`` if it is down (the link counts it)."""
        raise NotImplementedError

    def _publish_request(self, request: Request) -> bool:
        """Publish a request to every other server."""
        raise NotImplementedError

    def _publish_response(self, response: Response, request: Request) -> None:
        """Publish the answer to ``request`` (which names its sender)."""
        raise NotImplementedError

    def _servers(self) -> Deferred[int]:
        """How many servers share this namespace, this one included; fails if the broker cannot say."""
        raise NotImplementedError

    def _selection(self, opts: BroadcastOptions) -> WireOptions:
        """How requests other than broadcasts write a selection (the classic format leaves flags out)."""
        return wire_options(opts, with_flags=False)

    def close(self) -> None:
        """Give up on pending requests: no timer is left, pending results fail."""
        self._ack_requests.take_all()
        for request in self._requests.take_all():
            if not request.result.called:
                got, expected = request.replies, request.expected
                request.result.errback(ConnectionError(f"adapter closed: {got} of {expected} other servers answered"))

    def _wire_packet(self, packet: Packet) -> WirePacket:
        return WirePacket(data=packet.data, nsp=self.namespace.name, id=packet.id)

    def _refuse(self, what: str, error: Exception) -> None:
        self.link.refused += 1
        throttled.warn("Not sent: {what} cannot be carried to the other nodes ({error})", what=what,
                       error=str(error)[:200])

    # -- broadcasting ------------------------------------------------------------------------

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> bool:
        if opts.flags.local:
            return super().broadcast(packet, opts)
        message = Broadcast(uid=self.uid, packet=self._wire_packet(packet), opts=wire_options(opts))
        try:
            channel, data = self._encode_broadcast(message)
        except (TypeError, ValueError) as e:
            self._refuse("a broadcast", e)
            raise type(e)(f"this broadcast cannot be sent to the other nodes, so it was sent to no one: {e}") from e
        super().broadcast(packet, opts)
        return self._publish_encoded(channel, data)

    def _received_broadcast(self, broadcast: Broadcast) -> None:
        """Deliver another node's broadcast to the matching sockets here."""
        packet = broadcast.packet
        if broadcast.uid == self.uid or packet.nsp != self.namespace.name:
            return
        if packet.type not in _EVENTS or not packet.data:
            return
        local = Packet(PacketType.EVENT, self.namespace.name, packet.data)
        try:
            Adapter.broadcast(self, local, options(broadcast.opts))
        except (TypeError, ValueError, RecursionError) as e:  # nothing was delivered: encoding comes first
            self._malformed("a broadcast", e)

    def _malformed(self, what: str, error: Exception) -> None:
        self.link.malformed += 1
        throttled.warn("Ignoring {what} from another node: {error}", what=what, error=str(error)[:200])

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
                uid=self.uid, request_id=request_id, packet=self._wire_packet(packet), opts=wire_options(opts)
            )
            try:
                published = self._publish_request(request)
            except (TypeError, ValueError) as e:
                self._refuse("a broadcast with acks", e)
                raise type(e)(f"this broadcast cannot be sent to the other nodes, so it was sent to no one: {e}") from e
            if published:
                timeout = opts.flags.timeout or self.link.requests_timeout
                self._ack_requests.add(request_id, _AckRequest(client_count, ack), timeout)
                self._servers().addCallbacks(lambda servers: self._ack_servers(request_id, servers - 1), lambda _: None)
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

        return self._servers().addErrback(unreachable)

    # -- requests to every node ------------------------------------------------------------------

    def _ask(self, make: Callable[[str], Request], local: list[Any], partial: bool = False) -> Deferred[Any]:
        """Publish the request ``make(request_id)`` and gather one reply from every other server.

        The result is ``local`` (this server's own share of the answer, empty
        for a server-side emit, which its sender does not answer) followed by
        what the others answered. This server is one of those counted, so it
        waits for one answer fewer. With ``partial``, the result is a :class:`ClusterAnswer`, fired at the
        timeout with what came by then.
        """

        def publish(servers: int) -> Deferred[Any]:
            others = servers - 1
            if others <= 0:
                return succeed(ClusterAnswer(local) if partial else local)
            request_id = new_id()
            request = make(request_id)

            def forget(_: Deferred[Any]) -> None:
                self._requests.take(request_id)  # the caller cancelled: no answer is awaited any more

            result: Deferred[Any] = Deferred(forget)
            known = tuple(uid for uid in self.link.nodes() if uid != self.link.uid) if partial else ()
            counting = isinstance(request, FetchRequest) and request.count
            pending = _Request(request.request_type, others, result, items=list(local), partial=partial, known=known,
                               counting=counting)
            self._requests.add(request_id, pending, self.link.requests_timeout, self._timed_out)
            self._publish_request(request)
            return result

        return self._servers().addCallback(publish)

    def _timed_out(self, request: _Request) -> None:
        self.link.requests_timed_out += 1
        if request.partial:
            request.result.callback(request.answer())
        elif not request.result.called:
            got, expected = request.replies, request.expected
            request.result.errback(TimeoutError(f"only {got} of {expected} other servers answered in time"))

    def fetch_sockets(self, opts: BroadcastOptions) -> Deferred[list[Any]]:
        local: list[Any] = list(self.matching(opts))
        if opts.flags.local:
            return succeed(local)
        selection = self._selection(opts)
        return self._ask(lambda request_id: FetchRequest(uid=self.uid, request_id=request_id, opts=selection), local)

    def fetch_sockets_partial(self, opts: BroadcastOptions) -> Deferred[ClusterAnswer[list[Any]]]:
        local: list[Any] = list(self.matching(opts))
        if opts.flags.local:
            return succeed(ClusterAnswer(local))
        selection = self._selection(opts)
        return self._ask(
            lambda request_id: FetchRequest(uid=self.uid, request_id=request_id, opts=selection), local, partial=True
        )

    def count_sockets(self, opts: BroadcastOptions) -> Deferred[ClusterAnswer[int]]:
        here = sum(1 for _ in self.matching(opts))
        if opts.flags.local:
            return succeed(ClusterAnswer(here))
        selection = self._selection(opts)

        def make(request_id: str) -> FetchRequest:
            return FetchRequest(uid=self.uid, request_id=request_id, opts=selection, count=True)

        def total(answer: ClusterAnswer[list[Any]]) -> ClusterAnswer[int]:
            # Each item is a count: a txrealtime node's number, or 1 per socket a Node node described.
            return ClusterAnswer(here + sum(answer.value), answer.expected, answer.answered, answer.anonymous,
                                 answer.silent)

        return self._ask(make, [], partial=True).addCallback(total)

    def all_rooms(self) -> Deferred[set[str]]:
        """Every room of this namespace, across all nodes."""
        d = self._ask(lambda request_id: AllRoomsRequest(uid=self.uid, request_id=request_id), list(self.rooms))
        return d.addCallback(set)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().add_sockets(opts, rooms)
        if not opts.flags.local:
            self._publish_request(JoinRequest(uid=self.uid, opts=self._selection(opts), rooms=tuple(rooms)))

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().del_sockets(opts, rooms)
        if not opts.flags.local:
            self._publish_request(LeaveRequest(uid=self.uid, opts=self._selection(opts), rooms=tuple(rooms)))

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        super().disconnect_sockets(opts, close)
        if not opts.flags.local:
            self._publish_request(DisconnectRequest(uid=self.uid, opts=self._selection(opts), close=close))

    def server_side_emit(self, data: list[Any]) -> bool:
        return self._publish_request(ServerSideEmitRequest(uid=self.uid, data=data))

    def server_side_emit_with_ack(self, data: list[Any]) -> Deferred[list[Any]]:
        return self._ask(lambda request_id: ServerSideEmitRequest(uid=self.uid, request_id=request_id, data=data), [])

    # -- answering other nodes -------------------------------------------------------------------

    def _received_request(self, request: Request) -> None:
        """Act on another node's request (this node's own come back too, and are ignored)."""
        if request.uid == self.uid:
            return
        request_id = getattr(request, "request_id", None)
        if request_id is not None and (request_id in self._requests or request_id in self._ack_requests):
            return
        try:
            self._handlers[type(request)](request)
        except (TypeError, ValueError, RecursionError) as e:  # a payload that cannot be delivered or answered
            self._malformed("a request", e)

    def _respond(self, response: Response, request: Request) -> None:
        try:
            self._publish_response(response, request)
        except (TypeError, ValueError) as e:
            self._refuse("an answer to another node", e)

    def _answer_sockets(self, request: SocketsRequest) -> None:
        sockets = tuple(sorted(Adapter.sockets(self, request.rooms)))
        self._respond(SocketsResponse(request_id=request.request_id, sockets=sockets), request)

    def _answer_all_rooms(self, request: AllRoomsRequest) -> None:
        self._respond(AllRoomsResponse(request_id=request.request_id, rooms=tuple(sorted(self.rooms))), request)

    def _answer_fetch(self, request: FetchRequest) -> None:
        matching = self.matching(options(request.opts))
        if request.count:
            response = FetchResponse(request_id=request.request_id, sockets=(), node=self.link.uid,
                                     count=sum(1 for _ in matching))
        else:
            found = tuple(self._describe(s) for s in matching)
            response = FetchResponse(request_id=request.request_id, sockets=found, node=self.link.uid)
        self._respond(response, request)

    def _join(self, request: JoinRequest) -> None:
        Adapter.add_sockets(self, options(request.opts), list(request.rooms))

    def _leave(self, request: LeaveRequest) -> None:
        Adapter.del_sockets(self, options(request.opts), list(request.rooms))

    def _disconnect(self, request: DisconnectRequest) -> None:
        Adapter.disconnect_sockets(self, options(request.opts), request.close)

    # The older one-socket forms, answered once done.

    def _socket_join(self, request: SocketJoinRequest) -> None:
        socket = self.namespace.sockets.get(request.sid)
        if socket is not None:
            socket.join(request.room)
            self._done(request)

    def _socket_leave(self, request: SocketLeaveRequest) -> None:
        socket = self.namespace.sockets.get(request.sid)
        if socket is not None:
            socket.leave(request.room)
            self._done(request)

    def _socket_disconnect(self, request: SocketDisconnectRequest) -> None:
        socket = self.namespace.sockets.get(request.sid)
        if socket is not None:
            socket.disconnect(request.close)
            self._done(request)

    def _done(self, request: SocketJoinRequest | SocketLeaveRequest | SocketDisconnectRequest) -> None:
        if request.request_id is not None:
            self._respond(DoneResponse(request_id=request.request_id), request)

    def _server_side_emit(self, request: ServerSideEmitRequest) -> None:
        request_id = request.request_id
        if request_id is None:
            self.namespace.on_server_side_emit(request.data)
            return
        answered: list[bool] = []

        def ack(value: Any) -> None:
            if not answered:
                answered.append(True)
                self._respond(ServerSideEmitResponse(request_id=request_id, data=value), request)

        self.namespace.on_server_side_emit(request.data, ack)

    def _broadcast_for_acks(self, request: BroadcastAckRequest) -> None:
        request_id = request.request_id
        packet = Packet(PacketType.EVENT, self.namespace.name, request.packet.data)

        def count(n: int) -> None:
            self._respond(ClientCountResponse(request_id=request_id, client_count=n), request)

        def answer(args: list[Any]) -> None:
            self._respond(BroadcastAckResponse(request_id=request_id, value=args[0] if args else None), request)

        Adapter.broadcast_with_ack(self, packet, options(request.opts), count, answer)

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

    def _received_response(self, response: Response) -> None:
        """Count another node's answer to one of this node's requests."""
        if isinstance(response, (ClientCountResponse, BroadcastAckResponse)):
            self._on_ack_response(response)
            return
        request = self._requests.get(response.request_id)
        if request is None:
            return
        if isinstance(response, FetchResponse) and response.node is not None:
            if response.node in request.answered:
                return  # one answer per node
            request.answered.append(response.node)
        request.items.extend(self._items(response, request))
        request.replies += 1
        if request.replies >= request.expected:
            self._requests.take(response.request_id)
            request.result.callback(request.answer() if request.partial else request.items)

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

    def _items(self, response: Response, request: _Request) -> list[Any]:
        """What one answer adds to the result of the request."""
        if isinstance(response, FetchResponse):
            if request.counting:
                # A count: the node's number, or (a node that does not know count requests) its sockets.
                return [response.count if response.count is not None else len(response.sockets)]
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
