"""Registers ``twistd txrealtime``."""

from twisted.application.service import ServiceMaker

txrealtime = ServiceMaker(
    "txrealtime",
    "txrealtime._twistd",
    "Socket.IO / Engine.IO realtime server with optional static files",
    "txrealtime",
)
