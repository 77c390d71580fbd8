"""The ``twistd txrealtime`` command: options, site building and the service tree."""

from __future__ import annotations

import gc
import inspect
import os
import typing
import warnings
from collections.abc import Callable
from typing import Any, cast

from twisted.application import service, strports
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IProtocolFactory
from twisted.logger import Logger
from twisted.python import usage
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from ._compat import forget_exit_signal
from ._lazy import deprecated_aliases
from ._logging import gate, set_log_level
from .command import DEFAULT_LISTEN, Options, check_endpoint, load_app
from .engineio import EngineIOOptions, EngineIOResource, SessionManager
from .forwarding import Forwarder
from .socketio import Server
from .socketio.bundle import SocketIOResource
from .socketio.recovery import StateRecovery
from .web import BoundedSite, EmptyResource, mount

__all__ = [
    "CannotListen",
    "Options",
    "RealtimeService",
    "check_endpoint",
    "load_app",
    "make_process_service",
    "make_service",
    "mount",
    "raise_open_files_limit",
    "run_app_hook",
    "start_listening",
]

log = Logger(__name__, observer=gate)


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

    With ``gc_threshold``, the garbage collector's youngest generation is
    collected after that many allocations while the service runs (see
    ``--gc-threshold``), Python's setting is restored when it stops.
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
        gc_threshold: int | None = None,
        forwarder: Forwarder | None = None,
    ) -> None:
        """A service listening on ``endpoints`` with ``site``.

        :param manager: The session manager, shut down on stop.
        :param site: The site every endpoint serves.
        :param endpoints: The endpoint strings to listen on (``tcp:8080``...).
        :param server: The Socket.IO server, closed on stop (``None`` for bare Engine.IO).
        :param redis: The Redis link, stopped last.
        :param resource: The Engine.IO resource, drained on stop.
        :param grace: Seconds clients have to receive their close on stop.
        :param daemon: Whether twistd runs it as a daemon.
        :param gc_threshold: The garbage collector's youngest-generation threshold while it runs.
        :param forwarder: What serves the requests for other nodes' sessions (``--redis``, ``--workers``).
        """
        super().__init__()  # type: ignore[no-untyped-call]
        self.manager = manager
        """The session manager, shut down on stop."""
        self.forwarder = forwarder
        """The :class:`txrealtime.forwarding.Forwarder` serving other nodes' sessions, stopped before the link."""
        self.server = server
        """The Socket.IO server, unless serving bare Engine.IO."""
        self.redis = redis
        """The Redis link (:class:`txrealtime.adapters.redis.RedisLink`, or a
        :class:`txrealtime.adapters.redis.ShardedRedisLink`), with ``--redis``."""
        self.site = site
        """The site every endpoint serves."""
        self.resource = resource
        """The Engine.IO resource, drained on stop."""
        self.grace = grace
        """Seconds clients have to receive their close on stop."""
        self.daemon = daemon
        """Whether twistd runs it as a daemon."""
        self.gc_threshold = gc_threshold
        """The garbage collector's youngest-generation threshold while it runs."""
        self._gc_before: tuple[int, int, int] | None = None
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
        # Here rather than in make_process_service: after twistd has daemonized and dropped privileges
        # (an unprivileged process may still raise its soft limit to the hard one), and building
        # a service, as tests do, changes nothing about the process.
        raise_open_files_limit()
        if self.gc_threshold and self._gc_before is None:
            self._gc_before = gc.get_threshold()
            gc.set_threshold(self.gc_threshold, *self._gc_before[1:])
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
        forwarder = self.forwarder
        if forwarder is not None:
            d.addBoth(lambda _: forwarder.stop())
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
            forget_exit_signal(self.manager.reactor)

    def _stop_listening(self, _: object) -> Any:
        if self._gc_before is not None:
            gc.set_threshold(*self._gc_before)
            self._gc_before = None
        return super().stopService()  # type: ignore[no-untyped-call]


def start_listening(start: Callable[[], object], endpoint: str | None, daemon: bool) -> None:
    """Call ``start``; if ``endpoint`` (``None``: not an endpoint) cannot listen, say so in one line and exit:
    logged and written on stderr, then ``SystemExit(1)``; a daemon raises :class:`CannotListen` for its
    parent to print."""
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
        # In the foreground twistd has made sys.stderr a log file (stdout under -n): the line goes to the
        # process's own stderr as well, where a usage error's line goes.
        try:
            os.write(2, f"txrealtime: Cannot listen on {where}\n".encode("utf-8", "backslashreplace"))
        except OSError:
            pass  # no stderr: the log has the line
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


def _options_after_hook(built: EngineIOOptions, assigned: EngineIOOptions, options: Options) -> EngineIOOptions:
    """The Engine.IO options in force once an ``--app`` hook returned, before anything reads them (the
    WebSocket factory keeps ``max_payload``).

    Those of ``options.configure(...)``, or those the hook assigned to ``manager.options`` (e.g. with
    ``dataclasses.replace``); both is refused with ``twisted.python.usage.UsageError``, as one would undo the other.
    """
    configured = cast(EngineIOOptions, options["engineio-options"])
    if assigned is built:
        return configured
    if configured is not built:
        raise usage.UsageError(
            "it both assigned manager.options and called options.configure(): do one (configure() is checked)"
        )
    if not isinstance(assigned, EngineIOOptions):
        raise usage.UsageError(f"manager.options must be an EngineIOOptions, not {type(assigned).__name__}")
    options["engineio-options"] = assigned
    return assigned


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
    (:class:`txrealtime.cluster.master.MasterService`), else :func:`make_process_service`'s one serving process.

    Without ``--listen``, it logs a warning: the server listens on every
    network interface, and the line says how to serve this machine only.
    """
    if options.get("listen-default"):
        log.warn(
            "No --listen given: listening on {endpoint}, on every network interface; to serve this machine only, "
            "give --listen {endpoint}:interface=127.0.0.1", endpoint=DEFAULT_LISTEN,
        )
    if options["workers"] <= 1:
        return make_process_service(options)
    from .cluster.master import MasterService

    set_log_level(options["log-level"])
    daemon = _daemonized(options)
    return MasterService(
        options["workers"], options["listen"], options.worker_args(), header_timeout=options["header-timeout"],
        grace=options["shutdown-grace"], daemon=daemon,
        listening=lambda _, start, endpoint: start_listening(start, endpoint, daemon),
    )


def make_process_service(options: Options) -> RealtimeService:
    """Build the service tree of one serving process (what ``twistd txrealtime`` runs without ``--workers``;
    :func:`make_service` builds either). Was ``makeService``, which still imports with a ``DeprecationWarning``.

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
    worker: tuple[int, int] | None = None  # the channel to the master, and this worker's index
    if options.get("worker-channel") is not None:
        from .cluster.link import ClusterLink
        from .cluster.worker import parse_channel

        worker = parse_channel(options["worker-channel"])
        cluster = ClusterLink(key=options["redis-key"], index=worker[1])
    if not options["engineio"]:
        kwargs: dict[str, Any] = {}
        if options["redis"] is not None:
            from .adapters.choices import ADAPTERS

            link, kwargs["adapter"] = ADAPTERS[options["adapter"]].build(options["redis"], options)
        elif cluster is not None:
            from .adapters.classic import classic_adapter

            kwargs["adapter"] = classic_adapter(cluster)
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
        built = manager.options
        try:
            run_app_hook(hook, manager if server is None else server, options)
            manager.options = _options_after_hook(built, manager.options, options)
        except usage.UsageError as e:
            raise SystemExit(f"txrealtime: --app {options['app']}: {e}") from None
    admin = None
    if server is not None:
        from .admin.service import UI_PATH, start

        admin = start(options, server)
    root = _static_folder(options["static"]) if options["static"] else EmptyResource()
    if options["admin-ui-static"]:
        mount(root, UI_PATH, _static_folder(options["admin-ui-static"]))
    resource = EngineIOResource(manager)
    forwarder = None
    shared = link if link is not None else cluster
    if shared is not None and not options["no-forwarding"]:
        forwarder = Forwarder(resource, shared, timeout=options["forward-timeout"])
        forwarder.start()  # before prefix_sids: sids made here carry this node's tag, inside the worker's prefix
    endpoint = resource if server is None else SocketIOResource(resource, server.serve_client)
    mount(root, options["path"], endpoint)
    metrics_root = None
    if options["metrics"]:
        from .metrics import mount_metrics

        metrics_root = root if options["metrics-listen"] is None else EmptyResource()
        mount_metrics(metrics_root, manager if server is None else server, link=link)
    if worker is not None:
        from .cluster.worker import StickyRoot

        root = StickyRoot(root, worker[1])
    site = BoundedSite(
        cast(IResource, root),
        max_body=manager.options.max_payload,
        managers=[manager],
        access_log=not options["no-access-log"],
        header_timeout=options["header-timeout"],
        max_connections_per_ip=options["max-connections-per-ip"],
    )
    if cluster is None or worker is None:
        realtime = RealtimeService(
            manager, site, options["listen"], server, link, resource=resource, grace=options["shutdown-grace"],
            daemon=_daemonized(options), gc_threshold=options["gc-threshold"], forwarder=forwarder,
        )
    else:
        from .cluster.worker import WorkerService, prefix_sids

        fd, index = worker
        prefix_sids(manager, index)
        realtime = RealtimeService(manager, site, [], server, link, resource=resource, grace=options["shutdown-grace"],
                                   gc_threshold=options["gc-threshold"], forwarder=forwarder)
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


__getattr__ = deprecated_aliases(__name__, {"makeService": "make_process_service"})
"""Old names, still importable with a ``DeprecationWarning``: ``makeService`` is :func:`make_process_service`
(twistd's plugin gets :func:`make_service` under that name from :mod:`txrealtime._twistd`)."""
