"""The connection of the Socket.IO client: Node's client ``manager.ts``.

As in Node's ``socket.io-client``, the :class:`Manager` owns the Engine.IO
connection and reconnects it with exponential backoff and jitter; its
:class:`txrealtime.client.socket.ClientSocket` objects multiplex namespaces
over it, buffer emits while disconnected and send them once (re)connected.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import gate
from .._observers import Observers
from .._reactor import Clock, DelayedCall, cancel, default_reactor
from ..protocol.packets import DecodeError, Packet
from ..protocol.parser import Decoder, DecoderLimits, Encoder, Parser, resolve
from .engineio import EngineIOClient, EngineListener
from .events import ClientEvent, NotConnected, ReconnectAttempt, Reconnected, ReconnectFailed, Upgraded
from .socket import ClientSocket
from .tls import TLSOptions

__all__ = ["Engine", "EngineFactory", "Manager", "connect"]

log = Logger(__name__, observer=gate)


class Engine(Protocol):
    """What the manager needs of an Engine.IO connection (network or in-memory)."""

    @property
    def transport_name(self) -> str | None:
        """The current transport's name (``polling``, ``websocket``), ``None`` before one is chosen."""

    def open(self) -> Deferred[None]:
        """Connect; fire once open, fail if it cannot be."""

    def send(self, messages: list[str | bytes]) -> None:
        """Send Engine.IO messages (buffered until open)."""

    @property
    def buffered_bytes(self) -> int:
        """Bytes of messages waiting to go out."""

    @property
    def needs_drain(self) -> bool:
        """Whether :attr:`buffered_bytes` went over the high-water mark and was not written out since."""

    def close(self) -> None:
        """Close the connection, telling the server."""

    def when_closed(self) -> Deferred[None]:
        """Fires once the connection's resources (sockets) are released."""


EngineFactory = Callable[[EngineListener], Engine]


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
        remember_upgrade: bool = False,
        try_all_transports: bool = False,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        reconnection: bool = True,
        reconnection_attempts: float = math.inf,
        reconnection_delay: float = 1.0,
        reconnection_delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        timeout: float = 20.0,
        max_attachments: int = 100,
        parser: str | Parser = "json",
        tls: TLSOptions | None = None,
        reactor: Clock | None = None,
        engine_factory: EngineFactory | None = None,
        rng: random.Random | None = None,
        high_water_mark: int = 1_000_000,
    ) -> None:
        """A manager, not connected until a socket connects.

        :param url: The server, ``http(s)://host:port``.
        :param path: The Socket.IO endpoint's path on the server (Node's ``path``).
        :param transports: ``polling`` then an upgrade to ``websocket`` (the
            default), or one of them alone (Node's ``transports``).
        :param upgrade: Whether to upgrade from polling to WebSocket (Node's ``upgrade``).
        :param remember_upgrade: Open with WebSocket straight away when the process's last connection
            reached it (Node's ``rememberUpgrade``).
        :param try_all_transports: If the first transport cannot open, try the next (Node's ``tryAllTransports``).
        :param query: More query parameters for the Engine.IO requests (Node's ``query``).
        :param headers: More HTTP headers for them (Node's ``extraHeaders``).
        :param reconnection: Whether to reconnect after a lost connection (Node's ``reconnection``).
        :param reconnection_attempts: Most reconnection tries before giving up.
        :param reconnection_delay: Seconds before the first try, doubled at each.
        :param reconnection_delay_max: The longest wait between tries.
        :param randomization_factor: How much each wait is spread (0: not at all).
        :param timeout: Seconds the connection has to open, else the attempt fails
            ("no answer within the connect timeout"; Node's ``timeout``).
        :param max_attachments: Most binary attachments one packet from the server may announce.
        :param parser: ``"json"``, ``"msgpack"`` or a :class:`txrealtime.protocol.parser.Parser`; the server
            must use the same.
        :param tls: Which servers to trust over ``https://`` (:class:`txrealtime.client.TLSOptions`).
        :param reactor: The reactor it connects with and times on; the global one if not given.
        :param engine_factory: Makes the Engine.IO connection (tests give an in-memory one,
            :func:`txrealtime.testing.connect_in_memory`); a network connection if not given.
        :param rng: The random numbers spreading the waits (tests give a seeded one).
        :param high_water_mark: Bytes of messages waiting to go out above which emits return ``False``
            until the sockets' ``drain`` event (as Node's stream ``write()``).
        """
        reactor = default_reactor(reactor)
        self.url = url
        """The server's URL."""
        self.reactor: Clock = reactor
        """The reactor it connects with and times on."""
        self.reconnection = reconnection
        """Whether it reconnects after a lost connection."""
        self.reconnection_attempts = reconnection_attempts
        """Most reconnection tries before giving up."""
        self.reconnection_delay = reconnection_delay
        """Seconds before the first try, doubled at each."""
        self.reconnection_delay_max = reconnection_delay_max
        """The longest wait between tries."""
        self.randomization_factor = randomization_factor
        """How much each wait is spread."""
        self.timeout = timeout
        """Seconds a connection has to open."""
        self.max_attachments = max_attachments
        """Most binary attachments one packet from the server may announce."""
        self.parser: Parser = resolve(parser)
        """Node's client ``parser`` option: ``"json"`` (the default), ``"msgpack"``, or a
        :class:`txrealtime.protocol.parser.Parser`; the server must use the same."""
        self.encoder: Encoder = self.parser.encoder()
        """Encodes the packets the sockets send, in the parser's format."""
        self._rng = rng or random.Random()
        if engine_factory is None:

            def engine_factory(listener: EngineListener) -> Engine:
                return EngineIOClient(
                    url,
                    listener,
                    path=path,
                    transports=transports,
                    upgrade=upgrade,
                    remember_upgrade=remember_upgrade,
                    try_all_transports=try_all_transports,
                    query=query,
                    headers=headers,
                    tls=tls,
                    reactor=self.reactor,
                    high_water_mark=high_water_mark,
                )

        self._engine_factory = engine_factory
        self.engine: Engine | None = None
        """The Engine.IO connection, while there is one."""
        self._closing: list[Engine] = []
        self.state = "closed"
        """``closed``, ``opening`` or ``open``."""
        self.nsps: dict[str, ClientSocket] = {}
        """The sockets, by namespace."""
        self._attempts = 0
        self._reconnect_timer: DelayedCall | None = None
        self._open_timer: DelayedCall | None = None
        self._decoder: Decoder = self.parser.decoder(DecoderLimits(max_attachments))
        self._subscribers: Observers[ClientEvent] = Observers("Socket.IO client")

    # -- public -------------------------------------------------------------------

    def socket(
        self, namespace: str = "/", auth: Any = None, *, retries: int = 0, ack_timeout: float | None = None
    ) -> ClientSocket:
        """The socket for ``namespace`` on this connection (created once; ``auth`` may be a callable).

        ``retries`` and ``ack_timeout`` are Node's socket options of those names (see :class:`ClientSocket`).
        """
        if not namespace.startswith("/"):
            namespace = "/" + namespace
        socket = self.nsps.get(namespace)
        if socket is None:
            socket = self.nsps[namespace] = ClientSocket(
                self, namespace, auth, retries=retries, ack_timeout=ack_timeout
            )
        elif auth is not None:
            socket.auth = auth
        return socket

    def subscribe(self, callback: Callable[[ClientEvent], object]) -> Callable[[], None]:
        """Call ``callback`` with every :data:`ClientEvent`; returns a function that unsubscribes."""
        return self._subscribers.subscribe(callback)

    @property
    def writable(self) -> bool:
        """Whether the connection is open, so that a volatile emit goes out now rather than being dropped."""
        return self.state == "open"

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
        self._decoder = self.parser.decoder(DecoderLimits(self.max_attachments))
        engine = self._engine_factory(self)
        self.engine = engine
        self._open_timer = self.reactor.callLater(self.timeout, self._open_timed_out, engine)
        engine.open().addErrback(self._open_failed, engine)

    def _open_timed_out(self, engine: Engine) -> None:
        self._open_timer = None
        if self.engine is engine and self.state == "opening":
            # The timeout is the reason, not the close that follows it (the engine's "forced close"): fail first.
            error = NotConnected(f"no answer within the connect timeout ({self.timeout:g} s, the timeout option)")
            self._open_failed(Failure(error), engine)
            engine.close()

    def _open_failed(self, failure: Failure, engine: Engine) -> None:
        if self.engine is not engine or self.state != "opening":
            return
        self._open_timer = cancel(self._open_timer)
        self._retire(engine)
        self.state = "closed"
        error = NotConnected(f"cannot connect to {self.url}: {failure.getErrorMessage()}")
        log.info("Socket.IO client: {error}", error=str(error))
        for socket in list(self.nsps.values()):
            if socket.active:
                socket._emit_reserved("connect_error", error)
                socket._attempt_failed(error)
        self._maybe_reconnect(error)

    def engine_open(self) -> None:
        """The Engine.IO connection opened: the active sockets join their namespaces."""
        self._open_timer = cancel(self._open_timer)
        self.state = "open"
        if self._attempts:
            attempts, self._attempts = self._attempts, 0
            self.publish(Reconnected(attempts))
        for socket in list(self.nsps.values()):
            if socket.active:
                socket._engine_open()

    def engine_message(self, data: str | bytes) -> None:
        """A message from the server: decode it and hand the packet to its namespace's socket."""
        try:
            packet = self._decoder.feed(data)
        except DecodeError as e:
            self.protocol_error(str(e))
            return
        if packet is None:
            return
        socket = self.nsps.get(packet.namespace)
        if socket is None:
            log.debug("Socket.IO client: packet for unknown namespace {nsp}", nsp=packet.namespace)
            return
        socket._on_packet(packet)

    def engine_drain(self) -> None:
        """The messages queued over the high-water mark went out: every socket emits ``drain``."""
        for socket in list(self.nsps.values()):
            socket._emit_reserved("drain")

    @property
    def buffered(self) -> int:
        """Bytes of messages waiting to go out on the connection."""
        return self.engine.buffered_bytes if self.engine is not None else 0

    @property
    def needs_drain(self) -> bool:
        """Whether the connection's outgoing messages went over its high-water mark and were not written
        out since: emits return ``False`` until ``drain``."""
        return self.engine is not None and self.engine.needs_drain

    def engine_upgrade(self, transport: str) -> None:
        """The connection moved to ``transport``: publish :class:`Upgraded`."""
        self.publish(Upgraded(transport))

    def engine_close(self, reason: str, description: str) -> None:
        """The connection closed: the sockets disconnect with ``reason``, then reconnect if they should."""
        if self.engine is not None:
            self._retire(self.engine)
        self.state = "closed"
        for socket in list(self.nsps.values()):
            socket._on_close(reason)
        if any(s.active for s in self.nsps.values()):
            self._maybe_reconnect(NotConnected(f"{reason}: {description}"))

    def protocol_error(self, description: str) -> None:
        """The server broke the protocol (``description`` says how): close the connection, and the sockets
        disconnect for ``parse error`` (then reconnect if they should)."""
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
            self.publish(ReconnectFailed(self._attempts))
            self._give_up(error)
            return
        delay = self._backoff(self._attempts)
        self._attempts += 1
        self.publish(ReconnectAttempt(self._attempts, delay))
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

    # -- from sockets (their ManagerLink) ------------------------------------------------

    def attach(self, socket: ClientSocket) -> None:
        """``socket`` wants to be connected (its ``connect()``): it asks for its namespace now if the
        connection is open, else the connection opens (unless a reconnection is already scheduled)."""
        if self.state == "open":
            socket._engine_open()
        elif self.state == "closed" and self._reconnect_timer is None:
            self._open()

    def detach(self, socket: ClientSocket) -> None:
        """``socket`` no longer wants to be connected: once no socket does, the connection closes."""
        if not any(s.active for s in self.nsps.values()):
            self._shutdown()

    def send_packet(self, packet: Packet) -> None:
        """Encode ``packet`` with :attr:`encoder` and send it (dropped while the connection is not open)."""
        self._write(self.encoder.encode(packet))

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

    def publish(self, event: ClientEvent) -> None:
        """Call the subscribers (see :meth:`subscribe`) with ``event``."""
        self._subscribers.publish(event)


def connect(
    url: str,
    namespace: str = "/",
    *,
    auth: Any = None,
    retry: bool = False,
    retries: int = 0,
    ack_timeout: float | None = None,
    **options: Any,
) -> Deferred[ClientSocket]:
    """Connect to ``url`` (``http://host:port``) and join ``namespace``; fire with the socket.

    Fails with :class:`NotConnected` (a :class:`ConnectError`) if the first
    attempt fails or takes longer than ``timeout`` (20 s), unless ``retry``
    asks to keep trying as reconnection does; with :class:`ConnectError` if
    the server refuses the namespace. ``options`` go to :class:`Manager`
    (``transports``, ``path``, ``timeout``, ``reconnection``, ``tls``...).
    """
    socket = Manager(url, **options).socket(namespace, auth, retries=retries, ack_timeout=ack_timeout)
    return socket.connect(retry=retry)
