"""Rooms and broadcasting for one namespace, behind an interface other adapters (Redis) implement.

The in-memory :class:`Adapter` is the default: it knows the sockets of this
process only. Cluster adapters subclass it, keep its local bookkeeping and
add what crosses processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed

from .._reactor import Clock, now
from .packets import Packet, PacketType
from .parser import Encoder
from .recovery import RecoveryLog, StateRecovery

__all__ = ["Adapter", "AdapterNamespace", "AdapterSocket", "BroadcastFlags", "BroadcastOptions", "FetchedSocket"]


class FetchedSocket(Protocol):
    """A socket ``fetch_sockets`` found, in this process or on another node (Node's ``RemoteSocket``)."""

    @property
    def id(self) -> str: ...

    @property
    def handshake(self) -> Any: ...

    @property
    def rooms(self) -> set[str]: ...

    @property
    def data(self) -> Any: ...

    def emit(self, event: str, *args: Any) -> bool: ...

    def join(self, rooms: str | Iterable[str]) -> None: ...

    def leave(self, room: str) -> None: ...

    def disconnect(self, close: bool = False) -> object: ...


class AdapterSocket(FetchedSocket, Protocol):
    """What an adapter needs from a socket of its namespace."""

    def deliver(self, packet: Packet, messages: list[str | bytes], volatile: bool, compress: bool = True) -> None:
        """Write ``packet``, already encoded as ``messages`` (shared by a whole broadcast);
        uncompressed whatever its size unless ``compress``."""

    def register_ack(self, answered: Callable[[list[Any]], object]) -> int:
        """A new ack id whose answer goes to ``answered``."""


class _Server(Protocol):
    @property
    def reactor(self) -> Clock: ...

    @property
    def connection_state_recovery(self) -> StateRecovery | None: ...

    @property
    def encoder(self) -> Encoder: ...
    def _broadcast_ack_timed_out(self) -> None: ...


class AdapterNamespace(Protocol):
    """What an adapter needs from the namespace it serves."""

    @property
    def name(self) -> str: ...

    @property
    def sockets(self) -> Mapping[str, AdapterSocket]: ...

    @property
    def server(self) -> _Server: ...

    def _on_server_side_emit(self, data: list[Any], ack: Callable[[Any], object] | None = None) -> None:
        """Another server emitted ``[event, *args]`` to this namespace."""


@dataclass(frozen=True, slots=True)
class BroadcastFlags:
    """How a broadcast is sent: Node's ``volatile``, ``local``, ``timeout`` and ``compress`` flags."""
    volatile: bool = False
    """Drop the packet for clients whose transport cannot take it right now."""
    local: bool = False
    """Only this process's clients (cluster adapters skip publishing)."""
    timeout: float | None = None
    """Seconds to wait for acknowledgements."""
    compress: bool = True
    """Let the transports compress the packet (``False``: always sent plain)."""


@dataclass(frozen=True, slots=True)
class BroadcastOptions:
    """Which sockets a broadcast or an operation reaches, and how (Node's ``BroadcastOptions``)."""
    rooms: frozenset[str] = frozenset()
    """Target these rooms (all sockets of the namespace if empty)."""
    except_: frozenset[str] = frozenset()
    """Skip sockets in any of these rooms."""
    flags: BroadcastFlags = BroadcastFlags()
    """How it is sent."""


class Adapter:
    """In-memory rooms of one namespace: room -> socket ids and socket id -> rooms."""

    def __init__(self, namespace: AdapterNamespace) -> None:
        """The adapter of ``namespace``, empty.

        :param namespace: The namespace whose sockets it keeps (the server calls
            its ``adapter`` factory with each namespace it creates).
        """
        self.namespace = namespace
        """The namespace whose rooms these are."""
        self.rooms: dict[str, set[str]] = {}
        """Room -> the ids of the sockets in it."""
        self.sids: dict[str, set[str]] = {}
        """Socket id -> the rooms it is in."""
        self.listeners: dict[str, list[Callable[..., object]]] = {}
        """Event -> the listeners :meth:`on` added."""
        server = namespace.server
        self.encoder = server.encoder
        """The server's: packets are encoded here once per broadcast, in its parser's format."""
        recovery = server.connection_state_recovery
        self.recovery = RecoveryLog(recovery, lambda: now(server.reactor)) if recovery is not None else None
        """Kept packets and sessions, with connection state recovery on."""

    # -- events (create-room, delete-room, join-room, leave-room) ----------

    def on(self, event: str, listener: Callable[..., object]) -> None:
        """Listen to ``create-room``/``delete-room`` (room) and ``join-room``/``leave-room`` (room, sid)."""
        self.listeners.setdefault(event, []).append(listener)

    def off(self, event: str, listener: Callable[..., object]) -> None:
        """Stop calling ``listener`` for ``event``."""
        listeners = self.listeners.get(event)
        if listeners is not None and listener in listeners:
            listeners.remove(listener)

    def _fire(self, event: str, *args: object) -> None:
        for listener in self.listeners.get(event, ()):
            listener(*args)

    # -- membership --------------------------------------------------------

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        """Put socket ``sid`` in ``rooms`` (firing ``create-room`` and ``join-room`` as they happen)."""
        mine = self.sids.setdefault(sid, set())
        for room in rooms:
            mine.add(room)
            members = self.rooms.get(room)
            if members is None:
                members = self.rooms[room] = set()
                self._fire("create-room", room)
            if sid not in members:
                members.add(sid)
                self._fire("join-room", room, sid)

    def delete(self, sid: str, room: str) -> None:
        """Take socket ``sid`` out of ``room`` (firing ``leave-room``, and ``delete-room`` once it is empty)."""
        mine = self.sids.get(sid)
        if mine is not None:
            mine.discard(room)
        members = self.rooms.get(room)
        if members is not None and sid in members:
            members.discard(sid)
            self._fire("leave-room", room, sid)
            if not members:
                del self.rooms[room]
                self._fire("delete-room", room)

    def delete_all(self, sid: str) -> None:
        """Take socket ``sid`` out of every room (it left the namespace)."""
        for room in list(self.sids.get(sid, ())):
            self.delete(sid, room)
        self.sids.pop(sid, None)

    def socket_rooms(self, sid: str) -> set[str] | None:
        """The rooms socket ``sid`` is in, or ``None`` if this adapter does not know it."""
        rooms = self.sids.get(sid)
        return set(rooms) if rooms is not None else None

    def sockets(self, rooms: Iterable[str] = ()) -> set[str]:
        """Ids of this process's sockets in any of ``rooms`` (all sockets if none)."""
        return {s.id for s in self._matching(BroadcastOptions(rooms=frozenset(rooms)))}

    # -- delivery ----------------------------------------------------------

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> bool:
        """Send ``packet`` to every matching socket, encoding it once.

        Returns ``False`` when the packet could not be handed to every node
        it was meant for (a cluster adapter cut off from its broker); local
        sockets got it either way.
        """
        recovery = self.recovery
        if recovery is not None and packet.type is PacketType.EVENT and packet.id is None and not opts.flags.volatile:
            packet = Packet(packet.type, packet.namespace, recovery.record(packet.data, opts.rooms, opts.except_))
            messages = self.encoder.encode(packet)
            recovery.charge(sum(len(m) for m in messages))
        else:
            messages = self.encoder.encode(packet)
        for socket in self._matching(opts):
            socket.deliver(packet, messages, opts.flags.volatile, opts.flags.compress)
        return True

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], object],
        ack: Callable[[list[Any]], object],
    ) -> None:
        """Broadcast an EVENT asking each client for an ack; report how many were asked, then each answer."""
        count = 0
        for socket in self._matching(opts):
            ack_id = socket.register_ack(ack)
            with_id = Packet(packet.type, packet.namespace, packet.data, ack_id)
            socket.deliver(with_id, self.encoder.encode(with_id), opts.flags.volatile, opts.flags.compress)
            count += 1
        client_count(count)

    def server_count(self) -> Deferred[int]:
        """How many servers share this namespace (1 for the in-memory adapter)."""
        return succeed(1)

    def server_side_emit(self, data: list[Any]) -> bool:
        """Emit ``[event, *args]`` to the other servers of the cluster; the in-memory adapter has none."""
        return True

    def server_side_emit_with_ack(self, data: list[Any]) -> Deferred[list[Any]]:
        """Emit to the other servers and collect one answer from each (none here)."""
        return succeed([])

    # -- operations on matching sockets ----------------------------------------

    def fetch_sockets(self, opts: BroadcastOptions) -> Deferred[list[FetchedSocket]]:
        """The matching sockets (Node's ``fetchSockets``); a cluster adapter adds the other servers'."""
        return succeed(list(self._matching(opts)))

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the matching sockets join ``rooms`` (Node's ``socketsJoin``)."""
        rooms = list(rooms)
        for socket in list(self._matching(opts)):
            socket.join(rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the matching sockets leave ``rooms`` (Node's ``socketsLeave``)."""
        rooms = list(rooms)
        for socket in list(self._matching(opts)):
            for room in rooms:
                socket.leave(room)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        """Disconnect the matching sockets, and their connections with ``close`` (Node's ``disconnectSockets``)."""
        for socket in list(self._matching(opts)):
            socket.disconnect(close)

    def close(self) -> None:
        """Release resources (cluster adapters unsubscribe here)."""

    def _matching(self, opts: BroadcastOptions) -> Iterator[AdapterSocket]:
        excluded: set[str] = set()
        for room in opts.except_:
            excluded.update(self.rooms.get(room, ()))
        sockets = self.namespace.sockets
        if opts.rooms:
            seen: set[str] = set()
            for room in opts.rooms:
                for sid in list(self.rooms.get(room, ())):
                    if sid in seen or sid in excluded:
                        continue
                    seen.add(sid)
                    socket = sockets.get(sid)
                    if socket is not None:
                        yield socket
        else:
            for sid, socket in list(sockets.items()):
                if sid not in excluded:
                    yield socket
