"""Socket.IO v5 client on Twisted: a :class:`Manager` per connection, a :class:`ClientSocket` per namespace.

As in Node's ``socket.io-client``, the manager owns the Engine.IO
connection and reconnects it with exponential backoff and jitter; sockets
multiplex namespaces over it, buffer emits while disconnected and send them
once (re)connected.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import gate
from .._reactor import Clock, DelayedCall, cancel, default_reactor
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
from ..socketio.packets import DecodeError, Decoder, Packet, PacketType, encode
from .engineio import EngineIOClient, EngineListener

__all__ = [
    "ClientEvent",
    "ClientSocket",
    "ConnectError",
    "Connected",
    "Disconnected",
    "Engine",
    "Manager",
    "NotConnected",
    "ReconnectAttempt",
    "ReconnectFailed",
    "Reconnected",
    "Upgraded",
    "connect",
]

log = Logger(observer=gate)


class ConnectError(ConnectionError):
    """The server refused the namespace (``connect_error``): ``message`` and ``data`` are the server's."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class NotConnected(ConnectionError):
    """The socket disconnected before the server acknowledged, or could not connect at all."""


# -- typed events -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    namespace: str
    sid: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    namespace: str
    reason: str
    """Node's client reasons: ``io server disconnect``, ``io client disconnect``,
    ``ping timeout``, ``transport close``, ``transport error``, ``parse error``."""


@dataclass(frozen=True, slots=True)
class Upgraded:
    transport: str
    """The transport the connection moved to (``websocket``)."""


@dataclass(frozen=True, slots=True)
class ReconnectAttempt:
    attempt: int
    delay: float
    """Seconds waited before this attempt."""


@dataclass(frozen=True, slots=True)
class Reconnected:
    attempts: int


@dataclass(frozen=True, slots=True)
class ReconnectFailed:
    attempts: int


ClientEvent = Connected | Disconnected | Upgraded | ReconnectAttempt | Reconnected | ReconnectFailed


class Engine(Protocol):
    """What the manager needs of an Engine.IO connection (network or in-memory)."""

    @property
    def transport_name(self) -> str | None: ...

    def open(self) -> Deferred[None]: ...

    def send(self, messages: list[str | bytes]) -> None: ...

    def close(self) -> None: ...

    def when_closed(self) -> Deferred[None]:
        """Fires once the connection's resources (sockets) are released."""


EngineFactory = Callable[[EngineListener], Engine]


class ClientSocket(EventEmitter, CatchAll):
    """One namespace over a :class:`Manager`'s connection (Node's client ``Socket``).

    Reserved events: ``connect()``, ``disconnect(reason)``, ``connect_error(error)``.
    """

    def __init__(self, manager: Manager, namespace: str, auth: Any = None) -> None:
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


class Manager:
    """One Engine.IO connection to a Socket.IO server, shared by the sockets of several namespaces.

    Reconnection follows Node's client: after a lost connection, wait
    ``reconnection_delay * 2**n`` seconds (at most ``reconnection_delay_max``),
    spread by ``randomization_factor``, for at most ``reconnection_attempts`` tries.
    """

    def __init__(
        self,
        url: str,
        *,
        path: str = "/socket.io/",
        transports: Sequence[str] = ("polling", "websocket"),
        upgrade: bool = True,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        reconnection: bool = True,
        reconnection_attempts: float = math.inf,
        reconnection_delay: float = 1.0,
        reconnection_delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        timeout: float = 20.0,
        max_attachments: int = 100,
        reactor: Clock | None = None,
        engine_factory: EngineFactory | None = None,
        rng: random.Random | None = None,
    ) -> None:
        reactor = default_reactor(reactor)
        self.url = url
        self.reactor: Clock = reactor
        self.reconnection = reconnection
        self.reconnection_attempts = reconnection_attempts
        self.reconnection_delay = reconnection_delay
        self.reconnection_delay_max = reconnection_delay_max
        self.randomization_factor = randomization_factor
        self.timeout = timeout
        self.max_attachments = max_attachments
        self._rng = rng or random.Random()
        if engine_factory is None:

            def engine_factory(listener: EngineListener) -> Engine:
                return EngineIOClient(
                    url,
                    listener,
                    path=path,
                    transports=transports,
                    upgrade=upgrade,
                    query=query,
                    headers=headers,
                    reactor=self.reactor,
                )

        self._engine_factory = engine_factory
        self.engine: Engine | None = None
        self._closing: list[Engine] = []
        self.state = "closed"
        self.nsps: dict[str, ClientSocket] = {}
        self._attempts = 0
        self._reconnect_timer: DelayedCall | None = None
        self._open_timer: DelayedCall | None = None
        self._decoder = Decoder(max_attachments)
        self._subscribers: list[Callable[[ClientEvent], object]] = []

    # -- public -------------------------------------------------------------------

    def socket(self, namespace: str = "/", auth: Any = None) -> ClientSocket:
        """The socket for ``namespace`` on this connection (created once; ``auth`` may be a callable)."""
        if not namespace.startswith("/"):
            namespace = "/" + namespace
        socket = self.nsps.get(namespace)
        if socket is None:
            socket = self.nsps[namespace] = ClientSocket(self, namespace, auth)
        elif auth is not None:
            socket.auth = auth
        return socket

    def subscribe(self, callback: Callable[[ClientEvent], object]) -> Callable[[], None]:
        """Call ``callback`` with every :data:`ClientEvent`; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    @property
    def transport(self) -> str | None:
        """The current transport's name (``polling`` or ``websocket``)."""
        return self.engine.transport_name if self.engine is not None else None

    def close(self) -> Deferred[None]:
        """Disconnect every socket and stop reconnecting; fire once the connection is released."""
        for socket in list(self.nsps.values()):
            socket.disconnect()
        self._shutdown()
        if not self._closing:
            return succeed(None)
        closing = DeferredList([engine.when_closed() for engine in self._closing], consumeErrors=True)
        return closing.addCallback(lambda _: None)

    # -- connection lifecycle --------------------------------------------------------

    def _open(self) -> None:
        if self.state != "closed":
            return
        self.state = "opening"
        self._decoder = Decoder(self.max_attachments)
        engine = self._engine_factory(self)
        self.engine = engine
        self._open_timer = self.reactor.callLater(self.timeout, self._open_timed_out, engine)
        engine.open().addErrback(self._open_failed, engine)

    def _open_timed_out(self, engine: Engine) -> None:
        self._open_timer = None
        if self.engine is engine and self.state == "opening":
            engine.close()
            self._open_failed(Failure(NotConnected("timed out connecting")), engine)

    def _open_failed(self, failure: Failure, engine: Engine) -> None:
        if self.engine is not engine or self.state != "opening":
            return
        self._open_timer = cancel(self._open_timer)
        self._retire(engine)
        self.state = "closed"
        error = NotConnected(failure.getErrorMessage())
        log.info("Socket.IO client could not connect to {url}: {error}", url=self.url, error=str(error))
        for socket in list(self.nsps.values()):
            if socket.active:
                socket._emit_reserved("connect_error", error)
        self._maybe_reconnect(error)

    def engine_open(self) -> None:
        self._open_timer = cancel(self._open_timer)
        self.state = "open"
        if self._attempts:
            attempts, self._attempts = self._attempts, 0
            self._publish(Reconnected(attempts))
        for socket in list(self.nsps.values()):
            if socket.active:
                socket._engine_open()

    def engine_message(self, data: str | bytes) -> None:
        try:
            packet = self._decoder.feed(data)
        except DecodeError as e:
            self._protocol_error(str(e))
            return
        if packet is None:
            return
        socket = self.nsps.get(packet.namespace)
        if socket is None:
            log.debug("Socket.IO client: packet for unknown namespace {nsp}", nsp=packet.namespace)
            return
        socket._on_packet(packet)

    def engine_upgrade(self, transport: str) -> None:
        self._publish(Upgraded(transport))

    def engine_close(self, reason: str, description: str) -> None:
        if self.engine is not None:
            self._retire(self.engine)
        self.state = "closed"
        for socket in list(self.nsps.values()):
            socket._on_close(reason)
        if any(s.active for s in self.nsps.values()):
            self._maybe_reconnect(NotConnected(f"{reason}: {description}"))

    def _protocol_error(self, description: str) -> None:
        log.info("Socket.IO client: server broke the protocol: {description}", description=description)
        engine = self.engine
        if engine is not None:
            engine.close()
            self.engine_close("parse error", description)

    def _maybe_reconnect(self, error: Exception) -> None:
        if not self.reconnection or not any(s.active for s in self.nsps.values()):
            self._give_up(error)
            return
        if self._reconnect_timer is not None:
            return
        if self._attempts >= self.reconnection_attempts:
            self._publish(ReconnectFailed(self._attempts))
            self._give_up(error)
            return
        delay = self._backoff(self._attempts)
        self._attempts += 1
        self._publish(ReconnectAttempt(self._attempts, delay))
        log.info("Socket.IO client reconnecting to {url} in {delay:.2f}s", url=self.url, delay=delay)
        self._reconnect_timer = self.reactor.callLater(delay, self._reconnect)

    def _reconnect(self) -> None:
        self._reconnect_timer = None
        if any(s.active for s in self.nsps.values()):
            self._open()

    def _backoff(self, attempt: int) -> float:
        delay = self.reconnection_delay * 2**attempt
        if self.randomization_factor:
            deviation = self._rng.random() * self.randomization_factor * delay
            delay = delay - deviation if self._rng.random() < 0.5 else delay + deviation
        return float(min(delay, self.reconnection_delay_max))

    def _give_up(self, error: Exception) -> None:
        self._attempts = 0
        for socket in list(self.nsps.values()):
            if socket.active and not socket.connected:
                socket.active = False
                socket._on_close("io client disconnect")
                socket._fail_waiting(error)

    # -- from sockets ----------------------------------------------------------------

    def _attach(self, socket: ClientSocket) -> None:
        if self.state == "open":
            socket._engine_open()
        elif self.state == "closed" and self._reconnect_timer is None:
            self._open()

    def _detach(self, socket: ClientSocket) -> None:
        if not any(s.active for s in self.nsps.values()):
            self._shutdown()

    def _write(self, messages: list[str | bytes]) -> None:
        if self.engine is not None and self.state == "open":
            self.engine.send(messages)

    def _shutdown(self) -> None:
        self._reconnect_timer = cancel(self._reconnect_timer)
        self._open_timer = cancel(self._open_timer)
        self._attempts = 0
        engine = self.engine
        self.state = "closed"
        if engine is not None:
            self._retire(engine)
            engine.close()

    def _retire(self, engine: Engine) -> None:
        """Forget the current engine, but remember it until its connections are gone."""
        if self.engine is engine:
            self.engine = None
        if engine not in self._closing:
            self._closing.append(engine)
            engine.when_closed().addBoth(lambda _: self._closing.remove(engine) if engine in self._closing else None)

    def _publish(self, event: ClientEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.failure("Client event subscriber {callback!r} failed", callback=callback)


def connect(url: str, namespace: str = "/", *, auth: Any = None, **options: Any) -> Deferred[ClientSocket]:
    """Connect to ``url`` (``http://host:port``) and join ``namespace``; fire with the socket.

    ``options`` go to :class:`Manager` (``transports``, ``path``, ``reconnection``...).
    """
    return Manager(url, **options).socket(namespace, auth).connect()
