"""One socket's event and acknowledgement rules, written once for both roles.

A :class:`SocketCore` is what a server :class:`txrealtime.socketio.Socket` and a
:class:`txrealtime.client.ClientSocket` share: packets come in (:meth:`SocketCore.receive`,
:meth:`SocketCore.dispatch`), packets go out through the :class:`Host` (the socket) each call
names, time comes from the clock it is given. It imports no reactor and does no I/O, and keeps
no reference to its socket (a closed socket is freed at once, not at the next full collection).
The rules:

- an EVENT runs the event's handlers in the order registered; when the peer asked for an
  acknowledgement, the first handler answers, with its return value (a tuple for several values,
  :data:`txrealtime.protocol.acks.NO_ACK` for no answer, an async handler's result once it
  comes) or, if it has a keyword-only ``ack`` parameter, by calling ``ack(*values)``; the other
  handlers answer nothing (their ``ack`` is ``None``);
- a handler that raises or fails is logged (without the event's arguments) and answers nothing;
- an answer goes out as an ACK packet only while the socket is connected;
- an ACK runs the callback registered under its id, once; an unknown id is counted, not answered;
- ``drain`` is the local side's own event: the peer cannot fire it.

Where the roles differ, :class:`Role` says (as h11's ``our_role`` or wsproto's ``ConnectionType``):
which packets the peer may send a socket, the reason a DISCONNECT from the peer gives, and how the
log names a socket.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import gate
from .._reactor import Clock
from .acks import NO_ACK, AckTable, ack_args, ack_callback, takes_ack
from .handlers import Handler, call_handler
from .packets import Packet, PacketType

__all__ = ["Host", "Role", "SocketCore"]

log = Logger(__name__, observer=gate)


class Role(Enum):
    """Which end of a connection a socket is."""

    SERVER = "server"
    """The server's socket of one client in one namespace."""
    CLIENT = "client"
    """The client's socket of one namespace."""

    @property
    def peer_sends(self) -> frozenset[PacketType]:
        """The packet types the peer may send a socket of this role (a server's connection answers CONNECT)."""
        return _PEER_SENDS[self]

    @property
    def peer_disconnect(self) -> str:
        """The reason a socket of this role leaves its namespace for when the peer sends DISCONNECT."""
        return "client namespace disconnect" if self is Role.SERVER else "io server disconnect"

    @property
    def log_prefix(self) -> str:
        """How log lines name a socket of this role (fields ``sid``, ``namespace``)."""
        return "Socket {sid} in {namespace}: " if self is Role.SERVER else "Client socket {namespace}: "


_PEER_SENDS = {
    Role.SERVER: frozenset({PacketType.EVENT, PacketType.BINARY_EVENT, PacketType.ACK, PacketType.BINARY_ACK,
                            PacketType.DISCONNECT}),
    Role.CLIENT: frozenset(PacketType),
}


class Host(Protocol):
    """The socket a core serves: whether it is connected, its handlers, how it sends a packet."""

    @property
    def connected(self) -> bool:
        """Whether the socket is in its namespace now (answers go out only then)."""

    def take_handlers(self, event: str) -> list[Handler]:
        """The handlers to run for one ``event``, in order (``once`` handlers removed: they run this time only)."""

    def send_packet(self, packet: Packet) -> None:
        """Encode one packet and send it to the peer."""


class SocketCore:
    """The event and acknowledgement rules of one socket, for either :class:`Role`."""

    __slots__ = ("_accepts", "_sid", "acks", "namespace", "role", "unknown_acks")

    def __init__(
        self,
        role: Role,
        namespace: str,
        clock: Clock,
        *,
        sid: str | None = None,
        timed_out: Callable[[], object] | None = None,
    ) -> None:
        """The core of a socket in ``namespace``.

        :param role: Which end the socket is.
        :param namespace: The namespace's name, as packets carry it.
        :param clock: What acknowledgement timeouts are scheduled with (a reactor or ``task.Clock``).
        :param sid: The socket's id, for the log (a server socket's).
        :param timed_out: Called each time an acknowledgement times out.
        """
        self.role = role
        """Which end the socket is."""
        self.namespace = namespace
        """The namespace's name."""
        self.acks = AckTable(clock, timed_out)
        """The acknowledgements awaited from the peer."""
        self.unknown_acks = 0
        """How many ACKs came with an id nobody waits for."""
        self._sid = sid
        self._accepts = role.peer_sends

    # -- in ------------------------------------------------------------------------

    def receive(self, packet: Packet) -> PacketType | None:
        """Take one packet from the peer: an ACK is handled here; the type of any other packet the role
        accepts is returned for the socket to act on (``None``: ignore the packet)."""
        ptype = packet.type
        if ptype not in self._accepts:
            return None
        if ptype is PacketType.ACK:
            ack = self.acks.take(packet.id) if packet.id is not None else None
            if ack is None:
                self.unknown_acks += 1
            else:
                self.run(ack.answered, [packet.args], "acknowledgement callback").addErrback(lambda _: None)
            return None
        return ptype

    def notify_any(self, listeners: list[Handler], event: str, args: list[Any]) -> None:
        """Run the catch-all ``listeners`` of an incoming event."""
        for listener in list(listeners):
            self.run(listener, [event, *args], "catch-all listener").addErrback(lambda _: None)

    def dispatch(self, host: Host, event: str, args: list[Any], ack_id: int | None) -> None:
        """Run ``host``'s handlers of an incoming ``event``; the first answers ``ack_id`` (see the module's rules)."""
        if not host.connected or event == "drain":
            return
        for index, handler in enumerate(host.take_handlers(event)):
            answers = index == 0 and ack_id is not None
            try:
                if takes_ack(handler):
                    ack = ack_callback(lambda values: self.answer(host, values, ack_id)) if answers else None
                    result = handler(*args, ack=ack)
                    answers = False
                else:
                    result = handler(*args)
            except Exception:
                self._handler_failed(Failure(), event)
                continue
            if isinstance(result, Deferred) or inspect.iscoroutine(result):
                d = result if isinstance(result, Deferred) else ensureDeferred(result)
                d.addErrback(self._handler_failed, event)
                if answers:
                    d.addCallback(lambda result: self.answer(host, result, ack_id))
                d.addErrback(lambda _: None)
            elif answers:
                self.answer(host, result, ack_id)

    def emit_reserved(self, host: Host, event: str, *args: Any) -> None:
        """Run ``host``'s handlers of a reserved event (``connect``, ``disconnect``, ``error``…)."""
        for handler in host.take_handlers(event):
            call_handler(handler, *args).addErrback(self._handler_failed, event).addErrback(lambda _: None)

    def run(self, handler: Handler, args: list[Any], what: str) -> Deferred[Any]:
        """Call ``handler(*args)``; a failure is logged (``what`` names the handler), and the Deferred
        returned fails with it."""

        def failed(failure: Failure) -> Failure:
            log.failure(self.role.log_prefix + "{what} failed", failure, sid=self._sid, namespace=self.namespace,
                        what=what)
            return failure

        return call_handler(handler, *args).addErrback(failed)

    def _handler_failed(self, failure: Failure, event: str) -> Failure:
        log.failure(self.role.log_prefix + "handler of {event!r} failed", failure, sid=self._sid,
                    namespace=self.namespace, event=event)
        return failure

    # -- out -----------------------------------------------------------------------

    def answer(self, host: Host, result: Any, ack_id: int | None) -> None:
        """Answer the peer's ``ack_id`` with a handler's result (nothing for ``NO_ACK`` or when disconnected)."""
        if ack_id is not None and result is not NO_ACK and host.connected:
            host.send_packet(Packet(PacketType.ACK, self.namespace, ack_args(result), ack_id))

    def event(self, event: str, args: tuple[Any, ...], ack_id: int | None = None) -> Packet:
        """The EVENT packet of an emit (its ack id from :attr:`acks`)."""
        return Packet(PacketType.EVENT, self.namespace, [event, *args], ack_id)

    def notify_outgoing(self, listeners: list[Handler], packet: Packet) -> None:
        """Run the outgoing catch-all ``listeners`` for an EVENT packet about to go out."""
        if listeners and packet.type is PacketType.EVENT:
            for listener in list(listeners):
                self.run(listener, [packet.event, *packet.args], "outgoing catch-all listener").addErrback(
                    lambda _: None
                )
