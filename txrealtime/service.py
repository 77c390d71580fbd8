"""The ``twistd txrealtime`` command: options, site building and the service tree."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any, cast

from twisted.application import service, strports
from twisted.internet import defer
from twisted.internet.interfaces import IProtocolFactory
from twisted.python import usage
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site
from twisted.web.static import File

from .engineio import EngineIOOptions, EngineIOResource, SessionManager
from .socketio import Server

__all__ = ["Options", "RealtimeService", "load_app", "makeService", "mount"]


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
        ["redis", None, None, "Share broadcasts and rooms with other nodes through Redis, e.g. redis://127.0.0.1:6379/0."],
        ["redis-key", None, "socket.io", "Channel prefix in Redis (the key option of @socket.io/redis-adapter)."],
        ["ping-interval", None, 25.0, "Seconds between heartbeats.", float],
        ["ping-timeout", None, 20.0, "Seconds to wait for a heartbeat reply.", float],
        ["max-payload", None, 1_000_000, "Largest message or POST body, in bytes.", int],
    ]
    optFlags = [
        ["no-upgrades", None, "Do not offer the upgrade from polling to WebSocket."],
        ["engineio", None, "Serve bare Engine.IO: the app hook gets the SessionManager, not a Socket.IO Server."],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["listen"] = []
        self["cors-origin"] = []

    def opt_listen(self, endpoint: str) -> None:
        """Endpoint string to listen on, e.g. tcp:8080 or ssl:8443:privateKey=key.pem (repeatable)."""
        self["listen"].append(endpoint)

    opt_l = opt_listen

    def opt_cors_origin(self, origin: str) -> None:
        """Origin allowed to make cross-origin requests, or * for any (repeatable)."""
        self["cors-origin"].append(origin)

    def postOptions(self) -> None:
        if not self["listen"]:
            self["listen"] = ["tcp:8080"]
        if self["static"] is not None and not os.path.isdir(self["static"]):
            raise usage.UsageError(f"--static: no such folder: {self['static']}")
        if self["path"] is None:
            self["path"] = "/engine.io/" if self["engineio"] else "/socket.io/"
        if not self["path"].startswith("/"):
            raise usage.UsageError("--path must start with /")
        origins = self["cors-origin"]
        self["engineio-options"] = EngineIOOptions(
            ping_interval=self["ping-interval"],
            ping_timeout=self["ping-timeout"],
            max_payload=self["max-payload"],
            allow_upgrades=not self["no-upgrades"],
            cors_allowed_origins="*" if "*" in origins else (origins or None),
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
        if self["app"] is not None:
            self["app-hook"] = load_app(self["app"])


def load_app(spec: str) -> Callable[[Any], object]:
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


def mount(root: Resource, path: str, resource: Resource) -> None:
    """Put ``resource`` at ``path`` (e.g. ``/socket.io/``) under ``root``, creating parents."""
    segments = [s.encode() for s in path.strip("/").split("/") if s]
    if not segments:
        raise ValueError("cannot mount at /")
    parent = root
    for segment in segments[:-1]:
        child = parent.children.get(segment)
        if not isinstance(child, Resource):
            child = Resource()
            parent.putChild(segment, cast(IResource, child))
        parent = child
    parent.putChild(segments[-1], cast(IResource, resource))


class RealtimeService(service.MultiService):
    """Listens on every endpoint and closes every session when stopped."""

    def __init__(
        self,
        manager: SessionManager,
        site: Site,
        endpoints: list[str],
        server: Server | None = None,
        redis: Any = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.manager = manager
        self.server = server
        """The Socket.IO server, unless serving bare Engine.IO."""
        self.redis = redis
        """The :class:`~txrealtime.adapters.redis.RedisLink`, with ``--redis``."""
        self.site = site
        for description in endpoints:
            strports.service(description, cast(IProtocolFactory, site)).setServiceParent(self)

    def stopService(self) -> Any:
        if self.server is not None:
            self.server.close()
        else:
            self.manager.shutdown()
        stopping = super().stopService()  # type: ignore[no-untyped-call]
        if self.redis is not None:
            link = self.redis
            return defer.maybeDeferred(lambda: stopping).addBoth(lambda _: link.stop())
        return stopping


def makeService(options: Options) -> RealtimeService:
    """Build the service tree ``twistd txrealtime`` runs."""
    manager = SessionManager(options["engineio-options"])
    link = None
    server = None
    if not options["engineio"]:
        kwargs: dict[str, Any] = {}
        if options["redis"] is not None:
            from .adapters.redis import RedisLink, redis_adapter

            link = RedisLink(options["redis"], key=options["redis-key"])
            kwargs["adapter"] = redis_adapter(link)
        server = Server(manager, connect_timeout=options["connect-timeout"], **kwargs)
    root: Resource = File(options["static"]) if options["static"] else Resource()
    mount(root, options["path"], EngineIOResource(manager))
    hook = options.get("app-hook")
    if hook is not None:
        hook(manager if server is None else server)
    return RealtimeService(manager, Site(root), options["listen"], server, link)
