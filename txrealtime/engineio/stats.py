"""Running totals of one session manager: plain integers, read by whoever reports them.

Sessions and transports add to an :class:`EngineStats` as they work: one
integer addition per packet at most, a dictionary update per session opened,
upgraded or closed and per refused request. Nothing here formats or
publishes anything; :mod:`txrealtime.metrics` reads the totals when
Prometheus scrapes.
"""

from __future__ import annotations

from typing import TypeVar

from .events import CloseReason

__all__ = ["EngineStats", "count"]

K = TypeVar("K")


class EngineStats:
    """What a :class:`txrealtime.engineio.SessionManager` counted since it was created (``manager.stats``)."""

    __slots__ = (
        "buffer_high_water",
        "closed",
        "opened",
        "packets_received",
        "packets_sent",
        "polling_bytes_received",
        "polling_bytes_sent",
        "refused",
        "upgraded",
        "websocket_bytes_received",
        "websocket_bytes_sent",
    )

    def __init__(self) -> None:
        self.packets_received = 0
        """Engine.IO packets received from clients (messages, pongs, upgrade probes, closes...)."""
        self.packets_sent = 0
        """Engine.IO packets written to clients from the sessions' queues."""
        self.polling_bytes_received = 0
        """Bytes of HTTP long-polling request bodies (POSTs) read."""
        self.polling_bytes_sent = 0
        """Bytes of HTTP long-polling response bodies written."""
        self.websocket_bytes_received = 0
        """Bytes read from WebSocket connections (frames, and the handshake request)."""
        self.websocket_bytes_sent = 0
        """Bytes of WebSocket frames carrying packets written (control frames not counted)."""
        self.buffer_high_water = 0
        """The most message bytes ever queued for one client at once (compare with ``max_buffer``)."""
        self.opened: dict[str, int] = {}
        """Sessions opened, by the transport they opened on."""
        self.upgraded: dict[tuple[str, str], int] = {}
        """Upgrades completed, by (from, to) transport."""
        self.closed: dict[tuple[str, CloseReason], int] = {}
        """Sessions closed, by (transport at the time, reason)."""
        self.refused: dict[int, int] = {}
        """Requests refused before reaching a session, by Engine.IO error code (``SessionError.FORBIDDEN``...)."""


def count(table: dict[K, int], key: K) -> None:
    """Add one to ``table[key]`` (a rare event: a session opened, upgraded or closed, a request refused)."""
    table[key] = table.get(key, 0) + 1
