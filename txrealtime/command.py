"""The ``twistd txrealtime`` command line: its options and how they are checked.

:class:`Options` parses and checks every option in ``postOptions`` (so a bad
one stops twistd with one line), and :func:`check_endpoint` and
:func:`load_app` are the checks it shares with :mod:`txrealtime.service`,
which builds the service tree from the options.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.endpoints import serverFromString
from twisted.python import usage

from . import __version__
from ._logging import LEVELS
from .adapters.choices import ADAPTERS, SUBSCRIPTION_MODES
from .adapters.choices import DEFAULT as DEFAULT_ADAPTER
from .engineio import EngineIOOptions
from .engineio.options import CookieOptions
from .redis.url import RedisURL
from .socketio.parser import resolve as resolve_parser

__all__ = ["Options", "check_endpoint", "load_app"]

class Options(usage.Options):
    """Command-line options of ``twistd txrealtime``."""

    synopsis = "[options]"
    longdesc = (
        "Serve a Socket.IO endpoint (HTTP long-polling and WebSocket on one path) "
        "and, optionally, a static folder, on one or more endpoints."
    )
    optParameters = [
        ["static", "s", None, "Folder of static files to serve at /."],
        ["app", "a", None, "Application hook module:function, called with the Socket.IO Server."],
        ["path", "p", None, "URL path of the endpoint [default: /socket.io/, or /engine.io/ with --engineio]."],
        ["connect-timeout", None, 45.0, "Seconds a Socket.IO client has to join a namespace.", float],
        ["parser", None, "json", "Socket.IO packet format: json, or msgpack (socket.io-msgpack-parser's); "
         "clients must use the same."],
        ["redis", None, None, "Share broadcasts and rooms with other nodes through Redis, e.g. "
         "redis://127.0.0.1:6379/0 (any node of a Redis Cluster for --adapter redis-sharded)."],
        ["adapter", None, None, "How nodes share rooms and broadcasts, with --redis: "
         + "; ".join(f"{c.name}: {c.summary}" for c in ADAPTERS.values()) + f" [default: {DEFAULT_ADAPTER}]."],
        ["redis-key", None, "socket.io", "Channel prefix in Redis (the key or channelPrefix option of "
         "@socket.io/redis-adapter)."],
        ["redis-subscription-mode", None, "dynamic", "With --adapter redis-sharded: which rooms get a channel of their "
         "own, as Node's subscriptionMode: " + ", ".join(SUBSCRIPTION_MODES) + "."],
        ["ping-interval", None, 25.0, "Seconds between heartbeats.", float],
        ["ping-timeout", None, 20.0, "Seconds to wait for a heartbeat reply.", float],
        ["max-payload", None, 1_000_000, "Largest message or POST body, in bytes.", int],
        ["max-buffer", None, 4_000_000, "Outgoing bytes queued for a client that does not read before it is cut.", int],
        ["max-packets-per-second", None, None, "Close sessions sending more packets per second [default: no limit].",
         float],
        ["max-sessions-per-ip", None, None, "Refuse handshakes beyond this many sessions per address.", int],
        ["max-attachments", None, 100, "Most binary attachments in one Socket.IO packet.", int],
        ["attachment-timeout", None, 30.0, "Seconds a client has to send every attachment of a binary packet.",
         float],
        ["max-namespaces-per-client", None, 100, "Most namespaces one connection may be in at once.", int],
        ["state-recovery", None, None, "Connection state recovery: keep a disconnected socket's state and missed "
         "packets this many seconds [default: off].", float],
        ["log-level", None, "info", "Log txrealtime's events at this level and above: debug, info, warn, error."],
        ["cookie", None, None, "Set a cookie with this name holding the session id (for sticky load balancers)."],
        ["shutdown-grace", None, 5.0, "Seconds to let clients receive their close on shutdown.", float],
        ["gc-threshold", None, 50_000, "Object allocations between passes of Python's garbage collector over its "
         "youngest objects (Python's default: 700), so that fewer passes reach the many objects of many open "
         "sessions; 0 keeps Python's setting.", int],
        ["header-timeout", None, 10.0, "Seconds a client has to send a request's headers (else 408 and close).",
         float],
        ["max-connections-per-ip", None, None, "Close new TCP connections beyond this many per address "
         "[default: no limit].", int],
        ["metrics-listen", None, None, "Serve /metrics and /healthz on this endpoint of their own instead, e.g. "
         "tcp:9100:interface=127.0.0.1 (implies --metrics)."],
        ["admin", None, None, "Serve the official admin UI's protocol (@socket.io/admin-ui) to USER:PASSWORD; "
         "give the password as a bcrypt hash ($2b$...) so that it does not show in the process list."],
        ["admin-mode", None, "development", "Admin UI mode: development (sockets, rooms, events) or production "
         "(server stats only)."],
        ["admin-namespace", None, "/admin", "Namespace of the admin UI's protocol."],
        ["admin-server-id", None, None, "How the admin UI names this node [default: hostname#pid]."],
        ["admin-ui-static", None, None, "Folder of the admin UI's files (ui/dist of the @socket.io/admin-ui npm "
         "package) to serve at /admin-ui/."],
        ["workers", None, "1", "Worker processes serving the endpoints, or auto for one per CPU: the first process "
         "routes each connection to the worker owning its session and relays broadcasts between them."],
        ["worker-channel", None, None, "(internal) FD:INDEX: run as worker INDEX of a --workers master."],
    ]
    optFlags = [
        ["no-upgrades", None, "Do not offer the upgrade from polling to WebSocket."],
        ["allow-eio3", None, "Also serve Engine.IO v3 clients (socket.io-client 2.x), as Node's allowEIO3."],
        ["per-message-deflate", None, "Compress WebSocket messages of 1024 bytes or more (permessage-deflate)."],
        ["no-http-compression", None, "Do not gzip/deflate polling responses of 1024 bytes or more."],
        ["engineio", None, "Serve bare Engine.IO: the app hook gets the SessionManager, not a Socket.IO Server."],
        ["no-access-log", None, "Do not log each HTTP request."],
        ["cleanup-empty-child-namespaces", None, "Remove a dynamic namespace's child once its last socket left."],
        ["no-serve-client", None, "Do not serve the browser client at {path}socket.io.js (served by default)."],
        ["metrics", None, "Serve Prometheus metrics at /metrics and a health check at /healthz "
         "(needs txrealtime[metrics])."],
        ["admin-no-auth", None, "Serve the admin UI's protocol WITHOUT authentication: for local use only."],
        ["admin-read-only", None, "Refuse the admin UI's commands (emit, join, leave, disconnect)."],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["listen"] = []
        self["cors-origin"] = []
        self["origin"] = []

    def opt_listen(self, endpoint: str) -> None:
        """Endpoint string to listen on, e.g. tcp:8080:interface=127.0.0.1 or ssl:8443:privateKey=key.pem
        (repeatable) [default: tcp:8080, on every interface]."""
        self["listen"].append(endpoint)

    opt_l = opt_listen

    def opt_origin(self, origin: str) -> None:
        """Only accept browsers from this origin, e.g. https://chat.example.com (repeatable)."""
        self["origin"].append(origin)

    def opt_cors_origin(self, origin: str) -> None:
        """Origin allowed to make cross-origin requests, or * for any (repeatable)."""
        self["cors-origin"].append(origin)

    def opt_version(self) -> None:
        """Display txrealtime's version (and Twisted's) and exit."""
        from twisted import copyright

        print(f"txrealtime {__version__} (Twisted {copyright.version})")
        sys.exit(0)

    def configure(self, **changes: Any) -> EngineIOOptions:
        """Change Engine.IO options that have no flag, e.g. ``allow_request``; return the options now in force.

        For an ``--app`` hook that takes a second parameter, these options::

            def setup(server, options):
                options.configure(allow_request=check_token)

        ``dataclasses.replace`` applies the changes to the options the command
        line built, and :class:`txrealtime.engineio.EngineIOOptions` checks
        them: an unknown name or a bad value raises
        ``twisted.python.usage.UsageError``, which ``twistd`` reports in one
        line. They are in force once the hook returns, before anything listens.
        """
        try:
            self["engineio-options"] = dataclasses.replace(self["engineio-options"], **changes)
        except (TypeError, ValueError) as e:
            raise usage.UsageError(f"configure({', '.join(changes)}): {e}") from None
        return cast(EngineIOOptions, self["engineio-options"])

    def postOptions(self) -> None:
        if not self["listen"]:
            self["listen"] = ["tcp:8080"]
        for description in self["listen"]:
            check_endpoint(description)
        if self["static"] is not None and not os.path.isdir(self["static"]):
            raise usage.UsageError(f"--static: no such folder: {self['static']}")
        if self["path"] is None:
            self["path"] = "/engine.io/" if self["engineio"] else "/socket.io/"
        if not self["path"].startswith("/"):
            raise usage.UsageError("--path must start with /")
        if self["header-timeout"] <= 0:
            raise usage.UsageError("--header-timeout must be > 0")
        if self["gc-threshold"] < 0:
            raise usage.UsageError("--gc-threshold must be >= 0 (0: Python's own)")
        if self["max-connections-per-ip"] is not None and self["max-connections-per-ip"] <= 0:
            raise usage.UsageError("--max-connections-per-ip must be > 0")
        if self["log-level"] not in LEVELS:
            raise usage.UsageError(f"--log-level must be one of {', '.join(LEVELS)}")
        for name in ("attachment-timeout", "max-namespaces-per-client", "state-recovery"):
            if self[name] is not None and self[name] <= 0:
                raise usage.UsageError(f"--{name} must be > 0")
        self._check_workers()
        origins = self["cors-origin"]
        self["engineio-options"] = EngineIOOptions(
            ping_interval=self["ping-interval"],
            ping_timeout=self["ping-timeout"],
            max_payload=self["max-payload"],
            allow_upgrades=not self["no-upgrades"],
            allow_eio3=bool(self["allow-eio3"]),
            max_buffer=max(self["max-buffer"], self["max-payload"]),
            max_packets_per_second=self["max-packets-per-second"],
            max_sessions_per_ip=self["max-sessions-per-ip"],
            allowed_origins=self["origin"] or None,
            cookie=CookieOptions(name=self["cookie"]) if self["cookie"] else None,
            cors_allowed_origins="*" if "*" in origins else (origins or None),
            per_message_deflate=bool(self["per-message-deflate"]),
            http_compression=not self["no-http-compression"],
        )
        self._check_adapter()
        if self["parser"] != "json":
            if self["engineio"]:
                raise usage.UsageError("--parser needs Socket.IO (drop --engineio)")
            try:
                resolve_parser(self["parser"])
            except (ValueError, ImportError) as e:
                raise usage.UsageError(f"--parser: {e}") from None
        if self["metrics-listen"] is not None:
            self["metrics"] = True
            check_endpoint(self["metrics-listen"])
        if self["metrics"]:
            try:
                import prometheus_client  # noqa: F401
            except ImportError as e:
                raise usage.UsageError(f"--metrics needs txrealtime[metrics] installed ({e})") from None
        from .admin.service import check_options

        check_options(self)
        if self["app"] is not None:
            self["app-hook"] = load_app(self["app"])


    def _check_adapter(self) -> None:
        """``--adapter`` (one of :data:`txrealtime.adapters.choices.ADAPTERS`) goes with ``--redis``, which alone
        means the classic adapter."""
        name = self["adapter"]
        if name is not None and name not in ADAPTERS:
            raise usage.UsageError(f"--adapter must be one of {', '.join(ADAPTERS)}, not {name!r}")
        if self["redis-subscription-mode"] not in SUBSCRIPTION_MODES:
            raise usage.UsageError(f"--redis-subscription-mode must be one of {', '.join(SUBSCRIPTION_MODES)}")
        if self["redis"] is None:
            if name is not None:
                raise usage.UsageError(f"--adapter {name} needs --redis URL")
            return
        self["adapter"] = name = name or DEFAULT_ADAPTER
        if self["engineio"]:
            raise usage.UsageError("--redis needs Socket.IO (drop --engineio)")
        try:
            import msgpack  # noqa: F401
        except ImportError as e:
            raise usage.UsageError(f"--redis needs txrealtime[redis] installed ({e})") from None
        try:
            url = RedisURL.parse(self["redis"])
        except ValueError as e:
            raise usage.UsageError(f"--redis: {e}") from None
        problem = ADAPTERS[name].check(url)
        if problem is not None:
            raise usage.UsageError(f"--redis with --adapter {name}: {problem}")

    def _check_workers(self) -> None:
        workers = self["workers"]
        count = (os.cpu_count() or 1) if workers == "auto" else int(workers) if workers.isdigit() else 0
        if count < 1:
            raise usage.UsageError(f"--workers must be a number >= 1 or auto, not {workers!r}")
        self["workers"] = count
        if self["worker-channel"] is not None:
            from .cluster.worker import parse_channel

            try:
                parse_channel(self["worker-channel"])
            except ValueError as e:
                raise usage.UsageError(f"--worker-channel: {e}") from None
            self["workers"] = 1
        elif count > 1:
            if self["metrics"] or self["metrics-listen"] is not None:
                raise usage.UsageError(
                    f"--workers {count} and --metrics do not go together yet: each worker keeps its own counters, "
                    "so a scrape would see one worker only (run --workers 1 nodes to scrape them)")
            for description in self["listen"]:
                if description.split(":", 1)[0] not in ("tcp", "tcp6", "unix"):
                    raise usage.UsageError(
                        f"--workers {count} needs plain tcp: or unix: endpoints, not {description}: the first "
                        "process reads each request line to route it, so terminate TLS in front of it "
                        "(or use --workers 1)")

    def worker_args(self) -> list[str]:
        """The options in force as a command line, ``--workers`` left out: what each worker process runs."""
        args: list[str] = []
        parameters = cast(list[list[Any]], self.optParameters)
        for name in (str(row[0]) for row in parameters):
            if name not in ("workers", "worker-channel") and self[name] is not None:
                args.append(f"--{name}={self[name]}")
        flags = cast(list[list[Any]], self.optFlags)
        args += [f"--{row[0]}" for row in flags if self[str(row[0])]]
        for name in ("listen", "origin", "cors-origin"):
            args += [f"--{name}={value}" for value in self[name]]
        return args


def check_endpoint(description: str) -> None:
    """Parse a ``--listen`` endpoint string as ``twistd`` will; ``twisted.python.usage.UsageError`` if bad.

    Nothing listens yet, but ``ssl:`` endpoints read their certificate and key.
    """
    from twisted.internet import reactor

    try:
        serverFromString(reactor, description)
    except Exception as e:
        raise usage.UsageError(
            f"--listen {description}: {e or type(e).__name__} (e.g. tcp:8080 or ssl:8443:privateKey=key.pem)"
        ) from None


def load_app(spec: str) -> Callable[..., object]:
    """Import ``module:function`` (the working directory is importable)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise usage.UsageError(f"--app must be module:function, not {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise usage.UsageError(f"--app: cannot import {module_name}: {e}") from e
    hook = getattr(module, attr, None)
    if not callable(hook):
        raise usage.UsageError(f"--app: {module_name} has no function {attr}")
    return hook  # type: ignore[no-any-return]
