"""Registers ``twistd txrealtime``."""

from twisted.application.service import ServiceMaker

txrealtime = ServiceMaker(
    "txrealtime",
    "txrealtime.service",
    "Socket.IO / Engine.IO realtime server with optional static files",
    "txrealtime",
)
