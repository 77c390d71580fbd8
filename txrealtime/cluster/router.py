"""The master's side of a client connection: read the first request line, then hand the socket to a worker.

A :class:`Router` reads until the request line is complete (at most
:data:`txrealtime.cluster.routing.MAX_FIRST_LINE` bytes, within the header
timeout), stops reading, and asks its :class:`Dispatcher` to pass the socket
and the bytes read so far to the worker that owns the request's ``sid``
(or the least loaded). The worker adopts the socket and answers; the master
then closes its own copy without shutting the connection down
(:func:`release`).
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.protocol import Factory
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._compat import close_without_shutdown
from .._logging import gate
from .._reactor import cancel
from .routing import MAX_FIRST_LINE, first_line

__all__ = ["Dispatcher", "Router", "RouterFactory", "release"]

log = Logger(__name__, observer=gate)

_TOO_LONG = b"HTTP/1.1 414 URI Too Long\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class Dispatcher(Protocol):
    """Gives a routed connection to a worker."""

    def dispatch(self, router: Router, line: bytes, data: bytes) -> None:
        """Hand ``router``'s socket, whose first request line is ``line`` and first bytes ``data``, to a worker."""


def release(transport: Any) -> None:
    """Close the master's copy of a socket a worker adopted, leaving the connection open for the worker.

    ``tcp.Connection`` shuts a socket down before closing it unless told
    not to, as Twisted does itself for the sockets of adopted ports; a
    shutdown would end the connection for the worker too.
    """
    close_without_shutdown(transport)


class Router(TwistedProtocol):
    """One client connection, until a worker adopts it."""

    transport: Any

    def __init__(self, dispatcher: Dispatcher, timeout: float | None, reactor: Any) -> None:
        self.dispatcher = dispatcher
        self.timeout = timeout
        self.reactor: Any = reactor
        self.buffer = b""
        self.routed = False
        self._timer: Any = None

    def connectionMade(self) -> None:
        if self.timeout is not None:
            self._timer = self.reactor.callLater(self.timeout, self._too_slow)

    def dataReceived(self, data: bytes) -> None:
        if self.routed:
            return
        self.buffer += data
        line = first_line(self.buffer)
        if line is None or len(line) > MAX_FIRST_LINE:
            # Too long whether it came whole in one read or is still coming.
            if len(line if line is not None else self.buffer) > MAX_FIRST_LINE:
                self._refuse(_TOO_LONG)
            return
        self.routed = True
        self._timer = cancel(self._timer)
        self.transport.stopReading()
        self.dispatcher.dispatch(self, line, self.buffer)

    def _too_slow(self) -> None:
        self._timer = None
        if not self.routed:
            self._refuse(_TIMEOUT)

    def _refuse(self, response: bytes) -> None:
        self.routed = True
        self._timer = cancel(self._timer)
        self.transport.write(response)
        self.transport.loseConnection()

    def unavailable(self) -> None:
        """No worker can take the connection: ``503`` and close."""
        self.transport.write(
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self._timer = cancel(self._timer)


class RouterFactory(Factory):
    """Builds a :class:`Router` for each accepted connection; logs as ``Site`` does (``Site starting on 8080``)."""

    noisy = False

    def __init__(self, dispatcher: Dispatcher, timeout: float | None, reactor: Any) -> None:
        self.dispatcher = dispatcher
        self.timeout = timeout
        self.reactor: Any = reactor

    def buildProtocol(self, addr: Any) -> Router:
        return Router(self.dispatcher, self.timeout, self.reactor)

    def logPrefix(self) -> str:
        return "Site"
