"""The link to a Redis Cluster for the sharded adapter: ``SPUBLISH`` and ``SSUBSCRIBE`` on the masters.

A :class:`ShardedRedisLink` discovers the cluster from any of its nodes (``redis://any-node:port``; a
single Redis 7 serves as a cluster of one) and holds a :class:`txrealtime.redis.ClusterClient`: each shard
channel is subscribed on the master of its slot and follows it through resharding and failover, and
each publication goes to the master of its channel's slot. Everything else is
:class:`txrealtime.adapters.redis.link.BaseRedisLink`'s, as for the classic link: events, heartbeats
between txrealtime nodes (on the shard channel ``{key}-nodes#``), and losses counted and logged once per
outage.

While a master is unreachable, only the channels it serves are cut off: publications to them are
counted in :attr:`ShardedRedisLink.undelivered`, the others go out; the link reports itself down
(:class:`txrealtime.adapters.redis.RedisDown`) until the cluster is whole again.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail

from ...redis.cluster import ClusterClient, ClusterDown, ClusterUp
from ...redis.connection import RedisUnavailable
from ...redis.slots import key_slot
from .link import BaseRedisLink, numsub_count

__all__ = ["SUBSCRIPTION_MODES", "ShardedRedisLink"]

SUBSCRIPTION_MODES = ("static", "dynamic", "dynamic-private")
"""Node's ``subscriptionMode`` values for the sharded adapter: which rooms get a channel of their own (see
:class:`txrealtime.adapters.redis.ShardedRedisAdapter`)."""


class ShardedRedisLink(BaseRedisLink):
    """A process's link to a Redis Cluster through sharded pub/sub; share it between all namespaces
    (``Server(adapter=sharded_adapter(link))``)."""

    channel_kind = "ssubscribe"
    """Shard channels: ``SSUBSCRIBE``."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379",
        *,
        key: str = "socket.io",
        subscription_mode: str = "dynamic",
        requests_timeout: float = 5.0,
        heartbeat_interval: float = 5.0,
        heartbeat_timeout: float = 15.0,
        reconnect_max_delay: float = 5.0,
        health_check_interval: float = 5.0,
        refresh_interval: float = 30.0,
        reactor: Any = None,
    ) -> None:
        """A link to the Redis Cluster one of whose nodes is at ``url``, not connected until :meth:`start`.

        :param url: ``redis://[user:password@]host[:port]`` of any node (``rediss://`` for TLS; database 0 only).
        :param key: The channels' prefix (the ``channelPrefix`` option of ``createShardedAdapter``).
        :param subscription_mode: Node's ``subscriptionMode``: ``static``, ``dynamic`` or ``dynamic-private``.
        :param requests_timeout: Seconds a request to the other servers (``fetch_sockets``...) waits for their answers.
        :param heartbeat_interval: Seconds between two heartbeats to the other servers.
        :param heartbeat_timeout: Seconds without a heartbeat after which another server counts as gone.
        :param reconnect_max_delay: The longest wait between two reconnection attempts.
        :param health_check_interval: Seconds between two health checks of each connection.
        :param refresh_interval: Seconds between two readings of the cluster's slot map (besides those a move,
            a refusal or a lost master prompt).
        :param reactor: The reactor it connects with; the global one if not given.
        """
        if subscription_mode not in SUBSCRIPTION_MODES:
            raise ValueError(f"subscription_mode is one of {', '.join(SUBSCRIPTION_MODES)}, not {subscription_mode!r}")
        super().__init__(
            url, key=key, requests_timeout=requests_timeout, heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout, reconnect_max_delay=reconnect_max_delay, reactor=reactor,
        )
        self.subscription_mode = subscription_mode
        """Node's ``subscriptionMode``: ``dynamic`` (rooms other than socket ids get their own channel, the
        default), ``dynamic-private`` (every room does) or ``static`` (none)."""
        self.cluster = ClusterClient(
            self.url, reactor=self.reactor, name=f"txrealtime:{self.uid}", reconnect_max_delay=reconnect_max_delay,
            health_check_interval=health_check_interval, refresh_interval=refresh_interval, on_message=self._message,
        )
        """The connections to the cluster's masters."""
        self.cluster.subscribe_events(self._cluster_event)

    @property
    def connected(self) -> bool:
        """Whether the link is started, every master connected and every shard channel subscribed where it
        lives."""
        return self._started and self.cluster.connected

    def _can_publish(self, channel: str) -> bool:
        return self._started and self.cluster.reaches(key_slot(channel))

    def _start_clients(self) -> None:
        self.cluster.start()

    def _stop_clients(self) -> Deferred[Any]:
        return self.cluster.stop()

    def _cluster_event(self, event: ClusterUp | ClusterDown) -> None:
        if isinstance(event, ClusterDown):
            self._state_changed(event.reason, hearing=False)
        else:
            self._state_changed(hearing=True)

    def _tell(self, kind: str, name: str) -> None:
        self.cluster.ssubscribe([name])

    def _untell(self, kind: str, name: str) -> None:
        self.cluster.sunsubscribe([name])

    def _publish_command(self, channel: str, message: bytes) -> Deferred[Any]:
        return self.cluster.execute("SPUBLISH", channel, message, key=channel)

    def numsub(self, channel: str) -> Deferred[int]:
        """How many connections subscribe to the shard channel ``channel``: ``PUBSUB SHARDNUMSUB`` summed over
        the masters, as Node's sharded adapter counts servers."""
        if not self.connected:
            return fail(RedisUnavailable("the Redis Cluster is not whole"))
        d = self.cluster.execute_on_masters("PUBSUB", "SHARDNUMSUB", channel)
        return d.addCallback(lambda replies: sum(numsub_count(r) for r in replies))
