"""``twistd txrealtime --admin ...``: checking the admin options and starting the instrumentation."""

from __future__ import annotations

import os
from typing import Any

from twisted.application import service
from twisted.logger import Logger
from twisted.python import usage

from .._logging import gate
from ..socketio import Server
from .auth import BasicAuth
from .instrument import Instrumentation, instrument

__all__ = ["AdminService", "check_options", "start"]

log = Logger(__name__, observer=gate)

UI_PATH = "/admin-ui/"
"""Where ``--admin-ui-static`` serves the UI's files."""


def check_options(options: Any) -> None:
    """Check the ``--admin*`` options (``twisted.python.usage.UsageError`` if bad); parse ``--admin``."""
    credentials, no_auth = options["admin"], options["admin-no-auth"]
    if credentials is not None and no_auth:
        raise usage.UsageError("--admin and --admin-no-auth exclude each other")
    enabled = credentials is not None or no_auth
    if options["admin-mode"] not in ("development", "production"):
        raise usage.UsageError("--admin-mode must be development or production")
    if not enabled and (options["admin-read-only"] or options["admin-server-id"] is not None):
        raise usage.UsageError("--admin-read-only and --admin-server-id need --admin USER:PASSWORD or --admin-no-auth")
    if enabled and options["engineio"]:
        raise usage.UsageError("the admin UI needs Socket.IO (drop --engineio)")
    if not options["admin-namespace"].startswith("/"):
        raise usage.UsageError("--admin-namespace must start with /")
    ui = options["admin-ui-static"]
    if ui is not None and not os.path.isfile(os.path.join(ui, "index.html")):
        raise usage.UsageError(f"--admin-ui-static: no index.html in {ui} (give @socket.io/admin-ui's ui/dist)")
    options["admin-auth"] = None
    if credentials is not None:
        try:
            options["admin-auth"] = BasicAuth.parse(credentials)
        except (ValueError, ImportError) as e:
            raise usage.UsageError(f"--admin: {e}") from None


class AdminService(service.Service):
    """Stops the instrumentation (its ``server_stats`` timer) with the server."""

    def __init__(self, instrumentation: Instrumentation) -> None:
        self.instrumentation = instrumentation

    def stopService(self) -> None:
        self.instrumentation.close()
        service.Service.stopService(self)


def start(options: Any, server: Server) -> AdminService | None:
    """Instrument ``server`` as the ``--admin*`` options say; ``None`` if they do not ask for it."""
    auth: BasicAuth | None = options["admin-auth"]
    if auth is None and not options["admin-no-auth"]:
        return None
    if auth is not None:
        log.info("Admin UI on namespace {namespace} for user {user} ({how}), {mode} mode{ro}",
                 namespace=options["admin-namespace"], user=auth.username,
                 how="bcrypt hash" if auth.hashed else "plain password", mode=options["admin-mode"],
                 ro=", read-only" if options["admin-read-only"] else "")
        if not auth.hashed:
            log.warn("Admin UI: the plain password given to --admin shows in the process list; give a bcrypt "
                     "hash instead (see docs/operations.md)")
    instrumentation = instrument(
        server,
        auth=auth if auth is not None else False,
        mode=options["admin-mode"],
        read_only=bool(options["admin-read-only"]),
        namespace=options["admin-namespace"],
        server_id=options["admin-server-id"],
    )
    return AdminService(instrumentation)
