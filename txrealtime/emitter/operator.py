"""A selection of the emitter's target sockets (rooms, exceptions, flags), shared by both front ends."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from .._events import check_event
from ..adapters.redis.requests import DisconnectRequest, JoinRequest, LeaveRequest, Request
from ..adapters.redis.wire import Broadcast, Channels, WireFlags, WireOptions, WirePacket
from .formats import UID, ClassicFormat, Format, Outgoing, StreamEntry

__all__ = ["EmitterOperator", "Sender"]

R = TypeVar("R")

_NO_FLAGS = WireFlags()


class Sender(Generic[R]):
    """How a front end sends what a format gives it: ``publish(channel, message)`` for channels, ``add(entry)``
    for stream entries (only front ends that speak to the streams adapter have one)."""

    __slots__ = ("publish", "add")

    def __init__(
        self, publish: Callable[[str, bytes], R], add: Callable[[StreamEntry], R] | None = None
    ) -> None:
        """A sender publishing with ``publish`` and adding entries with ``add``."""
        self.publish = publish
        """Publishes bytes on a channel."""
        self.add = add
        """Adds an entry to a stream."""

    def __call__(self, outgoing: Outgoing) -> R:
        """Send ``outgoing``."""
        if isinstance(outgoing, StreamEntry):
            if self.add is None:
                raise TypeError("this front end cannot add stream entries")
            return self.add(outgoing)
        return self.publish(*outgoing)


def _room_list(rooms: str | Iterable[str]) -> tuple[str, ...]:
    listed = (rooms,) if isinstance(rooms, str) else tuple(rooms)
    for room in listed:
        if not isinstance(room, str):
            raise TypeError(f"room names are strings, not {type(room).__name__}")
    return listed


def _namespace(nsp: str) -> str:
    if not isinstance(nsp, str):
        raise TypeError(f"namespace names are strings, not {type(nsp).__name__}")
    return nsp if nsp.startswith("/") else "/" + nsp


class EmitterOperator(Generic[R]):
    """An immutable selection of sockets (rooms, exceptions, flags) of one namespace, to emit to or act on.

    Every method that narrows the selection returns a new operator, so
    ``emitter.to("a").except_("b").emit(...)`` reads as in Node. Rooms keep
    the order they were given in (without repeats), as Node's ``Set`` does:
    the published bytes are Node's. The other methods publish and return what
    the front end's publishing returns (``R``).
    """

    __slots__ = ("_send", "_format", "_rooms", "_except", "_flags")

    def __init__(
        self,
        publish: Callable[[str, bytes], R] | Sender[R],
        format: Channels | Format,
        rooms: tuple[str, ...] = (),
        except_rooms: tuple[str, ...] = (),
        flags: WireFlags = _NO_FLAGS,
    ) -> None:
        """A selection; :meth:`txrealtime.emitter.BaseEmitter.to` and the like make them.

        :param publish: The front end's ``publish(channel, message)``, or its :class:`Sender` (which also adds
            stream entries, for a :class:`txrealtime.emitter.formats.StreamsFormat`).
        :param format: How messages look and where they go: a :class:`txrealtime.emitter.formats.ClassicFormat`
            (or the namespace's ``Channels``, for it), ``ShardedFormat`` or ``StreamsFormat``.
        :param rooms: Target these rooms (every socket of the namespace if none).
        :param except_rooms: Skip the sockets in any of these rooms.
        :param flags: ``volatile`` and ``compress``, as Node's emitter sends them.
        """
        self._send: Sender[R] = publish if isinstance(publish, Sender) else Sender(publish)
        self._format: Format = ClassicFormat(format) if isinstance(format, Channels) else format
        self._rooms = rooms
        self._except = except_rooms
        self._flags = flags

    def _with(
        self,
        rooms: tuple[str, ...] | None = None,
        except_rooms: tuple[str, ...] | None = None,
        flags: WireFlags | None = None,
    ) -> EmitterOperator[R]:
        return EmitterOperator(
            self._send,
            self._format,
            self._rooms if rooms is None else rooms,
            self._except if except_rooms is None else except_rooms,
            self._flags if flags is None else flags,
        )

    @property
    def nsp(self) -> str:
        """The namespace the selection is in."""
        return self._format.nsp

    @property
    def rooms(self) -> tuple[str, ...]:
        """The rooms targeted (none: every socket of the namespace)."""
        return self._rooms

    @property
    def except_rooms(self) -> tuple[str, ...]:
        """The rooms whose sockets are left out."""
        return self._except

    # -- narrowing ----------------------------------------------------------------------

    def to(self, rooms: str | Iterable[str]) -> EmitterOperator[R]:
        """Target sockets in ``rooms`` too (a union with the rooms already targeted)."""
        return self._with(rooms=tuple(dict.fromkeys(self._rooms + _room_list(rooms))))

    def in_(self, rooms: str | Iterable[str]) -> EmitterOperator[R]:
        """The same as :meth:`to`."""
        return self.to(rooms)

    def except_(self, rooms: str | Iterable[str]) -> EmitterOperator[R]:
        """Leave out sockets in ``rooms``."""
        return self._with(except_rooms=tuple(dict.fromkeys(self._except + _room_list(rooms))))

    @property
    def volatile(self) -> EmitterOperator[R]:
        """Drop the event for clients not ready to receive it right now."""
        return self._with(flags=WireFlags(volatile=True, compress=self._flags.compress))

    def compress(self, compress: bool = True) -> EmitterOperator[R]:
        """Ask the servers to compress the event (WebSocket permessage-deflate) or, with ``False``, not to."""
        return self._with(flags=WireFlags(volatile=self._flags.volatile, compress=bool(compress)))

    # -- publishing -------------------------------------------------------------------------

    def _request(self, request: Request) -> R:
        return self._send(self._format.request(request))

    def _selection(self) -> WireOptions:
        return WireOptions(rooms=self._rooms, except_=self._except)

    def emit(self, event: str, *args: Any) -> R:
        """Send ``event`` with ``args`` (JSON values, ``bytes``, dates) to every selected client of every server.

        ``ValueError`` for a reserved event name (``connect``, ``disconnect`` ...), ``TypeError`` for a value
        that cannot be sent; both before anything is published.
        """
        check_event(event)
        message = Broadcast(
            uid=UID,
            packet=WirePacket(data=[event, *args], nsp=self._format.nsp),
            opts=WireOptions(rooms=self._rooms, except_=self._except, flags=self._flags),
            flags_first=True,
        )
        return self._send(self._format.broadcast(message))

    def sockets_join(self, rooms: str | Iterable[str]) -> R:
        """Make the selected sockets of every server join ``rooms``."""
        return self._request(JoinRequest(opts=self._selection(), rooms=_room_list(rooms)))

    def sockets_leave(self, rooms: str | Iterable[str]) -> R:
        """Make the selected sockets of every server leave ``rooms``."""
        return self._request(LeaveRequest(opts=self._selection(), rooms=_room_list(rooms)))

    def disconnect_sockets(self, close: bool = False) -> R:
        """Disconnect the selected sockets of every server; with ``close``, close their connections too
        (every namespace of those clients is disconnected)."""
        return self._request(DisconnectRequest(opts=self._selection(), close=bool(close)))
