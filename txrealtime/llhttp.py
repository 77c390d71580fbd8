"""An HTTP/1.1 channel for ``twisted.web`` that parses requests in C with httptools (llhttp, as uvicorn and Node).

:class:`LlhttpChannel` is a :class:`txrealtime.web.BoundedChannel` whose
``dataReceived`` feeds the bytes to an ``httptools.HttpRequestParser``
instead of ``twisted.web``'s line-at-a-time parser, then drives the same
``twisted.web`` request lifecycle: ``requestFactory`` makes the
``Request``, its ``requestHeaders`` are filled, ``allHeadersReceived``
(cookies, persistence, ``gotLength``, ``100-continue``),
``handleContentChunk`` for each piece of the body (plain or chunked) and
``allContentReceived`` (``requestReceived``, which renders). Resources see
the same ``Request`` objects as under ``twisted.web``'s own channel, and a
WebSocket upgrade takes the connection over the same way.

What it parses (llhttp, strict mode)::

    request      = request-line *( header-line ) CRLF [ body ]
    request-line = method SP request-target SP "HTTP/" DIGIT "." DIGIT CRLF
    header-line  = field-name ":" OWS field-value OWS CRLF
    body         = Content-Length octets / chunked transfer coding

The limits are ``twisted.web``'s and :class:`txrealtime.web.BoundedSite`'s,
with the same answers:

- a request line over ``MAX_LENGTH`` (16 KiB): ``414`` and close;
- a header line over ``MAX_LENGTH``, or a head that grows past
  ``MAX_LENGTH + totalHeadersSize`` without ending: ``431`` and close;
- more than ``maxHeaders`` (500) header lines, or header lines totalling
  over ``totalHeadersSize`` (16 KiB): ``400`` and close;
- anything llhttp refuses (a bad method, version, header name or value,
  both ``Content-Length`` and ``Transfer-Encoding``, bad chunk sizes):
  ``400`` and close;
- the header deadline, the body cap (``413``) and the per-address
  connection cap: as :class:`txrealtime.web.BoundedChannel`.

Pipelined requests are answered one at a time, in order: bytes that arrive
while a request is being served wait (and the connection stops reading
past ``twisted.web``'s eager-read size), and what the parser already read
of a next request in the same packet waits as parsed events. After a
request with ``Connection: close`` (or HTTP/1.0) nothing more is read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import httptools
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web.iweb import INonQueuedRequestFactory

from ._reactor import cancel
from .channel import BoundedChannel, noisy

__all__ = ["LlhttpChannel"]

_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\n\r\n"
_DETACHED = httptools.HttpRequestParser(object())
"""A parser calling nothing back, for channels done with theirs."""
_VERSIONS = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}


class _Stop(Exception):
    """Raised from a parser callback once the connection was answered and is closing."""


class LlhttpChannel(BoundedChannel):
    """A :class:`txrealtime.web.BoundedChannel` parsing requests with httptools (llhttp)."""

    _url: list[bytes]
    _url_length = 0
    _head_length = 0
    """Bytes received for the current request's head so far (a guard for heads that never end)."""
    _header_count = 0
    _header_bytes = 0
    _complete = False
    """Whether the parser finished a request that ``allContentReceived`` is still to take."""
    _stopped = False
    _busy = False
    """Whether :meth:`_run` is serving (a request answered within it adds to its work instead)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._parser = httptools.HttpRequestParser(self)
        self._queued: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._backlog: deque[bytes] = deque()
        """Bytes to parse once the queued events are delivered."""
        self._url = []

    # -- bytes in ---------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()  # type: ignore[no-untyped-call]
        if self._stopped:
            return
        if self._awaiting_headers and self._header_clock is None:
            self._start_header_clock()
        if self._handlingRequest:
            self.rawDataReceived(data)  # twisted.web's buffering (and read pausing) while a request is served
            return
        self._backlog.append(data)
        if not self._busy:
            self._run()

    def setLineMode(self, extra: bytes | None = b"") -> None:
        # twisted.web's requestDone hands back what arrived while the request was served: it goes after what
        # the parser had already read of the next requests.
        if extra:
            self._backlog.append(extra)
        if not self._busy:
            self._run()

    def _run(self) -> None:
        """Serve what waits, one request at a time, in a loop (a request answered at once comes back here
        through ``requestDone``: as ``LineReceiver``, no recursion per pipelined request)."""
        self._busy = True
        queued, backlog = self._queued, self._backlog
        try:
            while not self._handlingRequest and not self._stopped and self.transport is not None:
                if self._complete:
                    self._complete = False
                    self.allContentReceived()  # type: ignore[no-untyped-call]
                    if self.transport is None:
                        self._detach()  # a WebSocket took the connection over
                    continue
                if not (queued or backlog):
                    break
                if self._awaiting_headers and self._header_clock is None:
                    self._start_header_clock()
                if queued:
                    handler, args = queued.popleft()
                    try:
                        handler(*args)
                    except _Stop:
                        break
                else:
                    self._feed(backlog.popleft())
        finally:
            self._busy = False

    def _feed(self, data: bytes) -> None:
        if self._awaiting_headers:
            self._head_length += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            # llhttp stops after a request asking to upgrade; what follows is the new protocol's, or, if
            # the resource does not take the connection over, the next request's (as twisted.web buffers it).
            self._parser = httptools.HttpRequestParser(self)
            rest = data[e.args[0]:]
            if rest:
                self._backlog.appendleft(rest)
        except httptools.HttpParserCallbackError as e:
            if isinstance(e.__context__, _Stop):
                return
            raise (e.__context__ or e) from None
        except httptools.HttpParserError as e:
            if self._complete or self._handlingRequest:
                self._queued.append((self._bad_request, (str(e),)))
            else:
                self._answer_bad_request(str(e))
            return
        if self._awaiting_headers and not self._complete and not self._stopped:
            if self._head_length > self.MAX_LENGTH + self.totalHeadersSize:
                self._refuse_line(first=False)  # a long request line was refused as it came (on_url)
                self._halt()

    # -- parser callbacks: live, or queued while a request is served -------------------------------

    def on_message_begin(self) -> None:
        """httptools: a request starts."""
        if self._complete or self._handlingRequest or self._queued:
            self._queued.append((self._begin, ()))
        else:
            self._begin()

    def on_url(self, url: bytes) -> None:
        """httptools: (part of) the request target."""
        if self._complete or self._handlingRequest or self._queued:
            self._queued.append((self._add_url, (url,)))
        else:
            self._add_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """httptools: one header line."""
        if self._complete or self._handlingRequest or self._queued:
            self._queued.append((self._header, (name, value)))
        else:
            self._header(name, value)

    def on_headers_complete(self) -> None:
        """httptools: the head ended."""
        if self._complete or self._handlingRequest or self._queued:
            self._queued.append((self._headers_complete, (self._parser.get_method(), self._parser.get_http_version())))
        else:
            self._headers_complete(self._parser.get_method(), self._parser.get_http_version())

    def on_body(self, body: bytes) -> None:
        """httptools: a piece of the body (chunked framing removed)."""
        if self._complete or self._handlingRequest or self._queued:
            self._queued.append((self._body, (body,)))
        else:
            self._body(body)

    def on_message_complete(self) -> None:
        """httptools: the request is complete."""
        if self._complete or self._handlingRequest or self._queued:
            self._queued.append((self._message_complete, ()))
        else:
            self._message_complete()

    # -- what the events do ------------------------------------------------------------------------

    def _begin(self) -> None:
        if not self.persistent:
            # As twisted.web: nothing is read after a request that closes the connection.
            self._stop()
        self._url = []
        self._url_length = self._header_count = self._header_bytes = 0
        if INonQueuedRequestFactory.providedBy(self.requestFactory):
            request = self.requestFactory(self)
        else:
            request = self.requestFactory(self, len(self.requests))
        self.requests.append(request)

    def _add_url(self, url: bytes) -> None:
        self._url.append(url)
        self._url_length += len(url)
        # The request line: method SP target SP HTTP/x.y ("GET " and " HTTP/1.1" at least).
        if self._url_length + 13 > self.MAX_LENGTH:
            self._refuse_line(first=True)
            self._stop()

    def _header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + 2
        if size > self.MAX_LENGTH:
            self._refuse_line(first=False)
            self._stop()
        self._header_bytes += size
        self._header_count += 1
        if self._header_count > self.maxHeaders or self._header_bytes + self._url_length > self.totalHeadersSize:
            self._bad_request("too many or too large headers")
        self.requests[-1].requestHeaders.addRawHeader(name, value)

    def _headers_complete(self, method: bytes, version: str) -> None:
        request = self.requests[-1]
        self._command = method
        self._path = b"".join(self._url)  # type: ignore[assignment]  # typeshed-less Twisted infers Request
        self._version = _VERSIONS.get(version) or b"HTTP/" + version.encode()
        headers = request.requestHeaders
        if headers.hasHeader(b"transfer-encoding"):
            self.length = None
        else:
            length = headers.getRawHeaders(b"content-length")
            self.length = int(length[0]) if length else 0
        self._head_length = 0
        self.allHeadersReceived()
        if self.transport is None or getattr(self.transport, "disconnecting", False):
            self._stop()  # refused (413): nothing more is read

    def _body(self, body: bytes) -> None:
        self.requests[-1].handleContentChunk(body)
        if self.transport is None or getattr(self.transport, "disconnecting", False):
            self._stop()

    def _message_complete(self) -> None:
        self._complete = True

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)
        self._detach()

    def _detach(self) -> None:
        """Drop the parser, which holds this channel's methods: reference counting then frees the channel."""
        self._parser = _DETACHED
        self._queued.clear()
        self._backlog.clear()

    # -- refusing ------------------------------------------------------------------------------------

    def _bad_request(self, why: str) -> None:
        self._answer_bad_request(why)
        raise _Stop

    def _answer_bad_request(self, why: str) -> None:
        """``400`` and close, as ``twisted.web`` answers what it cannot parse."""
        transport: Any = self.transport
        if transport is not None:
            noisy.info("Bad request from {address}: {why}: 400", address=getattr(transport.getPeer(), "host", "?"),
                       why=why)
            transport.write(_BAD_REQUEST)
            self.loseConnection()  # type: ignore[no-untyped-call]
        self._halt()

    def _halt(self) -> None:
        """Read nothing more: the connection was answered and is closing."""
        self._stopped = True
        self._header_clock = cancel(self._header_clock)
        self._complete = False
        self._queued.clear()
        self._backlog.clear()

    def _stop(self) -> None:
        """:meth:`_halt` from within a parser callback (or a replayed event)."""
        self._halt()
        raise _Stop
