"""Socket.IO v4 client for Twisted (treq long-polling, Autobahn WebSocket)."""

from ..protocol.errors import AckTimeout
from .engineio import EngineError, EngineIOClient, EngineListener
from .events import (
    ClientEvent,
    Connected,
    ConnectError,
    Disconnected,
    NotConnected,
    ReconnectAttempt,
    Reconnected,
    ReconnectFailed,
    Upgraded,
)
from .manager import Engine, Manager, connect
from .socket import ClientSocket
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
