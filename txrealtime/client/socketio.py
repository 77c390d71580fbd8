"""The Socket.IO client's names in one place (kept for ``from txrealtime.client.socketio import ...``)."""

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
from .manager import Engine, EngineFactory, Manager, connect
from .socket import ClientSocket

__all__ = [
    "ClientEvent",
    "ClientSocket",
    "ConnectError",
    "Connected",
    "Disconnected",
    "Engine",
    "EngineFactory",
    "Manager",
    "NotConnected",
    "ReconnectAttempt",
    "ReconnectFailed",
    "Reconnected",
    "Upgraded",
    "connect",
]
