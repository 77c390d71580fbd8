"""Namespaces: Node's ``namespace.ts`` and ``parent-namespace.ts``.

A :class:`Namespace` owns its sockets, rooms (through its adapter), handlers
and connection middleware; a :class:`ParentNamespace` matches dynamic names
and creates a child namespace for each. The server and the connections are
seen through the Protocols below.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol, TypeVar, cast, overload

from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import Throttle, gate, name_for_log
from .._reactor import Clock
from ..engineio import CloseReason
from ..protocol.handlers import EventEmitter, Handler, call_handler, call_in_turn, check_event
from ..protocol.packets import Packet
from ..protocol.parser import Encoder
from .adapter import Adapter, AdapterNamespace, BroadcastOptions, FetchedSocket
from .errors import ConnectionRefused, RecoveryUnavailable
from .operator import Broadcasting, BroadcastOperator
from .recovery import RestoredSession, StateRecovery
from .socket import Socket, SocketConnection

__all__ = ["AdapterFactory", "Namespace", "NamespacePredicate", "NamespaceServer", "ParentNamespace"]

log = Logger(__name__, observer=gate)
noisy = Throttle(log)
"""For lines every client could make us repeat."""

AdapterFactory = Callable[[AdapterNamespace], Adapter]
"""Builds the adapter of a namespace: :class:`Adapter` itself, or a cluster adapter's factory."""
NamespacePredicate = Callable[[str, Any], Any]
"""``(name, auth) -> bool`` (or a Deferred/coroutine of one) deciding whether a dynamic namespace exists."""

OnConnection = TypeVar("OnConnection", bound=Callable[[Socket], object])
"""A ``connection`` handler: called with the new :class:`Socket`."""
H = TypeVar("H", bound=Handler)

NAMESPACE_EVENTS = frozenset({"connect", "connection", "new_namespace"})
"""Events of the namespace itself, which other servers cannot emit to it."""


def _check_server_side(event: str) -> None:
    check_event(event)
    if event in NAMESPACE_EVENTS:
        raise ValueError(f'"{event}" is a reserved event name')


class NamespaceServer(Broadcasting, Protocol):
    """What a namespace needs from its server (``namespace.server``)."""

    @property
    def reactor(self) -> Clock: ...

    @property
    def adapter_factory(self) -> AdapterFactory: ...

    @property
    def cleanup_empty_child_namespaces(self) -> bool: ...

    @property
    def connection_state_recovery(self) -> StateRecovery | None: ...

    @property
    def encoder(self) -> Encoder:
        """Encodes the packets of every namespace (the server's parser)."""

    def add_child(self, child: Namespace) -> None:
        """A dynamic namespace created ``child``."""

    def remove_child(self, child: Namespace) -> None:
        """``child`` was removed, being empty."""

    def ack_timed_out(self) -> None:
        """An acknowledgement from one socket timed out (counted for metrics)."""

    def broadcast_ack_timed_out(self) -> None:
        """A broadcast's acknowledgements timed out (counted for metrics)."""


class NamespaceClient(SocketConnection, Protocol):
    """What a namespace needs from a connection joining it."""

    @property
    def closed(self) -> bool: ...

    def socket_added(self, socket: Socket) -> None:
        """``socket`` joined the namespace: the connection routes its packets to it from now on."""

    def refuse(self, name: str, error: Any) -> None:
        """Answer the CONNECT to namespace ``name`` with CONNECT_ERROR carrying ``error``."""


class Namespace(EventEmitter, Broadcasting):
    """A communication channel (``/`` by default) with its own sockets, rooms, handlers and middleware.

    ``server.of(name)`` makes them.
    """

    def __init__(self, server: NamespaceServer, name: str, adapter: AdapterFactory | None = None) -> None:
        """The namespace ``name`` of ``server``; ``server.of(name)`` makes them.

        :param server: The server it belongs to.
        :param name: Its name, starting with ``/``.
        :param adapter: What makes its adapter (rooms and broadcasts); the
            server's ``adapter_factory`` if not given.
        """
        super().__init__()
        self.server = server
        """The server it belongs to."""
        self.name = name
        """Its name, such as ``/`` or ``/chat``."""
        self.sockets: dict[str, Socket] = {}
        """Its connected sockets, by id."""
        self.parent: ParentNamespace | None = None
        """The dynamic namespace that created this one, if any."""
        self._middleware: list[Handler] = []
        self._joining = 0
        self.adapter: Adapter = (adapter or server.adapter_factory)(self)
        """Its rooms, and how broadcasts reach its sockets."""

    def __repr__(self) -> str:
        return f"<Namespace {self.name} ({len(self.sockets)} sockets)>"

    # Narrower than EventEmitter.on on purpose: a connection handler must take the Socket.
    @overload  # type: ignore[override]
    def on(self, event: Literal["connection", "connect"]) -> Callable[[OnConnection], OnConnection]: ...

    @overload
    def on(self, event: Literal["connection", "connect"], handler: OnConnection) -> OnConnection: ...

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...

    @overload
    def on(self, event: str, handler: H) -> H: ...

    def on(self, event: str, handler: Any = None) -> Any:
        """Call ``handler(socket)`` for every ``connection`` (or ``handler(*args)`` for a server-side
        event); without a handler, return a decorator."""
        return super().on(event, handler) if handler is not None else super().on(event)

    def use(self, middleware: Handler) -> Handler:
        """Run ``middleware(socket)`` before each connection; raising :class:`ConnectionRefused` refuses it.

        Middleware may return a Deferred or be ``async def``; they run in order.
        """
        self._middleware.append(middleware)
        return middleware

    # -- broadcasting ------------------------------------------------------------

    def broadcast_operator(self) -> BroadcastOperator:
        """Broadcasts from a namespace start with all its sockets."""
        return BroadcastOperator(self.adapter)

    def server_side_emit(self, event: str, *args: Any) -> bool:
        """Emit to this namespace on the other servers of a cluster (their ``ns.on(event)`` handlers)."""
        _check_server_side(event)
        return self.adapter.server_side_emit([event, *args])

    def server_side_emit_with_ack(self, event: str, *args: Any) -> Deferred[list[Any]]:
        """Like :meth:`server_side_emit`; fire with one answer from each other server."""
        _check_server_side(event)
        return self.adapter.server_side_emit_with_ack([event, *args])

    def on_server_side_emit(self, data: list[Any], ack: Callable[[Any], object] | None = None) -> None:
        """Another server emitted ``[event, *args]`` to this namespace: run its handlers (called by the
        adapter), the first one's answer going to ``ack``."""
        if not data or not isinstance(data[0], str) or data[0] in NAMESPACE_EVENTS:
            return
        event, args = data[0], list(data[1:])
        for index, handler in enumerate(self.take_handlers(event)):
            d = call_handler(handler, *args)
            if index == 0 and ack is not None:
                d.addCallback(ack)
            d.addErrback(lambda f: log.failure("Server-side {event!r} handler failed", f, event=event))

    # -- connecting ----------------------------------------------------------------

    def add_client(self, client: NamespaceClient, auth: Any) -> Deferred[Socket | None]:
        """Admit ``client`` with its CONNECT's ``auth``: a kept session back if it asks for one (waiting for the
        adapter), then middleware, then the CONNECT answer; ``None`` if refused or gone meanwhile."""
        self._joining += 1

        def settled(result: object) -> object:
            self._joining -= 1
            self._cleanup_if_empty()
            return result

        d: Deferred[Any] = self._restore(auth, client)
        d.addCallback(self._admit, client, auth)
        d.addErrback(lambda f: f.trap(RecoveryUnavailable) and None)  # not restorable now: closed, no answer
        d.addBoth(settled)
        return d

    def _restore(self, auth: Any, client: NamespaceClient) -> Deferred[Any]:
        """The kept session a CONNECT's ``{pid, offset}`` names, and what it missed (none without recovery).

        When the adapter cannot tell now (:class:`RecoveryUnavailable`), the client's connection is closed, so
        that it comes back (elsewhere) and recovers, and the CONNECT is not answered.
        """
        if self.server.connection_state_recovery is None or not isinstance(auth, dict):
            return succeed(None)
        pid, offset = auth.get("pid"), auth.get("offset")
        if not isinstance(pid, str) or not (offset is None or isinstance(offset, str)):
            return succeed(None)

        def failed(failure: Failure) -> Any:
            if failure.check(RecoveryUnavailable):
                noisy.info("Session not restored in {namespace} now ({error}): its client is to come back",
                           namespace=name_for_log(self.name), error=failure.getErrorMessage())
                client.session.close(CloseReason.TRANSPORT_ERROR, "the session cannot be restored now")
                return failure
            noisy.info("Restoring a session in {namespace} failed: {error}", namespace=name_for_log(self.name),
                       error=failure.getErrorMessage())
            return None

        return maybeDeferred(self.adapter.restore_session, pid, offset).addErrback(failed)

    def _admit(self, restored: RestoredSession | None, client: NamespaceClient, auth: Any) -> Deferred[Socket | None]:
        socket = Socket(self, client, auth, restored.session if restored is not None else None)
        recovery = self.server.connection_state_recovery
        if restored is not None:
            # Back in its rooms at once, so that what is sent from now on reaches it, held until it is connected.
            self.adapter.add_all(socket.id, restored.session.rooms)
            self.adapter.hold(socket.id)
        skip = restored is not None and recovery is not None and recovery.skip_middlewares
        d: Deferred[Any] = call_in_turn([] if skip else self._middleware, socket)

        def accepted(_: object) -> Socket | None:
            held = self.adapter.release(socket.id) if restored is not None else []
            if client.closed or held is None:
                self._give_back(socket)
                if held is None:
                    client.session.close(CloseReason.TRANSPORT_ERROR,
                                         "more broadcast than max_log_bytes while the socket was recovered")
                return None
            self.sockets[socket.id] = socket
            client.socket_added(socket)
            socket._connected([*restored.missed, *held] if restored is not None else ())
            log.debug("Socket {sid} joined {namespace}{how}", sid=socket.id, namespace=self.name,
                      how=" (recovered)" if socket.recovered else "")
            for event in ("connect", "connection"):
                for handler in self.take_handlers(event):
                    socket._run(handler, [socket], f"{event} handler").addErrback(lambda _: None)
            return socket

        def refused(failure: Failure) -> None:
            if restored is not None:
                self._give_back(socket)
            if isinstance(failure.value, ConnectionRefused):
                message, data = failure.value.message, failure.value.data
            else:
                log.failure("Middleware of {namespace} failed", failure, namespace=self.name)
                message, data = "Internal server error", None
            if client.session.protocol == 3:  # Socket.IO v4: Node sends ``err.data || err.message``
                client.refuse(self.name, data if data not in (None, False, 0, "") else message)
            else:
                client.refuse(self.name, {"message": message} if data is None else {"message": message, "data": data})

        return d.addCallbacks(accepted, refused)

    def _give_back(self, socket: Socket) -> None:
        """A recovered socket that does not connect after all (refused, or its client gone): its session is kept
        again, for another try with the same offset."""
        socket._persist()
        self.adapter.delete_all(socket.id)

    def remove_socket(self, socket: Socket) -> None:
        """``socket`` left (called by the socket as it disconnects; this does not disconnect it)."""
        self.sockets.pop(socket.id, None)
        self._cleanup_if_empty()

    def _cleanup_if_empty(self) -> None:
        """With ``cleanup_empty_child_namespaces``, a dynamic child with no socket left goes away."""
        parent = self.parent
        if parent is not None and not self.sockets and not self._joining and self.server.cleanup_empty_child_namespaces:
            parent._remove_child(self)


class _ChildrenAdapter(Adapter):
    """The adapter of a :class:`ParentNamespace`: acts on every child namespace."""

    def __init__(self, namespace: ParentNamespace) -> None:
        super().__init__(namespace)
        self.parent = namespace

    def _children(self) -> list[Adapter]:
        return [child.adapter for child in self.parent.children]

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> bool:
        delivered = True
        for child in self._children():
            delivered &= child.broadcast(Packet(packet.type, child.namespace.name, packet.data, packet.id), opts)
        return delivered

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], object],
        ack: Callable[[list[Any]], object],
    ) -> None:
        total = 0

        def counted(n: int) -> None:
            nonlocal total
            total += n

        for child in self._children():
            child.broadcast_with_ack(Packet(packet.type, child.namespace.name, packet.data), opts, counted, ack)
        client_count(total)

    def fetch_sockets(self, opts: BroadcastOptions) -> Deferred[list[FetchedSocket]]:
        d = gatherResults([child.fetch_sockets(opts) for child in self._children()], consumeErrors=True)
        return d.addCallback(lambda lists: [s for found in lists for s in found])

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        for child in self._children():
            child.add_sockets(opts, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        for child in self._children():
            child.del_sockets(opts, rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        for child in self._children():
            child.disconnect_sockets(opts, close)


class ParentNamespace(Namespace):
    """A dynamic namespace: matches names by regex or predicate and creates a child for each.

    Children inherit the parent's middleware and connection handlers;
    emitting on the parent reaches every child.
    """

    def __init__(self, server: NamespaceServer, matcher: re.Pattern[str] | NamespacePredicate, index: int = 0) -> None:
        """A dynamic namespace; ``server.of(matcher)`` makes them.

        :param server: The server it belongs to.
        :param matcher: A regular expression a name must match in full, or a
            predicate called with the name and the client's ``auth`` (it may return
            a Deferred or be ``async``).
        :param index: Its rank among the server's dynamic namespaces, which names
            it when ``matcher`` is a predicate.
        """
        self.matcher = matcher
        """The regular expression or predicate names are matched with."""
        self.children: list[Namespace] = []
        """The namespaces it created."""
        name = f"/_{index}" if not isinstance(matcher, re.Pattern) else f"/{matcher.pattern}"
        super().__init__(server, name, lambda ns: _ChildrenAdapter(cast(ParentNamespace, ns)))

    def matches(self, name: str, auth: Any) -> Deferred[Any]:
        """Whether namespace ``name`` is one of this parent's, for a client with ``auth`` (a Deferred)."""
        if isinstance(self.matcher, re.Pattern):
            return succeed(self.matcher.fullmatch(name) is not None)
        return call_handler(self.matcher, name, auth)

    def create_child(self, name: str) -> Namespace:
        """The child namespace ``name``, with this parent's middleware and connection handlers."""
        child = Namespace(self.server, name)
        child.parent = self
        child._middleware = list(self._middleware)
        for event in ("connect", "connection"):
            for handler in self.listeners(event):
                child.on(event, handler)
        self.children.append(child)
        self.server.add_child(child)
        return child

    def _remove_child(self, child: Namespace) -> None:
        if child in self.children:
            self.children.remove(child)
        self.server.remove_child(child)
        child.adapter.close()
        log.debug("Empty namespace {namespace} removed", namespace=name_for_log(child.name))
