"""A worker's pub/sub link through its master: what :class:`txrealtime.adapters.classic.ClassicAdapter` needs,
without Redis.

The workers of ``twistd txrealtime --workers N`` share rooms, broadcasts,
``fetch_sockets`` and server-side emits with the classic adapter, the one
Redis users have (Node's ``@socket.io/redis-adapter`` format); only the link
differs: :class:`ClusterLink` sends :mod:`txrealtime.cluster.wire` frames to
the master, whose :class:`txrealtime.cluster.hub.Hub` relays each
publication to the subscribed workers, as Node's ``@socket.io/cluster-adapter``
relays through the primary process.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger

from .._logging import gate
from .._reactor import default_reactor, now
from ..adapters.losses import Outage
from ..adapters.pubsub import Handler
from ..protocol.acks import Pending
from .wire import (
    Frame,
    Members,
    Message,
    NumSub,
    NumSubReply,
    PSubscribe,
    Publish,
    PUnsubscribe,
    Subscribe,
    Unsubscribe,
    WireError,
)

__all__ = ["ClusterLink", "ClusterUnavailable", "FrameSender", "worker_uid"]

log = Logger(__name__, observer=gate)


def worker_uid(index: int) -> str:
    """The link uid of worker ``index`` (``w3``): what :meth:`ClusterLink.nodes` lists."""
    return f"w{index}"


class ClusterUnavailable(ConnectionError):
    """The master cannot be reached: only this worker was acted upon."""


class FrameSender(Protocol):
    """Where a link's frames go: the worker's channel to its master."""

    def send(self, frame: Frame) -> bool:
        """Send ``frame`` to the master; ``False`` if the channel is closed."""


class ClusterLink:
    """One worker's link to the others through the master (a :class:`txrealtime.adapters.pubsub.PubSubLink`)."""

    def __init__(
        self, channel: FrameSender | None = None, *, key: str = "socket.io", requests_timeout: float = 5.0,
        reactor: Any = None, index: int = 0,
    ) -> None:
        self.key = key
        self.index = index
        """This worker's index among the master's workers."""
        self.uid = worker_uid(index)
        """This worker's name among the processes sharing the link: ``w`` and its index."""
        self.requests_timeout = requests_timeout
        self.reactor = default_reactor(reactor)
        self.outage = Outage("Cluster channel", log, lambda: now(self.reactor))
        """Messages not sent because the master was unreachable, logged once per outage."""
        self.requests_timed_out = 0
        """Requests whose answers did not all come in time (counted by the adapter, read by the metrics)."""
        self.refused = 0
        """Broadcasts and requests whose payload cannot be carried to the other workers (counted by the adapter)."""
        self.malformed = 0
        """Messages from other workers ignored because they are not well-formed (counted by the adapter)."""
        self.missed = 0
        """Broadcasts from other workers that never arrived (counted by the adapter)."""
        self._channel = channel
        self._channels: dict[str, list[Handler]] = {}
        self._patterns: dict[str, list[Handler]] = {}
        self._numsub: Pending[int, Deferred[int]] = Pending(self.reactor)
        self._ids = itertools.count(1)
        self._members: list[int] = []

    @property
    def undelivered(self) -> int:
        """Messages not sent because the master was unreachable."""
        return self.outage.undelivered

    def attach(self, channel: FrameSender) -> None:
        """Send through ``channel`` from now on, subscribing it to everything subscribed so far."""
        self._channel = channel
        self.outage.back()
        for name in self._channels:
            channel.send(Subscribe(name))
        for pattern in self._patterns:
            channel.send(PSubscribe(pattern))

    def detach(self) -> None:
        """The channel closed: pending counts fail, publications are counted as undelivered."""
        self._channel = None
        self._members = []
        self.outage.lost("the master is gone")
        for d in self._numsub.take_all():
            d.errback(ClusterUnavailable("the master is gone"))

    def start(self) -> None:
        """Nothing to do: the channel is the worker's (idempotent, as :class:`PubSubLink` asks)."""

    @property
    def connected(self) -> bool:
        """Whether the channel to the master is open."""
        return self._channel is not None

    def nodes(self) -> list[str]:
        """Uids of the workers the master last said are connected (this one included)."""
        return sorted({self.uid, *(worker_uid(i) for i in self._members)})

    def _send(self, frame: Frame) -> bool:
        return self._channel is not None and self._channel.send(frame)

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler(channel, message)`` for each message on ``channel``."""
        self._add(self._channels, channel, handler, Subscribe(channel))

    def psubscribe(self, pattern: str, handler: Handler) -> None:
        """Call ``handler(channel, message)`` for each message on a channel matching the glob ``pattern``."""
        self._add(self._patterns, pattern, handler, PSubscribe(pattern))

    def unsubscribe(self, channel: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``channel`` (the master is told once no handler is left)."""
        self._remove(self._channels, channel, handler, Unsubscribe(channel))

    def punsubscribe(self, pattern: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``pattern`` (the master is told once no handler is left)."""
        self._remove(self._patterns, pattern, handler, PUnsubscribe(pattern))

    def _add(self, table: dict[str, list[Handler]], name: str, handler: Handler, frame: Frame) -> None:
        first = name not in table
        table.setdefault(name, []).append(handler)
        if first:
            self._send(frame)

    def _remove(self, table: dict[str, list[Handler]], name: str, handler: Handler, frame: Frame) -> None:
        handlers = table.get(name, [])
        if handler in handlers:
            handlers.remove(handler)
        if not handlers and name in table:
            del table[name]
            self._send(frame)

    def publish(self, channel: str, message: bytes) -> bool:
        """Send ``message`` to every worker subscribed to ``channel``; ``False`` if the master is unreachable."""
        if self._send(Publish(channel, message)):
            return True
        self.outage.dropped(why="closed")
        return False

    def numsub(self, channel: str) -> Deferred[int]:
        """How many workers subscribe to ``channel``."""
        request_id = next(self._ids)
        d: Deferred[int] = Deferred()
        self._numsub.add(request_id, d, self.requests_timeout, self._timed_out)
        if not self._send(NumSub(request_id, channel)):
            self._numsub.take(request_id)
            return fail(ClusterUnavailable("the master is unreachable"))
        return d

    @staticmethod
    def _timed_out(d: Deferred[int]) -> None:
        d.errback(TimeoutError("the master did not count subscribers in time"))

    def deliver(self, frame: Message | NumSubReply | Members) -> None:
        """Act on a frame from the master: call the handlers of a message, answer a count, or note who is up."""
        if isinstance(frame, Members):
            try:
                self._members = frame.parsed()
            except WireError as e:
                log.error("Bad list of workers from the master: {error}", error=str(e))
            return
        if isinstance(frame, NumSubReply):
            d = self._numsub.take(frame.id)
            if d is not None:
                d.callback(frame.count)
            return
        table, name = (self._patterns, frame.pattern) if frame.pattern else (self._channels, frame.channel)
        handlers: list[Callable[[str, bytes], object]] = list(table.get(name, ()))
        for handler in handlers:
            try:
                handler(frame.channel, frame.message)
            except Exception:
                log.failure("Handling a cluster message on {channel} failed", channel=frame.channel)
