"""The HTTP channel of :class:`txrealtime.web.BoundedSite`: twisted.web's ``HTTPChannel`` bounding body size
and header time per request, and skipping form parsing for the resources that read no form fields.

:class:`BoundedChannel` parses with twisted.web's own parser; :class:`txrealtime.llhttp.LlhttpChannel` is
the same channel parsing with httptools. :func:`txrealtime.web.channel_for` chooses between them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.http_headers import Headers
from twisted.web.server import Request

from . import _compat
from ._logging import Throttle, gate
from ._reactor import cancel
from .engineio.polling import TOO_LARGE

__all__ = ["BoundedChannel", "BoundedRequest", "noisy"]

log = Logger(__name__, observer=gate)
noisy = Throttle(log)
"""For lines a flood of bad clients could make us repeat."""

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_LINE_TOO_LONG = b"HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_HEADER_TOO_LONG = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


_FORM = re.compile(rb"[ \t]*(application/x-www-form-urlencoded|multipart/form-data)[ \t]*(;|$)", re.IGNORECASE)
"""The content types ``twisted.web`` parses a POST body of into ``request.args``."""


def _reads_forms(site: Any, uri: bytes) -> bool:
    """Whether the resource ``uri`` leads to may read a form body's fields from ``request.args``.

    Follows the site's static children (``putChild``) only, without calling any
    ``getChild``: a resource reached so whose ``reads_form_args`` is false (the
    Engine.IO and Socket.IO endpoints) never reads them; any other may.
    """
    resource = getattr(site, "resource", None)
    for segment in uri.partition(b"?")[0].split(b"/")[1:]:
        if resource is None or getattr(resource, "isLeaf", False):
            break
        resource = getattr(resource, "children", {}).get(unquote_to_bytes(segment))
    return getattr(resource, "reads_form_args", True) is not False


class BoundedRequest(Request):
    """A request whose body may not exceed its site's ``max_body``."""

    _received = 0
    _refused = False

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            # Answered 413 while its body arrived: twisted.web's parser may still reach the body's end in
            # the data it holds (a chunked body's last chunk), but the request is never served: its empty
            # body would reach the session it names, which carries on as in Node's engine.io.
            return
        # twisted.web parses every POST's Content-Type with the email package to find form
        # bodies: a long-polling POST (text/plain) paid a quarter of its cost for it.
        # Form bodies only for resources that read them: the endpoints check the session first and
        # parse a JSONP form themselves (a 1 MB form of "&" held the reactor 1.2 s in twisted.web).
        ctype = self.requestHeaders.getRawHeaders(b"content-type")
        if ctype and (_FORM.match(ctype[0]) is None or not _reads_forms(getattr(self.channel, "site", None), path)):
            _compat.skip_form_parsing(self)
        super().requestReceived(command, path, version)  # type: ignore[no-untyped-call]

    def _limit(self) -> int | None:
        site = getattr(self.channel, "site", None)
        return getattr(site, "max_body", None)

    def gotLength(self, length: int | None) -> None:
        limit = self._limit()
        if limit is not None and length is not None and length > limit:
            self.content = io.BytesIO()
            self._too_large(length)
            return
        super().gotLength(length)  # type: ignore[no-untyped-call]

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        limit = self._limit()
        if limit is not None and self._received > limit:
            self._too_large(self._received)
            return
        super().handleContentChunk(data)  # type: ignore[no-untyped-call]

    def write(self, data: bytes) -> None:
        channel = self.channel
        if self.startedWriting or not isinstance(channel, BoundedChannel) or not _compat.fast.response_head:
            super().write(data)  # type: ignore[no-untyped-call]
            return
        # The first write: the channel holds the response head to send it with the body in one write.
        channel._head = []
        try:
            super().write(data)  # type: ignore[no-untyped-call]
        finally:
            channel._release_head()

    def _too_large(self, size: int) -> None:
        self._refused = True
        address = getattr(self.getClientAddress(), "host", "?")  # type: ignore[no-untyped-call]
        noisy.info("Request body from {address} over {limit} bytes ({size}): 413", address=address,
                 limit=self._limit(), size=size)
        transport: Any = self.channel.transport
        transport.write(TOO_LARGE)  # the session the request named carries on, as in Node's engine.io
        self.channel.loseConnection()


class BoundedChannel(http.HTTPChannel):
    """An HTTP/1.1 channel that must receive each request's headers within its site's ``header_timeout``.

    The clock starts when the connection opens and, on a kept-alive
    connection, at the first byte of each next request; it stops once the
    headers are complete, so parked long-polls and upgraded WebSockets are
    not affected. When it runs out the client gets ``408`` and the
    connection is closed. A request line over 16 KiB (``MAX_LENGTH``) gets
    ``414``, a longer header line ``431``, and the connection is closed.

    Responses are written as soon as they are complete (see
    :func:`txrealtime._compat.write`): a response's head goes out with the first part
    of its body, and the connection sends without delay (``TCP_NODELAY``,
    as Node's HTTP server).
    """

    _header_clock: IDelayedCall | None = None
    _awaiting_headers = True
    _head: list[bytes] | None = None
    """While a request writes for the first time: the response head, held to go out with the body."""
    _host: Any = None
    _lines = 0
    """Lines of the current request's head received so far (0: its request line is still to come)."""

    def connectionMade(self) -> None:
        super().connectionMade()  # type: ignore[no-untyped-call]
        transport: Any = self.transport
        try:
            transport.setTcpNoDelay(True)
        except (AttributeError, OSError):
            pass  # not TCP (a UNIX socket, a test transport)
        self._start_header_clock()

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        if self._head is None or not isinstance(headers, Headers):
            super().writeHeaders(version, code, reason, headers)  # type: ignore[no-untyped-call]
            return
        _compat.response_head(self._head, version, code, reason, headers)

    def write(self, data: bytes) -> None:
        self.writeSequence((data,))

    def writeSequence(self, iovec: Sequence[bytes]) -> None:
        head, self._head = self._head, None
        if head:
            head.extend(iovec)
            iovec = head
        _compat.write_sequence(self.transport, iovec)

    def getHost(self) -> Any:
        # twisted.web asks for every request (a getsockname each); a connection's local address does not change.
        if self._host is None:
            transport: Any = self.transport
            self._host = transport.getHost()
        return self._host

    def _release_head(self) -> None:
        """Write the held response head if no body came with it (an empty body, a HEAD request)."""
        if self._head and self.transport is not None:
            self.writeSequence(())
        self._head = None

    def dataReceived(self, data: bytes) -> None:
        if self._awaiting_headers and self._header_clock is None:
            self._start_header_clock()
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def lineReceived(self, line: bytes) -> None:
        self._lines += 1
        super().lineReceived(line)  # type: ignore[no-untyped-call]

    def lineLengthExceeded(self, line: bytes) -> None:
        # twisted.web closes without a word when a line is over MAX_LENGTH (16 KiB): answer as the
        # --workers master does for the request line (414), and as Node does for a header (431).
        self._refuse_line(self._lines == 0)

    def _refuse_line(self, first: bool) -> None:
        """Answer a request line (``first``, 414) or header line (431) over ``MAX_LENGTH`` and close."""
        transport: Any = self.transport
        if transport is None:
            return
        address = getattr(transport.getPeer(), "host", "?")
        noisy.info("Request {what} from {address} over {limit} bytes: {status}", address=address,
                   what="line" if first else "header line", limit=self.MAX_LENGTH, status=414 if first else 431)
        transport.write(_LINE_TOO_LONG if first else _HEADER_TOO_LONG)
        self.loseConnection()  # type: ignore[no-untyped-call]

    def allHeadersReceived(self) -> None:
        self._awaiting_headers = False
        self._header_clock = cancel(self._header_clock)
        super().allHeadersReceived()  # type: ignore[no-untyped-call]

    def requestDone(self, request: http.Request) -> None:
        # Before the parent replays pipelined bytes, which start the next request's clock.
        self._awaiting_headers = True
        self._lines = 0
        super().requestDone(request)  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._header_clock = cancel(self._header_clock)
        super().connectionLost(reason)  # type: ignore[no-untyped-call]

    def _header_timeout(self) -> float | None:
        return getattr(getattr(self, "site", None), "header_timeout", None)

    def _start_header_clock(self) -> None:
        timeout = self._header_timeout()
        if timeout is not None and self.transport is not None:
            self._header_clock = self.callLater(timeout, self._headers_timed_out)  # type: ignore[no-untyped-call]

    def _headers_timed_out(self) -> None:
        self._header_clock = None
        transport: Any = self.transport
        if transport is None:
            return
        address = getattr(transport.getPeer(), "host", "?")
        noisy.info("No complete request headers from {address} in {timeout} s: 408", address=address,
                 timeout=self._header_timeout())
        transport.write(_TIMED_OUT)
        self.timeoutConnection()  # type: ignore[no-untyped-call]
