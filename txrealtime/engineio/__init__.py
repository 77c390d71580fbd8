"""Engine.IO protocol v4 server: codec, session manager and both transports."""

from .events import (
    CloseReason,
    Drained,
    Handshake,
    MessageReceived,
    PacketCreated,
    PacketEvent,
    PacketReceived,
    RequestRefused,
    SessionClosed,
    SessionEvent,
    SessionOpened,
    SessionUpgraded,
)
from .manager import Session, SessionError, SessionManager, Transport
from .options import CookieOptions, EngineIOOptions, HttpCompression, PerMessageDeflate
from .resource import EngineIOResource

__all__ = [
    "CloseReason",
    "CookieOptions",
    "Drained",
    "EngineIOOptions",
    "EngineIOResource",
    "Handshake",
    "HttpCompression",
    "MessageReceived",
    "PacketCreated",
    "PacketEvent",
    "PacketReceived",
    "PerMessageDeflate",
    "RequestRefused",
    "Session",
    "SessionClosed",
    "SessionError",
    "SessionEvent",
    "SessionManager",
    "SessionOpened",
    "SessionUpgraded",
    "Transport",
]
