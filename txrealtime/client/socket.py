"""One namespace over a manager's connection: Node's client ``socket.ts``.

A :class:`ClientSocket` emits (buffering while disconnected), awaits and
answers acknowledgements, runs handlers, and recovers its state on
reconnection when the server keeps it. It sees its manager only through
:class:`ManagerLink`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import gate
from .._reactor import Clock
from ..socketio.acks import AckTable
from ..socketio.emitter import (
    NO_ACK,
    CatchAll,
    EventEmitter,
    Handler,
    ack_args,
    ack_callback,
    call_handler,
    check_event,
    takes_ack,
)
from ..socketio.errors import AckTimeout
from ..socketio.packets import Packet, PacketType, encode
from .events import ClientEvent, Connected, ConnectError, Disconnected, NotConnected

__all__ = ["ClientSocket", "ManagerLink"]

log = Logger(observer=gate)


class ManagerLink(Protocol):
    """What a socket needs from its manager (``socket.io``)."""

    @property
    def reactor(self) -> Clock: ...

    def _write(self, messages: list[str | bytes]) -> None: ...

    def _attach(self, socket: ClientSocket) -> None: ...

    def _detach(self, socket: ClientSocket) -> None: ...

    def _publish(self, event: ClientEvent) -> None: ...

    def _protocol_error(self, description: str) -> None: ...


class ClientSocket(EventEmitter, CatchAll):
    """One namespace over a :class:`Manager`'s connection (Node's client ``Socket``).

    Reserved events: ``connect()``, ``disconnect(reason)``, ``connect_error(error)``.
    """

    def __init__(self, manager: ManagerLink, namespace: str, auth: Any = None) -> None:
        super().__init__()
        self.io = manager
        self.nsp = namespace
        self.auth = auth
        self.id: str | None = None
        self.connected = False
        self.active = False
        """Whether the socket wants to be connected (it reconnects with the manager)."""
        self._send_buffer: list[Packet] = []
        self._acks = AckTable(manager.reactor)
        self.recovered = False
        """Whether the last connection recovered the previous socket (server with connection state recovery)."""
        self._pid: str | None = None
        self._last_offset: str | None = None
        CatchAll.__init__(self)
        self._waiting: list[Deferred[ClientSocket]] = []

    def __repr__(self) -> str:
        return f"<ClientSocket {self.nsp} {'connected' if self.connected else 'disconnected'}>"

    @property
    def disconnected(self) -> bool:
        return not self.connected

    # -- connecting ----------------------------------------------------------------

    def connect(self) -> Deferred[ClientSocket]:
        """Connect (opening the manager if needed); fire when the namespace accepted us.

        Fails with :class:`ConnectError` if the server refuses the namespace, or
        :class:`NotConnected` if the connection cannot be made and reconnection gives up.
        """
        if self.connected:
            return succeed(self)
        d: Deferred[ClientSocket] = Deferred()
        self._waiting.append(d)
        if not self.active:
            self.active = True
            self.io._attach(self)
        return d

    open = connect

    def disconnect(self) -> ClientSocket:
        """Leave the namespace; the manager closes the connection once no socket is left."""
        if self.connected:
            self._packet(Packet(PacketType.DISCONNECT, self.nsp))
        was_active, self.active = self.active, False
        self._on_close("io client disconnect")
        if was_active:
            self.io._detach(self)
        self._fail_waiting(NotConnected("disconnected by the client"))
        return self

    close = disconnect

    # -- emitting ------------------------------------------------------------------

    def emit(self, event: str, *args: Any, ack: Callable[..., object] | None = None) -> bool:
        """Emit ``event``; buffered until connected. ``ack(*answer)`` gets the server's acknowledgement."""
        check_event(event)
        ack_id = None
        if ack is not None:
            callback = ack
            ack_id = self._acks.register(lambda answer: callback(*answer))
        self._emit(event, args, ack_id)
        return True

    def send(self, *args: Any) -> bool:
        return self.emit("message", *args)

    def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> Deferred[Any]:
        """Emit and fire with the server's answer (one value, a tuple of several, or ``None``).

        Fails with :class:`AckTimeout` after ``timeout`` seconds, or
        :class:`NotConnected` if the socket disconnects first.
        """
        check_event(event)
        ack_id, result = self._acks.deferred(timeout)

        def unsent(failure: Failure) -> Failure:
            if failure.check(AckTimeout):  # not sent by now: it never will be
                self._send_buffer = [p for p in self._send_buffer if p.id != ack_id]
            return failure

        self._emit(event, args, ack_id)
        return result.addErrback(unsent)

    def _emit(self, event: str, args: tuple[Any, ...], ack_id: int | None) -> None:
        packet = Packet(PacketType.EVENT, self.nsp, [event, *args], ack_id)
        if self.connected:
            self._notify_outgoing(packet)
            self._packet(packet)
        else:
            self._send_buffer.append(packet)

    def _notify_outgoing(self, packet: Packet) -> None:
        for listener in list(self._any_outgoing):
            self._run(listener, [packet.event, *packet.args], "outgoing catch-all listener")

    def _packet(self, packet: Packet) -> None:
        self.io._write(encode(packet))

    # -- from the manager -----------------------------------------------------------

    def _engine_open(self) -> None:
        """The connection is (re)open: ask for the namespace."""
        auth = self.auth() if callable(self.auth) else self.auth
        if self._pid is not None and (auth is None or isinstance(auth, dict)):
            # Ask for the previous socket back (connection state recovery), as Node's client does.
            recover = {"pid": self._pid, "offset": self._last_offset}
            auth = {**{k: v for k, v in recover.items() if v is not None}, **(auth or {})}
        self._packet(Packet(PacketType.CONNECT, self.nsp, auth if auth is not None else None))

    def _on_packet(self, packet: Packet) -> None:
        ptype = packet.type
        if ptype is PacketType.CONNECT:
            if isinstance(packet.data, dict) and isinstance(packet.data.get("sid"), str):
                pid = packet.data.get("pid")
                self._on_connect(packet.data["sid"], pid if isinstance(pid, str) else None)
            else:
                self.io._protocol_error("CONNECT without a sid")
        elif ptype is PacketType.CONNECT_ERROR:
            data = packet.data
            error = (
                ConnectError(str(data.get("message", "")), data.get("data"))
                if isinstance(data, dict)
                else ConnectError(str(data))
            )
            self.active = False
            self.io._detach(self)
            self._emit_reserved("connect_error", error)
            self._fail_waiting(error)
        elif ptype is PacketType.EVENT:
            if self.connected:
                self._on_event(packet)
        elif ptype is PacketType.ACK:
            ack = self._acks.take(packet.id) if packet.id is not None else None
            if ack is not None:
                self._run(ack.answered, [packet.args], "acknowledgement callback")
        elif ptype is PacketType.DISCONNECT:
            self.active = False
            self._on_close("io server disconnect")
            self.io._detach(self)

    def _on_connect(self, sid: str, pid: str | None = None) -> None:
        self.id = sid
        self.recovered = pid is not None and pid == self._pid
        self._pid = pid
        self.connected = True
        buffered, self._send_buffer = self._send_buffer, []
        for packet in buffered:
            self._notify_outgoing(packet)
            self._packet(packet)
        self.io._publish(Connected(self.nsp, sid))
        self._emit_reserved("connect")
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(self)

    def _on_event(self, packet: Packet) -> None:
        event, args = packet.event, packet.args
        if self._pid is not None and args and isinstance(args[-1], str):
            self._last_offset = args[-1]  # the server's offset, for a recovery
        for listener in list(self._any):
            self._run(listener, [event, *args], "catch-all listener")
        ack_id = packet.id
        for index, handler in enumerate(self._take(event)):
            answers = index == 0 and ack_id is not None
            if takes_ack(handler):
                ack = ack_callback(lambda values: self._answer(values, ack_id)) if answers else None
                d = self._run(functools.partial(handler, ack=ack), args, f"handler of {event!r}")
                answers = False
            else:
                d = self._run(handler, args, f"handler of {event!r}")
            if answers:
                d.addCallback(self._answer, ack_id)
                d.addErrback(lambda _: None)

    def _answer(self, result: Any, ack_id: int | None) -> None:
        if self.connected and ack_id is not None and result is not NO_ACK:
            self._packet(Packet(PacketType.ACK, self.nsp, ack_args(result), ack_id))

    def _on_close(self, reason: str) -> None:
        """The namespace connection ended (the socket may reconnect if still active)."""
        if not self.active:
            self._acks.fail_all(NotConnected(reason))
            self._send_buffer = []
        if not self.connected:
            return
        self.connected = False
        self.id = None
        self.io._publish(Disconnected(self.nsp, reason))
        self._emit_reserved("disconnect", reason)

    def _fail_waiting(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(error)

    def _run(self, handler: Handler, args: list[Any], what: str) -> Deferred[Any]:
        d = call_handler(handler, *args)

        def failed(failure: Failure) -> Failure:
            log.failure("Client socket {namespace}: {what} failed", failure, namespace=self.nsp, what=what)
            return failure

        return d.addErrback(failed)

    def _emit_reserved(self, event: str, *args: Any) -> None:
        for handler in self._take(event):
            self._run(handler, list(args), f"{event} handler").addErrback(lambda _: None)
