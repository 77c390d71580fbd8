"""HTTP long-polling transport: GET waits for packets, POST delivers them.

A POST body is decoded lazily and handed to the session in slices of
:attr:`PollingTransport.SLICE` packets, the reactor running other
connections between slices; the POST is answered once its whole body was
handled. One POST per session at a time, as in Node's engine.io.

Bodies are framed for the session's protocol revision (v3 with its binary
payloads, see :mod:`txrealtime.engineio.packets_v3`). With ``allow_eio3``, a
handshake carrying ``j=N`` makes the session a JSONP one, for either revision, as in Node.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from itertools import islice
from typing import cast

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import Request
from twisted.web.server import NOT_DONE_YET

from .._logging import Throttle, gate, name_for_log
from .._reactor import Clock, DelayedCall, cancel, default_reactor, seconds_of
from . import packets_v3
from .events import CloseReason, Handshake, parse_query
from .manager import PACKETS_PER_TURN, TURN_SECONDS, Session, SessionError, SessionManager
from .options import HttpCompression
from .packets import DecodeError, Packet, PacketType, encode_payload, iter_payload, utf8
from .stats import EngineStats

__all__ = [
    "TOO_LARGE",
    "PollingTransport",
    "accepted_encoding",
    "error_response",
    "handshake_from_request",
    "parse_query",
    "query_of",
]

_PAYLOAD_TYPE = b"text/plain; charset=UTF-8"
_BINARY_TYPE = b"application/octet-stream"

log = Logger(__name__, observer=gate)
noisy = Throttle(log)
"""For lines a flood of bad clients could make us repeat."""


TOO_LARGE = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
"""The whole answer to a request body over ``max_payload`` that is refused before it is read: 413
with an empty body, as Node's engine.io answers; the session it named carries on, as in Node."""


def query_of(request: Request) -> dict[str, str]:
    """The request's query parameters, first value of each (body never parsed)."""
    return parse_query(request.uri)


def handshake_from_request(request: Request) -> Handshake:
    """Describe the client behind a ``twisted.web`` request."""
    headers = [
        (name.decode("latin-1"), b",".join(values).decode("latin-1"))
        for name, values in request.requestHeaders.getAllRawHeaders()
    ]
    return Handshake.of_request(
        headers, query_of(request), request.getClientAddress(), bool(request.isSecure()), request.uri.decode("latin-1")
    )


def error_response(request: Request, error: SessionError, status: int = 400) -> bytes:
    """Answer with Engine.IO's JSON error body."""
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    return error.body()


_ENCODINGS = (b"gzip", b"deflate")


def accepted_encoding(header: bytes | None) -> bytes | None:
    """``gzip``, ``deflate`` or ``None``: what Node's ``accepts(req).encodings(["gzip", "deflate"])`` picks.

    Highest ``q`` first, then an encoding named over one matched by ``*``,
    then the order of the header, then gzip before deflate; ``q=0`` refuses.
    No header at all means no encoding.
    """
    if not header:
        return None
    best: dict[bytes, tuple[int, float, int]] = {}  # per encoding, its best (specificity, q, order) as negotiator's
    for order, item in enumerate(header.split(b",")):
        name, *params = (part.strip() for part in item.split(b";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition(b"=")
            if key.strip().lower() == b"q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        name = name.lower()
        for encoding in _ENCODINGS:
            if name in (encoding, b"*"):
                spec = (1 if name == encoding else 0, q, order)
                if spec > best.get(encoding, (-1, 0.0, -1)):
                    best[encoding] = spec
    ranked = sorted(
        ((-q, -specificity, order, index), encoding)
        for index, encoding in enumerate(_ENCODINGS)
        if encoding in best
        for specificity, q, order in [best[encoding]]
        if q > 0
    )
    return ranked[0][1] if ranked else None


def _compressed(body: bytes, encoding: bytes, level: int) -> bytes:
    """``body`` in a gzip (header as Node's: no name, mtime 0) or a zlib ("deflate") container."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31 if encoding == b"gzip" else 15)
    return compressor.compress(body) + compressor.flush()


def _write(request: Request, status: int, content_type: bytes, body: bytes) -> None:
    request.setResponseCode(status)
    request.setHeader(b"content-type", content_type)
    request.setHeader(b"content-length", b"%d" % len(body))
    request.write(body)
    request.finish()


class PollingTransport:
    """The long-polling side of one session, alive across its HTTP requests."""

    name = "polling"

    SLICE = PACKETS_PER_TURN
    """Packets of a POST body handed to the session per reactor turn, fewer if they took
    :data:`txrealtime.engineio.manager.TURN_SECONDS` (see
    :data:`txrealtime.engineio.manager.PACKETS_PER_TURN`)."""

    def __init__(
        self, max_payload: int, clock: Clock | None = None, stats: EngineStats | None = None, protocol: int = 4,
        binary: bool = True, jsonp: str | None = None, compression: HttpCompression | None = None,
    ) -> None:
        self.session: Session | None = None
        self.protocol = protocol
        """The Engine.IO protocol revision its bodies are framed for."""
        self.binary = binary
        """v3: whether binary messages go as a binary payload (the client did not ask for ``b64``)."""
        self.jsonp = jsonp
        """The JSONP callback slot (the handshake's ``j``), or ``None`` for plain XHR polling."""
        self._max_payload = max_payload
        self._stats = stats if stats is not None else EngineStats()
        """Where the bytes of bodies read and written are counted (the manager's)."""
        self._compression = compression
        self._clock: Clock = default_reactor(clock)
        self._get: Request | None = None
        self._initial: Request | None = None
        """The handshake GET, until it is answered with the OPEN packet."""
        # The POST whose body is being dispatched, its packets still to come, the next slice's call.
        self._post: Request | None = None
        self._packets: Iterator[Packet] | None = None
        self._next: DelayedCall | None = None

    @classmethod
    def open(cls, manager: SessionManager, request: Request) -> object:
        """Serve a handshake GET: admit the client, make its sid, create a session, answer with its OPEN packet."""
        handshake = handshake_from_request(request)
        outcome: list[object] = []
        lost: list[Failure] = []

        def admitted(sid: str) -> None:
            if lost:
                return  # the client left while allow_request or generate_id decided
            query = handshake.query
            # JSONP only with allow_eio3: its requests carry no Origin header (see docs/security.md).
            jsonp = query.get("j") if manager.options.allow_eio3 else None
            transport = cls(manager.options.max_payload, manager.reactor, manager.stats, protocol=handshake.protocol,
                            binary=not query.get("b64"), jsonp=jsonp, compression=manager.options.polling_compression)
            transport._initial = request
            transport.session = manager.open_session(transport, handshake, sid, transport.protocol)
            result = transport.on_get(request)
            if outcome == ["pending"] and result is not NOT_DONE_YET:
                request.write(cast(bytes, result))
                request.finish()
            outcome.append(result)

        def refused(failure: Failure) -> None:
            error = failure.value if isinstance(failure.value, SessionError) else SessionError(SessionError.FORBIDDEN)
            noisy.info("Handshake from {address} refused: {error}", address=handshake.address,
                       error=name_for_log(str(error), 1000))
            manager.refused(error, handshake, "GET")
            if lost:
                return
            body = error_response(request, error, error.status)
            if outcome == ["pending"]:
                request.write(body)
                request.finish()
            outcome.append(body)

        verdict = manager.admit(handshake).addCallback(lambda _: manager.generate_sid(handshake))
        verdict.addCallbacks(admitted, refused)
        if outcome:
            return outcome[0]
        outcome.append("pending")
        request.notifyFinish().addErrback(lost.append)
        return NOT_DONE_YET

    # -- Transport protocol ----------------------------------------------

    @property
    def writable(self) -> bool:
        return self._get is not None

    def send(self, packets: list[Packet]) -> None:
        assert self._get is not None, "send() while not writable"
        body, content_type = self._encode(packets)  # before the request is taken: a failure leaves it parked
        request, self._get = self._get, None
        self._add_headers(request)
        compression = self._compression
        # As Node's polling transport: compressed if any packet may be, the body reaches the
        # threshold and the client accepts gzip or deflate.
        if compression is not None and len(body) >= compression.threshold and any(p.compress for p in packets):
            encoding = accepted_encoding(request.getHeader(b"accept-encoding"))
            if encoding is not None:
                body = _compressed(body, encoding, compression.level)
                request.setHeader(b"content-encoding", encoding)
        self._stats.polling_bytes_sent += len(body)
        _write(request, 200, content_type, body)

    def _encode(self, packets: list[Packet]) -> tuple[bytes, bytes]:
        """The body of a poll's answer and its content type."""
        if self.protocol == 3:
            payload = packets_v3.encode_payload(packets, self.binary and self.jsonp is None)
            if isinstance(payload, bytes):
                return payload, _BINARY_TYPE
        else:
            payload = encode_payload(packets)
        if self.jsonp is not None:
            payload = packets_v3.jsonp_script(self.jsonp, payload)
        return utf8(payload), _PAYLOAD_TYPE

    def _decode(self, request: Request, body: bytes) -> Iterator[Packet]:
        """The packets of a POST body, decoded lazily; raise ``UnicodeDecodeError`` if it is not text."""
        if self.protocol == 3 and self.jsonp is None and request.getHeader(b"content-type") == _BINARY_TYPE:
            return packets_v3.iter_binary_payload(body)
        text = body.decode("utf-8")
        if self.jsonp is not None:
            data = packets_v3.jsonp_data(text)
            if data is None:
                return iter(())  # no ``d`` field: ignored, as Node does
            text = data
        return packets_v3.iter_payload(text) if self.protocol == 3 else iter_payload(text)

    def _add_headers(self, request: Request) -> None:
        """Add the headers of the cookie option and the application's hooks to a response."""
        initial = request is self._initial
        if initial:
            self._initial = None
        if self.session is not None:
            for name, value in self.session.response_headers(lambda: handshake_from_request(request), initial):
                request.responseHeaders.addRawHeader(name, value)

    def close(self) -> None:
        request = self._end_post()
        if request is not None:
            self._add_headers(request)
            _finish(request, b"ok")  # the session ended between slices: the rest of the body is not wanted
        if self._get is not None:
            self.send([Packet(PacketType.CLOSE)])

    # -- HTTP ------------------------------------------------------------

    def on_get(self, request: Request) -> object:
        """A poll: answer now if packets wait, else hold the request."""
        session = self.session
        assert session is not None
        if self._get is not None:
            # A second concurrent poll is a protocol violation: the first one
            # gets the CLOSE packet, this one an error.
            session.protocol_error(self, CloseReason.TRANSPORT_ERROR, "overlapping GET requests")
            return error_response(request, SessionError(SessionError.BAD_REQUEST, "overlapping GET"))
        self._get = request
        request.notifyFinish().addErrback(self._lost, request)
        session.flush()
        return NOT_DONE_YET

    def _lost(self, failure: Failure, request: Request) -> None:
        if self._get is request:
            self._get = None
            if self.session is not None:
                self.session.transport_closed(self, CloseReason.TRANSPORT_ERROR, "poll connection closed prematurely")

    def on_post(self, request: Request) -> object:
        """Packets from the client: answered ``ok`` once all were handled (or the session closed)."""
        session = self.session
        assert session is not None
        if self._post is not None:
            # As in Node's engine.io: a second POST while one is handled breaks the protocol.
            session.protocol_error(self, CloseReason.TRANSPORT_ERROR, "data request overlap")
            return error_response(request, SessionError(SessionError.BAD_REQUEST, "data request overlap"))
        body = request.content.read(self._max_payload + 1) if request.content is not None else b""
        self._stats.polling_bytes_received += len(body)
        if len(body) > self._max_payload:
            # As Node's engine.io: 413 with an empty body, and nothing else. The session and a poll parked
            # for it carry on; a client (Node's) that gets the 413 ends the session itself.
            request.setResponseCode(413)
            return b""
        try:
            packets = self._decode(request, body)
        except UnicodeDecodeError as e:
            # Not a payload: the session ends at once, as in Node's engine.io (no CLOSE waits for a next poll).
            session.protocol_error(self, CloseReason.PARSE_ERROR, str(e), linger=False)
            return error_response(request, SessionError(SessionError.BAD_REQUEST, str(e)))
        answer = self._dispatch(request, session, packets)
        if answer is not None:
            return answer  # the whole body fit in one slice
        self._post, self._packets = request, packets
        request.notifyFinish().addErrback(self._post_lost, request)
        self._next = self._clock.callLater(0, self._next_slice)
        return NOT_DONE_YET

    def _dispatch(self, request: Request, session: Session, packets: Iterator[Packet]) -> bytes | None:
        """Hand the session up to :attr:`SLICE` packets; the POST's answer, or ``None`` while packets remain."""
        count, out_of_time = 0, False
        seconds = seconds_of(self._clock)
        deadline = seconds() + TURN_SECONDS
        try:
            for packet in islice(packets, self.SLICE):
                count += 1
                if packet.type is PacketType.CLOSE:
                    self._client_closed(session)
                    break
                session.receive(packet, self)
                if session.closed:
                    break
                if seconds() >= deadline:
                    out_of_time = True
                    break
        except DecodeError as e:
            session.protocol_error(self, CloseReason.PARSE_ERROR, str(e), linger=False)
            return error_response(request, SessionError(SessionError.BAD_REQUEST, str(e)))
        if (count < self.SLICE and not out_of_time) or session.closed:
            self._add_headers(request)
            request.setHeader(b"content-type", b"text/html")
            return b"ok"
        return None

    def _client_closed(self, session: Session) -> None:
        """The client sent CLOSE: as Node's engine.io, a parked poll is answered with a NOOP and the session ends."""
        if self._get is not None:
            self.send([Packet(PacketType.NOOP)])
        session.transport_closed(self, CloseReason.TRANSPORT_CLOSE, "client sent close")

    def _next_slice(self) -> None:
        # Detached while the slice runs, so that a close it causes does not answer the POST early.
        request, packets = self._post, self._packets
        self._post = self._packets = self._next = None
        session = self.session
        assert request is not None and packets is not None and session is not None
        try:
            answer = self._dispatch(request, session, packets)
        except Exception:
            log.failure("Handling a POST of {sid} failed", sid=session.sid)
            request.setResponseCode(500)
            answer = b""
        if answer is None:
            self._post, self._packets = request, packets
            self._next = self._clock.callLater(0, self._next_slice)
        else:
            _finish(request, answer)

    def _end_post(self) -> Request | None:
        """Stop dispatching the POST in progress, if any; return its request."""
        request, self._post, self._packets = self._post, None, None
        self._next = cancel(self._next)
        return request

    def _post_lost(self, failure: Failure, request: Request) -> None:
        if self._post is request:
            self._end_post()
            if self.session is not None:
                self.session.transport_closed(
                    self, CloseReason.TRANSPORT_ERROR, "data request connection closed prematurely"
                )


def _finish(request: Request, body: bytes) -> None:
    """Write the answer to a POST that was handled over several reactor turns."""
    if not request.responseHeaders.hasHeader(b"content-type"):
        request.setHeader(b"content-type", b"text/html")
    request.setHeader(b"content-length", b"%d" % len(body))
    request.write(body)
    request.finish()
