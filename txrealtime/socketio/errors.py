"""Exceptions and the disconnect reasons of the Socket.IO layer."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from ..protocol.errors import AckTimeout

__all__ = ["AckTimeout", "ConnectionRefused", "Disconnected", "DisconnectReason", "EventRefused", "RecoveryUnavailable"]


class DisconnectReason(StrEnum):
    """Why a socket left its namespace. Values are Socket.IO's reason strings."""

    SERVER_NAMESPACE_DISCONNECT = "server namespace disconnect"
    """The server called ``socket.disconnect()``."""
    CLIENT_NAMESPACE_DISCONNECT = "client namespace disconnect"
    """The client called ``socket.disconnect()``."""
    SERVER_SHUTTING_DOWN = "server shutting down"
    """The server is stopping (``io.close()``)."""
    PING_TIMEOUT = "ping timeout"
    """The client did not answer a heartbeat in time."""
    TRANSPORT_CLOSE = "transport close"
    """The connection closed (the client went away)."""
    TRANSPORT_ERROR = "transport error"
    """The connection failed."""
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
        """Refuse with ``message`` (and ``data``) for the client.

        :param message: The error's message, as the client's ``connect_error`` gets it.
        :param data: More for the client (Node's ``err.data``).
        """
        super().__init__(message)
        self.message = message
        """The error's message, for the client."""
        self.data = data
        """More for the client (Node's ``err.data``)."""


class Disconnected(ConnectionError):
    """The socket disconnected before the client acknowledged."""

    def __init__(self, reason: str) -> None:
        """The error for a socket that left for ``reason``.

        :param reason: Why the socket disconnected (a :class:`DisconnectReason` value).
        """
        super().__init__(f"socket disconnected: {reason}")
        self.reason = reason
        """Why the socket disconnected."""


class EventRefused(Exception):
    """Raise in a socket's event middleware (``socket.use``) to refuse an event before its handlers run.

    The client's acknowledgement, if it asked for one, is answered with ``answer``; an event
    without acknowledgement is dropped. The connection stays open either way. The message goes
    to the socket's ``error`` handlers (or the log): keep the client's payload out of it.
    """

    def __init__(self, message: str, answer: Any = None) -> None:
        """Refuse an event.

        :param message: Why, for the ``error`` handlers and the log (no client payload in it).
        :param answer: The acknowledgement sent when the client asked for one (one value; a tuple
            for several; ``None`` answers with no value).
        """
        super().__init__(message)
        self.answer = answer
        """The acknowledgement sent when the client asked for one."""


class RecoveryUnavailable(Exception):
    """An adapter cannot tell now whether a session can be restored, and another try may (this node is shutting
    down, or has not started reading what other nodes sent): :meth:`Adapter.restore_session
    <txrealtime.socketio.adapter.Adapter.restore_session>` fails with it and keeps the session.

    The namespace then closes the client's connection instead of giving it a new session, so that the client
    reconnects (on another node, or here later) and recovers. Any other failure gives a new session, as in Node.
    """
