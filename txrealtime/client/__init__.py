"""Socket.IO v4 client for Twisted (treq long-polling, Autobahn WebSocket)."""

from ..socketio.errors import AckTimeout
from .engineio import EngineError, EngineIOClient, EngineListener
from .socketio import (
    ClientEvent,
    ClientSocket,
    Connected,
    ConnectError,
    Disconnected,
    Engine,
    Manager,
    NotConnected,
    ReconnectAttempt,
    Reconnected,
    ReconnectFailed,
    Upgraded,
    connect,
)
from .tls import TLSOptions

__all__ = [
    "AckTimeout",
    "ClientEvent",
    "ClientSocket",
    "ConnectError",
    "Connected",
    "Disconnected",
    "Engine",
    "EngineError",
    "EngineIOClient",
    "EngineListener",
    "Manager",
    "NotConnected",
    "ReconnectAttempt",
    "ReconnectFailed",
    "Reconnected",
    "TLSOptions",
    "Upgraded",
    "connect",
]
