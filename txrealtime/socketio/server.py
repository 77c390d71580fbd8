"""The Socket.IO server: Node's ``index.ts``.

It sits on an Engine.IO :class:`txrealtime.engineio.SessionManager`: each
Engine.IO session becomes a :class:`txrealtime.socketio.connection.Connection`,
which decodes Socket.IO packets and routes them to one
:class:`txrealtime.socketio.socket.Socket` per namespace the client joined.
The server owns the namespaces and answers for the default one, ``/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, overload

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger

from .._lazy import deprecated_aliases
from .._logging import gate
from .._reactor import Clock
from ..engineio import (
    EngineIOOptions,
    EngineIOResource,
    SessionClosed,
    SessionEvent,
    SessionManager,
    SessionOpened,
)
from ..protocol.handlers import EventEmitter, Handler, call_handler
from ..protocol.parser import Encoder, Parser, resolve
from .adapter import Adapter
from .bundle import SocketIOResource
from .connection import Connection
from .namespace import AdapterFactory, H, Namespace, NamespacePredicate, OnConnection, ParentNamespace
from .operator import Broadcasting, BroadcastOperator
from .recovery import StateRecovery
from .socket import Socket, SocketHandshake

__all__ = ["Connection", "Namespace", "ParentNamespace", "Server", "Socket", "SocketHandshake"]

log = Logger(__name__, observer=gate)

OnNamespace = TypeVar("OnNamespace", bound=Callable[[Namespace], object])
"""A ``new_namespace`` handler: called with the namespace just created."""


class Server(EventEmitter, Broadcasting):
    """A Socket.IO v5 server, the counterpart of Node's ``new Server()``.

    ``server.on("connection", handler)`` and ``server.emit(...)`` act on the
    default namespace ``/`` (also ``server.sockets``); ``server.of(name)``
    gives others. Serve it with :meth:`resource`.
    """

    def __init__(
        self,
        manager: SessionManager | None = None,
        *,
        options: EngineIOOptions | None = None,
        connect_timeout: float = 45.0,
        max_attachments: int = 100,
        attachment_timeout: float = 30.0,
        max_namespaces_per_client: int = 100,
        cleanup_empty_child_namespaces: bool = False,
        connection_state_recovery: StateRecovery | None = None,
        serve_client: bool = True,
        adapter: AdapterFactory = Adapter,
        parser: str | Parser = "json",
        reactor: Clock | None = None,
    ) -> None:
        """Node's ``new Server(options)``, its options as keywords.

        :param manager: The Engine.IO :class:`txrealtime.engineio.SessionManager`
            whose sessions this server serves; a new one (with ``options`` and
            ``reactor``) if not given.
        :param options: The Engine.IO settings of that new manager
            (:class:`txrealtime.engineio.EngineIOOptions`: heartbeats, payload
            limit, CORS, origins, compression, ``allow_eio3``...).
        :param connect_timeout: Seconds a client has to join a namespace once
            its Engine.IO session opened before it is closed (Node's
            ``connectTimeout``, 45 s).
        :param max_attachments: Most binary attachments one packet may announce
            (more is a ``parse error``).
        :param attachment_timeout: Seconds a client has to send every attachment
            of a binary packet it started.
        :param max_namespaces_per_client: Namespaces one connection may be in
            (or joining) at once; beyond, its CONNECT is refused.
        :param cleanup_empty_child_namespaces: Remove a dynamic namespace's
            child once its last socket left (Node's option of that name).
        :param connection_state_recovery: Node's ``connectionStateRecovery``: a
            :class:`txrealtime.socketio.StateRecovery` keeps a disconnected
            socket's id, rooms, data and missed packets for a while; ``None``
            (the default, as in Node) keeps nothing.
        :param serve_client: Whether :meth:`resource` also serves the official
            browser client at ``socket.io.js`` under its path (Node's
            ``serveClient``, on by default).
        :param adapter: What makes each namespace's adapter, called with the
            namespace (Node's ``adapter``): :class:`txrealtime.socketio.Adapter`,
            in memory, by default; ``redis_adapter(link)`` shares rooms and
            broadcasts through Redis (``classic_adapter(link)`` of
            :mod:`txrealtime.adapters.classic`, over any pub/sub link).
        :param parser: Node's ``parser``: ``"json"`` (the default),
            ``"msgpack"`` (``socket.io-msgpack-parser``'s format), or a
            :class:`txrealtime.socketio.Parser`. Clients must use the same.
        :param reactor: The clock (and reactor) of the new manager; the global
            reactor if not given.
        """
        super().__init__()
        self.parser: Parser = resolve(parser)
        """Node's ``parser`` option: ``"json"`` (the default), ``"msgpack"``, or a :class:`Parser`."""
        self.encoder: Encoder = self.parser.encoder()
        """Encodes every packet this server sends (a broadcast once for all its clients)."""
        if manager is None:
            manager = SessionManager(options, reactor=reactor)
        self.manager = manager
        """The Engine.IO session manager under this server."""
        self.reactor: Clock = manager.reactor
        """The manager's clock: every timer of this server runs on it."""
        self.connect_timeout = connect_timeout
        """Seconds a client has to join a namespace once its session opened (Node's ``connectTimeout``)."""
        self.max_attachments = max_attachments
        """Most binary attachments one packet may announce."""
        self.attachment_timeout = attachment_timeout
        """Seconds a client has to send every attachment of a binary packet it started."""
        self.max_namespaces_per_client = max_namespaces_per_client
        """Namespaces one connection may be in (or joining) at once; beyond, CONNECT is refused."""
        self.cleanup_empty_child_namespaces = cleanup_empty_child_namespaces
        """Remove a dynamic namespace's child once its last socket left (Node's option of that name)."""
        self.connection_state_recovery = connection_state_recovery
        """Node's ``connectionStateRecovery``: off (``None``) by default, as in Node."""
        self.serve_client = serve_client
        """Whether :meth:`resource` also serves the browser client (``socket.io.js`` under its path), as Node does."""
        self.adapter_factory = adapter
        """Makes each namespace's adapter (the ``adapter`` keyword): called with the namespace when it is created."""
        self.ack_timeouts = 0
        """Acknowledgements a client did not send within the emit's timeout (``socket.timeout(s).emit``)."""
        self.broadcast_ack_timeouts = 0
        """Broadcasts with acknowledgements whose timeout passed before every client answered."""
        self.clients: dict[str, Connection] = {}
        """The connected clients (Engine.IO sessions), by session id."""
        self._nsps: dict[str, Namespace] = {}
        self._parents: list[ParentNamespace] = []
        self.sockets = self.of("/")
        """The default namespace."""
        self._unsubscribe = manager.subscribe(self._on_session_event, messages=False)

    def resource(self) -> SocketIOResource:
        """The ``twisted.web`` resource serving this server; mount it at ``/socket.io/``."""
        return SocketIOResource(EngineIOResource(self.manager), self.serve_client)

    # -- namespaces --------------------------------------------------------------

    def of(self, name: str | re.Pattern[str] | NamespacePredicate) -> Namespace:
        """The namespace called ``name``, created if needed; a regex or predicate gives a dynamic one."""
        if isinstance(name, str):
            if not name.startswith("/"):
                name = "/" + name
            namespace = self._nsps.get(name)
            if namespace is None:
                namespace = self._nsps[name] = Namespace(self, name)
                if name != "/":
                    self._emit_new_namespace(namespace)
            return namespace
        parent = ParentNamespace(self, name, len(self._parents))
        self._parents.append(parent)
        return parent

    @property
    def namespaces(self) -> Mapping[str, Namespace]:
        """Every namespace by name (dynamic children included, their parents not)."""
        return self._nsps

    @property
    def dynamic_namespaces(self) -> Sequence[ParentNamespace]:
        """The dynamic namespaces (``of(regex or predicate)``), in the order they were made."""
        return self._parents

    def add_child(self, child: Namespace) -> None:
        """A dynamic namespace created ``child`` (called by :class:`ParentNamespace`): it is served from now on."""
        self._nsps[child.name] = child
        self._emit_new_namespace(child)

    def remove_child(self, child: Namespace) -> None:
        """``child`` was removed, being empty (called by :class:`ParentNamespace`)."""
        if self._nsps.get(child.name) is child:
            del self._nsps[child.name]

    def namespace_for(self, name: str, auth: Any) -> Deferred[Namespace | None]:
        """The namespace a CONNECT to ``name`` with ``auth`` joins (a dynamic one made if a parent matches),
        ``None`` if there is none (called by the connections)."""
        return ensureDeferred(self._find_namespace(name, auth))

    async def _find_namespace(self, name: str, auth: Any) -> Namespace | None:
        for parent in list(self._parents):
            if name in self._nsps:
                break
            if await parent.matches(name, auth):
                return self._nsps.get(name) or parent.create_child(name)
        return self._nsps.get(name)

    def _emit_new_namespace(self, namespace: Namespace) -> None:
        for handler in self.take_handlers("new_namespace"):
            call_handler(handler, namespace).addErrback(
                lambda f: log.failure("new_namespace handler failed", f)
            )

    # -- the default namespace ---------------------------------------------------

    # Narrower than EventEmitter.on on purpose: a connection handler must take the Socket.
    @overload  # type: ignore[override]
    def on(self, event: Literal["connection", "connect"]) -> Callable[[OnConnection], OnConnection]: ...

    @overload
    def on(self, event: Literal["connection", "connect"], handler: OnConnection) -> OnConnection: ...

    @overload
    def on(self, event: Literal["new_namespace"]) -> Callable[[OnNamespace], OnNamespace]: ...

    @overload
    def on(self, event: Literal["new_namespace"], handler: OnNamespace) -> OnNamespace: ...

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...

    @overload
    def on(self, event: str, handler: H) -> H: ...

    def on(self, event: str, handler: Any = None) -> Any:
        """``connection`` handlers go to the default namespace; ``new_namespace`` to the server.

        Used as ``@io.on("connection")`` or ``io.on("connection", handler)``.
        """
        if event == "new_namespace":
            return EventEmitter.on(self, event, handler) if handler is not None else EventEmitter.on(self, event)
        return self.sockets.on(event, handler) if handler is not None else self.sockets.on(event)

    def use(self, middleware: Handler) -> Handler:
        """Connection middleware of the default namespace."""
        return self.sockets.use(middleware)

    def broadcast_operator(self) -> BroadcastOperator:
        """Broadcasts from the server go to the default namespace."""
        return self.sockets.broadcast_operator()

    def server_side_emit(self, event: str, *args: Any) -> bool:
        """Node's ``io.serverSideEmit``: emit ``event`` to the default namespace of the cluster's other servers.

        Their ``io.on(event)`` handlers get ``args`` (through the adapter: Redis,
        or the other workers of ``--workers``); this server's do not. Reserved
        event names raise ``ValueError``; see
        :meth:`txrealtime.socketio.Namespace.server_side_emit`.
        """
        return self.sockets.server_side_emit(event, *args)

    def server_side_emit_with_ack(self, event: str, *args: Any) -> Deferred[list[Any]]:
        """Like :meth:`server_side_emit`; fire with one answer from each other server (a list), or fail when
        they do not all answer within the adapter's requests timeout."""
        return self.sockets.server_side_emit_with_ack(event, *args)

    def close(self) -> None:
        """Disconnect everyone ("server shutting down") and release the adapters."""
        self.manager.shutdown()
        for namespace in list(self._nsps.values()):
            namespace.adapter.close()

    def ack_timed_out(self) -> None:
        """Count an acknowledgement of one socket that timed out (called by the sockets)."""
        self.ack_timeouts += 1

    def broadcast_ack_timed_out(self) -> None:
        """Count a broadcast whose acknowledgements timed out (called by the broadcast operators)."""
        self.broadcast_ack_timeouts += 1

    # -- the Engine.IO layer ---------------------------------------------------------

    def _on_session_event(self, event: SessionEvent) -> None:
        # Messages come straight from the session (Session.receiver), without MessageReceived events.
        if isinstance(event, SessionOpened):
            session = self.manager.get(event.sid)
            if session is not None:
                opened = self.clients[event.sid] = Connection(self, session)
                session.receiver = opened.on_message
                session.on_drain = opened.on_drain
        elif isinstance(event, SessionClosed):
            client = self.clients.pop(event.sid, None)
            if client is not None:
                client.session.receiver = None  # no cycle left: the memory returns without a GC pass
                client.session.on_drain = None
                client.on_close(event.reason)


__getattr__ = deprecated_aliases(__name__, {"Client": "Connection"})
"""Old names, still importable with a ``DeprecationWarning``: ``Client`` is :class:`Connection`."""
