"""A ``twisted.web`` site that bounds what one client can hold: body size, header time, connections.

``twisted.web`` buffers a whole request body (in memory, then a temporary
file) before any resource sees it. :class:`BoundedSite` stops reading as soon
as a body is known to be larger than ``max_body`` — from ``Content-Length``
or by counting chunked data — answers ``413`` and closes that connection; the
Engine.IO session the request named, if any, is closed too.

It also gives each request ``header_timeout`` seconds to deliver its headers
(``408`` and close otherwise, like Node's ``headersTimeout``), and can cap the
open connections per client address (``max_connections_per_ip``).
``twisted.web`` parses a form body (``application/x-www-form-urlencoded``,
``multipart/form-data``) into ``request.args`` before any resource sees it;
:class:`BoundedSite` skips that for resources whose ``reads_form_args`` is
false, the Engine.IO and Socket.IO endpoints among them.
``twistd txrealtime`` and :mod:`txrealtime.testing` serve through it; use it in
your own site the same way::

    site = BoundedSite(root, max_body=options.max_payload, managers=[manager])
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from twisted.internet.interfaces import IAddress, IDelayedCall, IProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.web import http, pages
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from . import _compat
from ._logging import Throttle, gate
from ._reactor import cancel
from .engineio import CloseReason, SessionManager
from .engineio.polling import TOO_LARGE, PollingTransport

__all__ = [
    "HTTP_PARSER_ENV", "BoundedChannel", "BoundedRequest", "BoundedSite", "EmptyResource", "channel_for", "mount",
]

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
        site = getattr(self.channel, "site", None)
        address = getattr(self.getClientAddress(), "host", "?")  # type: ignore[no-untyped-call]
        noisy.info("Request body from {address} over {limit} bytes ({size}): 413", address=address,
                 limit=self._limit(), size=size)
        transport: Any = self.channel.transport
        transport.write(TOO_LARGE)  # first: the session's end must not reach the client before it
        if isinstance(site, BoundedSite):
            site.body_too_large(self)
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


@_compat.forwards_writes
class _Counted(ProtocolWrapper):
    """One connection counted against its client address until it closes (WebSocket takeover included)."""

    def __init__(self, factory: _PerAddress, wrapped: IProtocol, host: str) -> None:
        super().__init__(factory, wrapped)
        self.host = host


if TYPE_CHECKING:
    _CountingFactory = WrappingFactory[_Counted]
else:  # Twisted before 24.3 has no generic WrappingFactory at run time
    _CountingFactory = WrappingFactory


class _PerAddress(_CountingFactory):
    """Open connection counts per client address; never listens itself."""

    protocol = _Counted

    def __init__(self, site: Site) -> None:
        super().__init__(site)  # type: ignore[no-untyped-call]
        self.counts: dict[str, int] = {}

    def registerProtocol(self, p: _Counted) -> None:
        self.counts[p.host] = self.counts.get(p.host, 0) + 1

    def unregisterProtocol(self, p: _Counted) -> None:
        left = self.counts.get(p.host, 0) - 1
        if left > 0:
            self.counts[p.host] = left
        else:
            self.counts.pop(p.host, None)


class _Refused(Protocol):
    """Closes its connection as soon as it opens."""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.abortConnection()


HTTP_PARSER_ENV = "TXREALTIME_HTTP_PARSER"
"""The environment variable choosing :class:`BoundedSite`'s HTTP parser when it is not given one: ``auto``
(httptools if installed), ``httptools`` or ``twisted``."""

_PARSERS = ("auto", "httptools", "twisted")


def channel_for(parser: str | None = None) -> type[BoundedChannel]:
    """The channel class parsing requests with ``parser``: ``"httptools"`` (C, the ``speedups`` extra),
    ``"twisted"`` (``twisted.web``'s own) or ``"auto"`` (httptools if installed and the ``c_http_parser``
    fast path of :mod:`txrealtime._compat` is on); ``None``: from the :data:`HTTP_PARSER_ENV` environment
    variable, else ``"auto"``."""
    choice = parser if parser is not None else os.environ.get(HTTP_PARSER_ENV) or "auto"
    if choice not in _PARSERS:
        raise ValueError(f"HTTP parser must be one of {', '.join(_PARSERS)}, not {choice!r}")
    if choice == "twisted" or (choice == "auto" and not _compat.fast.c_http_parser):
        return BoundedChannel
    try:
        from .llhttp import LlhttpChannel
    except ImportError:
        if choice == "httptools":
            raise
        return BoundedChannel
    return LlhttpChannel


class BoundedSite(Site):
    """A ``twisted.web.server.Site`` bounding body size, header time and connections per address.

    It speaks HTTP/1.1 only (no HTTP/2 over ALPN), as the WebSocket
    transport needs. Connections opened before ``max_connections_per_ip``
    was set are not counted against it.
    """

    requestFactory = BoundedRequest
    protocol = BoundedChannel  # type: ignore[assignment]  # HTTP/1.1 only: no HTTP/2 proxy around it

    def __init__(
        self,
        resource: IResource,
        max_body: int = 1_000_000,
        managers: Sequence[SessionManager] = (),
        access_log: bool = True,
        header_timeout: float | None = 10.0,
        max_connections_per_ip: int | None = None,
        http_parser: str | None = None,
        **kwargs: Any,
    ) -> None:
        """A site serving ``resource`` within these bounds.

        :param resource: The root resource.
        :param max_body: Largest request body, in bytes (413 beyond).
        :param managers: The session managers whose sessions it serves (for their per-address limits and shutdown).
        :param access_log: Whether to log each request.
        :param header_timeout: Seconds a client has to send a request's headers (408 and close beyond);
            ``None``: no limit.
        :param max_connections_per_ip: Most open connections from one address; ``None``: no limit.
        :param http_parser: ``"httptools"`` (C), ``"twisted"`` or ``"auto"`` (see :func:`channel_for`); both
            enforce the same limits. ``None``: from the ``TXREALTIME_HTTP_PARSER`` environment variable.
        """
        super().__init__(resource, **kwargs)  # type: ignore[no-untyped-call]
        if header_timeout is not None and header_timeout <= 0:
            raise ValueError("header_timeout must be > 0 (or None for no deadline)")
        if max_connections_per_ip is not None and max_connections_per_ip <= 0:
            raise ValueError("max_connections_per_ip must be > 0 (or None for no limit)")
        self.max_body = max_body
        """Largest request body, in bytes."""
        self.managers = list(managers)
        """The session managers whose sessions it serves."""
        self.access_log = access_log
        """Whether to log every HTTP request (long-polling makes many)."""
        self.header_timeout = header_timeout
        """Seconds a client has to send a request's headers before ``408`` and close; ``None``: no deadline."""
        self.max_connections_per_ip = max_connections_per_ip
        """Open TCP connections allowed per client address; further ones are closed at once. ``None``: no limit."""
        self._per_address = _PerAddress(self)
        self.protocol = channel_for(http_parser)

    def buildProtocol(self, addr: IAddress | None) -> Any:
        limit = self.max_connections_per_ip
        host = getattr(addr, "host", None)
        if limit is None or not isinstance(host, str):
            return super().buildProtocol(addr)  # type: ignore[no-untyped-call]
        if self._per_address.counts.get(host, 0) >= limit:
            noisy.info("Connection from {address} over {limit} per address: closed", address=host, limit=limit)
            return _Refused()
        return _Counted(self._per_address, super().buildProtocol(addr), host)  # type: ignore[no-untyped-call]

    def log(self, request: http.Request) -> None:
        if self.access_log:
            super().log(request)

    def body_too_large(self, request: Request) -> None:
        """Close the Engine.IO session an oversize POST belonged to."""
        # The body arrives before twisted.web fills in request.uri; the channel has the request line.
        target = _compat.request_target(request)
        query = dict(parse_qsl(urlsplit(target.decode("latin-1")).query))
        sid = query.get("sid")
        if sid is None:
            return
        for manager in self.managers:
            session = manager.get(sid)
            if session is None:
                continue
            why = f"request body over {self.max_body} bytes"
            if isinstance(session.transport, PollingTransport):
                session.transport.refuse_oversized(why)
            else:
                session.close(CloseReason.TRANSPORT_ERROR, why)


class EmptyResource(Resource):
    """A resource with children only: unknown paths get ``twisted.web.pages.notFound``.

    A plain ``Resource`` builds the deprecated ``NoResource`` for them, and
    each 404 then adds a ``DeprecationWarning`` to the program's output.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def getChild(self, path: bytes, request: Any) -> Any:
        return pages.notFound()


def mount(root: Resource, path: str, resource: Resource) -> None:
    """Put ``resource`` at ``path`` (e.g. ``/socket.io/``) under ``root``, creating parents."""
    segments = [s.encode() for s in path.strip("/").split("/") if s]
    if not segments:
        raise ValueError("cannot mount at /")
    parent = root
    for segment in segments[:-1]:
        child = parent.children.get(segment)
        if not isinstance(child, Resource):
            child = EmptyResource()
            parent.putChild(segment, cast(IResource, child))
        parent = child
    parent.putChild(segments[-1], cast(IResource, resource))
