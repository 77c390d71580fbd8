"""Prometheus metrics of one server, read at scrape time (needs the ``metrics`` extra: ``prometheus-client``).

Nothing is updated per packet for Prometheus: the sessions and transports
keep plain integer totals (:class:`txrealtime.engineio.stats.EngineStats`,
the server's ack timeout counts, the Redis link's counts), and
:class:`RealtimeCollector` turns them into metric families when Prometheus
scrapes. Serve them with :class:`MetricsResource`, or :func:`mount_metrics`
(which adds the :class:`txrealtime.health.HealthResource` at ``/healthz``
too)::

    from txrealtime.metrics import mount_metrics

    mount_metrics(root, server)          # /metrics and /healthz under root

``twistd txrealtime --metrics`` does the same on its own site, and
``--metrics-listen ENDPOINT`` on a port of their own. The metrics and their
labels are listed in ``docs/operations.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from twisted.web.http import Request
from twisted.web.resource import Resource

from ._logging import name_for_log
from .engineio import SessionError, SessionManager
from .health import HealthResource, redis_link_of
from .socketio import Namespace, ParentNamespace, Server
from .web import mount

__all__ = ["MetricsResource", "RealtimeCollector", "metrics_registry", "mount_metrics", "namespace_counts",
           "namespace_label"]

_TRANSPORTS = ("polling", "websocket")


def _manager_of(target: Server | SessionManager) -> SessionManager:
    return target.manager if isinstance(target, Server) else target


class RealtimeCollector:
    """A Prometheus collector reading one server's totals when scraped.

    ``target`` is a :class:`txrealtime.socketio.Server` (Engine.IO and
    Socket.IO metrics) or a bare :class:`txrealtime.engineio.SessionManager`;
    ``link`` a :class:`txrealtime.adapters.redis.RedisLink` (found on the
    server's adapter when not given). Register it in a
    ``prometheus_client.CollectorRegistry``; reading takes time proportional
    to the open sessions and namespaces, on the reactor thread (which is where
    :class:`MetricsResource` renders).
    """

    def __init__(self, target: Server | SessionManager, link: Any = None) -> None:
        self.target = target
        """The server or session manager measured."""
        self.manager = _manager_of(target)
        """Its session manager."""
        self.link = link if link is not None else redis_link_of(target)
        """The Redis link measured, if any."""

    def describe(self) -> list[Metric]:
        """The metric families this collector yields (for the registry's duplicate check)."""
        return list(self.collect())

    def collect(self) -> Iterator[Metric]:
        """Every metric family, with the values of now."""
        yield from self._engineio()
        if isinstance(self.target, Server):
            yield from self._socketio(self.target)
        if self.link is not None:
            yield from self._redis(self.link)

    def _engineio(self) -> Iterator[Metric]:
        manager = self.manager
        stats = manager.stats
        by_transport = dict.fromkeys(_TRANSPORTS, 0)
        buffered = 0
        for session in manager.sessions.values():
            name = session.transport.name
            by_transport[name] = by_transport.get(name, 0) + 1
            buffered += session.buffered_bytes
        sessions = GaugeMetricFamily(
            "txrealtime_engineio_sessions", "Open Engine.IO sessions, by their current transport.",
            labels=["transport"],
        )
        for name, count in sorted(by_transport.items()):
            sessions.add_metric([name], count)
        yield sessions
        yield GaugeMetricFamily(
            "txrealtime_engineio_accepting", "1 while new sessions are accepted, 0 once shutting down (draining).",
            value=1 if manager.accepting else 0,
        )
        opened = CounterMetricFamily(
            "txrealtime_engineio_sessions_opened", "Sessions opened, by the transport they opened on.",
            labels=["transport"],
        )
        for name, count in sorted({**dict.fromkeys(_TRANSPORTS, 0), **stats.opened}.items()):
            opened.add_metric([name], count)
        yield opened
        closed = CounterMetricFamily(
            "txrealtime_engineio_sessions_closed", "Sessions closed, by transport and Engine.IO close reason.",
            labels=["transport", "reason"],
        )
        for (name, reason), count in sorted(stats.closed.items()):
            closed.add_metric([name, reason.value], count)
        yield closed
        upgrades = CounterMetricFamily(
            "txrealtime_engineio_upgrades", "Transport upgrades completed.", labels=["from", "to"]
        )
        for (old, new), count in sorted(stats.upgraded.items()):
            upgrades.add_metric([old, new], count)
        yield upgrades
        refused = CounterMetricFamily(
            "txrealtime_engineio_requests_refused",
            "Requests refused before reaching a session (handshakes included), by Engine.IO error.",
            labels=["code", "reason"],
        )
        for code, count in sorted(stats.refused.items()):
            refused.add_metric([str(code), SessionError.MESSAGES[code]], count)
        yield refused
        yield CounterMetricFamily(
            "txrealtime_engineio_packets_received", "Engine.IO packets received from clients.",
            value=stats.packets_received,
        )
        yield CounterMetricFamily(
            "txrealtime_engineio_packets_sent", "Engine.IO packets sent to clients.", value=stats.packets_sent
        )
        received = CounterMetricFamily(
            "txrealtime_engineio_received_bytes",
            "Bytes received: long-polling request bodies, and everything read on WebSocket connections.",
            labels=["transport"],
        )
        received.add_metric(["polling"], stats.polling_bytes_received)
        received.add_metric(["websocket"], stats.websocket_bytes_received)
        yield received
        sent = CounterMetricFamily(
            "txrealtime_engineio_sent_bytes",
            "Bytes sent: long-polling response bodies, and WebSocket frames carrying packets.",
            labels=["transport"],
        )
        sent.add_metric(["polling"], stats.polling_bytes_sent)
        sent.add_metric(["websocket"], stats.websocket_bytes_sent)
        yield sent
        yield GaugeMetricFamily(
            "txrealtime_engineio_outgoing_buffered_bytes",
            "Message bytes queued for clients and not yet written, all sessions together.",
            value=buffered,
        )
        yield GaugeMetricFamily(
            "txrealtime_engineio_outgoing_buffer_high_water_bytes",
            "The most message bytes ever queued for one client at once (compare with max_buffer).",
            value=stats.buffer_high_water,
        )
        yield GaugeMetricFamily(
            "txrealtime_engineio_max_buffer_bytes",
            "The max_buffer option: a client with more queued and not reading is disconnected.",
            value=manager.options.max_buffer,
        )

    def _socketio(self, server: Server) -> Iterator[Metric]:
        sockets = GaugeMetricFamily(
            "txrealtime_socketio_sockets", "Connected Socket.IO sockets, by namespace.", labels=["namespace"]
        )
        for label, count in sorted(namespace_counts(server).items()):
            sockets.add_metric([label], count)
        yield sockets
        yield GaugeMetricFamily(
            "txrealtime_socketio_clients", "Socket.IO connections (one per Engine.IO session).",
            value=len(server.clients),
        )
        timeouts = CounterMetricFamily(
            "txrealtime_socketio_ack_timeouts",
            "Acknowledgements not received in time: from one socket, or from every client of a broadcast.",
            labels=["kind"],
        )
        timeouts.add_metric(["socket"], server.ack_timeouts)
        timeouts.add_metric(["broadcast"], server.broadcast_ack_timeouts)
        yield timeouts

    def _redis(self, link: Any) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "txrealtime_redis_link_up", "1 while the Redis link is connected and subscribed, else 0.",
            value=1 if link.connected else 0,
        )
        yield CounterMetricFamily(
            "txrealtime_redis_link_losses", "Times the Redis link went down after being up.", value=link.losses
        )
        yield CounterMetricFamily(
            "txrealtime_redis_undelivered_messages",
            "Messages for other nodes not published: Redis unreachable or the publish failed.",
            value=link.undelivered,
        )
        yield CounterMetricFamily(
            "txrealtime_redis_missed_messages",
            "Broadcasts from other txrealtime nodes that never arrived here (their sequence numbers jumped).",
            value=link.missed,
        )
        yield CounterMetricFamily(
            "txrealtime_redis_deaf_spans",
            "Times this node's subscriptions were down after being up: what others published then never arrived.",
            value=link.deafness.spans,
        )
        yield CounterMetricFamily(
            "txrealtime_redis_deaf_seconds", "Seconds this node's subscriptions were down, in all.",
            value=link.deafness.seconds,
        )
        yield CounterMetricFamily(
            "txrealtime_redis_refused_messages",
            "Broadcasts and requests refused before anyone got them: the format cannot carry their payload.",
            value=link.refused,
        )
        yield CounterMetricFamily(
            "txrealtime_redis_malformed_messages", "Messages from Redis ignored because they are not well-formed.",
            value=link.malformed,
        )
        yield CounterMetricFamily(
            "txrealtime_redis_requests_timed_out",
            "Requests to other nodes (fetch_sockets, server_side_emit with acks...) not answered by all in time.",
            value=link.requests_timed_out,
        )
        yield GaugeMetricFamily(
            "txrealtime_redis_nodes", "txrealtime nodes heard from through Redis, this one included.",
            value=len(link.nodes()),
        )


def namespace_label(namespace: Namespace) -> str:
    """The ``namespace`` label of a namespace's samples: a dynamic namespace's child is counted under its
    parent's regular expression (its pattern), or its name (``/_N``) for a predicate; a label is at most 64
    characters and a count (:func:`txrealtime._logging.name_for_log`), so that names clients choose never
    become labels."""
    if isinstance(namespace, ParentNamespace):
        parent: ParentNamespace | None = namespace
    else:
        parent = namespace.parent
    if parent is None:
        return name_for_log(namespace.name)
    matcher = parent.matcher
    return name_for_log(matcher.pattern if isinstance(matcher, re.Pattern) else parent.name)


def namespace_counts(server: Server) -> dict[str, int]:
    """Connected sockets by :func:`namespace_label`: the namespaces that exist now, each dynamic one once."""
    counts = {namespace_label(parent): 0 for parent in server.dynamic_namespaces}
    for namespace in server.namespaces.values():
        label = namespace_label(namespace)
        counts[label] = counts.get(label, 0) + len(namespace.sockets)
    return counts


def metrics_registry(target: Server | SessionManager, link: Any = None, process: bool = True) -> CollectorRegistry:
    """A new ``CollectorRegistry`` holding a :class:`RealtimeCollector` for ``target``.

    With ``process`` it also holds prometheus-client's process, platform and
    garbage collector collectors (``process_resident_memory_bytes``,
    ``process_open_fds``, ``python_gc_*``...), as its global registry does.
    A registry of its own per server: two servers in one process, or tests,
    do not collide.
    """
    registry = CollectorRegistry()
    registry.register(RealtimeCollector(target, link))
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


class MetricsResource(Resource):
    """Serves a registry in Prometheus' text format (or OpenMetrics, when the scraper asks for it).

    ``registry`` defaults to :func:`metrics_registry` of ``target``; pass
    ``prometheus_client.REGISTRY`` after registering a
    :class:`RealtimeCollector` in it to serve your application's own metrics
    too. Rendered on the reactor thread (unlike prometheus-client's own
    Twisted resource, which renders on a thread pool): the collector reads
    live sessions, which only the reactor thread may do.
    """

    isLeaf = True

    def __init__(
        self, target: Server | SessionManager | None = None, *, link: Any = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """A resource serving ``registry``, or ``target``'s metrics.

        :param target: The server or session manager measured (when ``registry`` is not given).
        :param link: The Redis link, whose state is measured too.
        :param registry: The registry served.
        """
        super().__init__()  # type: ignore[no-untyped-call]
        if registry is None:
            if target is None:
                raise TypeError("MetricsResource needs a server (or session manager), or a registry")
            registry = metrics_registry(target, link)
        self.registry = registry
        """The registry served."""

    def render_GET(self, request: Request) -> bytes:
        """The metrics, in the format the ``Accept`` header asks for (OpenMetrics or Prometheus text)."""
        accept = request.getHeader(b"accept")
        encoder, content_type = choose_encoder(accept.decode("latin-1") if accept else "")
        body = encoder(self.registry)
        request.setHeader(b"content-type", content_type.encode("latin-1"))
        request.setHeader(b"cache-control", b"no-store")
        return body


def mount_metrics(
    root: Resource, target: Server | SessionManager, *, link: Any = None, metrics_path: str = "/metrics",
    health_path: str = "/healthz", registry: CollectorRegistry | None = None,
) -> tuple[MetricsResource, HealthResource]:
    """Put a :class:`MetricsResource` and a :class:`txrealtime.health.HealthResource` for ``target`` under ``root``.

    ``link`` is the Redis link (found on the server's adapter when not given);
    returns both resources.
    """
    metrics = MetricsResource(target, link=link, registry=registry)
    health = HealthResource(target, link=link)
    mount(root, metrics_path, metrics)
    mount(root, health_path, health)
    return metrics, health
