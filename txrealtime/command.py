"""The ``twistd txrealtime`` command line: its options and how they are checked.

:class:`Options` parses and checks every option in ``postOptions``; run by
``twistd`` (or ``python -m txrealtime``) as :class:`CommandLine`, a bad one
ends the process with one line on stderr that names it and points at ``--help``.
:func:`check_endpoint` and :func:`load_app` are the checks it shares with
:mod:`txrealtime.service`, which builds the service tree from the options.
:class:`WorkerOptions` adds what a ``--workers`` master tells each worker process.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
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
from .engineio.options import CORS_METHODS, CookieOptions
from .protocol.parser import resolve as resolve_parser
from .redis.url import RedisURL

__all__ = ["DEFAULT_LISTEN", "CommandLine", "Options", "WorkerOptions", "check_endpoint", "load_app", "usage_line"]

DEFAULT_LISTEN = "tcp:8080"
"""The endpoint served when no ``--listen`` is given: port 8080 on every network interface."""

TWISTD_PIDFILE = "twistd.pid"
"""twistd's default ``--pidfile``, which ``twistd -n txrealtime`` does not write (see :meth:`Options.postOptions`)."""


def usage_line(program: str, error: usage.UsageError) -> str:
    """The one line a command-line mistake ends with: what is wrong, and where the options are described."""
    return f"{program}: {error}; see {program} --help"


def _typed(name: str, kind: Callable[[str], object]) -> Callable[[str], object]:
    """``kind`` (``int``, ``float``) as an option's type, refusing a bad value with a message naming the option."""
    what = "a whole number" if kind is int else "a number"

    def coerce(value: str) -> object:
        try:
            return kind(value)
        except ValueError:
            raise usage.UsageError(f"--{name} takes {what}, not {value!r}") from None

    return coerce


def _named(rows: list[list[Any]]) -> list[list[Any]]:
    """``optParameters`` rows whose type (the fifth item) names its option when a value does not convert."""
    return [[*row[:4], _typed(row[0], row[4])] if len(row) > 4 else row for row in rows]


class Options(usage.Options):
    """Command-line options of ``twistd txrealtime``: a mistake raises ``twisted.python.usage.UsageError``.

    ``twistd`` and ``python -m txrealtime`` parse them with :class:`CommandLine`.
    """

    synopsis = "[options]"
    """What ``--help`` shows after the command's name."""
    longdesc = (
        "Serve a Socket.IO endpoint (HTTP long-polling and WebSocket on one path) "
        "and, optionally, a static folder, on one or more endpoints. "
        "Under twistd -n it writes no pid file unless --pidfile names one other than twistd.pid."
    )
    """What ``--help`` says the command does."""
    optParameters = _named([
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
        ["redis-stream-name", None, "socket.io", "With --adapter redis-streams: the stream every node shares (Node's "
         "streamName)."],
        ["redis-max-len", None, 10_000, "With --adapter redis-streams: about how many entries the stream keeps "
         "(XADD MAXLEN ~, Node's maxLen): what a node cut off from Redis or a recovering client can catch up on.",
         int],
        ["forward-timeout", None, 1.0, "Seconds to wait for the other nodes to say which one holds a session, or "
         "to answer an upgrade forwarded to it (Node's responseTimeout).", float],
        ["ping-interval", None, 25.0, "Seconds between heartbeats.", float],
        ["ping-timeout", None, 20.0, "Seconds to wait for a heartbeat reply.", float],
        ["max-payload", None, 1_000_000, "Largest message or POST body, in bytes.", int],
        ["max-buffer", None, 4_000_000, "Outgoing bytes queued for a client that does not read before it is cut.", int],
        ["high-water-mark", None, None, "Outgoing bytes queued for a client above which emit returns False until "
         "the socket's drain event [default: a quarter of --max-buffer].", int],
        ["max-packets-per-second", None, None, "Close sessions sending more packets per second [default: no limit].",
         float],
        ["max-sessions-per-ip", None, None, "Refuse handshakes beyond this many sessions per address.", int],
        ["max-attachments", None, 100, "Most binary attachments in one Socket.IO packet.", int],
        ["attachment-timeout", None, 30.0, "Seconds a client has to send every attachment of a binary packet.",
         float],
        ["max-namespaces-per-client", None, 100, "Most namespaces one connection may be in at once.", int],
        ["state-recovery", None, None, "Connection state recovery: keep a disconnected socket's state and missed "
         "packets this many seconds [default: off].", float],
        ["cors-max-age", None, None, "Seconds browsers may cache a CORS preflight's answer (Access-Control-Max-Age).",
         int],
        ["initial-packet", None, None, "A message sent to each new Engine.IO session right after its OPEN packet "
         "(Node's initialPacket)."],
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
        ["admin", None, None, "Serve the official admin UI's protocol (@socket.io/admin-ui) to USER, whose password "
         "(or its bcrypt hash, $2b$...) is in --admin-password-file or $TXREALTIME_ADMIN_PASSWORD; USER:PASSWORD "
         "works too, but shows the password in the process list."],
        ["admin-password-file", None, None, "File whose first line is the --admin user's password or its bcrypt "
         "hash (chmod 600)."],
        ["admin-mode", None, "development", "Admin UI mode: development (sockets, rooms, events) or production "
         "(server stats only)."],
        ["admin-namespace", None, "/admin", "Namespace of the admin UI's protocol."],
        ["admin-server-id", None, None, "How the admin UI names this node [default: hostname#pid]."],
        ["admin-ui-static", None, None, "Folder of the admin UI's files (ui/dist of the @socket.io/admin-ui npm "
         "package) to serve at /admin-ui/."],
        ["workers", None, "1", "Worker processes serving the endpoints, or auto for one per CPU: the first process "
         "routes each connection to the worker owning its session and relays broadcasts between them."],
    ])
    """The options that take a value: name, short name, default, description, type."""
    optFlags = [
        ["no-upgrades", None, "Do not offer the upgrade from polling to WebSocket."],
        ["no-forwarding", None, "Do not serve requests for sessions held by other nodes (sharing --redis or "
         "--workers) by forwarding them there: for deployments that keep sticky sessions."],
        ["allow-eio3", None, "Also serve Engine.IO v3 clients (socket.io-client 2.x), as Node's allowEIO3."],
        ["per-message-deflate", None, "Compress WebSocket messages of 1024 bytes or more (permessage-deflate)."],
        ["no-http-compression", None, "Do not gzip/deflate polling responses of 1024 bytes or more."],
        ["no-cors-credentials", None, "Do not send Access-Control-Allow-Credentials to the --cors-origin origins."],
        ["no-trailing-slash", None, "Also serve the path without its trailing slash, e.g. /socket.io "
         "(Node's addTrailingSlash: false)."],
        ["engineio", None, "Serve bare Engine.IO: the app hook gets the SessionManager, not a Socket.IO Server."],
        ["no-access-log", None, "Do not log each HTTP request."],
        ["cleanup-empty-child-namespaces", None, "Remove a dynamic namespace's child once its last socket left."],
        ["no-serve-client", None, "Do not serve the browser client socket.io.js under --path (by default it is "
         "served, at /socket.io/socket.io.js)."],
        ["metrics", None, "Serve Prometheus metrics at /metrics and a health check at /healthz "
         "(needs txrealtime[metrics])."],
        ["admin-no-auth", None, "Serve the admin UI's protocol WITHOUT authentication: for local use only."],
        ["admin-read-only", None, "Refuse the admin UI's commands (emit, join, leave, disconnect)."],
    ]
    """The options that take none: name, short name, description."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["listen"] = []
        self["cors-origin"] = []
        self["origin"] = []
        self["cors-method"] = []
        self["cors-allowed-header"] = []
        self["cors-exposed-header"] = []

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

    def opt_cors_method(self, method: str) -> None:
        """Method a CORS preflight allows (repeatable) [default: GET, HEAD, PUT, PATCH, POST, DELETE]."""
        self["cors-method"].append(method)

    def opt_cors_allowed_header(self, header: str) -> None:
        """Request header a CORS preflight allows (repeatable) [default: those the browser asks for]."""
        self["cors-allowed-header"].append(header)

    def opt_cors_exposed_header(self, header: str) -> None:
        """Response header scripts of other origins may read (repeatable)."""
        self["cors-exposed-header"].append(header)

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
        """Check every option and derive the rest (``engineio-options``, ``app-hook``).

        With no ``--listen``, :data:`DEFAULT_LISTEN` (``listen-default`` is
        then true). Run by ``twistd -n`` with twistd's default ``--pidfile``
        (``twistd.pid``), set no pid file: that one, in the working directory,
        would keep a second server there from starting, and a restart while
        the first one still drains its clients.
        """
        self["listen-default"] = not self["listen"]
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        parent = getattr(self, "parent", None)
        if isinstance(parent, dict) and parent.get("nodaemon") and parent.get("pidfile") == TWISTD_PIDFILE:
            parent["pidfile"] = ""
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
        if self["forward-timeout"] <= 0:
            raise usage.UsageError("--forward-timeout must be > 0")
        if self["gc-threshold"] < 0:
            raise usage.UsageError("--gc-threshold must be >= 0 (0: Python's own)")
        if self["max-connections-per-ip"] is not None and self["max-connections-per-ip"] <= 0:
            raise usage.UsageError("--max-connections-per-ip must be > 0")
        if self["log-level"] not in LEVELS:
            raise usage.UsageError(f"--log-level must be one of {', '.join(LEVELS)}")
        if self["cors-max-age"] is not None and self["cors-max-age"] < 0:
            raise usage.UsageError("--cors-max-age must be >= 0")
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
            high_water_mark=None if self["high-water-mark"] is None else min(
                self["high-water-mark"], max(self["max-buffer"], self["max-payload"])
            ),
            max_packets_per_second=self["max-packets-per-second"],
            max_sessions_per_ip=self["max-sessions-per-ip"],
            allowed_origins=self["origin"] or None,
            cookie=CookieOptions(name=self["cookie"]) if self["cookie"] else None,
            cors_allowed_origins="*" if "*" in origins else (origins or None),
            per_message_deflate=bool(self["per-message-deflate"]),
            http_compression=not self["no-http-compression"],
            cors_credentials=not self["no-cors-credentials"],
            cors_methods=tuple(self["cors-method"]) or CORS_METHODS,
            cors_allowed_headers=tuple(self["cors-allowed-header"]) or None,
            cors_exposed_headers=tuple(self["cors-exposed-header"]) or None,
            cors_max_age=self["cors-max-age"],
            add_trailing_slash=not self["no-trailing-slash"],
            initial_packet=self["initial-packet"],
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
            check_endpoint(self["metrics-listen"], "--metrics-listen")
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
        if self["redis-max-len"] < 1:
            raise usage.UsageError(f"--redis-max-len must be 1 or more, not {self['redis-max-len']}")
        if not self["redis-stream-name"]:
            raise usage.UsageError("--redis-stream-name must not be empty")
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
        if count > 1:
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
        for name in (str(row[0]) for row in self.optParameters):
            if name != "workers" and self[name] is not None:
                args.append(f"--{name}={self[name]}")
        flags = cast(list[list[Any]], self.optFlags)
        args += [f"--{row[0]}" for row in flags if self[str(row[0])]]
        for name in ("listen", "origin", "cors-origin", "cors-method", "cors-allowed-header", "cors-exposed-header"):
            args += [f"--{name}={value}" for value in self[name]]
        return args


class CommandLine(Options):
    """:class:`Options` as ``twistd txrealtime`` parses them: a mistake ends the process with one line on stderr.

    twistd would print the whole ``--help`` on stdout, then the error: here
    the process ends (``SystemExit``, status 1) with :func:`usage_line`,
    which names the option and points at ``--help``.
    """

    program = "twistd txrealtime"
    """How the usage error names the command (``python -m txrealtime`` says its own name)."""

    def parseOptions(self, options: list[str] | None = None) -> None:
        """Parse and check ``options`` (default: the command line); exit with one line if they are wrong."""
        try:
            super().parseOptions(options)  # type: ignore[no-untyped-call]
        except usage.UsageError as e:
            raise SystemExit(usage_line(self.program, e)) from None


class WorkerOptions(CommandLine):
    """The options of one worker process of ``--workers N``: the master's, and ``--worker-channel FD:INDEX``.

    The master (:class:`txrealtime.cluster.master.MasterService`) starts each
    worker with them (``python -m txrealtime._worker``); the channel is not an
    option for users, so ``twistd txrealtime --help`` does not list it.
    """

    program = "python -m txrealtime._worker"
    """How a usage error names the command."""
    optParameters = [["worker-channel", None, None, "FD:INDEX: run as worker INDEX of a --workers master."]]
    """The option the master adds: the channel to it."""

    def postOptions(self) -> None:
        from .cluster.worker import parse_channel

        if self["worker-channel"] is None:
            raise usage.UsageError("--worker-channel FD:INDEX is required")
        try:
            parse_channel(self["worker-channel"])
        except ValueError as e:
            raise usage.UsageError(f"--worker-channel: {e}") from None
        super().postOptions()


def check_endpoint(description: str, option: str = "--listen") -> None:
    """Parse an endpoint string as ``twistd`` will; ``twisted.python.usage.UsageError`` if bad.

    Nothing listens yet, but ``ssl:`` endpoints read their certificate and key.
    The error names ``option`` and the endpoint, says what is wrong with it, and gives examples.
    """
    from twisted.internet import reactor

    try:
        serverFromString(reactor, description)
    except Exception as e:
        reason = str(e) or type(e).__name__
        # A port or another number that is not one: int()'s message, said plainly.
        number = re.fullmatch(r"invalid literal for int\(\) with base 10: (.*)", reason)
        if number is not None:
            reason = f"{number.group(1)} is not a number"
        raise usage.UsageError(
            f"{option} {description}: {reason} (e.g. tcp:8080 or ssl:8443:privateKey=key.pem)"
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
