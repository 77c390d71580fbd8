"""What ``twistd txrealtime`` loads (see ``twisted/plugins/txrealtime_plugin.py``): :mod:`txrealtime.service`'s
options, and :func:`txrealtime.service.make_service`, which builds the master of ``--workers`` too."""

from .service import Options
from .service import make_service as makeService

__all__ = ["Options", "makeService"]
