"""WebSocket transport on Autobahn: one frame per packet, binary messages as binary frames.

Frames follow the protocol revision of the request (``EIO=4``, or v3 with
its type byte before binary data, or base64 text if the client asked
``b64``: see :mod:`txrealtime.engineio.packets_v3`).

Reads are sliced as polling bodies are: a connection hands its session at
most :data:`txrealtime.engineio.manager.PACKETS_PER_TURN` messages and
control frames per reactor turn, and stops early once it has used
:data:`txrealtime.engineio.manager.TURN_SECONDS` of it. What a read holds beyond that waits, in
order, while reading from that connection is paused, and is taken up on the
next turns, other connections served in between; reading resumes in the
turn after the last slice.
"""

from __future__ import annotations

from functools import partial
from typing import Any, cast

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.interfaces import ISSLTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import Request

from .. import _compat
from .._autobahn import accept_deflate, client_frame, frame_payload_size, require_bounded_inflate, ws_frame
from .._logging import Throttle, gate, name_for_log
from .._reactor import DelayedCall, cancel, seconds_of
from . import packets_v3
from .deflate import Deflater, DeflateState
from .elsewhere import Elsewhere, Relay
from .events import CloseReason, Handshake, parse_query, requested_protocol
from .manager import PACKETS_PER_TURN, TURN_SECONDS, Session, SessionError, SessionManager
from .packets import DecodeError, Packet, PacketType, decode_ws_frame, encode_ws_frame
from .packets_v3 import Framing
from .upgrade import handshake_answer, probe_upgrade

__all__ = ["EngineIOWebSocketFactory", "EngineIOWebSocketProtocol"]

log = Logger(__name__, observer=gate)
noisy = Throttle(log)
"""For lines a flood of bad clients could make us repeat."""

# Close codes that mean the peer broke the protocol rather than just leaving.
_ERROR_CODES = {1002, 1003, 1007, 1009}


class EngineIOWebSocketProtocol(WebSocketServerProtocol):
    """One WebSocket connection: a new session, or an upgrade of a polling one."""

    name = "websocket"
    factory: EngineIOWebSocketFactory
    _kept_reason: bytes | None = None
    """The reason of a close frame sent without it (1009), for the log."""
    CONFIG_ATTRS: list[str] = _compat.config_attrs()
    """Empty where :meth:`connectionMade` copies the options itself (:func:`txrealtime._compat.config_attrs`)."""

    def __init__(self) -> None:
        super().__init__()
        self.session: Session | None = None
        self._handshake: Handshake | None = None
        self._sid: str | None = None
        self._paused = False
        self._unwanted = False
        """Names a session that upgraded already or is upgrading: accepted, then closed at once."""
        self._refusal: SessionError | None = None
        """Why the handshake is being refused (see :meth:`failHandshake`)."""
        self._lost = False
        self.protocol = 4
        """The Engine.IO protocol revision of the request, so of its frames."""
        self._framing = Framing.V4
        """How binary messages are framed: 0 as in v4, 1 as in v3, 2 as v3 base64 text (``b64``)."""
        self._deflate_state: DeflateState | None = None
        """Where this connection's compression history is, once it compressed a message."""
        self.relay: Relay | None = None
        """Where packets go when the session is on another node (see :mod:`txrealtime.engineio.elsewhere`)."""
        self._budget = PACKETS_PER_TURN
        """Messages and control frames this connection may still hand on in this reactor turn."""
        self._deadline = 0.0
        """When, on the reactor's clock, this turn's budget runs out whatever is left of it (set
        once its first message was handled)."""
        self._backlog: bytes | None = None
        """While a slice is due: bytes read and not yet parsed, after those Autobahn buffers."""
        self._next: DelayedCall | None = None
        self._deflate: Any = None  # the permessage-deflate state negotiated (set once open)

    # -- Transport protocol ----------------------------------------------

    @property
    def writable(self) -> bool:
        """Open, and the client keeps up: while the socket's send buffer is full, packets wait in the session."""
        return bool(self.state == self.STATE_OPEN) and not self._paused

    def abort(self) -> None:
        """Drop the connection at once, discarding what is queued (a client that does not read)."""
        self.dropConnection(abort=True)

    def decline(self) -> None:
        """Accept the handshake, then close at once with an empty close frame (as Node's ``ws`` does)."""
        self._unwanted = True

    # -- IPushProducer: the TCP transport tells us when its buffer fills up ----
    #
    # While the client does not take what we write, we stop reading from it too:
    # every frame it sends may make us write (a pong for each ping, an ack for
    # each message), so reading on would grow the send buffer without bound.
    # Packets for the client wait in the session, counted against max_buffer,
    # and a client that never reads again misses its pong and is closed.

    def pauseProducing(self) -> None:
        self._paused = True
        self._reading(False)

    def resumeProducing(self) -> None:
        self._paused = False
        if self._backlog is None:  # else reading resumes once the backlog is handled
            self._reading(True)
        if self.session is not None:
            self.session.flush()  # may fill the buffer again, and pause us again
        elif self.relay is not None:
            self.relay.writable()

    def stopProducing(self) -> None:
        self._paused = True

    def _reading(self, on: bool) -> None:
        """Start or stop reading from the connection (a no-op once it is closing or dropped).

        Autobahn drops a connection with ``abortConnection`` once the close handshake is
        done: TCP then stops reading and is lost on the next turn, but is not
        ``disconnecting``, and ``resumeProducing`` would register it for reading again.
        """
        transport = cast(Any, self.transport)
        if (
            transport is None
            or self.state == self.STATE_CLOSED
            or transport.disconnecting
            or not getattr(transport, "connected", True)
        ):
            return
        if on:
            transport.resumeProducing()
        else:
            transport.pauseProducing()

    def _watch_buffer(self) -> None:
        transport = cast(Any, self.transport)
        if transport is None:
            return
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()  # the HTTP channel's, from before the takeover
        transport.registerProducer(self, True)
        # twisted.web stops reading while it handles a request if more than 16 KiB
        # are pipelined behind it, and would resume only when the request finishes,
        # which an upgraded one never does: from now on reading follows our state.
        self._reading(True)

    def send(self, packets: list[Packet]) -> None:
        """Write packets as unfragmented, unmasked frames (RFC 6455 server frames), in one write.

        Frames are built here rather than through ``sendMessage``: a broadcast
        hands every session the same message object, and the factory reuses
        the frame it built for the previous session. With permessage-deflate
        negotiated, :meth:`_deflated` builds them instead.
        """
        factory = self.factory
        extension = self._deflate
        if extension is not None:
            frames = self._deflated(packets, extension)
        else:
            frames = []
            for packet in packets:
                data = packet.data
                # Text frames are the same in v3 and v4; binary ones are framed per revision.
                framing = self._framing if isinstance(data, bytes) else Framing.V4
                message = packet.type is PacketType.MESSAGE
                if message and data is factory._last_data and framing == factory._last_framing:
                    frames.append(factory._last_frame)
                    continue
                frame = ws_frame(*self._payload(packet, framing))
                if message:
                    factory._last_data, factory._last_framing, factory._last_frame = data, framing, frame
                frames.append(frame)
        transport = cast(Any, self.transport)
        if transport is not None and self.state == self.STATE_OPEN:
            _compat.write_sequence(transport, frames)
            factory.stats.websocket_bytes_sent += sum(map(len, frames))

    def _payload(self, packet: Packet, framing: Framing) -> tuple[bytes, bool]:
        """The frame payload of ``packet`` and whether it is binary, framed for this connection's revision."""
        if framing:
            return packets_v3.encode_ws_frame(packet, framing is Framing.V3_BINARY)
        return encode_ws_frame(packet)

    def _deflated(self, packets: list[Packet], extension: Any) -> list[bytes]:
        """Frames for a connection that negotiated permessage-deflate.

        A packet sent with ``compress`` and encoding to at least the threshold
        is compressed, the rest go plain. The factory's :class:`Deflater`
        compresses a broadcast message once for all the connections that share
        a compression history (see :mod:`txrealtime.engineio.deflate`).
        """
        factory = self.factory
        threshold = factory.deflate_threshold
        state = self._deflate_state
        frames = []
        for packet in packets:
            data = packet.data
            message = packet.type is PacketType.MESSAGE
            framing = self._framing if isinstance(data, bytes) else Framing.V4
            if message and data is factory._last_data and framing == factory._last_framing:
                frame = factory._last_frame
                if not packet.compress or frame_payload_size(frame) < threshold:
                    frames.append(frame)
                    continue
            if message and not framing and packet.compress and state is not None:
                # Compressed for another connection at this history: neither encoded nor framed again.
                reused = factory.deflater.reuse(state, data)
                if reused is not None:
                    body, state = reused
                    frames.append(factory.deflater.frame(body, isinstance(data, bytes)))
                    continue
            payload, binary = self._payload(packet, framing)
            if not packet.compress or len(payload) < threshold:
                frame = ws_frame(payload, binary)
                if message:
                    factory._last_data, factory._last_framing, factory._last_frame = data, framing, frame
            else:
                if state is None:
                    state = factory.deflater.start(
                        extension.server_max_window_bits, extension.mem_level, extension.server_no_context_takeover
                    )
                # One message object is one payload only within one framing: a message framed
                # for v3 (binary) is compressed on its own, never taken from a v4 history.
                key = data if message and not framing else packet
                body, state = factory.deflater.compress(state, key, payload)
                frame = factory.deflater.frame(body, binary)
            frames.append(frame)
        self._deflate_state = state
        return frames

    def close(self) -> None:
        if self.state == self.STATE_OPEN:
            self.sendClose(1000)
        elif self.state == self.STATE_CONNECTING:
            self.dropConnection(abort=True)

    # -- Autobahn callbacks ----------------------------------------------

    def onConnect(self, request: ConnectionRequest) -> Any:
        manager = self.factory.manager
        # Read as the polling transport reads a query (empty values kept: Autobahn's parse drops them).
        params = parse_query(self.http_request_uri.encode("latin-1", "replace"))
        sid = params.get("sid") or None  # an empty sid asks for a new session, as in Node
        peer = cast(Any, self.transport).getPeer() if self.transport is not None else None
        self.protocol = requested_protocol(params)
        self._framing = Framing.of(self.protocol, bool(params.get("b64")))

        def describe() -> Handshake:
            return Handshake.of_request(
                request.headers.items(), params, peer, ISSLTransport.providedBy(self.transport), self.http_request_uri
            )

        extra = list(self.factory.upgrade_headers)  # from CORS and the middleware, for the 101
        if sid is not None:
            elsewhere = self.factory.elsewhere
            if elsewhere is not None and manager.get(sid) is None:
                return elsewhere.upgrade(self, sid, describe()).addErrback(self._refused_elsewhere)
            try:
                self.session, headers = probe_upgrade(manager, sid, self, describe)
            except SessionError as e:
                self._refusal = e
                raise ConnectionDeny(400, e.answer) from None
            if self.session is None:
                self._unwanted = True
            return handshake_answer(extra + headers)
        handshake = self._handshake = describe()

        def admitted(sid: str) -> Any:
            self._sid = sid
            return handshake_answer(extra + manager.response_headers(handshake, sid, initial=True))

        def refused(failure: Failure) -> None:
            error = failure.value if isinstance(failure.value, SessionError) else SessionError(SessionError.FORBIDDEN)
            noisy.info("WebSocket handshake from {address} refused: {error}", address=handshake.address,
                     error=name_for_log(str(error), 1000))
            manager.refused(error, handshake, "GET", upgrade=True)
            self._refusal = error
            raise ConnectionDeny(400, error.answer)

        options = manager.options
        if options.allow_request is None and options.generate_id is None:
            # No hook to wait for: decide now, without a chain of Deferreds.
            try:
                manager.check_admission(handshake)
            except SessionError:
                refused(Failure())
            return admitted(manager.new_sid())
        return manager.admit(handshake).addCallback(lambda _: manager.generate_sid(handshake)).addCallbacks(
            admitted, refused
        )

    def _refused_elsewhere(self, failure: Failure) -> Failure:
        """The node holding the session refused the upgrade: an Engine.IO refusal is answered as here."""
        if isinstance(failure.value, SessionError):
            self._refusal = failure.value
            return Failure(ConnectionDeny(400, failure.value.answer))
        return failure

    def failHandshake(self, reason: str, code: int = 400, responseHeaders: Any = None) -> None:
        """Autobahn's answer to a handshake it refuses; Engine.IO's refusals (:class:`SessionError`) are answered
        as Node's engine.io answers them (:meth:`SessionError.upgrade_refusal`), then the connection is closed."""
        refusal, self._refusal = self._refusal, None
        if refusal is None:
            super().failHandshake(reason, code, responseHeaders)
            return
        self.sendData(refusal.upgrade_refusal())
        self.dropConnection(abort=False)

    def connectionMade(self) -> None:
        _compat.copy_config(self)
        super().connectionMade()
        self.factory.connections.add(self)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self._lost = True
        self.factory.connections.discard(self)
        if self._deflate_state is not None:
            Deflater.leave(self._deflate_state)
            self._deflate_state = None
        super().connectionLost(reason)
        _compat.cancel_timers(self)
        # Reference cycles nothing else breaks: Autobahn resolves is_closed with this protocol (and
        # never touches it once closed), and the session names this protocol as its transport.
        # Broken here, a closed connection is freed by reference counting at once rather than by
        # a pass of the garbage collector over the older generations.
        _compat.forget_closed(self)
        self.session = None
        self._backlog, self._next = None, cancel(self._next)
        relay, self.relay = self.relay, None
        if relay is not None:
            relay.transport_closed(CloseReason.TRANSPORT_CLOSE, "websocket connection lost")

    def processHandshake(self) -> None:
        """Autobahn's, unless the request twisted.web parsed can be answered as it is (not parsed again)."""
        if (request := self.factory.upgrade_request) is None or not _compat.fast_handshake(self, request):
            super().processHandshake()

    def onOpen(self) -> None:
        self._deflate = _compat.deflate_extension(self)
        if self._unwanted:
            self.sendClose()  # an empty close frame, as Node's ws sends
            return
        self._watch_buffer()
        if self.session is None and self._handshake is not None and not self._lost:
            self.session = self.factory.manager.open_session(self, self._handshake, self._sid, self.protocol)
        elif self.relay is not None:
            self.relay.opened()

    def dataReceived(self, data: bytes) -> None:
        """Handle what was read, up to :data:`PACKETS_PER_TURN` messages; the rest waits for the next turn."""
        self.factory.stats.websocket_bytes_received += len(data)
        if self._backlog is not None:
            self._backlog += data  # read while a slice is due (TLS may hand over several records per read)
            return
        self._budget = PACKETS_PER_TURN
        self._take(data)

    def _take(self, data: bytes) -> None:
        """Take complete, unfragmented, masked text/binary frames directly; Autobahn does the rest.

        Only when Autobahn sits at a frame boundary with nothing buffered;
        control frames, fragments, oversize or malformed frames, partial
        frames and anything after them go through Autobahn's own parser.
        Either way, once this turn's budget is spent, the rest is held back.
        """
        if (
            self.state != self.STATE_OPEN
            or not _compat.frame_boundary(self)
            or (self.session is None and self.relay is None)
        ):
            super().dataReceived(data)
            return
        limit = self.factory.manager.options.max_payload
        pos, size = 0, len(data)
        while True:
            payload, binary, pos = client_frame(data, pos, limit)
            if payload is None:
                break
            self.onMessage(payload, binary)
            if self._budget <= 0 or self.state != self.STATE_OPEN:
                break
        if pos < size and self.state in (self.STATE_OPEN, self.STATE_CLOSING):
            if self._budget <= 0:
                self._hold(data[pos:])
            else:
                super().dataReceived(data[pos:])

    def _spend(self) -> None:
        """Count a message or control frame just handled against this turn's budget; the turn's
        time is counted from the end of its first one (a read of one message reads the clock once)."""
        budget = self._budget = self._budget - 1
        if budget <= 0:
            return
        if budget == PACKETS_PER_TURN - 1:
            self._deadline = self.factory.seconds() + TURN_SECONDS
        elif self.factory.seconds() >= self._deadline:
            self._budget = 0

    def processData(self) -> bool:
        """Autobahn's parser, one step at a time: refused once this turn's budget is spent
        (what it buffers waits for the next slice)."""
        if self._budget > 0:
            return bool(super().processData())
        if self._backlog is None:
            self._hold(b"")
        return False

    def _hold(self, rest: bytes) -> None:
        """Stop reading and keep ``rest`` (after Autobahn's buffer) for the next reactor turn
        (nothing once the connection was dropped: no slice is due then)."""
        if self.state == self.STATE_CLOSED:
            return
        self._backlog = rest
        self._reading(False)
        self._next = self.factory.manager.reactor.callLater(0, self._slice)

    def _slice(self) -> None:
        """The next turn's share of what a read brought: Autobahn's buffered frames first, then the backlog."""
        self._next = None
        rest, self._backlog = self._backlog, None
        if self.state == self.STATE_CLOSED:
            return  # dropped since: nothing is handed on, nothing read
        self._budget = PACKETS_PER_TURN
        if _compat.autobahn_buffered(self) and self.state in (self.STATE_OPEN, self.STATE_CLOSING):
            self.consumeData()
        if self._backlog is not None:  # Autobahn's buffer alone spent the budget
            self._backlog += rest or b""
            return
        if rest:
            self._take(rest)
        if self._backlog is None:
            if self._budget < PACKETS_PER_TURN:
                self._hold(b"")  # reading resumes next turn: a read in this one would get a budget of its own
            elif not self._paused:
                self._reading(True)

    def onMessageEnd(self) -> None:
        # Only messages that went through Autobahn's parser (every compressed one) end here.
        super().onMessageEnd()
        _compat.release_inflater(self._deflate)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        session = self.session
        if session is not None:
            try:
                if self.protocol == 3:
                    packet = packets_v3.decode_ws_frame(payload, isBinary)
                else:
                    packet = decode_ws_frame(payload, isBinary)
            except DecodeError as e:
                session.protocol_error(self, CloseReason.PARSE_ERROR, str(e))
            else:
                session.receive(packet, self)
        elif self.relay is not None:
            self._relay_message(self.relay, payload, isBinary)
        self._spend()

    def _relay_message(self, relay: Relay, payload: bytes, binary: bool) -> None:
        decode = packets_v3.decode_ws_frame if self.protocol == 3 else decode_ws_frame
        try:
            packet = decode(payload, binary)
        except DecodeError as e:
            self.relay = None
            relay.transport_closed(CloseReason.PARSE_ERROR, str(e))
            self.close()
            return
        relay.receive(packet)

    def onPing(self, payload: bytes) -> None:
        # Control frames cost the server as much as packets: they count against the rate limit.
        session = self.session
        if session is None or session.closed or session.within_rate():
            super().onPing(payload)  # Autobahn answers with a pong
        self._spend()

    def onPong(self, payload: bytes) -> None:
        session = self.session
        if session is not None and not session.closed:
            session.within_rate()
        self._spend()

    def sendCloseFrame(self, code: int | None = None, reasonUtf8: bytes | None = None, isReply: bool = False) -> None:
        """Autobahn's, but a 1009 (message too big) goes with an empty reason, as Node's ``ws`` sends it."""
        if code == 1009 and not isReply:
            self._kept_reason, reasonUtf8 = reasonUtf8, None
        super().sendCloseFrame(code, reasonUtf8, isReply)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.session is None and self.relay is None:
            return
        # Autobahn reports 1006 for any unclean close; the codes exchanged tell more.
        codes = {self.localCloseCode, self.remoteCloseCode}
        if 1007 in codes:
            why = CloseReason.PARSE_ERROR
        elif codes & _ERROR_CODES:
            why = CloseReason.TRANSPORT_ERROR
        else:
            why = CloseReason.TRANSPORT_CLOSE
        if self.closedByMe and self.localCloseCode is not None:  # ours, e.g. 1009, not the peer's reply
            said = self.localCloseReason or self._kept_reason or b""
            code, reason = self.localCloseCode, said.decode("utf-8", "replace")
        description = f"websocket closed ({code}: {reason or ''})"
        if self.session is not None:
            self.session.transport_closed(self, why, description)
            return
        relay, self.relay = self.relay, None
        if relay is not None:
            relay.transport_closed(why, description)


class EngineIOWebSocketFactory(WebSocketServerFactory):
    """Builds :class:`EngineIOWebSocketProtocol` for one :class:`SessionManager`."""

    protocol = EngineIOWebSocketProtocol  # type: ignore[assignment]

    def __init__(self, manager: SessionManager, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.manager = manager
        self.elsewhere: Elsewhere | None = None
        """Serves upgrades of sessions this node does not hold (set by :class:`EngineIOResource`'s ``elsewhere``)."""
        self.stats = manager.stats
        """The manager's :class:`txrealtime.engineio.stats.EngineStats`, where bytes read and written are counted."""
        self.upgrade_headers: list[tuple[str, str]] = []
        """Headers for the 101 of the upgrade being handled (set by :class:`EngineIOResource` around it)."""
        self.connections: set[EngineIOWebSocketProtocol] = set()
        """Open WebSocket connections (drained on shutdown)."""
        self._last_data: object = None
        self._last_framing = Framing.V4
        self._last_frame = b""
        self.deflater = Deflater()
        """Compression shared by connections with the same history (permessage-deflate)."""
        _compat.direct_timers(self, manager.reactor)
        self.upgrade_request: Request | None = None
        """The twisted.web request of the upgrade being handled (set by :class:`EngineIOResource` around it)."""
        self.seconds = seconds_of(manager.reactor)
        """The manager's clock, for the time each connection's reads may take per turn."""
        settings = manager.options.websocket_compression
        self.deflate_threshold = settings.threshold if settings is not None else 0
        """Smallest message compressed on connections that negotiated permessage-deflate."""
        if settings is not None:
            require_bounded_inflate()
            self.setProtocolOptions(  # type: ignore[no-untyped-call]
                perMessageCompressionAccept=partial(
                    accept_deflate,
                    server_no_context_takeover=settings.server_no_context_takeover,
                    client_no_context_takeover=settings.client_no_context_takeover,
                    server_max_window_bits=settings.server_max_window_bits,
                    client_max_window_bits=settings.client_max_window_bits,
                    mem_level=settings.mem_level,
                )
            )
        self.setProtocolOptions(  # type: ignore[no-untyped-call]
            maxMessagePayloadSize=manager.options.max_payload,
            maxFramePayloadSize=manager.options.max_payload,
            autoPingInterval=0,
            openHandshakeTimeout=manager.options.ping_timeout,
            closeHandshakeTimeout=5,
            failByDrop=False,
            trustXForwardedFor=0,
            # Text frames are decoded as UTF-8 by the codec, which rejects invalid input itself.
            utf8validateIncoming=False,
        )
