"""What ``twistd txrealtime`` loads (see ``twisted/plugins/txrealtime_plugin.py``): the options as a command line
parses them (:class:`txrealtime.command.CommandLine`), and :func:`txrealtime.service.make_service`, which builds the
master of ``--workers`` too."""

from .command import CommandLine as Options
from .service import make_service as makeService

__all__ = ["Options", "makeService"]
