"""Typed views of the server: what ``Server<ClientToServerEvents, ServerToClientEvents>`` checks in Node.

:func:`typed` returns the very object it is given (no wrapper, no cost), seen through the
Protocols below: emitting takes only :class:`txrealtime.contract.ToClient` events with their
argument types, handlers are registered only for :class:`txrealtime.contract.ToServer` events
with matching signatures, and acknowledgements have the declared types. The untyped API is
unchanged; both can be used on the same objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, cast, overload

from twisted.internet.defer import Deferred

from ..contract import Handler, ToClient, ToServer
from .adapter import FetchedSocket
from .errors import DisconnectReason
from .namespace import Namespace
from .server import Server
from .socket import Socket, SocketHandshake

__all__ = [
    "TypedBroadcaster", "TypedNamespace", "TypedOperator", "TypedServer", "TypedSocket", "TypedSocketEmitter", "typed",
    "untyped",
]

P = ParamSpec("P")
R = TypeVar("R")


class TypedOperator(Protocol):
    """A typed selection of sockets (``to``/``except_``/``volatile``/``timeout``): Node's ``BroadcastOperator``."""

    def to(self, rooms: str | Iterable[str], /) -> TypedOperator:
        """Target sockets in ``rooms`` too."""
        ...

    def in_(self, rooms: str | Iterable[str], /) -> TypedOperator:
        """Same as :meth:`to`."""
        ...

    def except_(self, rooms: str | Iterable[str], /) -> TypedOperator:
        """Leave out sockets in ``rooms``."""
        ...

    @property
    def volatile(self) -> TypedOperator:
        """Skip clients not ready to receive right now."""
        ...

    @property
    def local(self) -> TypedOperator:
        """Only this process's sockets."""
        ...

    def timeout(self, seconds: float, /) -> TypedOperator:
        """Wait at most ``seconds`` for acknowledgements."""
        ...

    def compress(self, compress: bool, /) -> TypedOperator:
        """With ``False``, the packet goes uncompressed."""
        ...

    def emit(self, event: ToClient[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Emit ``event`` to every selected socket."""
        ...

    def emit_with_ack(self, event: ToClient[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Deferred[list[R]]:
        """Emit and fire with every client's acknowledgement (needs :meth:`timeout`)."""
        ...

    def fetch_sockets(self) -> Deferred[list[FetchedSocket]]:
        """The selected sockets, in this process and (with a cluster adapter) elsewhere."""
        ...

    def sockets_join(self, rooms: str | Iterable[str], /) -> None:
        """Make the selected sockets join ``rooms``."""
        ...

    def sockets_leave(self, rooms: str | Iterable[str], /) -> None:
        """Make the selected sockets leave ``rooms``."""
        ...

    def disconnect_sockets(self, close: bool = False, /) -> None:
        """Disconnect the selected sockets."""
        ...


class TypedSocketEmitter(Protocol):
    """``socket.timeout(s)`` / ``socket.volatile`` / ``socket.compress(c)`` of a :class:`TypedSocket`."""

    @property
    def volatile(self) -> TypedSocketEmitter:
        """The emit may be dropped if the client cannot receive it now."""
        ...

    def timeout(self, seconds: float, /) -> TypedSocketEmitter:
        """The acknowledgement is awaited ``seconds`` at most."""
        ...

    def compress(self, compress: bool, /) -> TypedSocketEmitter:
        """With ``False``, the packet goes uncompressed."""
        ...

    def emit(self, event: ToClient[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Emit ``event`` to the client."""
        ...

    def emit_with_ack(self, event: ToClient[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Deferred[R]:
        """Emit and fire with the client's acknowledgement, or fail with ``AckTimeout``."""
        ...


class TypedSocket(TypedSocketEmitter, Protocol):
    """A :class:`txrealtime.socketio.Socket` that emits only a contract's ``ToClient`` events and handles its
    ``ToServer`` events."""

    @property
    def id(self) -> str:
        """The socket's id."""
        ...

    @property
    def connected(self) -> bool:
        """Whether the socket is in its namespace."""
        ...

    @property
    def handshake(self) -> SocketHandshake:
        """What the client sent when it connected."""
        ...

    @property
    def data(self) -> dict[str, Any]:
        """Free for the application."""
        ...

    @property
    def rooms(self) -> set[str]:
        """The rooms this socket is in."""
        ...

    @overload
    def on(self, event: Literal["disconnect", "disconnecting"], /) -> Callable[  # type: ignore[overload-overlap]
        [Callable[[DisconnectReason], object]], Callable[[DisconnectReason], object]]: ...

    @overload
    def on(self, event: ToServer[P, R], /) -> Callable[[Handler[P, R]], Handler[P, R]]: ...

    def on(self, event: Any, /) -> Any:
        """A decorator registering the handler of ``event``: its parameters are the event's arguments, it
        returns (or fires with) the event's acknowledgement."""
        ...

    def once(self, event: ToServer[P, R], handler: Handler[P, R], /) -> Handler[P, R]:
        """Like :meth:`on`, for the next ``event`` only."""
        ...

    @property
    def broadcast(self) -> TypedOperator:
        """Every socket of the namespace but this one."""
        ...

    def to(self, rooms: str | Iterable[str], /) -> TypedOperator:
        """The sockets in ``rooms``, but this one."""
        ...

    def in_(self, rooms: str | Iterable[str], /) -> TypedOperator:
        """Same as :meth:`to`."""
        ...

    def except_(self, rooms: str | Iterable[str], /) -> TypedOperator:
        """Every socket of the namespace but this one and those in ``rooms``."""
        ...

    def join(self, rooms: str | Iterable[str], /) -> None:
        """Join one room or several."""
        ...

    def leave(self, room: str, /) -> None:
        """Leave ``room``."""
        ...

    def disconnect(self, close: bool = False, /) -> Socket:
        """Leave the namespace (with ``close``, close the connection)."""
        ...


class TypedBroadcaster(Protocol):
    """What a typed server and a typed namespace share: connection handlers get :class:`TypedSocket`\\ s, and
    broadcasts are typed."""

    def on(self, event: Literal["connection", "connect"], /) -> Callable[
        [Callable[[TypedSocket], object]], Callable[[TypedSocket], object]]:
        """A decorator registering a connection handler, called with each new :class:`TypedSocket`."""
        ...

    def to(self, rooms: str | Iterable[str], /) -> TypedOperator:
        """The sockets in ``rooms``."""
        ...

    def in_(self, rooms: str | Iterable[str], /) -> TypedOperator:
        """Same as :meth:`to`."""
        ...

    def except_(self, rooms: str | Iterable[str], /) -> TypedOperator:
        """Every socket but those in ``rooms``."""
        ...

    @property
    def volatile(self) -> TypedOperator:
        """Skip clients not ready to receive right now."""
        ...

    @property
    def local(self) -> TypedOperator:
        """Only this process's sockets."""
        ...

    def timeout(self, seconds: float, /) -> TypedOperator:
        """Wait at most ``seconds`` for acknowledgements."""
        ...

    def compress(self, compress: bool, /) -> TypedOperator:
        """With ``False``, packets go uncompressed."""
        ...

    def emit(self, event: ToClient[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Emit ``event`` to every socket."""
        ...

    def emit_with_ack(self, event: ToClient[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Deferred[list[R]]:
        """Emit to every socket and collect their acknowledgements (needs :meth:`timeout`)."""
        ...

    def fetch_sockets(self) -> Deferred[list[FetchedSocket]]:
        """Every socket, in this process and (with a cluster adapter) elsewhere."""
        ...


class TypedNamespace(TypedBroadcaster, Protocol):
    """A :class:`txrealtime.socketio.Namespace`, typed."""

    @property
    def name(self) -> str:
        """The namespace's name."""
        ...

    @property
    def sockets(self) -> Mapping[str, Socket]:
        """The connected sockets, by id (untyped: pass one to :func:`typed`)."""
        ...


class TypedServer(TypedBroadcaster, Protocol):
    """A :class:`txrealtime.socketio.Server`: its default namespace typed, and :meth:`of` giving typed ones."""

    def of(self, name: str, /) -> TypedNamespace:
        """The namespace called ``name``, typed."""
        ...


@overload
def typed(target: Server, /) -> TypedServer: ...


@overload
def typed(target: Namespace, /) -> TypedNamespace: ...


@overload
def typed(target: Socket, /) -> TypedSocket: ...


def typed(target: Server | Namespace | Socket, /) -> TypedServer | TypedNamespace | TypedSocket:
    """``target`` itself, seen through its typed Protocol (no wrapper: nothing changes at run time)."""
    return cast("TypedServer | TypedNamespace | TypedSocket", target)


def untyped(socket: TypedSocket, /) -> Socket:
    """The :class:`Socket` behind a :class:`TypedSocket` (the same object), for the untyped API."""
    return cast(Socket, socket)
