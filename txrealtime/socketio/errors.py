"""Exceptions and the disconnect reasons of the Socket.IO layer."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["AckTimeout", "ConnectionRefused", "Disconnected", "DisconnectReason"]


class DisconnectReason(StrEnum):
    """Why a socket left its namespace. Values are Socket.IO's reason strings."""

    SERVER_NAMESPACE_DISCONNECT = "server namespace disconnect"
    """The server called ``socket.disconnect()``."""
    CLIENT_NAMESPACE_DISCONNECT = "client namespace disconnect"
    """The client called ``socket.disconnect()``."""
    SERVER_SHUTTING_DOWN = "server shutting down"
    PING_TIMEOUT = "ping timeout"
    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"
    PARSE_ERROR = "parse error"
    """The client sent a packet that breaks the protocol."""
    FORCED_CLOSE = "forced close"
    """The server closed the underlying connection."""
    FORCED_SERVER_CLOSE = "forced server close"
    """Another socket of the same connection called ``disconnect(close=True)``."""


class ConnectionRefused(Exception):
    """Raise in a middleware to refuse a connection; the client gets ``connect_error``.

    ``message`` and ``data`` reach the client as the error's ``message`` and ``data``.
    """

    def __init__(self, message: str = "Connection refused", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class AckTimeout(TimeoutError):
    """Acknowledgements did not arrive in time; ``responses`` holds those that did."""

    def __init__(self, responses: list[Any] | None = None) -> None:
        super().__init__("operation has timed out")
        self.responses = responses if responses is not None else []


class Disconnected(ConnectionError):
    """The socket disconnected before the client acknowledged."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"socket disconnected: {reason}")
        self.reason = reason
