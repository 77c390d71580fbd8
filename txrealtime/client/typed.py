"""The typed view of the client's socket: what ``Socket<ServerToClientEvents, ClientToServerEvents>`` checks in
Node's client.

:func:`typed` returns the :class:`ClientSocket` it is given, seen through :class:`TypedClientSocket`:
it emits only :class:`txrealtime.contract.ToServer` events with their argument types, registers
handlers only for :class:`txrealtime.contract.ToClient` events with matching signatures, and its
acknowledgements have the declared types. Nothing changes at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, cast, overload

from twisted.internet.defer import Deferred

from ..contract import Handler, ToClient, ToServer
from .events import ConnectError
from .socket import ClientSocket

__all__ = ["TypedClientEmitter", "TypedClientSocket", "typed", "untyped"]

P = ParamSpec("P")
R = TypeVar("R")


class TypedClientEmitter(Protocol):
    """``socket.timeout(s)`` / ``socket.volatile`` of a :class:`TypedClientSocket`."""

    @property
    def volatile(self) -> TypedClientEmitter:
        """Emit only if the connection can take it now."""
        ...

    def timeout(self, seconds: float, /) -> TypedClientEmitter:
        """The acknowledgement fails with ``AckTimeout`` after ``seconds``."""
        ...

    def emit(self, event: ToServer[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Emit ``event`` (buffered until connected)."""
        ...

    def emit_with_ack(self, event: ToServer[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Deferred[R]:
        """Emit and fire with the server's acknowledgement."""
        ...


class TypedClientSocket(TypedClientEmitter, Protocol):
    """A :class:`ClientSocket` that emits only a contract's ``ToServer`` events and handles its ``ToClient``
    events."""

    @property
    def id(self) -> str | None:
        """The socket's id once connected."""
        ...

    @property
    def connected(self) -> bool:
        """Whether the socket is in its namespace now."""
        ...

    @overload
    def on(self, event: Literal["connect"], /) -> Callable[[Callable[[], object]], Callable[[], object]]: ...  # type: ignore[overload-overlap]

    @overload
    def on(self, event: Literal["disconnect"], /) -> Callable[[Callable[[str], object]], Callable[[str], object]]: ...  # type: ignore[overload-overlap]

    @overload
    def on(self, event: Literal["connect_error"], /) -> Callable[  # type: ignore[overload-overlap]
        [Callable[[ConnectError], object]], Callable[[ConnectError], object]]: ...

    @overload
    def on(self, event: ToClient[P, R], /) -> Callable[[Handler[P, R]], Handler[P, R]]: ...

    def on(self, event: Any, /) -> Any:
        """A decorator registering the handler of ``event``: its parameters are the event's arguments, it
        returns (or fires with) the event's acknowledgement."""
        ...

    def once(self, event: ToClient[P, R], handler: Handler[P, R], /) -> Handler[P, R]:
        """Like :meth:`on`, for the next ``event`` only."""
        ...

    def connect(self) -> Deferred[ClientSocket]:
        """Connect; fire when the namespace accepted us."""
        ...

    def disconnect(self) -> ClientSocket:
        """Leave the namespace."""
        ...


def typed(socket: ClientSocket, /) -> TypedClientSocket:
    """``socket`` itself, seen through :class:`TypedClientSocket` (no wrapper: nothing changes at run time)."""
    return cast(TypedClientSocket, socket)


def untyped(socket: TypedClientSocket, /) -> ClientSocket:
    """The :class:`ClientSocket` behind a :class:`TypedClientSocket` (the same object)."""
    return cast(ClientSocket, socket)
