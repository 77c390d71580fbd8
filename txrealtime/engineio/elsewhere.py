"""Sessions held by another node: the seams through which :mod:`txrealtime.forwarding` serves their requests.

An :class:`EngineIOResource <txrealtime.engineio.resource.EngineIOResource>`
whose ``elsewhere`` is set hands it the requests naming a sid its manager
does not hold (and only those: a request for a session held here goes the
usual way, untouched): a polling GET or POST (:meth:`Elsewhere.poll`) and a
WebSocket upgrade (:meth:`Elsewhere.upgrade`). The WebSocket connection of
such an upgrade stays on this node and hands what it receives to a
:class:`Relay` instead of a session.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.web.http import Request

from .events import CloseReason, Handshake
from .packets import Packet

__all__ = ["Elsewhere", "Relay", "RelayedSocket"]


class Relay(Protocol):
    """Where a WebSocket connection whose session is on another node hands what it receives."""

    def opened(self) -> None:
        """The WebSocket handshake completed."""

    def receive(self, packet: Packet) -> None:
        """A packet from the client."""

    def writable(self) -> None:
        """The client reads again after a pause: what waits may be written."""

    def transport_closed(self, reason: CloseReason, description: str) -> None:
        """The connection closed, or the client sent what the codec cannot decode (``PARSE_ERROR``)."""


class RelayedSocket(Protocol):
    """What a :class:`Relay` needs from its WebSocket connection."""

    relay: Relay | None
    protocol: int
    """The Engine.IO protocol revision of the request."""

    @property
    def writable(self) -> bool:
        """Open, and the client keeps up."""

    def send(self, packets: list[Packet]) -> None:
        """Write packets to the client."""

    def close(self) -> None:
        """Close the connection (a close frame)."""

    def abort(self) -> None:
        """Drop the connection at once."""

    def decline(self) -> None:
        """Accept the handshake, then close at once (as a second WebSocket for an upgraded session is)."""


class Elsewhere(Protocol):
    """Serves the requests of sessions this node does not hold."""

    def poll(self, request: Request, sid: str) -> object:
        """Serve a polling GET or POST for ``sid``: what ``render`` returns; raise
        :class:`txrealtime.engineio.errors.SessionError` to answer with that error."""

    def upgrade(self, socket: RelayedSocket, sid: str, handshake: Handshake) -> Deferred[Any]:
        """Decide a WebSocket upgrade for ``sid``, setting ``socket.relay`` if it is accepted: fires with
        what Autobahn's ``onConnect`` returns, or fails with :class:`txrealtime.engineio.errors.SessionError`
        (an Engine.IO refusal, answered as Node's engine.io answers it) or
        ``autobahn.websocket.types.ConnectionDeny``."""
