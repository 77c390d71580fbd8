"""``instrument(io, ...)``: a Socket.IO server watched and driven by the official ``@socket.io/admin-ui``.

What Node's ``instrument()`` does, on txrealtime's seams: the session
manager's events (connections, upgrades, closes) and, opted into, its packet
events (``packetsIn``/``bytesIn``...); each namespace's connection handlers
(:meth:`EventEmitter.prepend`, before the application's), its adapter's
``join-room``/``leave-room`` events and each socket's catch-all listeners.
Nothing is added to the path of a server that is not instrumented.

Everything goes to the UIs as broadcasts on the admin namespace: with a
cluster adapter (Redis) every node's ``server_stats`` and socket events reach
the UIs connected to any node, so each node shows up as a server of its own.
"""

from __future__ import annotations

import os
import socket as _socket
import weakref
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import Throttle, gate, name_for_log
from .._reactor import now
from ..engineio import (
    PacketCreated,
    PacketEvent,
    PacketReceived,
    SessionClosed,
    SessionEvent,
    SessionOpened,
    SessionUpgraded,
)
from ..socketio import NO_ACK, Namespace, Server, Socket
from ..socketio.adapter import FetchedSocket
from ..socketio.operator import BroadcastOperator
from .auth import BasicAuth, Login, MemorySessionStore, SessionStore
from .wire import (
    ADMIN_KEY,
    COMMANDS,
    Disconnect,
    Emit,
    EventBuffer,
    Join,
    Leave,
    iso_date,
    parse_command,
    serialize_data,
    serialize_socket,
    supported_features,
)

__all__ = ["Auth", "Instrumentation", "instrument"]

log = Logger(__name__, observer=gate)
noisy = Throttle(log)

Auth = BasicAuth | tuple[str, str] | Mapping[str, str] | Literal[False]
"""``BasicAuth(user, password)``, ``(user, password)``, Node's ``{"type": "basic", "username", "password"}``,
or ``False`` for no authentication at all."""

HOSTNAME = _socket.gethostname()

RoomListener = Callable[[str, str], None]


def _basic_auth(auth: Any) -> BasicAuth | None:
    if auth is False:
        return None
    if isinstance(auth, BasicAuth):
        return auth
    if isinstance(auth, tuple) and len(auth) == 2:
        return BasicAuth(*auth)
    if isinstance(auth, Mapping) and auth.get("type", "basic") == "basic" and "username" in auth:
        return BasicAuth(auth["username"], auth.get("password", ""))
    raise TypeError("auth must be BasicAuth(user, password), (user, password), "
                    '{"type": "basic", "username": ..., "password": ...}, or False for no authentication')


def _byte_length(data: str | bytes) -> int:
    if isinstance(data, bytes):
        return len(data)
    return len(data) if data.isascii() else len(data.encode("utf-8", "replace"))


class WatchedData(dict[str, Any]):
    """``socket.data`` in development mode: a change at its top level sends ``socket_updated`` with the data,
    as Node's Proxy does. Copies (``copy``, ``pickle``) are plain dicts."""

    __slots__ = ("_changed",)

    def __init__(self, data: Mapping[str, Any], changed: Callable[[WatchedData], object]) -> None:
        super().__init__(data)
        self._changed = changed

    def __reduce__(self) -> Any:
        return dict, (dict(self),)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._changed(self)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._changed(self)

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._changed(self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        super().setdefault(key, default)
        self._changed(self)
        return default

    def pop(self, key: str, *default: Any) -> Any:
        value = super().pop(key, *default)
        self._changed(self)
        return value

    def popitem(self) -> tuple[str, Any]:
        item = super().popitem()
        self._changed(self)
        return item

    def clear(self) -> None:
        super().clear()
        self._changed(self)


class Instrumentation:
    """What :func:`instrument` set up on one server; :meth:`close` stops it."""

    def __init__(
        self,
        io: Server,
        auth: BasicAuth | None,
        mode: Literal["development", "production"] = "development",
        read_only: bool = False,
        namespace: str = "/admin",
        server_id: str | None = None,
        store: SessionStore | None = None,
        stats_interval: float = 2.0,
    ) -> None:
        """Instrument ``io``; :func:`instrument` calls it, with its checks.

        :param io: The server instrumented.
        :param auth: Who may join the admin namespace, or ``None`` for anyone.
        :param mode: ``development`` (sockets, rooms, events) or ``production`` (server stats only).
        :param read_only: Refuse the UI's commands (emit, join, leave, disconnect).
        :param namespace: The admin namespace's name.
        :param server_id: How the UI names this server (``hostname#pid`` if not given).
        :param store: Where session ids are kept (this process's memory if not given).
        :param stats_interval: Seconds between two ``server_stats`` messages.
        """
        if mode not in ("development", "production"):
            raise ValueError(f'mode must be "development" or "production", not {mode!r}')
        self.io = io
        """The server instrumented."""
        self.reactor = io.reactor
        """The server's clock."""
        self.development = mode == "development"
        """Whether in development mode (sockets, rooms and events sent to the UI)."""
        self.read_only = read_only
        """Whether the UI's commands are refused."""
        self.features = supported_features(read_only, self.development)
        """The ``supportedFeatures`` every UI is sent."""
        self.server_id = server_id or f"{HOSTNAME}#{os.getpid()}"
        """How the UI names this node (default ``hostname#pid``, distinct for each process of a cluster)."""
        self.admin = io.of(namespace)
        """The admin namespace the UI joins."""
        self.started = now(self.reactor)
        """When it started (the UI shows the uptime)."""
        self.events = EventBuffer()
        """The events counted for the UI's charts."""
        self._second = 0
        self._traffic_in = [0, 0]
        """Packets and bytes received in the second ``_second`` (not yet in :attr:`events`)."""
        self._traffic_out = [0, 0]
        self.polling = {s.sid for s in io.manager if s.transport.name == "polling"}
        """The sids of sessions still on HTTP long-polling."""
        self.login: Login | None = None
        """How UIs log in and keep their session, unless anyone may."""
        self._undo: list[Callable[[], object]] = []
        if auth is None:
            log.warn(
                "ADMIN UI WITHOUT AUTHENTICATION on namespace {namespace}: anyone who reaches this server can "
                "watch every socket{what}. Use it on a trusted machine or network only.",
                namespace=namespace,
                what="" if read_only else " and emit to, move and disconnect them",
            )
        else:
            self.login = Login(auth, store or MemorySessionStore(self.reactor), self.reactor)
            self.admin.use(self.login)
        self._on(self.admin, "connection", self._admin_connected)
        self._undo.append(io.manager.subscribe(self._on_session_event, messages=False))
        self._undo.append(io.manager.subscribe_packets(self._on_packet))
        self._watched: weakref.WeakKeyDictionary[Namespace, tuple[RoomListener, RoomListener]] = (
            weakref.WeakKeyDictionary()
        )
        """The namespaces watched in development mode (a dynamic one removed when empty drops out)."""
        self._undo.append(self._unwatch)
        if self.development:
            for nsp in list(io.namespaces.values()):
                self._watch(nsp)
            io.on("new_namespace", self._watch)
            self._undo.append(lambda: io.off("new_namespace", self._watch))
        self._stats = LoopingCall(self._emit_stats)
        self._stats.clock = self.reactor  # type: ignore[assignment]
        self._stats.start(stats_interval, now=True)

    def _on(self, nsp: Namespace, event: str, handler: Callable[..., object]) -> None:
        nsp.on(event, handler)
        self._undo.append(lambda: nsp.off(event, handler))

    def close(self) -> None:
        """Stop the ``server_stats`` timer and every listener; the admin namespace keeps its login."""
        if self._stats.running:
            self._stats.stop()
        undo, self._undo = self._undo, []
        for step in reversed(undo):
            step()

    def _now(self) -> str:
        return iso_date(now(self.reactor))

    # -- the admin namespace ---------------------------------------------------------------------------------------

    def _admin_connected(self, socket: Socket) -> None:
        session_id = self.login.new_session(socket) if self.login is not None else None
        if session_id is not None:
            # After CONNECT (Node writes it before): the UI listens for it once connected.
            socket.emit("session", session_id)
        for command in COMMANDS:
            socket.on(command, partial(self._command, socket, command))
        socket.emit("config", {"supportedFeatures": self.features})
        if self.development:
            d = self.all_sockets().addCallback(lambda sockets: socket.emit("all_sockets", sockets))
            d.addErrback(lambda f: log.failure("Admin UI: all_sockets failed", f))

    def _command(self, admin: Socket, event: str, *args: Any) -> Any:
        address = admin.handshake.address
        if self.read_only:
            noisy.info("Admin UI {address}: {command} refused (read-only)", address=address, command=event)
            return NO_ACK
        command = parse_command(event, list(args))
        nsp = self.io.namespaces.get(command.nsp) if command is not None else None
        if command is None or nsp is None:
            noisy.info("Admin UI {address}: {command} ignored (malformed, or no such namespace)", address=address,
                       command=event)
            return NO_ACK
        target: Namespace | BroadcastOperator = nsp if command.filter is None else nsp.to(command.filter)
        log.info("Admin UI {address}: {command} in {nsp}{room}", address=address, command=event,
                 nsp=name_for_log(nsp.name), room="" if command.filter is None else " for " + name_for_log(
                     command.filter))
        if isinstance(command, Emit):
            target.emit(command.event, *command.args)
        elif isinstance(command, Join):
            target.sockets_join(command.room)
        elif isinstance(command, Leave):
            target.sockets_leave(command.room)
        elif isinstance(command, Disconnect):
            target.disconnect_sockets(command.close)
        return NO_ACK

    def all_sockets(self) -> Deferred[list[dict[str, Any]]]:
        """Every socket of every namespace, across the cluster (this node's only if other nodes do not answer)."""

        def fetch(nsp: Namespace) -> Deferred[list[dict[str, Any]]]:
            def local(failure: Failure) -> Deferred[list[FetchedSocket]]:
                noisy.info("Admin UI: sockets of other nodes unavailable ({error})", error=failure.getErrorMessage())
                return nsp.local.fetch_sockets()

            d = nsp.fetch_sockets().addErrback(local)
            return d.addCallback(lambda found: [self._serialize(s, nsp.name) for s in found])

        d = gatherResults([fetch(nsp) for nsp in list(self.io.namespaces.values())], consumeErrors=True)
        return d.addCallback(lambda lists: [s for found in lists for s in found])

    def _serialize(self, socket: FetchedSocket, nsp: str) -> dict[str, Any]:
        if isinstance(socket, Socket):
            session = socket.conn
            return serialize_socket(socket.id, nsp, socket.handshake, socket.rooms, socket.data, session.sid[:12],
                                    session.transport.name)
        return serialize_socket(socket.id, nsp, socket.handshake, socket.rooms, socket.data)

    def _emit_stats(self) -> None:
        try:
            io = self.io
            self._flush_traffic()
            self.admin.emit("server_stats", {
                "serverId": self.server_id,
                "hostname": HOSTNAME,
                "pid": os.getpid(),
                "uptime": now(self.reactor) - self.started,
                "clientsCount": len(io.manager),
                "pollingClientsCount": len(self.polling),
                "aggregatedEvents": self.events.values_and_clear(),
                "namespaces": [{"name": n.name, "socketsCount": len(n.sockets)} for n in io.namespaces.values()],
            })
        except Exception:
            log.failure("Admin UI: server_stats failed")

    # -- the Engine.IO layer: aggregated events, polling clients, upgrades --------------------------------------------

    def _on_session_event(self, event: SessionEvent) -> None:
        if isinstance(event, SessionOpened):
            self.events.push(now(self.reactor), "rawConnection")
            if event.transport == "polling":
                self.polling.add(event.sid)
        elif isinstance(event, SessionUpgraded):
            self.polling.discard(event.sid)
            if self.development:
                self._upgraded(event.sid, event.to_transport)
        elif isinstance(event, SessionClosed):
            self.polling.discard(event.sid)
            self.events.push(now(self.reactor), "rawDisconnection", event.reason.value)

    def _on_packet(self, event: PacketEvent) -> None:
        # Once per packet each way: counted in plain integers for the current second, flushed into the
        # event buffer when the second changes or stats go out.
        kind = type(event)
        if kind is PacketReceived:
            counts = self._traffic_in
        elif kind is PacketCreated:
            counts = self._traffic_out
        else:
            return
        data = event.packet.data  # type: ignore[union-attr]
        if not data:
            return
        second = int(now(self.reactor))
        if second != self._second:
            self._flush_traffic()
            self._second = second
        counts[0] += 1
        counts[1] += _byte_length(data)

    def _flush_traffic(self) -> None:
        at = self._second
        for direction, counts in (("In", self._traffic_in), ("Out", self._traffic_out)):
            if counts[0]:
                self.events.push(at, "packets" + direction, None, counts[0])
                self.events.push(at, "bytes" + direction, None, counts[1])
                counts[0] = counts[1] = 0

    def _upgraded(self, sid: str, transport: str) -> None:
        client = self.io.clients.get(sid)
        for socket in list(client.sockets.values()) if client is not None else ():
            admin = socket.data.get(ADMIN_KEY) if isinstance(socket.data, dict) else None
            if isinstance(admin, dict):
                admin["transport"] = transport
            self.admin.emit("socket_updated", {"id": socket.id, "nsp": socket.nsp.name, "transport": transport})

    # -- every namespace (development mode) ---------------------------------------------------------------------------

    def _watch(self, nsp: Namespace) -> None:
        nsp.prepend("connection", self._socket_connected)
        joined, left = partial(self._room_joined, nsp.name), partial(self._room_left, nsp.name)
        nsp.adapter.on("join-room", joined)
        nsp.adapter.on("leave-room", left)
        self._watched[nsp] = (joined, left)

    def _unwatch(self) -> None:
        for nsp, (joined, left) in list(self._watched.items()):
            nsp.off("connection", self._socket_connected)
            nsp.adapter.off("join-room", joined)
            nsp.adapter.off("leave-room", left)
        self._watched.clear()

    def _socket_connected(self, socket: Socket) -> None:
        nsp, sid, admin = socket.nsp.name, socket.id, self.admin
        session = socket.conn
        if isinstance(socket.data, dict):
            data = {**socket.data, ADMIN_KEY: {"clientId": session.sid[:12], "transport": session.transport.name}}
            # The callback holds no reference to the socket: no cycle through its data.
            socket.data = WatchedData(data, lambda changed: admin.emit(
                "socket_updated", {"id": sid, "nsp": nsp, "data": serialize_data(changed)}
            ))
        admin.emit("socket_connected", self._serialize(socket, nsp), self._now())
        if socket.nsp is not admin:
            socket.on_any(lambda *args: admin.emit("event_received", nsp, sid, list(args), self._now()))
            socket.on_any_outgoing(lambda *args: admin.emit("event_sent", nsp, sid, list(args), self._now()))
        socket.on("disconnect", lambda reason, *_: admin.emit(
            "socket_disconnected", nsp, sid, getattr(reason, "value", reason), self._now()
        ))

    def _room_joined(self, nsp: str, room: str, sid: str) -> None:
        self.admin.emit("room_joined", nsp, room, sid, self._now())

    def _room_left(self, nsp: str, room: str, sid: str) -> None:
        # On the next turn, as Node does: a disconnecting socket's socket_disconnected comes first.
        self.reactor.callLater(0, lambda: self.admin.emit("room_left", nsp, room, sid, self._now()))


def instrument(
    io: Server,
    *,
    auth: Auth,
    mode: Literal["development", "production"] = "development",
    read_only: bool = False,
    namespace: str = "/admin",
    server_id: str | None = None,
    store: SessionStore | None = None,
) -> Instrumentation:
    """Serve the ``@socket.io/admin-ui`` protocol on ``io``'s ``namespace``, as Node's ``instrument()``.

    ``auth`` is required: credentials (the password a bcrypt hash, which
    needs ``txrealtime[admin]``, or plain text) or ``False`` for none (a
    warning is logged). ``mode="production"`` sends only ``server_stats``
    (no socket list, no per-event traffic); ``read_only`` refuses the UI's
    commands. ``store`` keeps the session ids of logged-in UIs (in memory by
    default, a day each). Call :meth:`Instrumentation.close` to stop.
    """
    return Instrumentation(io, _basic_auth(auth), mode, read_only, namespace, server_id, store)
