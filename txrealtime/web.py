"""A ``twisted.web`` site that refuses oversize request bodies while they arrive.

``twisted.web`` buffers a whole request body (in memory, then a temporary
file) before any resource sees it. :class:`BoundedSite` stops reading as soon
as a body is known to be larger than ``max_body`` — from ``Content-Length``
or by counting chunked data — answers ``413`` and closes that connection; the
Engine.IO session the request named, if any, is closed too. ``twistd
txrealtime`` and :mod:`txrealtime.testing` serve through it; use it in your
own site the same way::

    site = BoundedSite(root, max_body=options.max_payload, managers=[manager])
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from twisted.logger import Logger
from twisted.web import http
from twisted.web.resource import IResource
from twisted.web.server import Request, Site

from .engineio import CloseReason, SessionManager

__all__ = ["BoundedRequest", "BoundedSite"]

log = Logger()

_TOO_LARGE = b'{"code":3,"message":"Payload too large"}'


class BoundedRequest(Request):
    """A request whose body may not exceed its site's ``max_body``."""

    _received = 0
    _refused = False

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

    def _too_large(self, size: int) -> None:
        self._refused = True
        site = getattr(self.channel, "site", None)
        address = getattr(self.getClientAddress(), "host", "?")  # type: ignore[no-untyped-call]
        log.info("Request body from {address} over {limit} bytes ({size}): 413", address=address,
                 limit=self._limit(), size=size)
        if isinstance(site, BoundedSite):
            site.body_too_large(self)
        transport: Any = self.channel.transport
        transport.write(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_TOO_LARGE), _TOO_LARGE)
        )
        self.channel.loseConnection()


class BoundedSite(Site):
    """A :class:`~twisted.web.server.Site` whose requests carry at most ``max_body`` bytes of body."""

    requestFactory = BoundedRequest

    def __init__(
        self,
        resource: IResource,
        max_body: int = 1_000_000,
        managers: Sequence[SessionManager] = (),
        access_log: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(resource, **kwargs)  # type: ignore[no-untyped-call]
        self.max_body = max_body
        self.managers = list(managers)
        self.access_log = access_log
        """Whether to log every HTTP request (long-polling makes many)."""

    def log(self, request: http.Request) -> None:
        if self.access_log:
            super().log(request)

    def body_too_large(self, request: Request) -> None:
        """Close the Engine.IO session an oversize POST belonged to."""
        # The body arrives before twisted.web fills in request.uri; the channel has the request line.
        target = getattr(request.channel, "_path", None) or request.uri
        query = dict(parse_qsl(urlsplit(target.decode("latin-1")).query))
        sid = query.get("sid")
        if sid is None:
            return
        for manager in self.managers:
            session = manager.get(sid)
            if session is not None:
                session.close(CloseReason.TRANSPORT_ERROR, f"request body over {self.max_body} bytes")
