"""Engine.IO server settings shared by the session manager and the transports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["EngineIOOptions", "TRANSPORTS"]

TRANSPORTS = ("polling", "websocket")


@dataclass(frozen=True)
class EngineIOOptions:
    """Settings of one Engine.IO endpoint; every field has Engine.IO's default."""

    ping_interval: float = 25.0
    """Seconds between the server's pings."""
    ping_timeout: float = 20.0
    """Seconds to wait for a pong before closing the session."""
    max_payload: int = 1_000_000
    """Largest polling POST body or WebSocket message accepted, in bytes."""
    upgrade_timeout: float = 10.0
    """Seconds a polling session may take to finish an upgrade to WebSocket."""
    transports: Sequence[str] = TRANSPORTS
    """Transports clients may use."""
    allow_upgrades: bool = True
    """Whether polling sessions may upgrade to WebSocket."""
    cors_allowed_origins: Sequence[str] | str | None = None
    """``None``: no CORS headers (same origin only); ``"*"``: reflect any
    origin; or a list of allowed origins."""
    cors_credentials: bool = True
    """Send ``Access-Control-Allow-Credentials: true`` with CORS responses."""

    def __post_init__(self) -> None:
        unknown = set(self.transports) - set(TRANSPORTS)
        if unknown or not self.transports:
            raise ValueError(f"transports must be a non-empty subset of {TRANSPORTS}")
        if self.ping_interval <= 0 or self.ping_timeout <= 0 or self.upgrade_timeout <= 0:
            raise ValueError("ping_interval, ping_timeout and upgrade_timeout must be > 0")
        if self.max_payload <= 0:
            raise ValueError("max_payload must be > 0")

    def upgrades_from(self, transport: str) -> list[str]:
        """The upgrades offered to a session that opened on ``transport``."""
        if transport == "polling" and self.allow_upgrades and "websocket" in self.transports:
            return ["websocket"]
        return []
