"""One namespace over a manager's connection: Node's client ``socket.ts``.

A :class:`ClientSocket` emits (buffering while disconnected), awaits and
answers acknowledgements, runs handlers, and recovers its state on
reconnection when the server keeps it. It sees its manager only through
:class:`ManagerLink`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed

from .._reactor import Clock
from ..protocol.acks import ack_deferred, node_callbacks
from ..protocol.dispatch import Role, SocketCore
from ..protocol.errors import AckTimeout
from ..protocol.handlers import CatchAll, EventEmitter, Flagged, Handler, check_event
from ..protocol.packets import Packet, PacketType
from .events import ClientEvent, Connected, ConnectError, Disconnected, NotConnected

__all__ = ["ClientEmitter", "ClientSocket", "ManagerLink"]


class ManagerLink(Protocol):
    """What a socket needs from its manager (``socket.io``), and what an application uses of it."""

    @property
    def reactor(self) -> Clock:
        """What acknowledgement timeouts are scheduled with."""

    @property
    def transport(self) -> str | None:
        """The current transport's name (``polling`` or ``websocket``)."""

    def subscribe(self, callback: Callable[[ClientEvent], object]) -> Callable[[], None]:
        """Call ``callback`` with every client event; returns a function that unsubscribes."""

    def close(self) -> Deferred[None]:
        """Leave every namespace and close the connection; fires once it is gone."""

    @property
    def writable(self) -> bool:
        """Whether the connection can take a packet right now (for volatile emits)."""

    def send_packet(self, packet: Packet) -> None:
        """Encode ``packet`` with the connection's parser and send it (dropped while the connection is not
        open)."""

    @property
    def buffered(self) -> int:
        """Bytes of messages waiting to go out on the connection."""

    @property
    def needs_drain(self) -> bool:
        """Whether :attr:`buffered` went over the high-water mark and was not written out since."""

    def attach(self, socket: ClientSocket) -> None:
        """``socket`` wants to be connected: ask for its namespace now if the connection is open, else open it."""

    def detach(self, socket: ClientSocket) -> None:
        """``socket`` no longer wants to be connected: close the connection if no socket does."""

    def publish(self, event: ClientEvent) -> None:
        """Call the subscribers (see :meth:`subscribe`) with ``event``."""

    def protocol_error(self, description: str) -> None:
        """The server broke the protocol (``description`` says how): close the connection for ``parse error``."""


@dataclass(slots=True)
class _Queued:
    event: str
    args: tuple[Any, ...]
    ack: Callable[..., object] | None
    timeout: float | None
    tries: int = 0
    pending: bool = False


class ClientEmitter(Flagged["ClientSocket"]):
    """``socket.volatile`` / ``socket.timeout(s)``: emit with flags, as in Node's client."""

    def emit(self, event: str, *args: Any, ack: Callable[..., object] | None = None) -> bool:
        """Emit ``event``; with a timeout (here or the socket's ``ack_timeout``), ``ack(err, *answer)``."""
        check_event(event)
        timeout = self._timeout if self._timeout is not None else self._socket.ack_timeout
        return self._send(event, args, ack, node_style=timeout is not None, timeout=timeout)

    def emit_with_ack(self, event: str, *args: Any) -> Deferred[Any]:
        """Emit and fire with the server's answer (one value, a tuple of several, or ``None``)."""
        check_event(event)
        result, answered, failed = ack_deferred()

        def done(error: Exception | None, *answer: Any) -> None:
            if error is not None:
                failed(error)
            else:
                answered(list(answer))

        timeout = self._timeout if self._timeout is not None else self._socket.ack_timeout
        self._send(event, args, done, node_style=True, timeout=timeout)
        return result

    def _send(
        self, event: str, args: tuple[Any, ...], ack: Callable[..., object] | None, node_style: bool,
        timeout: float | None,
    ) -> bool:
        socket = self._socket
        if socket.retries and not self._volatile:
            # Node calls the ack of a queued emit as ack(err, *answer) whatever its style.
            socket._enqueue(_Queued(event, args, ack, self._timeout))
            return True
        ack_id = None
        if ack is not None:
            callback = ack
            if node_style:
                ack_id = socket._register(*node_callbacks(callback), timeout)
            else:
                ack_id = socket._register(lambda answer: callback(*answer), None, None)
        socket._emit(event, args, ack_id, self._volatile)
        return not socket.io.needs_drain


class ClientSocket(EventEmitter, CatchAll):
    """One namespace over a :class:`Manager`'s connection (Node's client ``Socket``).

    Reserved events: ``connect()``, ``disconnect(reason)``, ``connect_error(error)``.
    ``manager.socket(namespace)`` makes them.
    """

    def __init__(
        self, manager: ManagerLink, namespace: str, auth: Any = None, *, retries: int = 0,
        ack_timeout: float | None = None,
    ) -> None:
        """A socket, not connected (``manager.socket(namespace)`` makes them).

        :param manager: The manager whose connection it shares.
        :param namespace: The namespace it joins, starting with ``/``.
        :param auth: What it sends with its CONNECT (Node's ``auth``): a value, or
            a callable returning one, called at each (re)connection.
        :param retries: How many times an emit is sent again when it is not
            acknowledged (Node's ``retries``).
        :param ack_timeout: Seconds to wait for an acknowledgement when the emit
            names no timeout (Node's ``ackTimeout``); ``None``: no limit.
        """
        super().__init__()
        self.io = manager
        """The manager (Node's ``socket.io``)."""
        self.nsp = namespace
        """The namespace's name."""
        self.auth = auth
        """What the next CONNECT sends (a value, or a callable returning one)."""
        self.retries = retries
        """How many times an emit is sent again when it is not acknowledged (Node's ``retries``)."""
        self.ack_timeout = ack_timeout
        """Seconds to wait for an acknowledgement when the emit names no timeout (Node's ``ackTimeout``)."""
        self._queue: deque[_Queued] = deque()
        self._retrying: set[Deferred[ClientSocket]] = set()
        self._ever_connected = False
        self.id: str | None = None
        """The socket's id once connected, given by the server."""
        self.connected = False
        """Whether the socket is in its namespace now."""
        self.active = False
        """Whether the socket wants to be connected (it reconnects with the manager)."""
        self._send_buffer: list[Packet] = []
        CatchAll.__init__(self)
        self._core = SocketCore(Role.CLIENT, namespace, manager.reactor)
        self.recovered = False
        """Whether the last connection recovered the previous socket (server with connection state recovery)."""
        self._pid: str | None = None
        self._last_offset: str | None = None
        self._waiting: list[Deferred[ClientSocket]] = []

    def __repr__(self) -> str:
        return f"<ClientSocket {self.nsp} {'connected' if self.connected else 'disconnected'}>"

    @property
    def disconnected(self) -> bool:
        """Not :attr:`connected`."""
        return not self.connected

    # -- connecting ----------------------------------------------------------------

    def connect(self, *, retry: bool = False) -> Deferred[ClientSocket]:
        """Connect (opening the manager if needed); fire when the namespace accepted us.

        Fails with :class:`ConnectError` if the server refuses the namespace,
        and with :class:`NotConnected` (a :class:`ConnectError`) if the
        attempt to reach the server fails or exceeds the manager's ``timeout``
        (20 s) — or, with ``retry``, once reconnection gives up. A socket that
        never connected stops trying when its last waiting ``connect()`` failed.
        """
        if self.connected:
            return succeed(self)
        d: Deferred[ClientSocket] = Deferred()
        self._waiting.append(d)
        if retry:
            self._retrying.add(d)
        if not self.active:
            self.active = True
            self.io.attach(self)
        return d

    open = connect

    def disconnect(self) -> ClientSocket:
        """Leave the namespace; the manager closes the connection once no socket is left."""
        if self.connected:
            self.send_packet(Packet(PacketType.DISCONNECT, self.nsp))
        was_active, self.active = self.active, False
        self._on_close("io client disconnect")
        if was_active:
            self.io.detach(self)
        self._fail_waiting(NotConnected("disconnected by the client"))
        return self

    close = disconnect

    # -- emitting ------------------------------------------------------------------

    def emit(self, event: str, *args: Any, ack: Callable[..., object] | None = None) -> bool:
        """Emit ``event``; buffered until connected. ``ack(*answer)`` gets the server's acknowledgement.

        With the socket's ``ack_timeout``, ``ack`` is called Node-style as
        ``ack(err, *answer)``, ``err`` an :class:`AckTimeout` (or
        :class:`NotConnected`) or ``None``. With ``retries``, the emit waits
        in a queue and is sent again until the server acknowledges it.

        ``False`` when the connection's outgoing messages are over its high-water mark (the packet is
        queued all the same): wait for the socket's ``drain`` event before emitting more.
        """
        return ClientEmitter(self).emit(event, *args, ack=ack)

    @property
    def buffered(self) -> int:
        """Bytes of messages waiting to go out on the connection (shared by its namespaces)."""
        return self.io.buffered

    def send(self, *args: Any) -> bool:
        """Emit a ``message`` event."""
        return self.emit("message", *args)

    def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> Deferred[Any]:
        """Emit and fire with the server's answer (one value, a tuple of several, or ``None``).

        Fails with :class:`AckTimeout` after ``timeout`` seconds (default: the
        socket's ``ack_timeout``), or :class:`NotConnected` if the socket
        disconnects first.
        """
        return ClientEmitter(self, timeout=timeout).emit_with_ack(event, *args)

    @property
    def volatile(self) -> ClientEmitter:
        """Emit only if the connection can take it now: dropped, not buffered, while disconnected."""
        return ClientEmitter(self, volatile=True)

    def timeout(self, seconds: float) -> ClientEmitter:
        """Emit with an acknowledgement that fails with :class:`AckTimeout` after ``seconds``."""
        return ClientEmitter(self, timeout=seconds)

    def _register(
        self, answered: Callable[[list[Any]], object], failed: Callable[[Exception], object] | None,
        timeout: float | None,
    ) -> int:
        """A new ack id; on a timeout its packet, if still buffered, is dropped too (it will never count)."""
        if failed is None:
            return self._core.acks.register(answered)
        ack_id = -1

        def fail(error: Exception) -> None:
            if isinstance(error, AckTimeout):
                self._send_buffer = [p for p in self._send_buffer if p.id != ack_id]
            failed(error)

        ack_id = self._core.acks.register(answered, fail, timeout)
        return ack_id

    def _emit(self, event: str, args: tuple[Any, ...], ack_id: int | None, volatile: bool = False) -> None:
        packet = self._core.event(event, args, ack_id)
        if self.connected and self.io.writable:
            self._notify_outgoing(packet)
            self.send_packet(packet)
        elif volatile:
            if ack_id is not None:
                self._core.acks.take(ack_id)
        elif self.connected:
            self._notify_outgoing(packet)
            self.send_packet(packet)
        else:
            self._send_buffer.append(packet)

    # -- the retry queue (``retries``): one packet in flight, resent until acknowledged ------

    def _enqueue(self, queued: _Queued) -> None:
        self._queue.append(queued)
        self._drain_queue()

    def _drain_queue(self, force: bool = False) -> None:
        if not self.connected or not self._queue:
            return
        queued = self._queue[0]
        if queued.pending and not force:
            return
        queued.pending = True
        queued.tries += 1
        timeout = queued.timeout if queued.timeout is not None else self.ack_timeout
        ack_id = self._register(
            lambda answer: self._queue_done(queued, None, answer),
            lambda error: self._queue_done(queued, error, []),
            timeout,
        )
        self._emit(queued.event, queued.args, ack_id)

    def _queue_done(self, queued: _Queued, error: Exception | None, answer: list[Any]) -> None:
        if not self._queue or self._queue[0] is not queued:
            return  # acknowledged already
        if error is None:
            self._queue.popleft()
            if queued.ack is not None:
                queued.ack(None, *answer)
        elif queued.tries > self.retries:
            self._queue.popleft()
            if queued.ack is not None:
                queued.ack(error)
        queued.pending = False
        self._drain_queue()

    def _notify_outgoing(self, packet: Packet) -> None:
        self._core.notify_outgoing(self._any_outgoing, packet)

    def send_packet(self, packet: Packet) -> None:
        """Send ``packet`` on the manager's connection (no catch-all listener runs: :meth:`emit` runs them)."""
        self.io.send_packet(packet)

    # -- from the manager -----------------------------------------------------------

    def _engine_open(self) -> None:
        """The connection is (re)open: ask for the namespace."""
        auth = self.auth() if callable(self.auth) else self.auth
        if self._pid is not None and (auth is None or isinstance(auth, dict)):
            # Ask for the previous socket back (connection state recovery), as Node's client does.
            recover = {"pid": self._pid, "offset": self._last_offset}
            auth = {**{k: v for k, v in recover.items() if v is not None}, **(auth or {})}
        self.send_packet(Packet(PacketType.CONNECT, self.nsp, auth if auth is not None else None))

    def _on_packet(self, packet: Packet) -> None:
        ptype = self._core.receive(packet)  # an ACK is answered there
        if ptype is PacketType.CONNECT:
            if isinstance(packet.data, dict) and isinstance(packet.data.get("sid"), str):
                pid = packet.data.get("pid")
                self._on_connect(packet.data["sid"], pid if isinstance(pid, str) else None)
            else:
                self.io.protocol_error("CONNECT without a sid")
        elif ptype is PacketType.CONNECT_ERROR:
            data = packet.data
            error = (
                ConnectError(str(data.get("message", "")), data.get("data"))
                if isinstance(data, dict)
                else ConnectError(str(data))
            )
            self.active = False
            self.io.detach(self)
            self._emit_reserved("connect_error", error)
            self._fail_waiting(error)
        elif ptype is PacketType.EVENT:
            if self.connected:
                self._on_event(packet)
        elif ptype is PacketType.DISCONNECT:
            self.active = False
            self._on_close(Role.CLIENT.peer_disconnect)
            self.io.detach(self)

    def _on_connect(self, sid: str, pid: str | None = None) -> None:
        self.id = sid
        self.recovered = pid is not None and pid == self._pid
        self._pid = pid
        self.connected = True
        buffered, self._send_buffer = self._send_buffer, []
        for packet in buffered:
            self._notify_outgoing(packet)
            self.send_packet(packet)
        self.io.publish(Connected(self.nsp, sid))
        self._emit_reserved("connect")
        self._ever_connected = True
        waiting, self._waiting = self._waiting, []
        self._retrying.clear()
        for d in waiting:
            d.callback(self)
        self._drain_queue(force=True)

    def _on_event(self, packet: Packet) -> None:
        event, args = packet.event, packet.args
        if self._pid is not None and packet.id is None and args and isinstance(args[-1], str):
            # The server's recovery offset: kept to recover with, kept from handlers (JavaScript's ignore it).
            self._last_offset = args.pop()
        self._core.notify_any(self._any, event, args)
        self._core.dispatch(self, event, args, packet.id)

    def _on_close(self, reason: str) -> None:
        """The namespace connection ended (the socket may reconnect if still active)."""
        if not self.active:
            self._core.acks.fail_all(NotConnected(reason))
            self._send_buffer = []
        else:
            # As Node's client: what was sent will not be answered now; what is buffered still will be.
            buffered = {p.id for p in self._send_buffer}
            for ack_id in self._core.acks.keys():
                if ack_id not in buffered:
                    ack = self._core.acks.take(ack_id)
                    if ack is not None and ack.failed is not None:
                        ack.failed(NotConnected("socket has been disconnected"))
        if not self.connected:
            return
        self.connected = False
        self.id = None
        self.io.publish(Disconnected(self.nsp, reason))
        self._emit_reserved("disconnect", reason)

    def _fail_waiting(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, []
        self._retrying.clear()
        for d in waiting:
            d.errback(error)

    def _attempt_failed(self, error: Exception) -> None:
        """An attempt to reach the server failed: fail the ``connect()`` calls that did not ask to retry."""
        failing = [d for d in self._waiting if d not in self._retrying]
        self._waiting = [d for d in self._waiting if d in self._retrying]
        for d in failing:
            d.errback(error)
        if failing and not self._waiting and not self._ever_connected:
            self.active = False
            self.io.detach(self)

    def _run(self, handler: Handler, args: list[Any], what: str) -> Deferred[Any]:
        return self._core.run(handler, args, what)

    def _emit_reserved(self, event: str, *args: Any) -> None:
        self._core.emit_reserved(self, event, *args)
