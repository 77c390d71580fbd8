"""The pub/sub link an adapter shares rooms over: Redis (:class:`txrealtime.adapters.redis.RedisLink`) or the
workers' cluster channel (:class:`txrealtime.cluster.link.ClusterLink`).

:class:`txrealtime.adapters.classic.ClassicAdapter` speaks Node's
``@socket.io/redis-adapter`` messages over any :class:`PubSubLink`: Redis
between hosts, or the master of ``twistd txrealtime --workers N`` between the
workers of one host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from .._logging import gate, name_for_log

__all__ = ["Handler", "PubSubLink", "Subscriptions"]

log = Logger(__name__, observer=gate)

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


class Subscriptions:
    """Who hears what: the handlers of each channel and of each pattern, and when the broker must be told.

    ``tell(kind, name)`` is called when a name gets its first handler (``kind``
    is ``channel_kind`` for channels, ``psubscribe`` for patterns), ``untell``
    when it loses its last. :meth:`deliver` calls the handlers of a message.
    """

    def __init__(
        self, tell: Callable[[str, str], object], untell: Callable[[str, str], object], channel_kind: str = "subscribe"
    ) -> None:
        self._tell = tell
        self._untell = untell
        self._channel_kind = channel_kind
        self._channels: dict[str, list[Handler]] = {}
        self._patterns: dict[str, list[Handler]] = {}

    def _table(self, kind: str) -> dict[str, list[Handler]]:
        return self._patterns if kind == "psubscribe" else self._channels

    def add(self, kind: str, name: str, handler: Handler) -> None:
        """Call ``handler`` for messages on ``name`` (a channel, or a pattern if ``kind`` is ``psubscribe``)."""
        table = self._table(kind)
        first = name not in table
        table.setdefault(name, []).append(handler)
        if first:
            self._tell(kind, name)

    def remove(self, kind: str, name: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``name``."""
        table = self._table(kind)
        handlers = table.get(name, [])
        if handler in handlers:
            handlers.remove(handler)
        if not handlers and name in table:
            del table[name]
            self._untell(kind, name)

    def names(self, kind: str) -> list[str]:
        """The channels (or patterns) that have handlers."""
        return list(self._table(kind))

    def deliver(self, channel: bytes, message: bytes, pattern: bytes | None) -> None:
        """Call the handlers of ``channel`` (of ``pattern`` if it matched one) with the channel's name and
        ``message``; a handler that raises is logged and the others still run."""
        name = channel.decode("utf-8", "replace")
        if pattern is not None:
            handlers = self._patterns.get(pattern.decode("utf-8", "replace"))
        else:
            handlers = self._channels.get(name)
        if not handlers:
            return
        for handler in list(handlers):
            try:
                handler(name, message)
            except Exception:
                log.failure("Handling a message on {channel} failed", channel=name_for_log(name))
