"""The contracts inside the Engine.IO layer, as typing Protocols.

A *transport* (polling, WebSocket, a relayed or forwarded one) carries the
packets of one session: the session sees it as a :class:`Transport`. A
*session host* owns sessions, their settings, clock, statistics and
subscribers: a :class:`txrealtime.engineio.session.Session` sees its manager as a
:class:`SessionHost`, and :class:`txrealtime.engineio.SessionManager` is the
one implementation. The Socket.IO layer stands on the manager's public API
(its typed events, ``Session.receiver``), not on these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from .._reactor import Clock
from .events import Handshake, PacketEvent, SessionEvent
from .options import EngineIOOptions
from .packets import Packet
from .stats import EngineStats

__all__ = ["SessionHost", "Transport"]

S = TypeVar("S", contravariant=True)
"""The sessions a host owns (:class:`txrealtime.engineio.session.Session`)."""


class Transport(Protocol):
    """What a session needs from a transport bound to it."""

    name: str
    """``polling`` or ``websocket``."""

    @property
    def writable(self) -> bool:
        """Whether :meth:`send` may be called now."""

    def send(self, packets: list[Packet]) -> None:
        """Write packets to the client (a transport that compresses leaves
        :class:`txrealtime.engineio.packets.UncompressedPacket` plain)."""

    def close(self) -> None:
        """Close the connection; must not call back into the session."""


class SessionHost(Protocol[S]):
    """What a session (of type ``S``) needs from the manager that owns it."""

    @property
    def options(self) -> EngineIOOptions:
        """The settings every session follows (heartbeats, limits, buffers)."""

    @property
    def reactor(self) -> Clock:
        """The clock the session's timers run on."""

    stats: EngineStats
    """Running totals the session adds to (packets, bytes, upgrades, closes)."""
    tracing: bool
    """Whether anyone wants packet events (:meth:`trace`): read once per packet, so a plain attribute."""
    message_subscribers: int
    """How many subscribers want :class:`txrealtime.engineio.MessageReceived` events (none: none is built)."""

    def now(self) -> float:
        """Seconds on :attr:`reactor`'s clock."""

    def publish(self, event: SessionEvent) -> None:
        """Hand ``event`` to the manager's subscribers."""

    def trace(self, event: PacketEvent) -> None:
        """Hand a packet event to those who asked for them (only called while :attr:`tracing`)."""

    def released(self, session: S) -> None:
        """``session`` closed: it no longer counts against its client's address."""

    def forget(self, session: S) -> None:
        """``session`` is over for good: drop it and anything kept for it."""

    def linger(self, session: S) -> None:
        """``session`` closed with a CLOSE packet its polling client has yet to collect: keep it until it
        does, or until the heartbeat timeout."""

    def response_headers(
        self, request: Handshake | Callable[[], Handshake], sid: str, initial: bool = False
    ) -> list[tuple[str, str]]:
        """The extra headers of a response to ``request`` (the ``headers`` and ``initial_headers`` hooks)."""
