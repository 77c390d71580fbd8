"""One Engine.IO session speaking Socket.IO: Node's ``client.ts``.

A :class:`Connection` decodes the session's messages into Socket.IO packets,
routes them to one :class:`txrealtime.socketio.socket.Socket` per namespace
it joined, and enforces the per-connection limits (attachments, namespaces,
time to join). The server is seen through :class:`ConnectionServer`.

A client on an Engine.IO v3 session speaks Socket.IO protocol v4
(``socket.io-client`` 2.x), as Node's ``allowEIO3`` serves it: it joins the
main namespace without asking, when its session opens; its CONNECT packets
carry no payload but a query string in the namespace
(``0/chat?token=abc,``), which becomes the socket's ``handshake.auth``.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._lazy import deprecated_aliases
from .._logging import Throttle, gate, name_for_log
from .._reactor import Clock, DelayedCall, cancel
from ..engineio import CloseReason, Session, SessionManager
from ..protocol.packets import DecodeError, Packet, PacketType
from ..protocol.parser import DecoderLimits, Encoder, Parser
from .errors import DisconnectReason
from .namespace import Namespace
from .socket import Socket

__all__ = ["Connection", "ConnectionServer"]

log = Logger(__name__, observer=gate)
noisy = Throttle(log)
"""For lines a hostile client could make us repeat."""


class ConnectionServer(Protocol):
    """What a connection needs from its server: limits, the clock, and finding namespaces."""

    @property
    def reactor(self) -> Clock: ...

    @property
    def manager(self) -> SessionManager: ...

    @property
    def parser(self) -> Parser: ...

    @property
    def encoder(self) -> Encoder: ...

    connect_timeout: float
    max_attachments: int
    attachment_timeout: float
    max_namespaces_per_client: int

    def namespace_for(self, name: str, auth: Any) -> Deferred[Namespace | None]:
        """The namespace a CONNECT to ``name`` joins, ``None`` if there is none."""


class Connection:
    """One Engine.IO session speaking Socket.IO: decodes packets, owns a socket per namespace (Node's ``Client``;
    ``Client`` here too until 0.x, a deprecated alias)."""

    def __init__(self, server: ConnectionServer, session: Session) -> None:
        """The connection of ``session``, which must join a namespace in time.

        :param server: The Socket.IO server the session came to.
        :param session: The Engine.IO session; its client must join a namespace
            within the server's ``connect_timeout``.
        """
        self.server = server
        """The Socket.IO server."""
        self.session = session
        """The Engine.IO session (Node's ``socket.conn``)."""
        self.id = session.sid
        """The session's id."""
        self.encoder = server.encoder
        """The server's packet encoder."""
        self.decoder = server.parser.decoder(
            DecoderLimits(server.max_attachments, max_bytes=server.manager.options.max_payload)
        )
        """Decodes this connection's packets, attachments included, within the server's limits."""
        self.sockets: dict[str, Socket] = {}
        """Its sockets, by namespace name."""
        self._connecting: set[str] = set()
        self.closed = False
        """Whether the session closed."""
        self._connect_timer: DelayedCall | None = server.reactor.callLater(
            server.connect_timeout, self._connect_timed_out
        )
        self._attachment_timer: DelayedCall | None = None
        if session.protocol == 3:
            self._connect("/", {})  # Socket.IO v4: every client is in the main namespace

    def __repr__(self) -> str:
        return f"<Connection {self.id} {sorted(self.sockets)}>"

    # -- writing -----------------------------------------------------------

    def write(self, messages: list[str | bytes], volatile: bool = False, compress: bool = True) -> None:
        """Send encoded packets; a ``volatile`` one is dropped if the transport cannot take it now (so
        always while the session's queue is over its high-water mark: a writable transport empties it)."""
        if self.closed:
            return
        if volatile and not self.session.transport.writable:
            return
        self.session.send_many(messages, compress)

    def on_drain(self) -> None:
        """The session's queue went over its high-water mark and is now written out: each socket emits ``drain``."""
        for socket in list(self.sockets.values()):
            socket._emit_reserved("drain")

    def disconnect(self) -> None:
        """Disconnect every socket and close the connection."""
        for socket in list(self.sockets.values()):
            socket.disconnect()
        self.session.close(CloseReason.FORCED_CLOSE, "disconnect(close=True)")

    # -- reading -------------------------------------------------------------

    def on_message(self, data: str | bytes) -> None:
        """An Engine.IO message of this session: decode it (a bad one closes the session) and dispatch the packet."""
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
        name, auth = packet.namespace, packet.data
        if self.session.protocol == 3:
            name, auth = _namespace_query(name)
        socket = self.sockets.get(name)
        if packet.type is PacketType.CONNECT:
            if socket is not None or name in self._connecting:
                self._protocol_error(f"already connected to {name}")
            else:
                self._connect(name, auth)
        elif packet.type is PacketType.CONNECT_ERROR:
            self._protocol_error("clients do not send CONNECT_ERROR")
        elif socket is not None:
            socket._on_packet(packet)
        else:
            # A packet racing the socket's disconnection: nothing to deliver it to.
            log.debug("Connection {id}: {type} for {nsp}, which it is not in", id=self.id, type=packet.type.name,
                      nsp=name_for_log(name))

    def _protocol_error(self, description: str) -> None:
        # The session's close line says why at info level; this one is for debugging.
        log.debug("Connection {id} broke the protocol: {description}", id=self.id, description=description)
        self.session.close(CloseReason.PARSE_ERROR, description)

    def _connect(self, name: str, auth: Any) -> None:
        limit = self.server.max_namespaces_per_client
        if len(self.sockets) + len(self._connecting) >= limit:
            self.refuse(name, {"message": f"Too many namespaces (limit {limit})"})
            return
        self._connecting.add(name)
        d = self.server.namespace_for(name, auth)

        def found(namespace: Namespace | None) -> Deferred[Any] | None:
            if self.closed:
                return None
            if namespace is None:
                self.refuse(name, {"message": "Invalid namespace"})
                return None
            return namespace.add_client(self, auth)

        def failed(failure: Failure) -> None:
            log.failure("Looking up namespace {name} failed", failure, name=name_for_log(name))
            self.refuse(name, {"message": "Internal server error"})

        d.addCallback(found).addErrback(failed)
        d.addBoth(lambda _: self._connecting.discard(name))

    def refuse(self, name: str, error: Any) -> None:
        """Answer a CONNECT with CONNECT_ERROR carrying ``error``: ``{"message": ..., "data"?: ...}``, or
        what a middleware refused a Socket.IO v4 client with."""
        message = error.get("message") if isinstance(error, dict) else error
        noisy.info("Connection {id} refused in {namespace}: {message}", id=self.id, namespace=name_for_log(name),
                   message=name_for_log(str(message)))
        self.write(self.encoder.encode(Packet(PacketType.CONNECT_ERROR, name, error)))

    def socket_added(self, socket: Socket) -> None:
        """``socket`` joined its namespace (called by the namespace): its packets go to it from now on."""
        self.sockets[socket.nsp.name] = socket
        self._connect_timer = cancel(self._connect_timer)

    def remove_socket(self, socket: Socket) -> None:
        """``socket`` left its namespace (called by the socket)."""
        if self.sockets.get(socket.nsp.name) is socket:
            del self.sockets[socket.nsp.name]

    def _connect_timed_out(self) -> None:
        self._connect_timer = None
        if not self.sockets:
            log.debug("Connection {id} joined no namespace in time", id=self.id)
            self.session.close(CloseReason.FORCED_CLOSE, "no namespace joined before connect_timeout")

    def on_close(self, reason: CloseReason) -> None:
        """The session closed for ``reason``: every socket disconnects with that reason."""
        self.closed = True
        self._connect_timer = cancel(self._connect_timer)
        self._attachment_timer = cancel(self._attachment_timer)
        self.decoder.reset()  # a hoarded binary packet goes now, not when the objects are collected
        why = DisconnectReason(reason.value)
        for socket in list(self.sockets.values()):
            socket._on_close(why)



__getattr__ = deprecated_aliases(__name__, {"Client": "Connection"})
"""Old names, still importable with a ``DeprecationWarning``: ``Client`` is :class:`Connection`."""


def _namespace_query(namespace: str) -> tuple[str, dict[str, str | list[str]]]:
    """Split a Socket.IO v4 namespace into its name and query (Node's ``url.parse(nsp, true)``).

    ``"/chat?a=1&b=2&b=3"`` gives ``("/chat", {"a": "1", "b": ["2", "3"]})``, as ``querystring.parse`` does.
    """
    path, _, rest = namespace.partition("?")
    query = parse_qs(rest.partition("#")[0], keep_blank_values=True, errors="replace")
    return path.partition("#")[0], {k: v[0] if len(v) == 1 else v for k, v in query.items()}
