"""The Engine.IO client's WebSocket transport, on Autobahn: one frame per packet.

Used by :mod:`txrealtime.client.engineio`.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol, connectWS
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from .._compat import cancel_timers, direct_timers
from ..engineio.packets import DecodeError, Packet, decode_ws_frame, encode_ws_frame
from .transport import EngineLink

__all__: list[str] = []


class _WebSocketProtocol(WebSocketClientProtocol):
    client: _WebSocketTransport

    def onOpen(self) -> None:
        self.client._opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        try:
            packet = decode_ws_frame(payload, isBinary)
        except DecodeError as e:
            self.client._failed(f"bad frame: {e}")
            return
        self.client._packet(packet)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.client._closed(f"websocket closed ({code})")

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        super().connectionLost(reason)
        cancel_timers(self)
        self.client._gone()


class _WebSocketFactory(WebSocketClientFactory):
    client: _WebSocketTransport

    def buildProtocol(self, addr: object) -> _WebSocketProtocol:
        protocol = _WebSocketProtocol()
        protocol.factory = self
        protocol.client = self.client
        return protocol

    def clientConnectionFailed(self, connector: object, reason: Failure) -> None:
        self.client._closed(f"cannot connect: {reason.getErrorMessage()}")
        self.client._gone()


class _WebSocketTransport:
    """The WebSocket transport, possibly still probing during an upgrade."""

    name = "websocket"

    def __init__(self, engine: EngineLink, sid: str | None) -> None:
        self.engine = engine
        self.protocol: _WebSocketProtocol | None = None
        self.pending: list[Packet] = []
        self.closed = False
        self.paused = False
        """Whether the TCP send buffer is full (the connection tells us, as its streaming producer)."""
        self.gone: Deferred[None] = Deferred()
        """Fires once the TCP connection is really closed."""
        url = engine.request_url("websocket", sid)
        factory = _WebSocketFactory(url, headers=dict(engine.headers) or None)  # type: ignore[no-untyped-call]
        factory.client = self
        direct_timers(factory, engine.reactor)
        parts = urlsplit(url)
        context = None
        if parts.scheme == "wss":
            hostname = (parts.hostname or "localhost").encode("idna")
            context = cast(Any, engine.tls_policy).creatorForNetloc(hostname, parts.port or 443)
        self.connector = connectWS(factory, context)

    def _opened(self, protocol: _WebSocketProtocol) -> None:
        self.protocol = protocol
        if self.closed:
            protocol.sendClose(1000)
            return
        transport = cast(Any, protocol.transport)
        if transport is not None and getattr(transport, "producer", None) is None:
            transport.registerProducer(self, True)
        pending, self.pending = self.pending, []
        self.send(pending)
        self.engine.transport_open(self)

    @property
    def writable(self) -> bool:
        """Open, and the server takes what is written: while the send buffer is full, messages wait in the
        engine."""
        return (self.protocol is not None and not self.paused and not self.closed
                and self.protocol.state == self.protocol.STATE_OPEN)  # not while a closing handshake runs

    # IPushProducer: the TCP transport says when its send buffer fills up and empties.

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        if not self.closed:
            self.engine.transport_writable(self)

    def stopProducing(self) -> None:
        self.paused = True

    def send(self, packets: list[Packet]) -> None:
        if self.protocol is None:
            self.pending.extend(packets)
            return
        if self.protocol.state != self.protocol.STATE_OPEN:
            return  # closing: what is left goes with the connection, as the engine learns from its close
        for packet in packets:
            payload, binary = encode_ws_frame(packet)
            self.protocol.sendMessage(payload, isBinary=binary)  # type: ignore[no-untyped-call]

    def _packet(self, packet: Packet) -> None:
        if not self.closed:
            self.engine.transport_packet(self, packet)

    def _gone(self) -> None:
        if not self.gone.called:
            self.gone.callback(None)

    def _failed(self, description: str) -> None:
        if not self.closed:
            self.close()
            self.engine.transport_closed(self, "parse error", description)

    def _closed(self, description: str) -> None:
        if not self.closed:
            self.closed = True
            self.engine.transport_closed(self, "transport close", description)

    def close(self) -> None:
        self.closed = True
        if self.protocol is not None:
            if self.protocol.state == self.protocol.STATE_OPEN:
                self.protocol.sendClose(1000)
        else:
            self.connector.disconnect()
