"""Engine.IO v4 client on Twisted: HTTP long-polling with treq, WebSocket with Autobahn (the transports
in :mod:`txrealtime.client.polling` and :mod:`txrealtime.client.websocket`).

:class:`EngineIOClient` opens one Engine.IO connection (polling first and
upgrading, or WebSocket only, or polling only), answers heartbeats, notices a
dead server by its silence, and hands messages to an :class:`EngineListener`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast
from urllib.parse import urlencode, urlsplit, urlunsplit

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgent

from .._logging import gate
from .._reactor import Clock, DelayedCall, cancel, default_reactor
from ..engineio.packets import (
    PROTOCOL_VERSION,
    Packet,
    PacketType,
)
from .events import EngineError
from .polling import _PollingTransport
from .tls import TLSOptions
from .transport import ClientTransport
from .websocket import _WebSocketTransport

__all__ = ["EngineIOClient", "EngineListener", "EngineError"]

log = Logger(__name__, observer=gate)


class EngineListener(Protocol):
    """What an Engine.IO connection reports to the layer above it."""

    def engine_open(self) -> None:
        """The connection is open (its OPEN packet arrived)."""

    def engine_message(self, data: str | bytes) -> None:
        """A message arrived."""

    def engine_upgrade(self, transport: str) -> None:
        """The connection moved to ``transport`` (``websocket``)."""

    def engine_close(self, reason: str, description: str) -> None:
        """The open connection closed, for Engine.IO's ``reason`` (``transport close``, ``ping timeout``...)."""

    def engine_drain(self) -> None:
        """The messages queued over the high-water mark went out (see :attr:`EngineIOClient.needs_drain`)."""


class EngineIOClient:
    """One Engine.IO v4 connection to ``url`` (``http(s)://host:port``)."""

    def __init__(
        self,
        url: str,
        listener: EngineListener,
        *,
        path: str = "/engine.io/",
        transports: Sequence[str] = ("polling", "websocket"),
        upgrade: bool = True,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        tls: TLSOptions | None = None,
        reactor: Clock | None = None,
        remember_upgrade: bool = False,
        try_all_transports: bool = False,
        high_water_mark: int = 1_000_000,
    ) -> None:
        """A connection, not open until :meth:`open`.

        :param url: The server, ``http(s)://`` or ``ws(s)://host:port``.
        :param listener: What the connection reports to (a :class:`Manager`, or your own).
        :param path: The endpoint's path on the server.
        :param transports: The transports to use, in order: ``polling`` then an
            upgrade to ``websocket``, or ``websocket`` alone.
        :param upgrade: Whether to upgrade from polling to WebSocket when the server offers it.
        :param query: More query parameters for every request.
        :param headers: More HTTP headers for every request (and the WebSocket handshake).
        :param tls: Which servers to trust over ``https://`` and ``wss://``
            (:class:`txrealtime.client.TLSOptions`; the system's authorities if not given).
        :param reactor: The reactor it connects with; the global one if not given.
        :param remember_upgrade: Open with WebSocket straight away if the last connection of this process
            reached it, and did not end in a transport error since (Node's ``rememberUpgrade``).
        :param try_all_transports: If the first transport cannot open, try the next one (Node's ``tryAllTransports``).
        :param high_water_mark: Bytes of messages waiting to go out above which :attr:`needs_drain` is set,
            until they are written (then the listener's ``engine_drain`` is called).
        """
        reactor = default_reactor(reactor)
        if not transports or any(t not in ("polling", "websocket") for t in transports):
            raise ValueError(f"transports must be polling and/or websocket, not {list(transports)}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss"):
            raise ValueError(f"unsupported URL scheme in {url!r}")
        self.base = parts
        """The server's URL, split."""
        self.listener = listener
        """What the connection reports to."""
        self.path = "/" + path.strip("/") + "/"
        """The endpoint's path, between slashes."""
        self.transports = list(transports)
        """The transports it may use, in order."""
        self.upgrade = upgrade
        """Whether it upgrades from polling to WebSocket when offered."""
        self.query = dict(query or {})
        """More query parameters for every request."""
        self.headers = dict(headers or {})
        """More headers for every request."""
        self.reactor = reactor
        """The reactor it connects with."""
        self.remember_upgrade = remember_upgrade
        """Whether it opens with WebSocket when the process's last connection reached it (:attr:`prior_websocket`)."""
        self.try_all_transports = try_all_transports
        """Whether a transport that cannot open makes way for the next one."""
        self._untried = list(transports)
        """The transports it may still open with, the one in use or trying first."""
        self.pool = HTTPConnectionPool(cast(Any, reactor), persistent=True)
        """The polling transport's persistent HTTP connections (two at most)."""
        self.pool.maxPersistentPerHost = 2
        self.tls_policy = (tls or TLSOptions()).https_policy()
        """Which servers to trust over ``https://`` and ``wss://``, for both transports."""
        self.agent = cast(IAgent, Agent(cast(Any, reactor), contextFactory=self.tls_policy, pool=self.pool))
        """The HTTP agent polling requests go through."""
        self.sid: str | None = None
        """The session id the server gave, once open."""
        self.ping_interval = 25.0
        """The server's heartbeat period, in seconds, from its OPEN packet."""
        self.ping_timeout = 20.0
        """How long the server waits for an answer to a heartbeat, from its OPEN packet."""
        self.max_payload = 1_000_000
        """The largest message the server takes, in bytes, from its OPEN packet."""
        self.state = "new"
        """``new``, ``opening``, ``open``, ``closing`` or ``closed``."""
        self.transport: ClientTransport | None = None
        """The transport in use."""
        self._probe: _WebSocketTransport | None = None
        self._buffer: list[Packet] = []
        self._buffered = 0
        self.high_water_mark = high_water_mark
        """Bytes waiting to go out above which :attr:`needs_drain` is set."""
        self._needs_drain = False
        self._ping_timer: DelayedCall | None = None
        self._opened: Deferred[None] = Deferred()
        self._created: list[ClientTransport] = []
        self._pool_closed: Deferred[Any] | None = None

    # -- public ----------------------------------------------------------------

    @property
    def transport_name(self) -> str | None:
        """The current transport's name (``polling`` or ``websocket``), ``None`` before the first."""
        return self.transport.name if self.transport is not None else None

    def open(self) -> Deferred[None]:
        """Connect; fires once the OPEN packet arrived, fails with :class:`EngineError`."""
        if self.state != "new":
            raise RuntimeError("an EngineIOClient opens once")
        self.state = "opening"
        if self.remember_upgrade and EngineIOClient.prior_websocket and "websocket" in self._untried:
            self._untried.remove("websocket")
            self._untried.insert(0, "websocket")
        self._start(self._untried[0])
        return self._opened

    prior_websocket = False
    """Whether this process's last connection reached WebSocket, and none ended in a transport error
    since (Node's ``priorWebsocketSuccess``, shared by every client of the process as in Node):
    clients with ``remember_upgrade`` then open with WebSocket."""

    def _start(self, name: str) -> None:
        """Open with transport ``name``."""
        if name == "polling":
            polling = _PollingTransport(self)
            self.transport = polling
            self._created.append(polling)
            polling.handshake().addCallbacks(self._handshake, self._open_failed)
        else:
            self.transport = _WebSocketTransport(self, None)
            self._created.append(self.transport)

    def when_closed(self) -> Deferred[None]:
        """Fires once the connection is closed and its TCP connections are gone."""
        waits: list[Deferred[Any]] = [t.gone for t in self._created]
        if self._pool_closed is not None:
            waits.append(self._pool_closed)
        d = DeferredList(waits, consumeErrors=True)
        return d.addCallback(lambda _: None)

    def send(self, messages: list[str | bytes]) -> None:
        """Send messages (buffered while connecting or upgrading)."""
        if self.state in ("closing", "closed"):
            return
        self._buffer.extend(Packet(PacketType.MESSAGE, m) for m in messages)
        self._buffered += sum(len(m) for m in messages)
        self._flush()
        if self._buffered > self.high_water_mark:
            self._needs_drain = True

    @property
    def buffered_bytes(self) -> int:
        """Bytes of messages waiting to be handed to the transport (while connecting, upgrading, a POST is in
        flight, or the WebSocket's send buffer is full)."""
        return self._buffered

    @property
    def needs_drain(self) -> bool:
        """Whether :attr:`buffered_bytes` went over the high-water mark and was not written out since."""
        return self._needs_drain

    def close(self) -> None:
        """Close the connection, telling the server."""
        if self.state in ("closing", "closed"):
            return
        if self.state == "open" and self.transport is not None:
            self._flush()
            # What still waits (behind a POST in flight, or a full send buffer) goes before the CLOSE.
            last, self._buffer = [*self._buffer, Packet(PacketType.CLOSE)], []
            if isinstance(self.transport, _PollingTransport):
                self.transport.say_goodbye(last)
            else:
                self.transport.send(last)
        self._finish("forced close", "closed by the client")

    # -- what the transports call (their EngineLink), and the rest --------------

    def request_url(self, transport: str, sid: str | None) -> str:
        """The URL of a request of ``transport`` (``polling`` or ``websocket``, whose scheme it takes), with
        :attr:`query`, and ``sid`` if given."""
        query = {**self.query, "EIO": str(PROTOCOL_VERSION), "transport": transport}
        if sid is not None:
            query["sid"] = sid
        scheme = self.base.scheme
        if transport == "websocket":
            scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
        else:
            scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
        return urlunsplit((scheme, self.base.netloc, self.path, urlencode(query), ""))

    def request_headers(self) -> dict[bytes | str, bytes | str]:
        """The headers every request carries: :attr:`headers`."""
        headers: dict[bytes | str, bytes | str] = {}
        headers.update(self.headers)
        return headers

    def _handshake(self, packets: list[Packet]) -> None:
        if self.state != "opening":
            return
        if not packets or packets[0].type is not PacketType.OPEN:
            self._open_failed(Failure(EngineError("handshake did not start with an OPEN packet")))
            return
        for packet in packets:
            assert self.transport is not None
            self.transport_packet(self.transport, packet)
        if isinstance(self.transport, _PollingTransport) and self.state == "open":
            self.transport.start()

    def _open_failed(self, failure: Failure) -> None:
        if self.state == "opening":
            EngineIOClient.prior_websocket = False
            if self.try_all_transports and len(self._untried) > 1:
                failed = self._untried.pop(0)
                log.info("Engine.IO client: {failed} could not open ({error}); trying {next}", failed=failed,
                         error=failure.getErrorMessage(), next=self._untried[0])
                if self.transport is not None:
                    self.transport.close()
                self._start(self._untried[0])
                return
            description = failure.getErrorMessage()
            self._finish("transport error", description, notify=False)
            if not self._opened.called:
                self._opened.errback(EngineError(f"could not connect: {description}"))

    def transport_open(self, transport: ClientTransport) -> None:
        """``transport`` (a WebSocket) is open: if it is the upgrade's probe, send it the probe's PING."""
        if transport is self._probe:
            transport.send([Packet(PacketType.PING, "probe")])

    def transport_packet(self, transport: ClientTransport, packet: Packet) -> None:
        """``transport`` received ``packet``: acted on if it comes by the current transport or the probe."""
        if transport is self._probe:
            self._probe_packet(packet)
            return
        if transport is not self.transport:
            return
        ptype = packet.type
        if ptype is PacketType.OPEN:
            self._on_open(packet)
        elif ptype is PacketType.PING:
            self._reset_ping_timer()
            transport.send([Packet(PacketType.PONG)])
        elif ptype is PacketType.MESSAGE:
            if self.state == "open":
                self.listener.engine_message(packet.data)
        elif ptype is PacketType.CLOSE:
            self._finish("transport close", "the server closed the connection")
        elif ptype is PacketType.NOOP:
            pass
        else:
            log.info("Engine.IO client ignores unexpected {type} packet", type=ptype.name)

    def _on_open(self, packet: Packet) -> None:
        if self.state != "opening":
            return
        try:
            info = json.loads(packet.data)
            self.sid = str(info["sid"])
            self.ping_interval = info.get("pingInterval", 25000) / 1000
            self.ping_timeout = info.get("pingTimeout", 20000) / 1000
            self.max_payload = int(info.get("maxPayload", 1_000_000))
            upgrades = list(info.get("upgrades", []))
        except (ValueError, KeyError, TypeError) as e:
            self._open_failed(Failure(EngineError(f"bad OPEN packet: {e}")))
            return
        self.state = "open"
        EngineIOClient.prior_websocket = isinstance(self.transport, _WebSocketTransport)
        self._reset_ping_timer()
        self._opened.callback(None)
        self.listener.engine_open()
        if (
            self.upgrade
            and isinstance(self.transport, _PollingTransport)
            and "websocket" in upgrades
            and "websocket" in self._untried
        ):
            self._probe = _WebSocketTransport(self, self.sid)
            self._created.append(self._probe)
        self._flush()

    def _probe_packet(self, packet: Packet) -> None:
        probe = self._probe
        polling = self.transport
        if probe is None or not isinstance(polling, _PollingTransport):
            return
        if packet.type is PacketType.PONG and packet.data == "probe":
            polling.pause().addCallback(lambda _: self._finish_upgrade(probe))
        else:
            self._abandon_probe(f"unexpected {packet.type.name} during upgrade")

    def _finish_upgrade(self, probe: _WebSocketTransport) -> None:
        if self._probe is not probe or self.state != "open":
            return
        old = self.transport
        self._probe = None
        self.transport = probe
        probe.send([Packet(PacketType.UPGRADE)])
        EngineIOClient.prior_websocket = True
        if old is not None:
            old.close()
        log.debug("Engine.IO client {sid} upgraded to websocket", sid=self.sid)
        self._flush()
        self.listener.engine_upgrade(probe.name)

    def _abandon_probe(self, description: str) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            log.info("Upgrade abandoned: {description}", description=description)
            probe.close()
        if isinstance(self.transport, _PollingTransport) and self.transport.paused:
            self.transport.paused = False
            self.transport.start()

    def transport_closed(self, transport: ClientTransport, reason: str, description: str) -> None:
        """``transport`` closed: a probe is abandoned, the current transport's close closes the connection."""
        if transport is self._probe:
            self._abandon_probe(description)
        elif transport is self.transport:
            if self.state == "opening":
                self._open_failed(Failure(EngineError(description)))
            else:
                self._finish(reason, description)

    def _flush(self) -> None:
        if self.state != "open" or self.transport is None or not self._buffer or not self.transport.writable:
            return
        if self._probe is not None and isinstance(self.transport, _PollingTransport) and self.transport.paused:
            return  # the upgrade is about to switch transports: send on the new one
        if isinstance(self.transport, _PollingTransport):
            packets = self._within_payload()
        else:
            packets, self._buffer, self._buffered = self._buffer, [], 0
        self.transport.send(packets)
        if self._needs_drain and not self._buffer:
            self._needs_drain = False
            self.listener.engine_drain()

    def _within_payload(self) -> list[Packet]:
        """Take from the queue what one POST may carry: the packets whose payload stays within the server's
        ``maxPayload`` (at least one), as Node's client does; the rest waits for the next POST."""
        size = taken = 0
        for packet in self._buffer:
            data = packet.data
            # Its bytes in the payload: type, data (base64 for binary: "b" and 4 per 3 bytes), separator.
            size += 2 + (len(data.encode()) if isinstance(data, str) else 1 + (len(data) + 2) // 3 * 4)
            if taken and size > self.max_payload:
                break
            taken += 1
        packets, self._buffer = self._buffer[:taken], self._buffer[taken:]
        self._buffered -= sum(len(p.data) for p in packets)
        return packets

    def transport_writable(self, transport: ClientTransport) -> None:
        """``transport`` can take more: send what waits."""
        if transport is self.transport:
            self._flush()

    def _reset_ping_timer(self) -> None:
        cancel(self._ping_timer)
        self._ping_timer = self.reactor.callLater(self.ping_interval + self.ping_timeout, self._ping_timed_out)

    def _ping_timed_out(self) -> None:
        self._ping_timer = None
        self._finish("ping timeout", "no ping from the server")

    def _finish(self, reason: str, description: str, notify: bool = True) -> None:
        if self.state in ("closing", "closed"):
            return
        if reason == "transport error":
            EngineIOClient.prior_websocket = False
        was_open = self.state == "open"
        self.state = "closed"
        self._ping_timer = cancel(self._ping_timer)
        for transport in (self._probe, self.transport):
            if transport is not None:
                transport.close()
        self._probe = None
        self._buffer = []
        self._buffered = 0
        self._needs_drain = False
        # After the transports are done (the last POST of a polling goodbye puts its connection back in the pool).
        finished = DeferredList([t.gone for t in self._created], consumeErrors=True)
        self._pool_closed = finished.addCallback(lambda _: self.pool.closeCachedConnections())
        if not self._opened.called:
            self._opened.errback(EngineError(f"closed while connecting: {reason} ({description})"))
        if notify and was_open:
            self.listener.engine_close(reason, description)
