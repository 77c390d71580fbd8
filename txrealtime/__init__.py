"""txrealtime: Socket.IO v4 for Twisted."""

__version__ = "0.1.0"

from ._logging import set_log_level

__all__ = ["__version__", "set_log_level"]
