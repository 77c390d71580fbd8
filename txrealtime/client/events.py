"""What the client reports: connection errors and the typed events of a :class:`txrealtime.client.Manager`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ClientEvent",
    "ConnectError",
    "Connected",
    "Disconnected",
    "EngineError",
    "NotConnected",
    "ReconnectAttempt",
    "ReconnectFailed",
    "Reconnected",
    "Upgraded",
]


class EngineError(ConnectionError):
    """The Engine.IO connection could not be opened or broke."""


class ConnectError(ConnectionError):
    """Connecting failed: the server refused the namespace (``connect_error``, with the server's
    ``message`` and ``data``), or could not be reached (:class:`NotConnected`)."""

    def __init__(self, message: str, data: Any = None) -> None:
        """The error, saying what happened.

        :param message: What happened: the server's ``message``, or e.g. ``cannot connect to URL: ...``.
        :param data: What the server sent with a refusal, if anything (Node's ``err.data``).
        """
        super().__init__(message)
        self.message = message
        """What happened."""
        self.data = data
        """What the server sent with its refusal, if anything."""


class NotConnected(ConnectError):
    """The server could not be reached, or the socket disconnected before the server acknowledged."""


# -- typed events -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    """A socket joined its namespace."""
    namespace: str
    """The namespace."""
    sid: str
    """The socket's id, given by the server."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """A socket left its namespace."""
    namespace: str
    """The namespace."""
    reason: str
    """Node's client reasons: ``io server disconnect``, ``io client disconnect``,
    ``ping timeout``, ``transport close``, ``transport error``, ``parse error``."""


@dataclass(frozen=True, slots=True)
class Upgraded:
    """The connection moved from polling to WebSocket."""
    transport: str
    """The transport the connection moved to (``websocket``)."""


@dataclass(frozen=True, slots=True)
class ReconnectAttempt:
    """The manager tries to reconnect (Node's ``reconnect_attempt``)."""
    attempt: int
    """Which try this is, from 1."""
    delay: float
    """Seconds waited before this attempt."""


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The manager reconnected (Node's ``reconnect``)."""
    attempts: int
    """How many tries it took."""


@dataclass(frozen=True, slots=True)
class ReconnectFailed:
    """The manager gave up reconnecting (Node's ``reconnect_failed``)."""
    attempts: int
    """How many tries it made."""


ClientEvent = Connected | Disconnected | Upgraded | ReconnectAttempt | Reconnected | ReconnectFailed
