"""Polling requests across nodes: what a forwarded request carries, its replay on the owner, and its answer.

The node that received a polling request for another node's session sends
the request itself (:func:`request_message`): method, URI, headers (less
those of the hop), client address, TLS flag and body. The owner replays it
through its own :class:`txrealtime.engineio.EngineIOResource` on a
:class:`ReplayedRequest`, an in-memory ``twisted.web`` request, so that
one code path serves it as if it had arrived there: header hooks, cookies,
compression, CORS, Engine.IO v3 and JSONP, overlapping polls, POST slicing,
closing. The answer's status, headers and body go back
(:func:`response_message`) and are written to the client (:func:`answer`);
a client that hangs up makes the replayed request lost on the owner
(:meth:`ReplayedRequest.connectionLost`), as its own request would be.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, Request
from twisted.web.http_headers import Headers

from .wire import Request as RequestMessage
from .wire import Response, WireError, decode_headers, encode_headers

__all__ = [
    "HOP_HEADERS", "Peer", "ReplayedRequest", "answer", "forwardable", "headers_of", "request_message",
    "response_message",
]

HOP_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "content-length", "date", "server",
})
"""Headers of one HTTP hop, never forwarded: each node writes its own."""


@dataclass(frozen=True, slots=True)
class Peer:
    """The client address a replayed request reports (``getClientAddress``)."""

    host: str
    port: int = 0


class _Channel:
    """What ``twisted.web.http.Request.__init__`` reads from its channel."""

    transport = None

    def __init__(self, peer: Peer) -> None:
        self._peer = peer

    def getPeer(self) -> Peer:
        return self._peer

    def getHost(self) -> Peer:
        return self._peer


def headers_of(request: Request) -> list[tuple[str, str]]:
    """A request's headers as ``(name, value)`` text pairs, one per value (names lower-cased)."""
    return [
        (name.decode("latin-1").lower(), value.decode("latin-1"))
        for name, values in request.requestHeaders.getAllRawHeaders()
        for value in values
    ]


def request_message(origin: str, id: int, sid: str, request: Request) -> RequestMessage:
    """The message carrying ``request`` (for session ``sid``) to its owner."""
    content = request.content
    body = b""
    if content is not None:
        content.seek(0)
        body = content.read()
    peer = request.getClientAddress()
    return RequestMessage(
        origin, id, sid, request.method.decode("latin-1"), request.uri.decode("latin-1"),
        encode_headers(forwardable(headers_of(request))), str(getattr(peer, "host", peer)),
        1 if request.isSecure() else 0, body,
    )


def forwardable(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers to send on: not those of the hop, nor what the wire cannot hold (a line break, which
    twisted.web never parses into a header, or text that is not latin-1)."""
    return [
        (n, v) for n, v in headers
        if n and n.lower() not in HOP_HEADERS and ":" not in n and "\r" not in n + v and "\n" not in n + v
        and _latin1(n + v)
    ]


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


class ReplayedRequest(Request):
    """A forwarded polling request, replayed on the node that holds its session; nothing goes to a socket.

    ``answered`` is called once with the request when it finishes.
    """

    def __init__(self, message: RequestMessage, answered: Callable[[ReplayedRequest], object]) -> None:
        super().__init__(cast(HTTPChannel, _Channel(Peer(message.address))))
        self.forwarded_by = message.origin
        """The uid of the node that received the request."""
        self.method = message.method.encode("latin-1")
        self.uri = message.uri.encode("latin-1")
        self.path = self.uri.partition(b"?")[0]
        self.clientproto = b"HTTP/1.1"
        self.requestHeaders = Headers()
        try:
            pairs = decode_headers(message.headers)
        except WireError:
            pairs = []
        for name, value in pairs:
            self.requestHeaders.addRawHeader(name, value)
        self.content = io.BytesIO(message.body)
        self.args = {}
        self._secure = bool(message.secure)
        self._answered = answered
        self._chunks: list[bytes] = []
        self.lost = False
        """Whether the client went away before the answer."""

    def isSecure(self) -> bool:
        return self._secure

    def write(self, data: bytes) -> None:
        if self.lost or self.finished:
            return
        self.startedWriting = 1
        self._chunks.append(data)

    def finish(self) -> None:
        if self.lost:
            raise RuntimeError("finish() on a forwarded request whose client left")
        if self.finished:
            return
        self.finished = 1
        self._answered(self)
        notifications, self.notifications = self.notifications, []
        for d in notifications:
            d.callback(None)

    def connectionLost(self, reason: Failure = Failure(ConnectionDone("the client left"))) -> None:  # noqa: B008
        """The client of the request went away."""
        if self.finished or self.lost:
            return
        self.lost = True
        notifications, self.notifications = self.notifications, []
        for d in notifications:
            d.errback(reason)

    @property
    def body(self) -> bytes:
        """What was written."""
        return b"".join(self._chunks)


def response_message(origin: str, request: ReplayedRequest, id: int) -> Response:
    """The answer of a finished :class:`ReplayedRequest`, for the node that received it."""
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, values in request.responseHeaders.getAllRawHeaders()
        for value in values
    ]
    headers += [("Set-Cookie", cookie.decode("latin-1")) for cookie in request.cookies]
    return Response(origin, id, request.code, encode_headers(forwardable(headers)), request.body)


def answer(request: Request, response: Response) -> None:
    """Write the owner's answer to the client's request (the headers of the hop are this node's)."""
    grouped: dict[str, list[str]] = {}
    try:
        pairs = decode_headers(response.headers)
    except WireError:
        pairs = []
    for name, value in pairs:
        if name.lower() not in HOP_HEADERS:
            grouped.setdefault(name, []).append(value)
    request.setResponseCode(response.status)
    for name, values in grouped.items():
        request.responseHeaders.setRawHeaders(name, cast(Any, values))
    request.setHeader(b"content-length", b"%d" % len(response.body))
    request.write(response.body)
    request.finish()
