"""Socket.IO protocol v5 server on the Engine.IO layer, with Node ``socket.io`` v4's API."""

from .._lazy import deprecated_aliases
from ..protocol.acks import NO_ACK
from ..protocol.parser import Parser
from .adapter import Adapter, BroadcastFlags, BroadcastOptions, ClusterAnswer
from .connection import Connection
from .errors import AckTimeout, ConnectionRefused, Disconnected, DisconnectReason, EventRefused
from .namespace import Namespace, ParentNamespace
from .operator import BroadcastOperator
from .recovery import StateRecovery
from .server import Server
from .socket import Socket, SocketHandshake

__all__ = [
    "NO_ACK",
    "AckTimeout",
    "Adapter",
    "BroadcastFlags",
    "BroadcastOperator",
    "BroadcastOptions",
    "ClusterAnswer",
    "Connection",
    "ConnectionRefused",
    "Disconnected",
    "DisconnectReason",
    "EventRefused",
    "Namespace",
    "ParentNamespace",
    "Parser",
    "Server",
    "Socket",
    "SocketHandshake",
    "StateRecovery",
]

__getattr__ = deprecated_aliases(__name__, {"Client": "Connection"})
"""Old names, still importable with a ``DeprecationWarning``: ``Client`` is :class:`Connection`."""
