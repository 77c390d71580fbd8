"""A socket ``fetch_sockets`` found on another node: Node's ``RemoteSocket``, for every cluster adapter."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..socketio.adapter import Adapter, BroadcastOptions
from ..socketio.operator import BroadcastOperator

__all__ = ["RemoteSocket"]


@dataclass
class RemoteSocket:
    """A socket found by ``fetch_sockets`` on another node: its details and the same operations."""

    adapter: Adapter
    """The adapter that found it, through which its operations go."""
    id: str
    """The socket's id."""
    handshake: dict[str, Any]
    """Its handshake, as its node sent it (Node's format)."""
    rooms: set[str]
    """The rooms it is in."""
    data: Any = field(default_factory=dict)
    """Its ``socket.data``."""

    def _only_me(self) -> BroadcastOptions:
        return BroadcastOptions(rooms=frozenset({self.id}))

    def emit(self, event: str, *args: Any) -> bool:
        """Emit to this socket, wherever it is (through the broker)."""
        return BroadcastOperator(self.adapter, frozenset({self.id})).emit(event, *args)

    def join(self, rooms: str | Iterable[str]) -> None:
        """Make this socket join ``rooms`` on its node."""
        self.adapter.add_sockets(self._only_me(), [rooms] if isinstance(rooms, str) else rooms)

    def leave(self, room: str) -> None:
        """Make this socket leave ``room`` on its node."""
        self.adapter.del_sockets(self._only_me(), [room])

    def disconnect(self, close: bool = False) -> None:
        """Disconnect this socket (and its connection with ``close``) on its node."""
        self.adapter.disconnect_sockets(self._only_me(), close)
