"""A health check for load balancers and orchestrators: is this node accepting sessions, is Redis up?

:class:`HealthResource` answers ``GET`` with a JSON object and a status code::

    {"status": "ok", "accepting": true, "sessions": 12, "redis": true}

- ``accepting``: ``false`` once the server is shutting down (``twistd`` got
  SIGTERM and drains its clients for ``--shutdown-grace`` seconds; the port
  stays open meanwhile so polling clients collect their close);
- ``redis``: whether the Redis link is connected, ``null`` without one;
- ``status``: ``"ok"``, ``"draining"`` or ``"redis down"``; the status code
  is 200 for ``"ok"``, else 503.

It needs no extra package. :func:`txrealtime.metrics.mount_metrics` mounts it
at ``/healthz`` beside the metrics, as ``twistd txrealtime --metrics`` does.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.http import Request
from twisted.web.resource import Resource

from .engineio import SessionManager
from .socketio import Server

__all__ = ["HealthResource", "health", "redis_link_of"]


def redis_link_of(target: Server | SessionManager) -> Any:
    """The Redis link (a :class:`txrealtime.adapters.redis.RedisLink` or
    :class:`txrealtime.adapters.redis.ShardedRedisLink`) of a server's default namespace adapter, if it has one."""
    if not isinstance(target, Server):
        return None
    link = getattr(target.sockets.adapter, "link", None)
    try:
        from .adapters.redis.link import BaseRedisLink
    except ImportError:  # the redis extra is not installed: no adapter can have a link
        return None
    return link if isinstance(link, BaseRedisLink) else None


def health(target: Server | SessionManager, link: Any = None, require_redis: bool = True) -> tuple[int, dict[str, Any]]:
    """The status code and JSON object :class:`HealthResource` answers with, as of now.

    With ``require_redis`` false, a Redis link that is down is reported in the
    object but leaves the status ``"ok"`` (200): the node still serves its own
    clients, and a load balancer then keeps every node in while Redis is away.
    """
    manager = target.manager if isinstance(target, Server) else target
    redis = None if link is None else bool(link.connected)
    if not manager.accepting:
        status = "draining"
    elif redis is False and require_redis:
        status = "redis down"
    else:
        status = "ok"
    body = {"status": status, "accepting": manager.accepting, "sessions": len(manager.sessions), "redis": redis}
    return (200 if status == "ok" else 503), body


class HealthResource(Resource):
    """Answers ``GET`` with :func:`health`'s status code and JSON object, never cached."""

    isLeaf = True

    def __init__(self, target: Server | SessionManager, *, link: Any = None, require_redis: bool = True) -> None:
        """A resource reporting ``target``'s health.

        :param target: The server or session manager checked.
        :param link: The Redis link, whose state is reported.
        :param require_redis: Whether Redis being down makes the node unhealthy (503).
        """
        super().__init__()  # type: ignore[no-untyped-call]
        self.target = target
        """The server or session manager checked."""
        self.link = link if link is not None else redis_link_of(target)
        """The Redis link reported on (found on the server's adapter when not given)."""
        self.require_redis = require_redis
        """Whether Redis being down makes the node unhealthy."""

    def render_GET(self, request: Request) -> bytes:
        """The health report as JSON: 200 when healthy, 503 when not (see :func:`health`)."""
        code, body = health(self.target, self.link, self.require_redis)
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(body, separators=(",", ":")).encode()
