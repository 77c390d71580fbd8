"""Socket.IO protocol v5 server on the Engine.IO layer, with Node ``socket.io`` v4's API."""

from ..protocol.acks import NO_ACK
from ..protocol.parser import Parser
from .adapter import Adapter, BroadcastFlags, BroadcastOptions, ClusterAnswer
from .connection import Client
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
    "Client",
    "ClusterAnswer",
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
