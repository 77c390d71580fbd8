"""Engine.IO protocol v4 server: codec, session manager and both transports."""

from .events import (
    CloseReason,
    Handshake,
    MessageReceived,
    SessionClosed,
    SessionEvent,
    SessionOpened,
    SessionUpgraded,
)
from .manager import Session, SessionError, SessionManager, Transport
from .options import EngineIOOptions
from .resource import EngineIOResource

__all__ = [
    "CloseReason",
    "EngineIOOptions",
    "EngineIOResource",
    "Handshake",
    "MessageReceived",
    "Session",
    "SessionClosed",
    "SessionError",
    "SessionEvent",
    "SessionManager",
    "SessionOpened",
    "SessionUpgraded",
    "Transport",
]
