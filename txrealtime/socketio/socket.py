"""One client's membership of one namespace: Node's ``socket.ts``.

A :class:`Socket` emits to its client, answers and awaits acknowledgements,
joins rooms and runs the handlers of incoming events. It knows its namespace,
its server and its connection only through the small Protocols below, so
this module imports nothing above it.
"""

from __future__ import annotations

import email.utils
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import Throttle, gate, name_for_log
from .._reactor import Clock
from ..engineio import Session
from ..protocol.acks import node_callbacks
from ..protocol.dispatch import Role, SocketCore
from ..protocol.handlers import CatchAll, EventEmitter, Flagged, Handler, call_in_turn_now, check_event
from ..protocol.packets import Packet, PacketType
from ..protocol.parser import Encoder
from .adapter import Adapter, BroadcastFlags, BroadcastOptions
from .errors import Disconnected, DisconnectReason, EventRefused
from .operator import Broadcasting, BroadcastOperator, Selecting
from .recovery import RECOVERABLE_REASONS, Encoded, KeptSession, StateRecovery

__all__ = ["Socket", "SocketConnection", "SocketEmitter", "SocketHandshake", "SocketNamespace", "SocketServer"]

log = Logger(__name__, observer=gate)
noisy = Throttle(log)
"""For lines a hostile client could make us repeat."""


class SocketServer(Broadcasting, Protocol):
    """What a socket needs from its server (``socket.server``): its clock, broadcasting, counting ack timeouts,
    whether recovery is on."""

    @property
    def reactor(self) -> Clock: ...

    @property
    def connection_state_recovery(self) -> StateRecovery | None: ...

    def ack_timed_out(self) -> None:
        """Count an acknowledgement that timed out."""


class SocketNamespace(Broadcasting, Protocol):
    """What a socket needs from its namespace (``socket.nsp``): name, adapter, server, and broadcasting."""

    @property
    def name(self) -> str: ...

    @property
    def adapter(self) -> Adapter: ...

    @property
    def server(self) -> SocketServer: ...

    def remove_socket(self, socket: Socket) -> None:
        """``socket`` left the namespace (it is already out of its rooms)."""


class SocketConnection(Protocol):
    """What a socket needs from its connection (``socket.client``): the session, writing, closing."""

    @property
    def session(self) -> Session: ...

    @property
    def encoder(self) -> Encoder:
        """The server's encoder."""

    def write(self, messages: list[str | bytes], volatile: bool = False, compress: bool = True) -> None: ...

    def disconnect(self) -> None: ...

    def remove_socket(self, socket: Socket) -> None:
        """``socket`` left its namespace: the connection no longer routes packets to it."""


@dataclass(frozen=True, slots=True)
class SocketHandshake:
    """What the client told the server when it connected, as ``socket.handshake`` in Node."""

    headers: Mapping[str, str]
    """The request headers, names lower-cased."""
    query: Mapping[str, str]
    """The query string's parameters."""
    auth: Any
    """The ``auth`` payload of the CONNECT packet (``{}`` when none)."""
    address: str
    """The client's IP address."""
    secure: bool
    """Whether the connection is TLS."""
    url: str
    """The request's path and query."""
    issued: int
    """When the connection opened, in milliseconds since the epoch."""
    time: str
    """The same moment as an HTTP date."""
    xdomain: bool = field(default=False)
    """Whether the request carried an ``Origin`` header."""


class SocketEmitter(Flagged["Socket"]):
    """``socket.volatile`` / ``socket.timeout(s)``: emit to one socket with flags."""

    def emit(self, event: str, *args: Any, ack: Callable[..., object] | None = None) -> bool:
        """Emit ``event`` to the client; ``False`` if the connection's outgoing queue is now over its high-water
        mark (wait for the socket's ``drain`` event before emitting more), or the socket is not connected.

        ``ack`` is called with the client's answer; after :meth:`timeout` it is
        called Node-style as ``ack(err, *answer)``, ``err`` an :class:`AckTimeout` or ``None``.
        """
        check_event(event)
        socket = self._socket
        if ack is None or not socket.connected:
            return socket._send_event(event, args, self._volatile, None, self._compress)
        if self._timeout is None:
            callback = ack
            ack_id = socket.register_ack(lambda answer: callback(*answer))
        else:
            ack_id = socket._core.acks.register(*node_callbacks(ack), self._timeout)
        socket._send_event(event, args, self._volatile, ack_id, self._compress)
        return not socket.client.session.needs_drain

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
        ack_id, result = socket._core.acks.deferred(self._timeout)
        socket._send_event(event, args, self._volatile, ack_id, self._compress)
        return result


class Socket(EventEmitter, CatchAll, Selecting):
    """One client's membership of one namespace, as ``socket`` in Node's handlers.

    The namespace makes it when a client joins; handlers get it.
    """

    def __init__(
        self, namespace: SocketNamespace, client: SocketConnection, auth: Any, previous: KeptSession | None = None
    ) -> None:
        """A socket of ``client`` in ``namespace``, not yet connected.

        :param namespace: The namespace joined.
        :param client: The connection (Engine.IO session) of the client.
        :param auth: What the client sent with its CONNECT (Node's ``socket.handshake.auth``).
        :param previous: The state of the socket this one recovers (connection
            state recovery), if any: its id, rooms and data come back.
        """
        super().__init__()
        self.nsp = namespace
        """The namespace this socket is in."""
        self.server = namespace.server
        """The Socket.IO server."""
        self.client = client
        """The connection it shares with the client's other namespaces (``socket.conn`` is its session)."""
        if previous is not None:
            self.id = previous.sid
            """The socket's id: the client knows it, rooms are named after it."""
        elif client.session.protocol == 3:
            # Socket.IO v4 clients know their id without being told: the Engine.IO sid, after "/nsp#".
            sid = client.session.sid
            self.id = sid if namespace.name == "/" else f"{namespace.name}#{sid}"
        else:
            self.id = secrets.token_urlsafe(15)
        self.recovered = previous is not None
        """Whether this socket is one that came back within the recovery window, with its id, rooms and data."""
        recovering = self.server.connection_state_recovery is not None
        self.pid: str | None = (
            previous.pid if previous is not None else secrets.token_urlsafe(15) if recovering else None
        )
        """The private id a client recovers its socket with (connection state recovery only)."""
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
        """What the client told the server when it connected."""
        self.data: dict[str, Any] = previous.data if previous is not None else {}
        """Free for the application; ``fetch_sockets`` returns it too."""
        self.connected = False
        """Whether the socket is in its namespace (from the CONNECT answer until it disconnects)."""
        CatchAll.__init__(self)
        self._core = SocketCore(Role.SERVER, namespace.name, self.server.reactor, sid=self.id,
                                timed_out=self.server.ack_timed_out)
        self._packet_middleware: list[Handler] = []

    def __repr__(self) -> str:
        return f"<Socket {self.id} {self.nsp.name} {'connected' if self.connected else 'disconnected'}>"

    # -- properties ----------------------------------------------------------

    @property
    def conn(self) -> Session:
        """The Engine.IO session under this socket."""
        return self.client.session

    @property
    def disconnected(self) -> bool:
        """Not :attr:`connected`."""
        return not self.connected

    @property
    def buffered(self) -> int:
        """Bytes queued for the client's connection and not yet handed to its transport (shared by the
        connection's namespaces); over the high-water mark, :meth:`emit` returns ``False`` until ``drain``."""
        return self.client.session.buffered_bytes

    @property
    def rooms(self) -> set[str]:
        """The rooms this socket is in (its own id included)."""
        return self.nsp.adapter.socket_rooms(self.id) or set()

    # -- emitting --------------------------------------------------------------

    def emit(self, event: str, *args: Any, ack: Callable[..., object] | None = None) -> bool:
        """Emit ``event`` with ``args`` to this client; ``ack(*answer)`` gets its acknowledgement.

        ``False`` when the connection's outgoing queue is over its high-water mark (as Node's stream
        ``write()``): the packet is queued all the same; wait for the ``drain`` event to emit more."""
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
        """The next emit may be dropped if the client cannot receive it now (Node's ``socket.volatile``)."""
        return SocketEmitter(self, volatile=True)

    def timeout(self, seconds: float) -> SocketEmitter:
        """The next emit's acknowledgement is awaited ``seconds`` at most, then called with an error first
        (Node's ``socket.timeout``)."""
        return SocketEmitter(self, timeout=seconds)

    def compress(self, compress: bool) -> SocketEmitter:
        """With ``False``, the next emit goes uncompressed whatever its size."""
        return SocketEmitter(self, compress=compress)

    # -- broadcasting from this socket (everyone but itself) --------------------

    def broadcast_operator(self) -> BroadcastOperator:
        """Broadcasts from a socket (``to``, ``in_``, ``except_``, ``local``) leave it out."""
        return BroadcastOperator(self.nsp.adapter, except_rooms=frozenset({self.id}))

    @property
    def broadcast(self) -> BroadcastOperator:
        """Every socket of the namespace but this one."""
        return self.broadcast_operator()

    # -- rooms -----------------------------------------------------------------

    def join(self, rooms: str | Iterable[str]) -> None:
        """Join one room or several."""
        if self.connected:
            self.nsp.adapter.add_all(self.id, [rooms] if isinstance(rooms, str) else list(rooms))

    def leave(self, room: str) -> None:
        """Leave ``room`` (a disconnected socket is in none)."""
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
            self.send_packet(Packet(PacketType.DISCONNECT, self.nsp.name))
            self._on_close(DisconnectReason.SERVER_NAMESPACE_DISCONNECT)
        return self

    # -- internals -------------------------------------------------------------------

    def register_ack(self, answered: Callable[[list[Any]], object]) -> int:
        """A new ack id whose answer goes to ``answered`` (a broadcast's collector, say)."""
        return self._core.acks.register(answered)

    def _send_event(
        self, event: str, args: tuple[Any, ...], volatile: bool, ack_id: int | None = None, compress: bool = True
    ) -> bool:
        if not self.connected:
            return False
        packet = self._core.event(event, args, ack_id)
        if ack_id is None and self.server.connection_state_recovery is not None:
            # Through the adapter, so the packet gets its offset (and, unless volatile, is kept for a recovery).
            flags = BroadcastFlags(volatile=volatile, compress=compress)
            self.nsp.adapter.broadcast(packet, BroadcastOptions(rooms=frozenset({self.id}), flags=flags))
        else:
            self.deliver(packet, self.client.encoder.encode(packet), volatile, compress)
        return not self.client.session.needs_drain

    def deliver(self, packet: Packet, messages: list[str | bytes], volatile: bool, compress: bool = True) -> None:
        """Write an encoded packet (shared by a whole broadcast) to this client."""
        self._core.notify_outgoing(self._any_outgoing, packet)
        self.client.write(messages, volatile, compress)

    def send_packet(self, packet: Packet) -> None:
        """Encode ``packet`` with the connection's parser and write it to this client (no catch-all listener
        runs: what :meth:`emit` sends goes through :meth:`deliver`)."""
        self.client.write(self.client.encoder.encode(packet))

    def _connected(self, missed: Iterable[Encoded] = ()) -> None:
        """Answer the CONNECT; a recovered socket (already back in its rooms) then gets what it missed, in order,
        before anything new, in the same write."""
        self.connected = True
        self.nsp.adapter.add_all(self.id, [self.id])
        if self.client.session.protocol == 3:
            answer = None  # Socket.IO v4: a bare CONNECT
        else:
            answer = {"sid": self.id} if self.pid is None else {"sid": self.id, "pid": self.pid}
        messages = list(self.client.encoder.encode(Packet(PacketType.CONNECT, self.nsp.name, answer)))
        for encoded in missed:
            messages.extend(encoded)
        self.client.write(messages)

    def _on_packet(self, packet: Packet) -> None:
        ptype = self._core.receive(packet)  # an ACK is answered there (an unknown id counted, logged at close)
        if ptype is PacketType.EVENT:
            self._on_event(packet)
        elif ptype is PacketType.DISCONNECT:
            self._on_close(DisconnectReason(Role.SERVER.peer_disconnect))

    def use(self, middleware: Handler) -> Handler:
        """Run ``middleware(event, args)`` on every incoming event before its handlers.

        It may change ``args`` in place, be ``async``, or raise to drop the event:
        the exception then goes to this socket's ``error`` handlers.
        """
        self._packet_middleware.append(middleware)
        return middleware

    def _on_event(self, packet: Packet) -> None:
        event, args = packet.event, packet.args
        self._core.notify_any(self._any, event, args)
        if not self._packet_middleware:
            self._core.dispatch(self, event, args, packet.id)
            return
        def refused(failure: Failure) -> None:
            if isinstance(failure.value, EventRefused) and packet.id is not None:
                self._core.answer(self, failure.value.answer, packet.id)
            if not self.listeners("error"):
                noisy.info(
                    "Socket {sid}: event {event!r} refused: {error}",
                    sid=self.id,
                    event=name_for_log(event),
                    error=failure.getErrorMessage(),
                )
            self._emit_reserved("error", failure.value)

        pending = call_in_turn_now(self._packet_middleware, event, args)
        if pending is None:
            self._core.dispatch(self, event, args, packet.id)  # every middleware passed at once: no Deferred
        else:
            pending.addCallbacks(lambda _: self._core.dispatch(self, event, args, packet.id), refused)

    def _run(self, handler: Handler, args: list[Any], what: str) -> Deferred[Any]:
        return self._core.run(handler, args, what)

    def _emit_reserved(self, event: str, *args: Any) -> None:
        self._core.emit_reserved(self, event, *args)

    def _persist(self) -> None:
        """With recovery on, hand this socket's id, rooms and data to the adapter, for its client to come back
        to (before it leaves its rooms)."""
        if self.pid is not None:
            self.nsp.adapter.persist_session(KeptSession(self.id, self.pid, frozenset(self.rooms), self.data))

    def _on_close(self, reason: DisconnectReason) -> None:
        if not self.connected:
            return
        self._emit_reserved("disconnecting", reason)
        self.connected = False
        self._core.acks.fail_all(Disconnected(reason.value))
        if reason.value in RECOVERABLE_REASONS:
            self._persist()
        self.nsp.adapter.delete_all(self.id)
        self.nsp.remove_socket(self)
        self.client.remove_socket(self)
        log.debug(
            "Socket {sid} left {namespace}: {reason}", sid=self.id, namespace=self.nsp.name, reason=reason.value
        )
        if self._core.unknown_acks:
            noisy.info("Socket {sid} ignored {count} acknowledgements with unknown ids", sid=self.id,
                       count=self._core.unknown_acks)
        self._emit_reserved("disconnect", reason)
        # Handlers often close over their socket: dropping them breaks that cycle,
        # so a closed connection's memory returns at once, not at the next full GC.
        self.off()
        self._packet_middleware.clear()
        self.off_any()
        self.off_any_outgoing()
