"""The contracts between the Socket.IO server and its adapters, as typing Protocols.

An *adapter* keeps the rooms of one namespace and carries its broadcasts
(Node's ``socket.io-adapter``). The server makes one per namespace by calling
its ``adapter`` factory with the namespace, seen as an
:class:`AdapterNamespace`; the adapter reaches the namespace's sockets
(:class:`AdapterSocket`) and its server (:class:`AdapterServer`) through
nothing else. The namespace, its sockets and the broadcast operators call
the adapter through :class:`AdapterContract`.

:class:`txrealtime.socketio.Adapter` is the in-memory implementation (this
process's sockets only); a cluster adapter subclasses it, keeps its local
bookkeeping and adds what crosses processes: docs/socketio.md, *Writing an
adapter*, has a complete example. The values that cross the contract
(:class:`BroadcastOptions`, :class:`BroadcastFlags`, :class:`ClusterAnswer`)
are defined here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from twisted.internet.defer import Deferred

from .._reactor import Clock
from ..protocol.packets import Packet
from ..protocol.parser import Encoder
from .recovery import Encoded, KeptSession, RestoredSession, StateRecovery

__all__ = [
    "AdapterContract",
    "AdapterNamespace",
    "AdapterServer",
    "AdapterSocket",
    "BroadcastFlags",
    "BroadcastOptions",
    "ClusterAnswer",
    "FetchedSocket",
]

T = TypeVar("T")


@dataclass(frozen=True)
class ClusterAnswer(Generic[T]):
    """What a query of every node gathered by its timeout (``fetch_sockets(partial=True)``, ``count``):
    the answers that came, and who did not answer, instead of a failure."""

    value: T
    """The answer from this node and the others that answered."""
    expected: int = 0
    """How many other nodes were counted when the request went out."""
    answered: tuple[str, ...] = ()
    """The other nodes that answered and said who they are (txrealtime nodes: their link's uid)."""
    anonymous: int = 0
    """Other nodes that answered without saying who they are (Node's adapter)."""
    silent: tuple[str, ...] = ()
    """Nodes heard from lately when the request went out (txrealtime's heartbeats) that did not answer in
    time: at most :attr:`missing` of them (a Node node that did not answer cannot be named)."""

    @property
    def missing(self) -> int:
        """How many of the other nodes counted did not answer in time."""
        return max(0, self.expected - len(self.answered) - self.anonymous)

    @property
    def complete(self) -> bool:
        """Whether every node counted answered."""
        return self.missing == 0


class FetchedSocket(Protocol):
    """A socket ``fetch_sockets`` found, in this process or on another node (Node's ``RemoteSocket``)."""

    @property
    def id(self) -> str:
        """The socket's id."""

    @property
    def handshake(self) -> Any:
        """What its client sent when it connected (:class:`txrealtime.socketio.SocketHandshake` locally)."""

    @property
    def rooms(self) -> set[str]:
        """The rooms it is in (its own id among them)."""

    @property
    def data(self) -> Any:
        """The application's data attached to it (``socket.data``)."""

    def emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to its client."""

    def join(self, rooms: str | Iterable[str]) -> None:
        """Put it in ``rooms``."""

    def leave(self, room: str) -> None:
        """Take it out of ``room``."""

    def disconnect(self, close: bool = False) -> object:
        """Disconnect it from its namespace (and close its connection with ``close``)."""


class AdapterSocket(FetchedSocket, Protocol):
    """What an adapter needs from a socket of its namespace."""

    def deliver(self, packet: Packet, messages: list[str | bytes], volatile: bool, compress: bool = True) -> None:
        """Write ``packet``, already encoded as ``messages`` (shared by a whole broadcast);
        uncompressed whatever its size unless ``compress``."""

    def register_ack(self, answered: Callable[[list[Any]], object]) -> int:
        """A new ack id whose answer goes to ``answered``."""


class AdapterServer(Protocol):
    """What an adapter needs from the server of its namespace."""

    @property
    def reactor(self) -> Clock:
        """The clock the adapter's timers run on."""

    @property
    def connection_state_recovery(self) -> StateRecovery | None:
        """Recovery settings; ``None`` when recovery is off."""

    @property
    def encoder(self) -> Encoder:
        """Encodes packets in the server's parser's format (once per broadcast)."""

    def broadcast_ack_timed_out(self) -> None:
        """Count a broadcast whose acknowledgements timed out (the server's ``broadcast_ack_timeouts``)."""


class AdapterNamespace(Protocol):
    """What an adapter needs from the namespace it serves."""

    @property
    def name(self) -> str:
        """The namespace's name (``/``, ``/chat``...)."""

    @property
    def sockets(self) -> Mapping[str, AdapterSocket]:
        """Its sockets in this process, by id."""

    @property
    def server(self) -> AdapterServer:
        """Its server."""

    def on_server_side_emit(self, data: list[Any], ack: Callable[[Any], object] | None = None) -> None:
        """Another server emitted ``[event, *args]`` to this namespace: run its handlers, the first one's
        answer going to ``ack`` (``server_side_emit_with_ack``)."""


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


class AdapterContract(Protocol):
    """What the namespace, its sockets and the broadcast operators call on an adapter.

    Every method acts on this process's sockets; a cluster adapter also
    reaches the other servers where the docstring says so (Node's adapter
    does the same). Deferreds may fire later, once the other servers answered.
    """

    @property
    def namespace(self) -> AdapterNamespace:
        """The namespace whose rooms these are."""

    # -- membership (this process's sockets) --

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        """Put socket ``sid`` in ``rooms``."""

    def delete(self, sid: str, room: str) -> None:
        """Take socket ``sid`` out of ``room``."""

    def delete_all(self, sid: str) -> None:
        """Take socket ``sid`` out of every room: it left the namespace."""

    def socket_rooms(self, sid: str) -> set[str] | None:
        """The rooms socket ``sid`` is in, or ``None`` if the adapter does not know it."""

    # -- broadcasting (every server) --

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> bool:
        """Send ``packet`` to every socket ``opts`` selects, here and (unless ``opts.flags.local``) on the other
        servers; ``False`` when it could not reach every server."""

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], object],
        ack: Callable[[list[Any]], object],
    ) -> None:
        """Broadcast an EVENT asking each client for an ack: call ``client_count`` with how many clients were
        asked (once per server), ``ack`` with each answer."""

    def server_count(self) -> Deferred[int]:
        """How many servers share this namespace, this one included."""

    def server_side_emit(self, data: list[Any]) -> bool:
        """Hand ``[event, *args]`` to the other servers' :meth:`AdapterNamespace.on_server_side_emit`."""

    def server_side_emit_with_ack(self, data: list[Any]) -> Deferred[list[Any]]:
        """As :meth:`server_side_emit`, firing with one answer from each other server."""

    # -- operations on the selected sockets (every server) --

    def fetch_sockets(self, opts: BroadcastOptions) -> Deferred[list[FetchedSocket]]:
        """The sockets ``opts`` selects, on every server."""

    def fetch_sockets_partial(self, opts: BroadcastOptions) -> Deferred[ClusterAnswer[list[FetchedSocket]]]:
        """As :meth:`fetch_sockets`, listing the servers that did not answer in time instead of failing."""

    def count_sockets(self, opts: BroadcastOptions) -> Deferred[ClusterAnswer[int]]:
        """How many sockets ``opts`` selects, on every server."""

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the selected sockets join ``rooms`` (Node's ``socketsJoin``)."""

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """Make the selected sockets leave ``rooms`` (Node's ``socketsLeave``)."""

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        """Disconnect the selected sockets, and their connections with ``close``."""

    # -- connection state recovery --

    def persist_session(self, session: KeptSession) -> None:
        """Keep the state of a socket that left for a reason that may be temporary."""

    def restore_session(self, pid: str, offset: str | None) -> Deferred[RestoredSession | None]:
        """The session kept under ``pid`` with what it missed after ``offset``; ``None`` if it cannot be
        restored exactly."""

    def hold(self, sid: str) -> None:
        """Keep what is broadcast to joining socket ``sid`` until :meth:`release`."""

    def release(self, sid: str) -> list[Encoded] | None:
        """Stop holding for ``sid``: what was held, or ``None`` if it outgrew the recovery log's limit."""

    def close(self) -> None:
        """Release what the adapter holds (subscriptions, timers): the namespace is gone."""
