"""The Socket.IO server: namespaces, sockets, acknowledgements and middleware.

It sits on an Engine.IO :class:`~txrealtime.engineio.SessionManager`: each
Engine.IO session becomes a :class:`Client`, which decodes Socket.IO packets
and routes them to one :class:`Socket` per namespace the client joined.
"""

from __future__ import annotations

import email.utils
import inspect
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from twisted.internet.defer import Deferred, ensureDeferred, fail, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import Throttle, gate, name_for_log
from .._reactor import cancel
from ..engineio import (
    CloseReason,
    EngineIOOptions,
    EngineIOResource,
    MessageReceived,
    Session,
    SessionClosed,
    SessionEvent,
    SessionManager,
    SessionOpened,
)
from ..engineio.manager import Clock, DelayedCall
from .acks import AckTable
from .adapter import Adapter, BroadcastOptions
from .emitter import CatchAll, EventEmitter, Handler, ack_args, call_handler
from .errors import ConnectionRefused, Disconnected, DisconnectReason
from .operator import BroadcastOperator, check_event
from .packets import DecodeError, Decoder, Packet, PacketType, encode

__all__ = ["Client", "Namespace", "ParentNamespace", "Server", "Socket", "SocketHandshake"]

log = Logger(observer=gate)
noisy = Throttle(log)
"""For lines a hostile client could make us repeat."""

AdapterFactory = Callable[["Namespace"], Adapter]
NamespacePredicate = Callable[[str, Any], Any]
"""``(name, auth) -> bool`` (or a Deferred/coroutine of one) deciding whether a dynamic namespace exists."""


_NAMESPACE_EVENTS = frozenset({"connect", "connection", "new_namespace"})


def _check_server_side(event: str) -> None:
    check_event(event)
    if event in _NAMESPACE_EVENTS:
        raise ValueError(f'"{event}" is a reserved event name')


@dataclass(frozen=True, slots=True)
class SocketHandshake:
    """What the client told the server when it connected, as ``socket.handshake`` in Node."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    auth: Any
    """The ``auth`` payload of the CONNECT packet (``{}`` when none)."""
    address: str
    secure: bool
    url: str
    issued: int
    """When the connection opened, in milliseconds since the epoch."""
    time: str
    """The same moment as an HTTP date."""
    xdomain: bool = field(default=False)
    """Whether the request carried an ``Origin`` header."""


class SocketEmitter:
    """``socket.volatile`` / ``socket.timeout(s)``: emit to one socket with flags."""

    def __init__(self, socket: Socket, volatile: bool = False, timeout: float | None = None) -> None:
        self._socket = socket
        self._volatile = volatile
        self._timeout = timeout

    @property
    def volatile(self) -> SocketEmitter:
        return SocketEmitter(self._socket, True, self._timeout)

    def timeout(self, seconds: float) -> SocketEmitter:
        return SocketEmitter(self._socket, self._volatile, seconds)

    def compress(self, compress: bool) -> SocketEmitter:
        return self

    def emit(self, event: str, *args: Any, ack: Callable[..., object] | None = None) -> bool:
        """Emit ``event`` to the client.

        ``ack`` is called with the client's answer; after :meth:`timeout` it is
        called Node-style as ``ack(err, *answer)``, ``err`` an :class:`AckTimeout` or ``None``.
        """
        check_event(event)
        socket = self._socket
        if ack is None or not socket.connected:
            return socket._send_event(event, args, self._volatile)
        if self._timeout is None:
            callback = ack
            ack_id = socket._register_ack(lambda answer: callback(*answer))
            return socket._send_event(event, args, self._volatile, ack_id)

        def both(result: Any) -> None:
            if isinstance(result, Failure):
                ack(result.value)
            else:
                ack(None, *ack_args(result))

        d = self._with_ack(event, args)
        d.addBoth(both)
        return True

    def send(self, *args: Any) -> bool:
        return self.emit("message", *args)

    def emit_with_ack(self, event: str, *args: Any) -> Deferred[Any]:
        """Emit and fire with the client's answer (one value, a tuple of several, or ``None``).

        Fails with :class:`AckTimeout` after :meth:`timeout`, or with
        :class:`Disconnected` if the socket goes away first.
        """
        check_event(event)
        return self._with_ack(event, args)

    def _with_ack(self, event: str, args: tuple[Any, ...]) -> Deferred[Any]:
        socket = self._socket
        if not socket.connected:
            return fail(Disconnected("not connected"))
        ack_id, result = socket._acks.deferred(self._timeout)
        socket._send_event(event, args, self._volatile, ack_id)
        return result


class Socket(EventEmitter, CatchAll):
    """One client's membership of one namespace, as ``socket`` in Node's handlers."""

    def __init__(self, namespace: Namespace, client: Client, auth: Any) -> None:
        super().__init__()
        self.nsp = namespace
        self.server = namespace.server
        self.client = client
        self.id = secrets.token_urlsafe(15)
        engine = client.session.handshake
        self.handshake = SocketHandshake(
            headers=engine.headers,
            query=engine.query,
            auth=auth if auth is not None else {},
            address=engine.address,
            secure=engine.secure,
            url=engine.url,
            issued=int(engine.issued * 1000),
            time=email.utils.formatdate(engine.issued, usegmt=True),
            xdomain="origin" in engine.headers,
        )
        self.data: dict[str, Any] = {}
        """Free for the application; ``fetch_sockets`` returns it too."""
        self.connected = False
        self._acks = AckTable(self.server.reactor)
        CatchAll.__init__(self)
        self._packet_middleware: list[Handler] = []
        self._unknown_acks = 0

    def __repr__(self) -> str:
        return f"<Socket {self.id} {self.nsp.name} {'connected' if self.connected else 'disconnected'}>"

    # -- properties ----------------------------------------------------------

    @property
    def conn(self) -> Session:
        """The Engine.IO session under this socket."""
        return self.client.session

    @property
    def disconnected(self) -> bool:
        return not self.connected

    @property
    def rooms(self) -> set[str]:
        """The rooms this socket is in (its own id included)."""
        return self.nsp.adapter.socket_rooms(self.id) or set()

    # -- emitting --------------------------------------------------------------

    def emit(self, event: str, *args: Any, ack: Callable[..., object] | None = None) -> bool:
        """Emit ``event`` with ``args`` to this client; ``ack(*answer)`` gets its acknowledgement."""
        return SocketEmitter(self).emit(event, *args, ack=ack)

    def emit_with_ack(self, event: str, *args: Any) -> Deferred[Any]:
        """Emit and fire with the client's acknowledgement (see :meth:`SocketEmitter.emit_with_ack`)."""
        return SocketEmitter(self).emit_with_ack(event, *args)

    def send(self, *args: Any) -> bool:
        """Emit a ``message`` event."""
        return self.emit("message", *args)

    write = send

    @property
    def volatile(self) -> SocketEmitter:
        return SocketEmitter(self, volatile=True)

    def timeout(self, seconds: float) -> SocketEmitter:
        return SocketEmitter(self, timeout=seconds)

    def compress(self, compress: bool) -> SocketEmitter:
        return SocketEmitter(self)

    # -- broadcasting from this socket (everyone but itself) --------------------

    def _operator(self) -> BroadcastOperator:
        return BroadcastOperator(self.nsp.adapter, except_rooms=frozenset({self.id}))

    @property
    def broadcast(self) -> BroadcastOperator:
        """Every socket of the namespace but this one."""
        return self._operator()

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        """Sockets in ``rooms``, this one left out."""
        return self._operator().to(rooms)

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self._operator().except_(rooms)

    @property
    def local(self) -> BroadcastOperator:
        return self._operator().local

    # -- rooms -----------------------------------------------------------------

    def join(self, rooms: str | Iterable[str]) -> None:
        """Join one room or several."""
        if self.connected:
            self.nsp.adapter.add_all(self.id, [rooms] if isinstance(rooms, str) else list(rooms))

    def leave(self, room: str) -> None:
        if self.connected:
            self.nsp.adapter.delete(self.id, room)

    # -- disconnecting -------------------------------------------------------------

    def disconnect(self, close: bool = False) -> Socket:
        """Leave the namespace; with ``close``, close the whole connection (every namespace)."""
        if not self.connected:
            return self
        if close:
            self.client.disconnect()
        else:
            self._packet(Packet(PacketType.DISCONNECT, self.nsp.name))
            self._on_close(DisconnectReason.SERVER_NAMESPACE_DISCONNECT)
        return self

    # -- internals -------------------------------------------------------------------

    def _register_ack(self, answered: Callable[[list[Any]], object]) -> int:
        """A new ack id whose answer goes to ``answered`` (a broadcast's collector, say)."""
        return self._acks.register(answered)

    def _send_event(self, event: str, args: tuple[Any, ...], volatile: bool, ack_id: int | None = None) -> bool:
        if not self.connected:
            return False
        packet = Packet(PacketType.EVENT, self.nsp.name, [event, *args], ack_id)
        self._deliver(packet, encode(packet), volatile)
        return True

    def _deliver(self, packet: Packet, messages: list[str | bytes], volatile: bool) -> None:
        """Write an encoded packet (shared by a whole broadcast) to this client."""
        if self._any_outgoing and packet.type is PacketType.EVENT:
            for listener in list(self._any_outgoing):
                self._run(listener, [packet.event, *packet.args], "outgoing catch-all listener")
        self.client.write(messages, volatile)

    def _packet(self, packet: Packet) -> None:
        self.client.write(encode(packet))

    def _connected(self) -> None:
        self.connected = True
        self.nsp.adapter.add_all(self.id, [self.id])
        self._packet(Packet(PacketType.CONNECT, self.nsp.name, {"sid": self.id}))

    def _on_packet(self, packet: Packet) -> None:
        ptype = packet.type
        if ptype is PacketType.EVENT:
            self._on_event(packet)
        elif ptype is PacketType.ACK:
            ack = self._acks.take(packet.id) if packet.id is not None else None
            if ack is None:
                self._unknown_acks += 1  # counted, and logged once when the socket closes
            else:
                self._run(ack.answered, [packet.args], "acknowledgement callback")
        elif ptype is PacketType.DISCONNECT:
            self._on_close(DisconnectReason.CLIENT_NAMESPACE_DISCONNECT)

    def use(self, middleware: Handler) -> Handler:
        """Run ``middleware(event, args)`` on every incoming event before its handlers.

        It may change ``args`` in place, be ``async``, or raise to drop the event:
        the exception then goes to this socket's ``error`` handlers.
        """
        self._packet_middleware.append(middleware)
        return middleware

    def _on_event(self, packet: Packet) -> None:
        event, args = packet.event, packet.args
        for listener in list(self._any):
            self._run(listener, [event, *args], "catch-all listener")
        if not self._packet_middleware:
            self._dispatch(event, args, packet.id)
            return
        def run(_: object, middleware: Handler) -> Deferred[Any]:
            return call_handler(middleware, event, args)

        d: Deferred[Any] = succeed(None)
        for middleware in list(self._packet_middleware):
            d.addCallback(run, middleware)

        def refused(failure: Failure) -> None:
            if not self.listeners("error"):
                noisy.info(
                    "Socket {sid}: event {event!r} refused: {error}",
                    sid=self.id,
                    event=name_for_log(event),
                    error=failure.getErrorMessage(),
                )
            self._emit_reserved("error", failure.value)

        d.addCallbacks(lambda _: self._dispatch(event, args, packet.id), refused)

    def _dispatch(self, event: str, args: list[Any], ack_id: int | None) -> None:
        if not self.connected:
            return
        handlers = self._take(event)
        for index, handler in enumerate(handlers):
            try:
                result = handler(*args)
            except Exception:
                log.failure("Socket {sid} in {namespace}: handler of {event!r} failed", sid=self.id,
                            namespace=self.nsp.name, event=event)
                continue
            if isinstance(result, Deferred) or inspect.iscoroutine(result):
                d = result if isinstance(result, Deferred) else ensureDeferred(result)
                d.addErrback(self._handler_failed, event)
                if index == 0 and ack_id is not None:
                    d.addCallback(self._answer, ack_id)
                d.addErrback(lambda _: None)
            elif index == 0 and ack_id is not None:
                self._answer(result, ack_id)

    def _handler_failed(self, failure: Failure, event: str) -> Failure:
        log.failure("Socket {sid} in {namespace}: handler of {event!r} failed", failure, sid=self.id,
                    namespace=self.nsp.name, event=event)
        return failure

    def _answer(self, result: Any, ack_id: int) -> None:
        if self.connected:
            self._packet(Packet(PacketType.ACK, self.nsp.name, ack_args(result), ack_id))

    def _run(self, handler: Handler, args: list[Any], what: str) -> Deferred[Any]:
        d = call_handler(handler, *args)

        def failed(failure: Failure) -> Failure:
            log.failure(
                "Socket {sid} in {namespace}: {what} failed", failure, sid=self.id, namespace=self.nsp.name, what=what
            )
            return failure

        d.addErrback(failed)
        return d

    def _emit_reserved(self, event: str, *args: Any) -> None:
        for handler in self._take(event):
            self._run(handler, list(args), f"handler of {event!r}").addErrback(lambda _: None)

    def _on_close(self, reason: DisconnectReason) -> None:
        if not self.connected:
            return
        self._emit_reserved("disconnecting", reason)
        self.connected = False
        self._acks.fail_all(Disconnected(reason.value))
        self.nsp.adapter.delete_all(self.id)
        self.nsp._remove(self)
        self.client._remove(self)
        log.debug(
            "Socket {sid} left {namespace}: {reason}", sid=self.id, namespace=self.nsp.name, reason=reason.value
        )
        if self._unknown_acks:
            noisy.info("Socket {sid} ignored {count} acknowledgements with unknown ids", sid=self.id,
                       count=self._unknown_acks)
        self._emit_reserved("disconnect", reason)
        # Handlers often close over their socket: dropping them breaks that cycle,
        # so a closed connection's memory returns at once, not at the next full GC.
        self.off()
        self._packet_middleware.clear()
        self.off_any()
        self.off_any_outgoing()


class Namespace(EventEmitter):
    """A communication channel (``/`` by default) with its own sockets, rooms, handlers and middleware."""

    def __init__(self, server: Server, name: str, adapter: AdapterFactory | None = None) -> None:
        super().__init__()
        self.server = server
        self.name = name
        self.sockets: dict[str, Socket] = {}
        self.parent: ParentNamespace | None = None
        """The dynamic namespace that created this one, if any."""
        self._middleware: list[Handler] = []
        self._joining = 0
        self.adapter: Adapter = (adapter or server.adapter_factory)(self)

    def __repr__(self) -> str:
        return f"<Namespace {self.name} ({len(self.sockets)} sockets)>"

    def use(self, middleware: Handler) -> Handler:
        """Run ``middleware(socket)`` before each connection; raising :class:`ConnectionRefused` refuses it.

        Middleware may return a Deferred or be ``async def``; they run in order.
        """
        self._middleware.append(middleware)
        return middleware

    # -- broadcasting ------------------------------------------------------------

    def _operator(self) -> BroadcastOperator:
        return BroadcastOperator(self.adapter)

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self._operator().to(rooms)

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self._operator().except_(rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self._operator().volatile

    @property
    def local(self) -> BroadcastOperator:
        return self._operator().local

    def timeout(self, seconds: float) -> BroadcastOperator:
        return self._operator().timeout(seconds)

    def compress(self, compress: bool) -> BroadcastOperator:
        return self._operator()

    def emit(self, event: str, *args: Any, ack: Callable[..., object] | None = None) -> bool:
        """Emit to every socket of the namespace."""
        return self._operator().emit(event, *args, ack=ack)

    def emit_with_ack(self, event: str, *args: Any) -> Deferred[list[Any]]:
        return self._operator().emit_with_ack(event, *args)

    def send(self, *args: Any) -> bool:
        return self.emit("message", *args)

    write = send

    def fetch_sockets(self) -> Deferred[list[Socket]]:
        return self._operator().fetch_sockets()

    def sockets_join(self, rooms: str | Iterable[str]) -> None:
        self._operator().sockets_join(rooms)

    def sockets_leave(self, rooms: str | Iterable[str]) -> None:
        self._operator().sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        self._operator().disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any) -> bool:
        """Emit to this namespace on the other servers of a cluster (their ``ns.on(event)`` handlers)."""
        _check_server_side(event)
        return self.adapter.server_side_emit([event, *args])

    def server_side_emit_with_ack(self, event: str, *args: Any) -> Deferred[list[Any]]:
        """Like :meth:`server_side_emit`; fire with one answer from each other server."""
        _check_server_side(event)
        return self.adapter.server_side_emit_with_ack([event, *args])

    def _on_server_side_emit(self, data: list[Any], ack: Callable[[Any], object] | None = None) -> None:
        """Another server emitted ``[event, *args]`` to this namespace."""
        if not data or not isinstance(data[0], str) or data[0] in _NAMESPACE_EVENTS:
            return
        event, args = data[0], list(data[1:])
        for index, handler in enumerate(self._take(event)):
            d = call_handler(handler, *args)
            if index == 0 and ack is not None:
                d.addCallback(ack)
            d.addErrback(lambda f: log.failure("Server-side {event!r} handler failed", f, event=event))

    # -- connecting ----------------------------------------------------------------

    def _add(self, client: Client, auth: Any) -> Deferred[Socket | None]:
        socket = Socket(self, client, auth)
        self._joining += 1

        def run(_: object, middleware: Handler) -> Deferred[Any]:
            return call_handler(middleware, socket)

        d: Deferred[Any] = succeed(None)
        for middleware in list(self._middleware):
            d.addCallback(run, middleware)

        def accepted(_: object) -> Socket | None:
            if client.closed:
                return None
            self.sockets[socket.id] = socket
            client._added(socket)
            socket._connected()
            log.debug("Socket {sid} joined {namespace}", sid=socket.id, namespace=self.name)
            for event in ("connect", "connection"):
                for handler in self._take(event):
                    socket._run(handler, [socket], f"{event} handler").addErrback(lambda _: None)
            return socket

        def refused(failure: Failure) -> None:
            if isinstance(failure.value, ConnectionRefused):
                error: dict[str, Any] = {"message": failure.value.message}
                if failure.value.data is not None:
                    error["data"] = failure.value.data
            else:
                log.failure("Middleware of {namespace} failed", failure, namespace=self.name)
                error = {"message": "Internal server error"}
            client._refused(self.name, error)

        def settled(result: object) -> object:
            self._joining -= 1
            self._cleanup_if_empty()
            return result

        d.addCallbacks(accepted, refused)
        d.addBoth(settled)
        return d

    def _remove(self, socket: Socket) -> None:
        self.sockets.pop(socket.id, None)
        self._cleanup_if_empty()

    def _cleanup_if_empty(self) -> None:
        """With ``cleanup_empty_child_namespaces``, a dynamic child with no socket left goes away."""
        parent = self.parent
        if parent is not None and not self.sockets and not self._joining and self.server.cleanup_empty_child_namespaces:
            parent._remove_child(self)


class _ChildrenAdapter(Adapter):
    """The adapter of a :class:`ParentNamespace`: acts on every child namespace."""

    def __init__(self, namespace: ParentNamespace) -> None:
        super().__init__(namespace)
        self.parent = namespace

    def _children(self) -> list[Adapter]:
        return [child.adapter for child in self.parent.children]

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> bool:
        delivered = True
        for child in self._children():
            delivered &= child.broadcast(Packet(packet.type, child.namespace.name, packet.data, packet.id), opts)
        return delivered

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], object],
        ack: Callable[[list[Any]], object],
    ) -> None:
        total = 0

        def counted(n: int) -> None:
            nonlocal total
            total += n

        for child in self._children():
            child.broadcast_with_ack(Packet(packet.type, child.namespace.name, packet.data), opts, counted, ack)
        client_count(total)

    def fetch_sockets(self, opts: BroadcastOptions) -> Deferred[list[Socket]]:
        d = gatherResults([child.fetch_sockets(opts) for child in self._children()], consumeErrors=True)
        return d.addCallback(lambda lists: [s for found in lists for s in found])

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        for child in self._children():
            child.add_sockets(opts, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        for child in self._children():
            child.del_sockets(opts, rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        for child in self._children():
            child.disconnect_sockets(opts, close)


class ParentNamespace(Namespace):
    """A dynamic namespace: matches names by regex or predicate and creates a child for each.

    Children inherit the parent's middleware and connection handlers;
    emitting on the parent reaches every child.
    """

    def __init__(self, server: Server, matcher: re.Pattern[str] | NamespacePredicate) -> None:
        self.matcher = matcher
        self.children: list[Namespace] = []
        name = f"/_{len(server._parents)}" if not isinstance(matcher, re.Pattern) else f"/{matcher.pattern}"
        super().__init__(server, name, lambda ns: _ChildrenAdapter(cast(ParentNamespace, ns)))

    def matches(self, name: str, auth: Any) -> Deferred[Any]:
        if isinstance(self.matcher, re.Pattern):
            return succeed(self.matcher.fullmatch(name) is not None)
        return call_handler(self.matcher, name, auth)

    def create_child(self, name: str) -> Namespace:
        child = Namespace(self.server, name)
        child.parent = self
        child._middleware = list(self._middleware)
        for event in ("connect", "connection"):
            for handler in self.listeners(event):
                child.on(event, handler)
        self.children.append(child)
        self.server._nsps[name] = child
        self.server._emit_new_namespace(child)
        return child

    def _remove_child(self, child: Namespace) -> None:
        if child in self.children:
            self.children.remove(child)
        if self.server._nsps.get(child.name) is child:
            del self.server._nsps[child.name]
        child.adapter.close()
        log.debug("Empty namespace {namespace} removed", namespace=name_for_log(child.name))


class Client:
    """One Engine.IO session speaking Socket.IO: decodes packets, owns a socket per namespace."""

    def __init__(self, server: Server, session: Session) -> None:
        self.server = server
        self.session = session
        self.id = session.sid
        self.decoder = Decoder(server.max_attachments, max_bytes=server.manager.options.max_payload)
        self.sockets: dict[str, Socket] = {}
        self._connecting: set[str] = set()
        self.closed = False
        self._connect_timer: DelayedCall | None = server.reactor.callLater(
            server.connect_timeout, self._connect_timed_out
        )
        self._attachment_timer: DelayedCall | None = None

    def __repr__(self) -> str:
        return f"<Client {self.id} {sorted(self.sockets)}>"

    # -- writing -----------------------------------------------------------

    def write(self, messages: list[str | bytes], volatile: bool = False) -> None:
        if self.closed:
            return
        if volatile and not self.session.transport.writable:
            return
        self.session.send_many(messages)

    def disconnect(self) -> None:
        """Disconnect every socket and close the connection."""
        for socket in list(self.sockets.values()):
            socket.disconnect()
        self.session.close(CloseReason.FORCED_CLOSE, "disconnect(close=True)")

    # -- reading -------------------------------------------------------------

    def on_message(self, data: str | bytes) -> None:
        try:
            packet = self.decoder.feed(data)
        except DecodeError as e:
            self._protocol_error(str(e))
            return
        if self.decoder.pending:
            if self._attachment_timer is None:
                self._attachment_timer = self.server.reactor.callLater(
                    self.server.attachment_timeout, self._attachments_timed_out
                )
        elif self._attachment_timer is not None:
            self._attachment_timer = cancel(self._attachment_timer)
        if packet is not None:
            self._dispatch(packet)

    def _attachments_timed_out(self) -> None:
        self._attachment_timer = None
        self._protocol_error(f"binary packet not completed within {self.server.attachment_timeout:g} s")

    def _dispatch(self, packet: Packet) -> None:
        name = packet.namespace
        socket = self.sockets.get(name)
        if packet.type is PacketType.CONNECT:
            if socket is not None or name in self._connecting:
                self._protocol_error(f"already connected to {name}")
            else:
                self._connect(name, packet.data)
        elif packet.type is PacketType.CONNECT_ERROR:
            self._protocol_error("clients do not send CONNECT_ERROR")
        elif socket is not None:
            socket._on_packet(packet)
        else:
            # A packet racing the socket's disconnection: nothing to deliver it to.
            log.debug("Client {id}: {type} for {nsp}, which it is not in", id=self.id, type=packet.type.name,
                      nsp=name_for_log(name))

    def _protocol_error(self, description: str) -> None:
        # The session's close line says why at info level; this one is for debugging.
        log.debug("Client {id} broke the protocol: {description}", id=self.id, description=description)
        self.session.close(CloseReason.PARSE_ERROR, description)

    def _connect(self, name: str, auth: Any) -> None:
        limit = self.server.max_namespaces_per_client
        if len(self.sockets) + len(self._connecting) >= limit:
            self._refused(name, {"message": f"Too many namespaces (limit {limit})"})
            return
        self._connecting.add(name)
        d = self.server._namespace_for(name, auth)

        def found(namespace: Namespace | None) -> Deferred[Any] | None:
            if self.closed:
                return None
            if namespace is None:
                self._refused(name, {"message": "Invalid namespace"})
                return None
            return namespace._add(self, auth)

        def failed(failure: Failure) -> None:
            log.failure("Looking up namespace {name} failed", failure, name=name_for_log(name))
            self._refused(name, {"message": "Internal server error"})

        d.addCallback(found).addErrback(failed)
        d.addBoth(lambda _: self._connecting.discard(name))

    def _refused(self, name: str, error: dict[str, Any]) -> None:
        noisy.info("Client {id} refused in {namespace}: {message}", id=self.id, namespace=name_for_log(name),
                   message=error["message"])
        self.write(encode(Packet(PacketType.CONNECT_ERROR, name, error)))

    def _added(self, socket: Socket) -> None:
        self.sockets[socket.nsp.name] = socket
        self._connect_timer = cancel(self._connect_timer)

    def _remove(self, socket: Socket) -> None:
        if self.sockets.get(socket.nsp.name) is socket:
            del self.sockets[socket.nsp.name]

    def _connect_timed_out(self) -> None:
        self._connect_timer = None
        if not self.sockets:
            log.debug("Client {id} joined no namespace in time", id=self.id)
            self.session.close(CloseReason.FORCED_CLOSE, "no namespace joined before connect_timeout")

    def on_close(self, reason: CloseReason) -> None:
        self.closed = True
        self._connect_timer = cancel(self._connect_timer)
        self._attachment_timer = cancel(self._attachment_timer)
        self.decoder.reset()  # a hoarded binary packet goes now, not when the objects are collected
        why = DisconnectReason(reason.value)
        for socket in list(self.sockets.values()):
            socket._on_close(why)


class Server(EventEmitter):
    """A Socket.IO v5 server, the counterpart of Node's ``new Server()``.

    ``server.on("connection", handler)`` and ``server.emit(...)`` act on the
    default namespace ``/`` (also ``server.sockets``); ``server.of(name)``
    gives others. Serve it with :meth:`resource`.
    """

    def __init__(
        self,
        manager: SessionManager | None = None,
        *,
        options: EngineIOOptions | None = None,
        connect_timeout: float = 45.0,
        max_attachments: int = 100,
        attachment_timeout: float = 30.0,
        max_namespaces_per_client: int = 100,
        cleanup_empty_child_namespaces: bool = False,
        adapter: AdapterFactory = Adapter,
        reactor: Clock | None = None,
    ) -> None:
        super().__init__()
        if manager is None:
            manager = SessionManager(options, reactor=reactor)
        self.manager = manager
        self.reactor: Clock = manager.reactor
        self.connect_timeout = connect_timeout
        self.max_attachments = max_attachments
        self.attachment_timeout = attachment_timeout
        """Seconds a client has to send every attachment of a binary packet it started."""
        self.max_namespaces_per_client = max_namespaces_per_client
        """Namespaces one connection may be in (or joining) at once; beyond, CONNECT is refused."""
        self.cleanup_empty_child_namespaces = cleanup_empty_child_namespaces
        """Remove a dynamic namespace's child once its last socket left (Node's option of that name)."""
        self.adapter_factory = adapter
        self.clients: dict[str, Client] = {}
        self._nsps: dict[str, Namespace] = {}
        self._parents: list[ParentNamespace] = []
        self.sockets = self.of("/")
        """The default namespace."""
        self._unsubscribe = manager.subscribe(self._on_session_event)

    def resource(self) -> EngineIOResource:
        """The ``twisted.web`` resource serving this server; mount it at ``/socket.io/``."""
        return EngineIOResource(self.manager)

    # -- namespaces --------------------------------------------------------------

    def of(self, name: str | re.Pattern[str] | NamespacePredicate) -> Namespace:
        """The namespace called ``name``, created if needed; a regex or predicate gives a dynamic one."""
        if isinstance(name, str):
            if not name.startswith("/"):
                name = "/" + name
            namespace = self._nsps.get(name)
            if namespace is None:
                namespace = self._nsps[name] = Namespace(self, name)
                if name != "/":
                    self._emit_new_namespace(namespace)
            return namespace
        parent = ParentNamespace(self, name)
        self._parents.append(parent)
        return parent

    @property
    def namespaces(self) -> Mapping[str, Namespace]:
        return self._nsps

    def _namespace_for(self, name: str, auth: Any) -> Deferred[Namespace | None]:
        return ensureDeferred(self._find_namespace(name, auth))

    async def _find_namespace(self, name: str, auth: Any) -> Namespace | None:
        for parent in list(self._parents):
            if name in self._nsps:
                break
            if await parent.matches(name, auth):
                return self._nsps.get(name) or parent.create_child(name)
        return self._nsps.get(name)

    def _emit_new_namespace(self, namespace: Namespace) -> None:
        for handler in self._take("new_namespace"):
            call_handler(handler, namespace).addErrback(
                lambda f: log.failure("new_namespace handler failed", f)
            )

    # -- the default namespace ---------------------------------------------------

    def on(self, event: str, handler: Any = None) -> Any:
        """``connection`` handlers go to the default namespace; ``new_namespace`` to the server."""
        if event == "new_namespace":
            return super().on(event, handler)
        return self.sockets.on(event, handler)

    def use(self, middleware: Handler) -> Handler:
        return self.sockets.use(middleware)

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.sockets.to(rooms)

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        return self.sockets.except_(rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self.sockets.volatile

    @property
    def local(self) -> BroadcastOperator:
        return self.sockets.local

    def timeout(self, seconds: float) -> BroadcastOperator:
        return self.sockets.timeout(seconds)

    def compress(self, compress: bool) -> BroadcastOperator:
        return self.sockets.compress(compress)

    def emit(self, event: str, *args: Any, ack: Callable[..., object] | None = None) -> bool:
        return self.sockets.emit(event, *args, ack=ack)

    def emit_with_ack(self, event: str, *args: Any) -> Deferred[list[Any]]:
        return self.sockets.emit_with_ack(event, *args)

    def send(self, *args: Any) -> bool:
        return self.sockets.send(*args)

    write = send

    def fetch_sockets(self) -> Deferred[list[Socket]]:
        return self.sockets.fetch_sockets()

    def sockets_join(self, rooms: str | Iterable[str]) -> None:
        self.sockets.sockets_join(rooms)

    def sockets_leave(self, rooms: str | Iterable[str]) -> None:
        self.sockets.sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        self.sockets.disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any) -> bool:
        return self.sockets.server_side_emit(event, *args)

    def server_side_emit_with_ack(self, event: str, *args: Any) -> Deferred[list[Any]]:
        return self.sockets.server_side_emit_with_ack(event, *args)

    def close(self) -> None:
        """Disconnect everyone ("server shutting down") and release the adapters."""
        self.manager.shutdown()
        for namespace in list(self._nsps.values()):
            namespace.adapter.close()

    # -- the Engine.IO layer ---------------------------------------------------------

    def _on_session_event(self, event: SessionEvent) -> None:
        if isinstance(event, MessageReceived):
            client = self.clients.get(event.sid)
            if client is not None:
                client.on_message(event.data)
        elif isinstance(event, SessionOpened):
            session = self.manager.get(event.sid)
            if session is not None:
                self.clients[event.sid] = Client(self, session)
        elif isinstance(event, SessionClosed):
            client = self.clients.pop(event.sid, None)
            if client is not None:
                client.on_close(event.reason)

