"""Rooms and broadcasting for one namespace, behind an interface other adapters (Redis) implement.

The in-memory :class:`Adapter` is the default: it knows the sockets of this
process only. Cluster adapters subclass it, keep its local bookkeeping and
add what crosses processes. They see the namespace, its sockets and its
server through the Protocols of :mod:`txrealtime.socketio.interfaces`
(:class:`AdapterNamespace`, :class:`AdapterSocket`, :class:`AdapterServer`),
which also says what an adapter provides (:class:`AdapterContract`); they
are re-exported here.

Connection state recovery goes through the adapter, as in Node: it chooses
each broadcast's offset (:meth:`Adapter.broadcast`), keeps the state of
sockets that left (:meth:`Adapter.persist_session`) and hands it back with
what the client missed (:meth:`Adapter.restore_session`, a Deferred the
CONNECT waits for). The in-memory implementation keeps both in a
:class:`txrealtime.socketio.recovery.RecoveryLog`; docs/socketio.md says
what another implementation must guarantee.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, succeed

from ..protocol.packets import Packet, PacketType
from .interfaces import (
    AdapterContract,
    AdapterNamespace,
    AdapterServer,
    AdapterSocket,
    BroadcastFlags,
    BroadcastOptions,
    ClusterAnswer,
    FetchedSocket,
)
from .recovery import Encoded, KeptSession, RecoveryLog, RestoredSession, with_offset

__all__ = [
    "Adapter",
    "AdapterContract",
    "AdapterNamespace",
    "AdapterServer",
    "AdapterSocket",
    "BroadcastFlags",
    "BroadcastOptions",
    "ClusterAnswer",
    "Encoded",
    "FetchedSocket",
    "KeptSession",
    "RestoredSession",
]


@dataclass(slots=True)
class _Held:
    """What was broadcast to a joining socket's rooms while it waited for its CONNECT answer."""

    packets: list[Encoded] = field(default_factory=list)
    size: int = 0
    overflowed: bool = False


class Adapter:
    """In-memory rooms of one namespace: room -> socket ids and socket id -> rooms; with connection state
    recovery on, the namespace's :class:`RecoveryLog` too."""

    def __init__(self, namespace: AdapterNamespace) -> None:
        """The adapter of ``namespace``, empty.

        :param namespace: The namespace whose sockets it keeps (the server calls
            its ``adapter`` factory with each namespace it creates).
        """
        self.namespace = namespace
        """The namespace whose rooms these are."""
        self.rooms: dict[str, set[str]] = {}
        """Room -> the ids of the sockets in it."""
        self.sids: dict[str, dict[str, int]] = {}
        """Socket id -> its rooms, each with the recovery log's position when it joined (0 without recovery)."""
        self.listeners: dict[str, list[Callable[..., object]]] = {}
        """Event -> the listeners :meth:`on` added."""
        server = namespace.server
        self.encoder = server.encoder
        """The server's: packets are encoded here once per broadcast, in its parser's format."""
        recovery = server.connection_state_recovery
        self.recovery = RecoveryLog(recovery, server.reactor) if recovery is not None else None
        """Kept packets and sessions, with connection state recovery on."""
        self._held: dict[str, _Held] = {}

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
        position = self.recovery.position if self.recovery is not None else 0
        mine = self.sids.setdefault(sid, {})
        for room in rooms:
            mine.setdefault(room, position)
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
            mine.pop(room, None)
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
        self._held.pop(sid, None)

    def socket_rooms(self, sid: str) -> set[str] | None:
        """The rooms socket ``sid`` is in, or ``None`` if this adapter does not know it."""
        rooms = self.sids.get(sid)
        return set(rooms) if rooms is not None else None

    def sockets(self, rooms: Iterable[str] = ()) -> set[str]:
        """Ids of this process's sockets in any of ``rooms`` (all sockets if none)."""
        return {s.id for s in self.matching(BroadcastOptions(rooms=frozenset(rooms)))}

    # -- delivery ----------------------------------------------------------

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> bool:
        """Send ``packet`` to every matching socket, encoding it once.

        With recovery on, an EVENT without ack id gets an offset: the next
        position of the log, where it is kept, or (volatile, not kept) the
        position of the last packet kept. Returns ``False`` when the packet
        could not be handed to every node it was meant for (a cluster adapter
        cut off from its broker); local sockets got it either way.
        """
        log = self.recovery
        if log is None or packet.type is not PacketType.EVENT or packet.id is not None:
            self.deliver(packet, self.encoder.encode(packet), opts)
        elif opts.flags.volatile:
            packet = with_offset(packet, log.latest_offset)
            self.deliver(packet, self.encoder.encode(packet), opts)
        else:
            packet = with_offset(packet, log.next_offset)
            messages = self.encoder.encode(packet)
            log.append(messages, opts.rooms, opts.except_)
            self.deliver(packet, messages, opts)
        return True

    def deliver(self, packet: Packet, messages: Encoded, opts: BroadcastOptions) -> None:
        """Write ``packet``, encoded as ``messages``, to this process's matching sockets: the local half of a
        broadcast, for adapters that choose offsets themselves (:meth:`broadcast`)."""
        volatile, compress = opts.flags.volatile, opts.flags.compress
        for socket in self.matching(opts):
            socket.deliver(packet, messages, volatile, compress)
        if self._held and not volatile:
            self._hold(messages, opts)

    # -- connection state recovery -------------------------------------------

    def persist_session(self, session: KeptSession) -> None:
        """Keep the state of a socket that left for a reason that may be temporary, until
        ``max_disconnection_duration`` passed or :meth:`restore_session` handed it out.

        Called before the socket leaves its rooms. The in-memory adapter keeps
        it in :attr:`recovery`, with the positions at which the socket joined
        its rooms.
        """
        if self.recovery is not None:
            self.recovery.keep(session, self.sids.get(session.sid, {}))

    def restore_session(self, pid: str, offset: str | None) -> Deferred[RestoredSession | None]:
        """The session kept under ``pid``, with every kept packet meant for it after ``offset`` (``None``: the
        client got none since its socket joined); ``None`` if it cannot be restored exactly.

        An implementation hands a session out at most once, and its
        Deferred fires with every packet up to the last one this process
        delivered before it fired: the namespace then joins the socket to its
        rooms at once, so the packets that follow reach it live (held until
        its CONNECT is answered) and none is lost or doubled. A session asked
        for with an unusable offset stays kept. Failing is as ``None``, except with
        :class:`txrealtime.socketio.errors.RecoveryUnavailable` (cannot tell now; the session stays kept): the
        client's connection is then closed, for it to come back and recover.
        """
        if self.recovery is None:
            return succeed(None)
        restored = self.recovery.restore(pid, offset)
        if restored is None:
            return succeed(None)
        session, joined = restored
        # The socket joins its rooms again right away (Namespace.add_client): at the positions it first joined them.
        self.sids[session.session.sid] = joined
        return succeed(session)

    def hold(self, sid: str) -> None:
        """Keep what is broadcast to ``sid``'s rooms until :meth:`release`: its socket is joining (a recovered
        one waiting for middleware), and must get those packets after the CONNECT answer and what it missed."""
        self._held[sid] = _Held()

    def release(self, sid: str) -> list[Encoded] | None:
        """Stop holding for ``sid``; what was held, in order, or ``None`` if it outgrew ``max_log_bytes``."""
        held = self._held.pop(sid, None)
        if held is None:
            return []
        return None if held.overflowed else held.packets

    def _hold(self, messages: Encoded, opts: BroadcastOptions) -> None:
        limit = self.recovery.options.max_log_bytes if self.recovery is not None else 0
        for sid, held in self._held.items():
            mine = self.sids.get(sid)
            if held.overflowed or not mine or not opts.except_.isdisjoint(mine):
                continue
            if opts.rooms and opts.rooms.isdisjoint(mine):
                continue
            held.packets.append(messages)
            held.size += sum(map(len, messages))
            if held.size > limit:
                held.overflowed, held.packets = True, []

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], object],
        ack: Callable[[list[Any]], object],
    ) -> None:
        """Broadcast an EVENT asking each client for an ack; report how many were asked, then each answer."""
        count = 0
        for socket in self.matching(opts):
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
        return succeed(list(self.matching(opts)))

    def fetch_sockets_partial(self, opts: BroadcastOptions) -> Deferred[ClusterAnswer[list[FetchedSocket]]]:
        """As :meth:`fetch_sockets`, but a node that does not answer in time is listed, not a failure."""
        return self.fetch_sockets(opts).addCallback(ClusterAnswer)

    def count_sockets(self, opts: BroadcastOptions) -> Deferred[ClusterAnswer[int]]:
        """How many sockets match, each node answering with its count; a node that does not answer in time
        is listed, not a failure."""
        return self.fetch_sockets(opts).addCallback(lambda found: ClusterAnswer(len(found)))

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the matching sockets join ``rooms`` (Node's ``socketsJoin``)."""
        rooms = list(rooms)
        for socket in list(self.matching(opts)):
            socket.join(rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the matching sockets leave ``rooms`` (Node's ``socketsLeave``)."""
        rooms = list(rooms)
        for socket in list(self.matching(opts)):
            for room in rooms:
                socket.leave(room)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        """Disconnect the matching sockets, and their connections with ``close`` (Node's ``disconnectSockets``)."""
        for socket in list(self.matching(opts)):
            socket.disconnect(close)

    def close(self) -> None:
        """Release resources (cluster adapters unsubscribe here): kept packets and sessions go."""
        if self.recovery is not None:
            self.recovery.close()
        self._held.clear()

    def matching(self, opts: BroadcastOptions) -> Iterator[AdapterSocket]:
        """This process's sockets that ``opts`` selects (its rooms, less its ``except_`` rooms): what every
        operation acts on here; a cluster adapter asks the other servers for theirs."""
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
