"""A worker's side of ``--workers N``: its channel to the master, the client sockets it adopts, its sids.

The master starts each worker as ``python -m txrealtime._worker ... --worker-channel
FD:INDEX`` with one end of a Unix socket pair as file descriptor ``FD``.
:class:`WorkerService` adopts that end as a :class:`WorkerChannel`, which
says :class:`txrealtime.cluster.wire.Hello`, then receives client sockets
(``SCM_RIGHTS``, each with a :class:`txrealtime.cluster.wire.Connection`
frame holding the bytes the master read already) and hands them to the
worker's ``twisted.web`` site as if it had accepted them, and carries the
:class:`txrealtime.cluster.link.ClusterLink` frames. When the channel closes
(the master is gone), the worker shuts down as on SIGTERM.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import weakref
from collections import deque
from typing import Any

from twisted.application import service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.error import ReactorNotRunning
from twisted.internet.interfaces import IAddress, IFileDescriptorReceiver
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from zope.interface import implementer  # type: ignore[import-untyped]

from .._logging import gate
from ..engineio import SessionClosed, SessionEvent, SessionManager, SessionOpened
from ..engineio.events import Handshake
from .link import ClusterLink
from .routing import worker_of, worker_sid
from .wire import (
    MAX_FRAME,
    Adopted,
    Connection,
    Frame,
    Hello,
    Load,
    Members,
    Message,
    NumSubReply,
    WireError,
    decode,
    encode,
)

__all__ = ["StickyRoot", "WorkerChannel", "WorkerService", "parse_channel", "prefix_sids"]

log = Logger(__name__, observer=gate)


def parse_channel(value: str) -> tuple[int, int]:
    """``"FD:INDEX"`` as ``(fd, index)``; ``ValueError`` if malformed."""
    fd, sep, index = value.partition(":")
    if not sep or not fd.isdigit() or not index.isdigit():
        raise ValueError(f"expected FD:INDEX, not {value!r}")
    return int(fd), int(index)


def prefix_sids(manager: SessionManager, index: int) -> None:
    """Make every sid of ``manager`` start with worker ``index`` (:func:`txrealtime.cluster.routing.worker_sid`).

    The application's own ``generate_id`` hook, if any, still makes the rest.
    """
    hook = manager.options.generate_id

    def generate(request: Handshake) -> Deferred[str]:
        made: Deferred[Any] = maybeDeferred(hook, request) if hook is not None else succeed(manager.new_sid())
        return made.addCallback(lambda sid: worker_sid(index, sid) if isinstance(sid, str) else sid)

    manager.options = dataclasses.replace(manager.options, generate_id=generate)


class StickyRoot(Resource):
    """The worker's root resource: sends a request for another worker's session back through the master.

    The master routes a connection by its first request; an HTTP client that
    keeps the connection alive may later send on it a request of a session
    another worker owns (a browser shares its connections between tabs).
    That request is answered ``307 Temporary Redirect`` to the same URL with
    ``Connection: close``: the client repeats it, body included, on a new
    connection, which the master routes to the owner. The first request of a
    connection was routed by the master already: if its session's worker is
    gone it is answered as usual (``Session ID unknown``), never redirected.
    """

    def __init__(self, root: Resource, index: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.root = root
        self.index = index
        self._seen: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()

    def getChildWithDefault(self, path: bytes, request: Any) -> Any:
        if self._elsewhere(request):
            return _Elsewhere()
        return self.root.getChildWithDefault(path, request)

    def render(self, request: Any) -> Any:
        return self.root.render(request)

    def _elsewhere(self, request: Any) -> bool:
        first = request.channel not in self._seen
        self._seen[request.channel] = True
        if first:
            return False
        sids = request.args.get(b"sid")
        if not sids:
            return False
        owner = worker_of(sids[0].decode("utf-8", "replace"))
        return owner is not None and owner != self.index


class _Elsewhere(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def render(self, request: Any) -> bytes:
        request.setResponseCode(307)
        request.setHeader(b"location", request.uri)
        request.setHeader(b"connection", b"close")
        request.setHeader(b"content-length", b"0")
        request.notifyFinish().addBoth(lambda _: request.channel.loseConnection())
        return b""


@implementer(IFileDescriptorReceiver)
class WorkerChannel(Int32StringReceiver):
    """The worker's end of its Unix socket to the master."""

    transport: Any

    MAX_LENGTH = MAX_FRAME

    def __init__(self, worker: WorkerService) -> None:
        self.worker = worker
        self._fds: deque[int] = deque()
        self.connected_to_master = False

    def connectionMade(self) -> None:
        self.connected_to_master = True
        self.worker.channel = self
        self.send(Hello(self.worker.index, os.getpid()))
        self.worker.link.attach(self)
        self.worker.report_load()

    def send(self, frame: Frame) -> bool:
        """Send ``frame`` to the master; ``False`` once the channel closed."""
        if not self.connected_to_master:
            return False
        self.sendString(encode(frame))  # type: ignore[no-untyped-call]
        return True

    def fileDescriptorReceived(self, descriptor: int) -> None:
        self._fds.append(descriptor)

    def stringReceived(self, string: bytes) -> None:
        try:
            frame = decode(string)
        except WireError as e:
            log.error("Bad frame from the master ({error}): closing the channel", error=str(e))
            self.transport.loseConnection()
            return
        if isinstance(frame, Connection):
            if not self._fds:
                log.error("Connection {id} came without its socket", id=frame.id)
                return
            self.worker.adopt(self._fds.popleft(), frame.data)
            self.send(Adopted(frame.id))
        elif isinstance(frame, (Message, NumSubReply, Members)):
            self.worker.link.deliver(frame)
        else:
            log.error("Unexpected {kind} frame from the master", kind=type(frame).__name__)

    def lengthLimitExceeded(self, length: int) -> None:
        log.error("Frame of {length} bytes from the master: closing the channel", length=length)
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.connected_to_master = False
        while self._fds:
            os.close(self._fds.popleft())
        self.worker.link.detach()
        self.worker.channel_lost()


class _Recorder(Factory):
    """Builds the site's protocol for an adopted socket, and keeps it to feed it what the master read."""

    def __init__(self, site: Any) -> None:
        self.site = site
        self.built: Any = None

    def buildProtocol(self, addr: IAddress | None) -> Any:
        self.built = self.site.buildProtocol(addr)
        return self.built


class WorkerService(service.Service):
    """Adopts the channel to the master on start; stops the process when the master is gone."""

    def __init__(self, fd: int, index: int, site: Any, manager: SessionManager, link: ClusterLink,
                 reactor: Any = None) -> None:
        from twisted.internet import reactor as default

        self.fd = fd
        self.index = index
        self.site = site
        self.manager = manager
        self.link = link
        self.reactor: Any = reactor or default
        self.channel: WorkerChannel | None = None
        self._stopping = False
        manager.subscribe(self._on_session)

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        factory = Factory.forProtocol(lambda: WorkerChannel(self))
        self.reactor.adoptStreamConnection(self.fd, socket.AF_UNIX, factory)
        os.close(self.fd)  # adopting duplicated it

    def stopService(self) -> Any:
        self._stopping = True
        return super().stopService()  # type: ignore[no-untyped-call]

    def adopt(self, fd: int, data: bytes) -> None:
        """Serve the client socket ``fd`` as if this worker had accepted it, ``data`` being its first bytes."""
        try:
            with socket.socket(fileno=os.dup(fd)) as probe:
                family = probe.family
            recorder = _Recorder(self.site)
            self.reactor.adoptStreamConnection(fd, family, recorder)
        except OSError as e:
            log.warn("Could not adopt a connection from the master: {error}", error=e)
            return
        finally:
            os.close(fd)
        if recorder.built is not None and data:
            recorder.built.dataReceived(data)

    def _on_session(self, event: SessionEvent) -> None:
        if isinstance(event, (SessionOpened, SessionClosed)):
            self.report_load()

    def report_load(self) -> None:
        """Tell the master how many sessions this worker holds."""
        if self.channel is not None:
            self.channel.send(Load(len(self.manager.sessions)))

    def channel_lost(self) -> None:
        """The master is gone (or closed the channel): shut down as on SIGTERM."""
        self.channel = None
        if not self._stopping:
            log.warn("Worker {index}: the master is gone, shutting down", index=self.index)
            try:
                self.reactor.stop()
            except ReactorNotRunning:
                pass  # already stopping
