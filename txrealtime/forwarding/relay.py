"""WebSocket connections whose session is on another node: both ends of the relay.

The node that accepted the connection keeps it and relays (a
:class:`SocketRelay`): each packet the client sends goes to the owner as a
:class:`txrealtime.forwarding.wire.Packets` message, each one the owner
sends (:class:`txrealtime.forwarding.wire.Outgoing`) is written to the
client. On the owner the session sees the connection as an ordinary
:class:`txrealtime.engineio.interfaces.Transport`, a :class:`RemoteTransport`:
the probe, the upgrade, heartbeats, binary messages and closing work as
they do locally. Either end that ends says so (``Closed``, ``Ended``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..engineio.elsewhere import RelayedSocket
from ..engineio.events import CloseReason
from ..engineio.packets import Packet
from ..engineio.session import Session
from .wire import Closed, Ended, Message, Outgoing, Packets, encode_packets

__all__ = ["RemoteTransport", "Send", "SocketRelay"]

Send = Callable[[str, Message], bool]
"""Sends a message to the node with that uid; ``False`` if the link is down."""


class RemoteTransport:
    """On the owner: the session's WebSocket, held by node ``node`` under ``id``."""

    name = "websocket"

    def __init__(self, send: Send, me: str, node: str, id: int, forget: Callable[[RemoteTransport], object]) -> None:
        self.node = node
        self.id = id
        self.session: Session | None = None
        self._send = send
        self._me = me
        self._forget = forget
        self._open = True

    @property
    def writable(self) -> bool:
        return self._open

    def send(self, packets: list[Packet]) -> None:
        if self._open and not self._send(self.node, Outgoing(self._me, self.id, encode_packets(packets))):
            self.lost(CloseReason.TRANSPORT_ERROR, f"link to node {self.node} down")

    def close(self) -> None:
        """The session closed it (or gave up the upgrade): tell the node holding the connection."""
        if self._open:
            self._open = False
            self._forget(self)
            self._send(self.node, Ended(self._me, self.id, CloseReason.TRANSPORT_CLOSE.value, "closed by the owner"))

    def receive(self, packets: list[Packet]) -> None:
        """Packets the client sent."""
        session = self.session
        for packet in packets:
            if session is None or session.closed or not self._open:
                return
            session.receive(packet, self)

    def lost(self, reason: CloseReason, description: str) -> None:
        """The connection ended on the other node, or that node is gone."""
        if not self._open:
            return
        self._open = False
        self._forget(self)
        if self.session is not None:
            self.session.transport_closed(self, reason, description)


class SocketRelay:
    """On the node holding the connection: relays between ``socket`` and the session on node ``owner``."""

    def __init__(
        self, send: Send, me: str, owner: str, id: int, socket: RelayedSocket, max_buffer: int,
        forget: Callable[[SocketRelay], object],
    ) -> None:
        self.owner = owner
        self.id = id
        self.socket: RelayedSocket | None = socket
        self._send = send
        self._me = me
        self._max_buffer = max_buffer
        self._forget = forget
        self._waiting: list[Packet] = []
        self._waiting_bytes = 0

    # -- Relay: what the connection reports --------------------------------------------------

    def opened(self) -> None:
        self.writable()

    def receive(self, packet: Packet) -> None:
        if self.socket is not None and not self._send(self.owner, Packets(self._me, self.id, encode_packets([packet]))):
            self.end(f"link to node {self.owner} down")

    def writable(self) -> None:
        socket = self.socket
        if socket is not None and self._waiting and socket.writable:
            waiting, self._waiting, self._waiting_bytes = self._waiting, [], 0
            socket.send(waiting)

    def transport_closed(self, reason: CloseReason, description: str) -> None:
        if self.socket is None:
            return
        self.socket = None
        self._forget(self)
        self._send(self.owner, Closed(self._me, self.id, reason.value, description))

    # -- what the owner sends ------------------------------------------------------------------

    def deliver(self, packets: list[Packet]) -> None:
        """Write packets from the owner, or keep them while the client does not read (up to ``max_buffer``)."""
        socket = self.socket
        if socket is None:
            return
        if socket.writable and not self._waiting:
            socket.send(packets)
            return
        self._waiting.extend(packets)
        self._waiting_bytes += sum(len(p.data) for p in packets)
        if self._waiting_bytes > self._max_buffer:
            self._waiting = []
            self.socket = None
            self._forget(self)
            self._send(self.owner, Closed(self._me, self.id, CloseReason.TRANSPORT_ERROR.value,
                                          f"outgoing buffer over {self._max_buffer} bytes (client not reading)"))
            socket.abort()

    def end(self, description: str, tell_owner: bool = False) -> None:
        """Close the client's connection: the owner closed the session's transport, or is gone."""
        socket, self.socket = self.socket, None
        if socket is None:
            return
        self._forget(self)
        socket.relay = None
        if tell_owner:
            self._send(self.owner, Closed(self._me, self.id, CloseReason.TRANSPORT_ERROR.value, description))
        socket.close()
