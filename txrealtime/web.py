"""A ``twisted.web`` site that bounds what one client can hold: body size, header time, connections.

``twisted.web`` buffers a whole request body (in memory, then a temporary
file) before any resource sees it. :class:`BoundedSite` stops reading as soon
as a body is known to be larger than ``max_body`` — from ``Content-Length``
or by counting chunked data — answers ``413`` and closes that connection; the
Engine.IO session the request named, if any, carries on (as with Node's engine.io).

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

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.interfaces import IAddress, IProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web import http, pages
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from . import _compat
from ._logging import gate
from .channel import BoundedChannel, BoundedRequest, noisy
from .engineio import SessionManager

__all__ = [
    "HTTP_PARSER_ENV", "BoundedChannel", "BoundedRequest", "BoundedSite", "EmptyResource", "channel_for", "mount",
]

log = Logger(__name__, observer=gate)


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
