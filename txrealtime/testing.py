"""Helpers for testing txrealtime applications under trial or pytest.

- :func:`start_server` runs a Socket.IO server on a free loopback port;
  :class:`TestServer` connects real clients to it and stops everything.
- :class:`RealtimeTestMixin` does the same for a trial ``TestCase`` and cleans up.
- The pytest plugin (:mod:`txrealtime.pytest_plugin`) offers the same as fixtures.
- :func:`connect_in_memory` pairs a client with a server without sockets, in
  the spirit of ``twisted.internet.testing``: with a ``task.Clock`` as the
  server's reactor, whole conversations run synchronously inside one test.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from ._logging import gate
from ._reactor import default_reactor
from .client import ClientSocket, EngineListener, Manager
from .engineio import EngineIOOptions, Handshake, Session, SessionManager
from .engineio.packets import Packet, PacketType
from .socketio import Server
from .web import BoundedSite, EmptyResource, mount

__all__ = ["MemoryEngine", "RealtimeTestMixin", "TestServer", "connect_in_memory", "start_server"]

log = Logger(__name__, observer=gate)


@dataclass
class TestServer:
    """A Socket.IO server listening on loopback; :meth:`client` connects real clients to it."""

    __test__ = False  # not a pytest test class

    server: Server
    """The Socket.IO server."""
    site: Site
    """The ``twisted.web`` site serving it."""
    port: Any
    """The listening port (``IListeningPort``)."""
    path: str = "/socket.io/"
    """The endpoint's path."""
    managers: list[Manager] = field(default_factory=list)
    """The client managers :meth:`client` made, closed by :meth:`stop`."""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, where clients connect."""
        return f"http://127.0.0.1:{self.port.getHost().port}"

    def client(self, namespace: str = "/", *, auth: Any = None, **options: Any) -> Deferred[ClientSocket]:
        """Connect a txrealtime client (closed by :meth:`stop`), with the server's parser; fire with its socket."""
        options.setdefault("path", self.path)
        options.setdefault("parser", self.server.parser)
        options.setdefault("reconnection", False)
        manager = Manager(self.url, **options)
        self.managers.append(manager)
        return manager.socket(namespace, auth).connect()

    def stop(self) -> Deferred[None]:
        """Close clients, disconnect every session, stop listening; fire once every connection is gone."""
        closing = [manager.close() for manager in self.managers]
        self.managers.clear()
        self.server.close()
        self.server.manager.shutdown(drop_lingering=True)
        stopped = self.port.stopListening()
        if isinstance(stopped, Deferred):
            closing.append(stopped)
        from twisted.internet import reactor

        def settle(_: object) -> Deferred[None]:
            # Give the server's side of closed connections a turn to notice.
            return deferLater(cast(Any, reactor), 0, lambda: None)

        return DeferredList(closing, consumeErrors=True).addCallback(settle)


def start_server(
    setup: Callable[[Server], object] | None = None,
    *,
    options: EngineIOOptions | None = None,
    path: str = "/socket.io/",
    port: int = 0,
    root: Resource | None = None,
    reactor: Any = None,
    **server_options: Any,
) -> Deferred[TestServer]:
    """Start a Socket.IO server on ``127.0.0.1:port`` (a free port by default).

    ``setup(server)`` registers the application's handlers, as with
    ``twistd txrealtime --app``; ``server_options`` go to :class:`Server`.
    """
    reactor = default_reactor(reactor)

    server = Server(SessionManager(options, reactor=reactor), **server_options)
    if setup is not None:
        setup(server)
    root = root if root is not None else EmptyResource()
    mount(root, path, server.resource())
    site = BoundedSite(cast(IResource, root), max_body=server.manager.options.max_payload, managers=[server.manager])
    listening = reactor.listenTCP(port, site, interface="127.0.0.1")
    return succeed(TestServer(server, site, listening, path))


class RealtimeTestMixin:
    """For trial ``TestCase`` classes: servers and clients that are cleaned up after each test.

    ::

        class ChatTests(RealtimeTestMixin, TestCase):
            async def test_join(self):
                server = await self.start_server(chat.setup)
                alice = await self.connect(server)
                self.assertEqual(await alice.emit_with_ack("join", "alice"), {"ok": True, "users": 1})
    """

    def start_server(self, setup: Callable[[Server], object] | None = None, **kwargs: Any) -> Deferred[TestServer]:
        """:func:`start_server`, stopped when the test ends (``addCleanup``)."""
        def started(server: TestServer) -> TestServer:
            cast(Any, self).addCleanup(server.stop)  # TestCase's, beside which the mixin sits
            return server

        return start_server(setup, **kwargs).addCallback(started)

    def connect(
        self, server: TestServer, namespace: str = "/", *, auth: Any = None, **options: Any
    ) -> Deferred[ClientSocket]:
        """Connect a client to ``server`` over loopback; it is closed with the server."""
        return server.client(namespace, auth=auth, **options)


# -- in memory ----------------------------------------------------------------------


class _Pump:
    """Runs deliveries one after the other, never nested, like a tiny event loop."""

    def __init__(self) -> None:
        self._queue: deque[Callable[[], object]] = deque()
        self._running = False

    def __call__(self, work: Callable[[], object]) -> None:
        self._queue.append(work)
        if self._running:
            return
        self._running = True
        try:
            while self._queue:
                job = self._queue.popleft()
                try:
                    job()
                except Exception:
                    log.failure("In-memory delivery failed")
        finally:
            self._running = False


class _ServerSide:
    """The server's view of an in-memory connection: an Engine.IO ``Transport``."""

    name = "websocket"
    writable = True

    def __init__(self, engine: MemoryEngine) -> None:
        self.engine = engine

    def send(self, packets: list[Packet]) -> None:
        for packet in packets:
            self.engine._pump(lambda p=packet: self.engine._to_client(p))  # type: ignore[misc]

    def close(self) -> None:
        self.engine._pump(self.engine._server_closed)


class MemoryEngine:
    """A client's Engine.IO connection straight into a server's session manager, no sockets."""

    def __init__(self, manager: SessionManager, listener: EngineListener, pump: _Pump | None = None) -> None:
        """A connection to ``manager``'s sessions; :func:`connect_in_memory` makes them.

        :param manager: The server's session manager.
        :param listener: What the connection reports to (the client's :class:`txrealtime.client.Manager`).
        :param pump: How messages cross (one reactor turn each by default, as a network would).
        """
        self.manager = manager
        """The server's session manager."""
        self.listener = listener
        """What the connection reports to."""
        self.session: Session | None = None
        """The server's session, once open."""
        self.closed = False
        """Whether the client closed it."""
        self._pump = pump or _Pump()
        self._side = _ServerSide(self)
        self._opened: Deferred[None] = Deferred()

    @property
    def transport_name(self) -> str | None:
        """``memory``."""
        return "memory"

    def open(self) -> Deferred[None]:
        """Open a session in the manager, as a WebSocket client would; fire once it is open."""
        handshake = Handshake(
            headers={},
            query={"EIO": "4", "transport": "websocket"},
            address="127.0.0.1",
            secure=False,
            url="/socket.io/?EIO=4&transport=websocket",
            issued=time.time(),
        )

        def start() -> None:
            self.session = self.manager.open_session(self._side, handshake)

        self._pump(start)
        return self._opened

    def send(self, messages: list[str | bytes]) -> None:
        """Hand messages to the session (through the pump)."""
        for message in messages:
            self._pump(lambda m=message: self._to_server(Packet(PacketType.MESSAGE, m)))  # type: ignore[misc]

    @property
    def buffered_bytes(self) -> int:
        """Nothing waits: messages go straight to the session."""
        return 0

    @property
    def needs_drain(self) -> bool:
        """Never."""
        return False

    def close(self) -> None:
        """Close the session, as a client's CLOSE packet does."""
        if not self.closed:
            self._pump(lambda: self._to_server(Packet(PacketType.CLOSE)))
            self.closed = True

    def when_closed(self) -> Deferred[None]:
        """Fired already: there is no socket to release."""
        return succeed(None)

    def _to_server(self, packet: Packet) -> None:
        if self.session is not None:
            self.session.receive(packet, self._side)

    def _to_client(self, packet: Packet) -> None:
        if self.closed:
            return
        if packet.type is PacketType.OPEN:
            self._opened.callback(None)
            self.listener.engine_open()
        elif packet.type is PacketType.PING:
            self._to_server(Packet(PacketType.PONG))
        elif packet.type is PacketType.MESSAGE:
            self.listener.engine_message(packet.data)
        elif packet.type is PacketType.CLOSE:
            self._server_closed()

    def _server_closed(self) -> None:
        if not self.closed:
            self.closed = True
            self.listener.engine_close("transport close", "the server closed the connection")


def connect_in_memory(
    server: Server, namespace: str = "/", *, auth: Any = None, **options: Any
) -> Deferred[ClientSocket]:
    """Connect a client to ``server`` without sockets; fire with the connected socket.

    Delivery is synchronous: with synchronous handlers the Deferred has
    already fired when this returns, and every emit is answered before
    ``emit`` returns. ``options`` go to :class:`txrealtime.client.Manager`.
    """
    pump = _Pump()
    options.setdefault("reconnection", False)
    options.setdefault("reactor", server.reactor)
    options.setdefault("parser", server.parser)
    manager = Manager(
        "memory://", engine_factory=lambda listener: MemoryEngine(server.manager, listener, pump), **options
    )
    return manager.socket(namespace, auth).connect()

