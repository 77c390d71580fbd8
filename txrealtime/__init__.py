"""txrealtime: Socket.IO v4 for Twisted."""

__version__ = "0.1.0"
