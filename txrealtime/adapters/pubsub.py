"""The pub/sub link an adapter shares rooms over: Redis (:class:`txrealtime.adapters.redis.RedisLink`) or the
workers' cluster channel (:class:`txrealtime.cluster.link.ClusterLink`).

:class:`txrealtime.adapters.redis.RedisAdapter` speaks Node's
``@socket.io/redis-adapter`` messages over any :class:`PubSubLink`: Redis
between hosts, or the master of ``twistd txrealtime --workers N`` between the
workers of one host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred

__all__ = ["Handler", "PubSubLink"]

Handler = Callable[[str, bytes], object]
"""Called with the channel and the message of each delivery."""


class PubSubLink(Protocol):
    """Publish and subscribe as Redis does; every process sharing the link hears what any of them publishes."""

    key: str
    """The channel prefix (Node's ``key`` option)."""
    uid: str
    """This process's name among those sharing the link (what :meth:`nodes` lists)."""
    reactor: Any
    requests_timeout: float
    """Seconds to wait for the answers of the other servers to a request."""
    requests_timed_out: int
    """Requests whose answers did not all come within ``requests_timeout`` (counted by the adapter)."""

    def start(self) -> None:
        """Connect (idempotent)."""

    @property
    def connected(self) -> bool:
        """Whether publications reach the other processes now."""

    def nodes(self) -> list[str]:
        """Uids of the processes known to be alive on the link (this one included)."""

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler`` for each message published on ``channel``."""

    def psubscribe(self, pattern: str, handler: Handler) -> None:
        """Call ``handler`` for each message published on a channel matching the glob ``pattern``."""

    def unsubscribe(self, channel: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``channel``."""

    def punsubscribe(self, pattern: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``pattern``."""

    def publish(self, channel: str, message: bytes) -> bool:
        """Send ``message`` to every subscriber of ``channel`` (this process's included); ``False`` if the link
        is down."""

    def numsub(self, channel: str) -> Deferred[int]:
        """How many subscribers ``channel`` has across the processes (``PUBSUB NUMSUB``)."""
