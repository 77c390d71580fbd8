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

__all__ = ["PASSWORD_VARIABLE", "AdminService", "check_options", "read_password_file", "start"]

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
    options["admin-password-from"] = None
    password_file = options["admin-password-file"]
    if password_file is not None and credentials is None:
        raise usage.UsageError("--admin-password-file needs --admin USER")
    if credentials is None:
        return
    try:
        if ":" in credentials:
            if password_file is not None:
                raise usage.UsageError("--admin USER:PASSWORD and --admin-password-file exclude each other")
            options["admin-auth"] = BasicAuth.parse(credentials)
            options["admin-password-from"] = "the command line"
        elif password_file is not None:
            options["admin-auth"] = BasicAuth(credentials, read_password_file(password_file))
            options["admin-password-from"] = password_file
        elif os.environ.get(PASSWORD_VARIABLE):
            options["admin-auth"] = BasicAuth(credentials, os.environ[PASSWORD_VARIABLE])
            options["admin-password-from"] = PASSWORD_VARIABLE
        else:
            raise usage.UsageError(f"--admin {credentials}: no password: give --admin-password-file FILE, set "
                                   f"{PASSWORD_VARIABLE}, or (shown in the process list) --admin USER:PASSWORD")
    except (ValueError, ImportError) as e:
        raise usage.UsageError(f"--admin: {e}") from None


PASSWORD_VARIABLE = "TXREALTIME_ADMIN_PASSWORD"
"""The environment variable ``--admin USER`` takes the password (or its bcrypt hash) from."""


def read_password_file(path: str) -> str:
    """The password (or bcrypt hash) in the file ``path``: its first line, without the line break.

    ``ValueError`` if it cannot be read or the line is empty.
    """
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline(4096)
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the password file {path}: {e.strerror if isinstance(e, OSError) else e}") \
            from None
    password = line.rstrip("\r\n")
    if not password:
        raise ValueError(f"the password file {path} starts with an empty line")
    return password


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
        log.info("Admin UI on namespace {namespace} for user {user} ({how} from {source}), {mode} mode{ro}",
                 namespace=options["admin-namespace"], user=auth.username, source=options["admin-password-from"],
                 how="bcrypt hash" if auth.hashed else "plain password", mode=options["admin-mode"],
                 ro=", read-only" if options["admin-read-only"] else "")
        source = options["admin-password-from"]
        if source == "the command line" and not auth.hashed:
            log.warn("Admin UI: the plain password given to --admin USER:PASSWORD shows in the process list; give "
                     "it with --admin-password-file or {variable} instead (see docs/operations.md)",
                     variable=PASSWORD_VARIABLE)
        elif source not in (None, "the command line", PASSWORD_VARIABLE) and os.stat(source).st_mode & 0o077:
            log.warn("Admin UI: the password file {path} can be read by other users (chmod 600 it)", path=source)
    instrumentation = instrument(
        server,
        auth=auth if auth is not None else False,
        mode=options["admin-mode"],
        read_only=bool(options["admin-read-only"]),
        namespace=options["admin-namespace"],
        server_id=options["admin-server-id"],
    )
    return AdminService(instrumentation)
