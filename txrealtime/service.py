"""The ``twistd txrealtime`` command: options, site building and the service tree."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import sys
import typing
import warnings
from collections.abc import Callable
from typing import Any, cast

from twisted.application import service, strports
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IProtocolFactory, _ISupportsExitSignalCapturing
from twisted.logger import Logger
from twisted.python import usage
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from . import __version__
from ._logging import LEVELS, gate, set_log_level
from .engineio import EngineIOOptions, EngineIOResource, SessionManager
from .engineio.options import CookieOptions
from .socketio import Server
from .socketio.bundle import SocketIOResource
from .socketio.parser import resolve as resolve_parser
from .socketio.recovery import StateRecovery
from .web import BoundedSite, EmptyResource, mount

__all__ = [
    "CannotListen",
    "Options",
    "RealtimeService",
    "check_endpoint",
    "load_app",
    "makeService",
    "make_service",
    "mount",
    "raise_open_files_limit",
    "run_app_hook",
    "start_listening",
]

log = Logger(observer=gate)


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
        ["redis", None, None, "Share broadcasts and rooms with other nodes through Redis, e.g. redis://127.0.0.1:6379/0."],
        ["redis-key", None, "socket.io", "Channel prefix in Redis (the key option of @socket.io/redis-adapter)."],
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
        if self["redis"] is not None:
            if self["engineio"]:
                raise usage.UsageError("--redis needs Socket.IO (drop --engineio)")
            try:
                from .adapters.redis import RedisURL
            except ImportError as e:
                raise usage.UsageError(f"--redis needs txrealtime[redis] installed ({e})") from None
            try:
                RedisURL.parse(self["redis"])
            except ValueError as e:
                raise usage.UsageError(f"--redis: {e}") from None
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


def raise_open_files_limit() -> int | None:
    """Raise this process's soft limit on open files to its hard limit; return the limit now in force.

    Every client holds a file descriptor, and 1,024 is a common default. Never
    raises: returns ``None`` where the limit cannot be read (no ``resource``
    module), and keeps the old limit if it cannot be raised.
    """
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as e:
            log.info("Open files limit stays at {soft} (cannot raise it to {hard}: {error})", soft=soft,
                     hard=hard, error=e)
            return soft
        log.info("Open files limit raised from {soft} to {hard}", soft=soft, hard=hard)
        return hard
    log.info("Open files limit: {soft} (the hard limit)", soft=soft)
    return soft


class RealtimeService(service.MultiService):
    """Listens on every endpoint and closes every session when stopped.

    Starting it raises the open files limit (:func:`raise_open_files_limit`).
    An endpoint that cannot listen (port in use, no permission) is logged in
    one line naming it, then the process exits with status 1 (``SystemExit``;
    with ``daemon``, a :class:`CannotListen` error that ``twistd``'s parent
    process prints). A stop after which every session drained within
    ``grace`` is clean: a ``twistd`` stopped by SIGTERM or SIGINT then exits
    with status 0.
    """

    def __init__(
        self,
        manager: SessionManager,
        site: Site,
        endpoints: list[str],
        server: Server | None = None,
        redis: Any = None,
        resource: EngineIOResource | None = None,
        grace: float = 5.0,
        daemon: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.manager = manager
        self.server = server
        """The Socket.IO server, unless serving bare Engine.IO."""
        self.redis = redis
        """The :class:`txrealtime.adapters.redis.RedisLink`, with ``--redis``."""
        self.site = site
        self.resource = resource
        self.grace = grace
        self.daemon = daemon
        self._endpoints: dict[Any, str] = {}
        for description in endpoints:
            self.listen(description, site)

    def listen(self, description: str, factory: Any) -> None:
        """Also listen on endpoint ``description`` with ``factory`` (before the service starts).

        It stops with the others, once clients drained.
        """
        listening = strports.service(description, cast(IProtocolFactory, factory))
        listening.setServiceParent(self)
        self._endpoints[listening] = description

    def privilegedStartService(self) -> None:
        service.Service.privilegedStartService(self)
        for child in self:
            self._listening(child, child.privilegedStartService)

    def startService(self) -> None:
        # Here rather than in makeService: after twistd has daemonized and dropped privileges
        # (an unprivileged process may still raise its soft limit to the hard one), and building
        # a service, as tests do, changes nothing about the process.
        raise_open_files_limit()
        service.Service.startService(self)
        for child in self:
            self._listening(child, child.startService)

    def _listening(self, child: Any, start: Callable[[], object]) -> None:
        """Start ``child``; if it is one of the endpoints and cannot listen, say so in one line and exit."""
        start_listening(start, self._endpoints.get(child), self.daemon)

    def stopService(self) -> Any:
        """Send every client its close, wait up to ``grace`` for them to get it, then stop listening.

        Ports stay open meanwhile so that polling clients can collect their
        CLOSE packet; new sessions are refused.
        """
        log.info("Shutting down: closing {count} sessions", count=len(self.manager.sessions))
        if self.server is not None:
            self.server.close()
        else:
            self.manager.shutdown()
        d: defer.Deferred[Any] = defer.succeed(None)
        resource = self.resource
        if resource is not None:
            d.addCallback(lambda _: resource.drain(self.grace))
            d.addCallback(self._drained)
        d.addBoth(self._stop_listening)
        if self.redis is not None:
            link = self.redis
            d.addBoth(lambda _: link.stop())
        return d

    def _drained(self, clean: bool) -> None:
        log.info("Shutdown {how}", how="clean" if clean else "after grace period")
        if clean:
            # Once the reactor has stopped, twistd re-raises the signal the reactor recorded here
            # (status -15 for SIGTERM). A clean stop is a success: forget it. After the grace
            # period it stays, and the parent sees the process ended by its signal.
            reactor = self.manager.reactor
            if _ISupportsExitSignalCapturing.providedBy(reactor):
                cast(Any, reactor)._exitSignal = None

    def _stop_listening(self, _: object) -> Any:
        return super().stopService()  # type: ignore[no-untyped-call]


def start_listening(start: Callable[[], object], endpoint: str | None, daemon: bool) -> None:
    """Call ``start``; if ``endpoint`` (``None``: not an endpoint) cannot listen, say so in one line and exit
    (``SystemExit``, or :class:`CannotListen` for a daemon's parent to print)."""
    if endpoint is None:  # a service someone else added
        start()
        return
    try:
        start()
    except (CannotListenError, OSError) as e:
        error = e.socketError if isinstance(e, CannotListenError) else e
        reason = getattr(error, "strerror", None) or str(error)
        where = f"{endpoint}: {reason}"
        log.error("Cannot listen on {where}", where=where)
        if daemon:
            raise CannotListen(where) from None  # twistd's parent prints its first 100 bytes
        raise SystemExit(1) from None


def _static_folder(path: str) -> Resource:
    """``twisted.web.static.File(path)``, imported only when ``--static`` is given.

    Importing ``twisted.web.static`` builds three deprecated error pages at
    module level: the three ``DeprecationWarning`` lines are Twisted's own,
    and nothing of ours uses those pages, so they are not shown.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "twisted.web.resource._Unsafe", DeprecationWarning)
        from twisted.web.static import File
    return File(path)


class CannotListen(Exception):
    """An endpoint could not listen; the message names it and says why, in one line."""


def run_app_hook(hook: Callable[..., object], target: Server | SessionManager, options: Options) -> None:
    """Call an ``--app`` hook with ``target``, and ``options`` too if it takes a second parameter.

    A hook whose first parameter is annotated :class:`txrealtime.socketio.Server`
    or :class:`txrealtime.engineio.SessionManager` must get that: else a
    ``twisted.python.usage.UsageError`` says which flag to add or drop.
    """
    expected = _first_parameter_type(hook)
    if expected is not None and not isinstance(target, expected):
        fix = "add --engineio" if isinstance(target, Server) else "drop --engineio"
        raise usage.UsageError(f"it takes a {expected.__name__}, not a {type(target).__name__}: {fix}")
    if _takes_two(hook):
        hook(target, options)
    else:
        hook(target)


def _first_parameter_type(hook: Callable[..., object]) -> type | None:
    try:
        first = next(iter(inspect.signature(hook).parameters))
        hint = typing.get_type_hints(hook).get(first)
    except Exception:  # no signature, no parameter, or annotations that do not resolve: nothing to check
        return None
    if isinstance(hint, type) and issubclass(hint, (Server, SessionManager)):
        return hint
    return None


def _takes_two(hook: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


def _daemonized(options: Options) -> bool:
    """Whether ``twistd`` runs these options as a daemon (without ``-n``)."""
    parent = getattr(options, "parent", None)
    return isinstance(parent, dict) and "nodaemon" in parent and not parent["nodaemon"]


def make_service(options: Options) -> service.MultiService:
    """What ``twistd txrealtime`` and ``python -m txrealtime`` run: with ``--workers`` above 1 the master
    (:class:`txrealtime.cluster.master.MasterService`), else :func:`makeService`'s one serving process."""
    if options["workers"] <= 1:
        return makeService(options)
    from .cluster.master import MasterService

    set_log_level(options["log-level"])
    daemon = _daemonized(options)
    return MasterService(
        options["workers"], options["listen"], options.worker_args(), header_timeout=options["header-timeout"],
        grace=options["shutdown-grace"], daemon=daemon,
        listening=lambda _, start, endpoint: start_listening(start, endpoint, daemon),
    )


def makeService(options: Options) -> RealtimeService:
    """Build the service tree ``twistd txrealtime`` runs.

    The ``--app`` hook is called with the :class:`txrealtime.socketio.Server`
    (the :class:`txrealtime.engineio.SessionManager` with ``--engineio``) and,
    if it takes a second parameter, with ``options``, whose
    :meth:`Options.configure` changes Engine.IO options that have no flag.
    A hook that raises ``twisted.python.usage.UsageError`` ends the process
    with that one line (``SystemExit``).
    """
    if options["workers"] > 1:
        raise ValueError(f"--workers {options['workers']} runs several processes: build it with make_service()")
    set_log_level(options["log-level"])
    manager = SessionManager(options["engineio-options"])
    link = None
    server = None
    cluster = None
    if options["worker-channel"] is not None:
        from .cluster.link import ClusterLink

        cluster = ClusterLink(key=options["redis-key"])
    if not options["engineio"]:
        kwargs: dict[str, Any] = {}
        if options["redis"] is not None:
            from .adapters.redis import RedisLink, redis_adapter

            link = RedisLink(options["redis"], key=options["redis-key"])
            kwargs["adapter"] = redis_adapter(link)
        elif cluster is not None:
            from .adapters.redis import redis_adapter

            kwargs["adapter"] = redis_adapter(cluster)
        recovery = options["state-recovery"]
        server = Server(
            manager,
            connect_timeout=options["connect-timeout"],
            max_attachments=options["max-attachments"],
            attachment_timeout=options["attachment-timeout"],
            max_namespaces_per_client=options["max-namespaces-per-client"],
            cleanup_empty_child_namespaces=bool(options["cleanup-empty-child-namespaces"]),
            connection_state_recovery=StateRecovery(max_disconnection_duration=recovery) if recovery else None,
            serve_client=not options["no-serve-client"],
            parser=options["parser"],
            **kwargs,
        )
    hook = options.get("app-hook")
    if hook is not None:
        try:
            run_app_hook(hook, manager if server is None else server, options)
        except usage.UsageError as e:
            raise SystemExit(f"txrealtime: --app {options['app']}: {e}") from None
        # Before anything reads them (the WebSocket factory keeps max_payload): options.configure() changes.
        manager.options = options["engineio-options"]
    admin = None
    if server is not None:
        from .admin.service import UI_PATH, start

        admin = start(options, server)
    root = _static_folder(options["static"]) if options["static"] else EmptyResource()
    if options["admin-ui-static"]:
        mount(root, UI_PATH, _static_folder(options["admin-ui-static"]))
    resource = EngineIOResource(manager)
    endpoint = resource if server is None else SocketIOResource(resource, server.serve_client)
    mount(root, options["path"], endpoint)
    metrics_root = None
    if options["metrics"]:
        from .metrics import mount_metrics

        metrics_root = root if options["metrics-listen"] is None else EmptyResource()
        mount_metrics(metrics_root, manager if server is None else server, link=link)
    if cluster is not None:
        from .cluster.worker import StickyRoot, parse_channel

        root = StickyRoot(root, parse_channel(options["worker-channel"])[1])
    site = BoundedSite(
        cast(IResource, root),
        max_body=manager.options.max_payload,
        managers=[manager],
        access_log=not options["no-access-log"],
        header_timeout=options["header-timeout"],
        max_connections_per_ip=options["max-connections-per-ip"],
    )
    if cluster is None:
        realtime = RealtimeService(
            manager, site, options["listen"], server, link, resource=resource, grace=options["shutdown-grace"],
            daemon=_daemonized(options),
        )
    else:
        from .cluster.worker import WorkerService, parse_channel, prefix_sids

        fd, index = parse_channel(options["worker-channel"])
        prefix_sids(manager, index)
        realtime = RealtimeService(manager, site, [], server, link, resource=resource, grace=options["shutdown-grace"])
        WorkerService(fd, index, site, manager, cluster).setServiceParent(realtime)  # type: ignore[no-untyped-call]
    if options["metrics-listen"] is not None and metrics_root is not None:
        realtime.listen(
            options["metrics-listen"],
            BoundedSite(cast(IResource, metrics_root), access_log=not options["no-access-log"],
                        header_timeout=options["header-timeout"]),
        )
    if admin is not None:
        admin.setServiceParent(realtime)  # type: ignore[no-untyped-call]
    return realtime
