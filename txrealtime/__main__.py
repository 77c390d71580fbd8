"""``python -m txrealtime [options]``: the server ``twistd -n txrealtime [options]`` runs, for those new to twistd.

Same options (``python -m txrealtime --help``), same service, run by twistd's
own runner in the foreground: it logs to stdout, writes no pid file, and stops
cleanly on Ctrl-C or SIGTERM. It needs no plugin lookup, so it works whether or
not ``twistd`` can see ``twisted/plugins/txrealtime_plugin.py``.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.application.service import IServiceMaker, MultiService
from twisted.plugin import IPlugin
from twisted.python import usage
from twisted.python.runtime import platformType
from twisted.scripts.twistd import ServerOptions, runApp  # type: ignore[attr-defined]
from zope.interface import implementer  # type: ignore[import-untyped]

from . import service
from .command import CommandLine, usage_line

__all__ = ["main", "run"]

PROGRAM = "python -m txrealtime"


class _Options(CommandLine):
    program = PROGRAM

    def getSynopsis(self) -> str:
        return f"Usage: {PROGRAM} [options]"


@implementer(IPlugin, IServiceMaker)
class _ServiceMaker:
    tapname = "txrealtime"
    description = "Socket.IO / Engine.IO realtime server with optional static files"

    def __init__(self, options: type[CommandLine]) -> None:
        self.options = options

    def makeService(self, options: service.Options) -> MultiService:
        return service.make_service(options)


class _ServerOptions(ServerOptions):
    """twistd's options with txrealtime as the only command, without looking for plugins."""

    maker: _ServiceMaker

    def _getPlugins(self, interface: Any, package: Any = None) -> list[Any]:
        return [self.maker]


def run(options: type[CommandLine], args: list[str]) -> None:
    """Run ``twistd -n --pidfile= txrealtime`` with ``args`` parsed by ``options``."""
    foreground = [] if platformType == "win32" else ["--nodaemon", "--pidfile="]
    config = _ServerOptions()  # type: ignore[no-untyped-call]
    config.maker = _ServiceMaker(options)
    try:
        config.parseOptions([*foreground, "txrealtime", *args])  # type: ignore[no-untyped-call]
    except usage.UsageError as e:
        sys.exit(usage_line(options.program, e))
    runApp(config)


def main(argv: list[str] | None = None) -> None:
    """Run ``twistd -n --pidfile= txrealtime`` with ``argv`` (default: the command line) as txrealtime's options."""
    run(_Options, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
