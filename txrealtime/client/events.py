"""What the client reports: connection errors and the typed events of a :class:`txrealtime.client.Manager`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ClientEvent",
    "ConnectError",
    "Connected",
    "Disconnected",
    "NotConnected",
    "ReconnectAttempt",
    "ReconnectFailed",
    "Reconnected",
    "Upgraded",
]


class ConnectError(ConnectionError):
    """Connecting failed: the server refused the namespace (``connect_error``, with the server's
    ``message`` and ``data``), or could not be reached (:class:`NotConnected`)."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class NotConnected(ConnectError):
    """The server could not be reached, or the socket disconnected before the server acknowledged."""


# -- typed events -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    namespace: str
    sid: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    namespace: str
    reason: str
    """Node's client reasons: ``io server disconnect``, ``io client disconnect``,
    ``ping timeout``, ``transport close``, ``transport error``, ``parse error``."""


@dataclass(frozen=True, slots=True)
class Upgraded:
    transport: str
    """The transport the connection moved to (``websocket``)."""


@dataclass(frozen=True, slots=True)
class ReconnectAttempt:
    attempt: int
    delay: float
    """Seconds waited before this attempt."""


@dataclass(frozen=True, slots=True)
class Reconnected:
    attempts: int


@dataclass(frozen=True, slots=True)
class ReconnectFailed:
    attempts: int


ClientEvent = Connected | Disconnected | Upgraded | ReconnectAttempt | Reconnected | ReconnectFailed
