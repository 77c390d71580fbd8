"""Rooms of one namespace shared over any pub/sub link, as Node's ``@socket.io/redis-adapter`` (v8) shares
them through Redis: the classic adapter.

Each namespace gets a :class:`ClassicAdapter` on the process's link, which may be any
:class:`AdapterLink`: a :class:`txrealtime.adapters.redis.RedisLink` between hosts, or the
:class:`txrealtime.cluster.link.ClusterLink` through which the workers of ``twistd txrealtime --workers N``
reach each other. Nothing here is Redis's: what the adapter publishes for each adapter operation and how
it acts on what other nodes publish is :class:`txrealtime.adapters.broker.BrokerAdapter`'s (shared with the
sharded and streams adapters); here are the classic format's channels and encodings (Node's, in
:mod:`txrealtime.adapters.redis.wire` and :mod:`txrealtime.adapters.redis.requests`, pure) and the server
count (``PUBSUB NUMSUB`` of the request channel, which every link answers).

Redis users know it as :class:`txrealtime.adapters.redis.adapter.RedisAdapter`, which
:func:`txrealtime.adapters.redis.adapter.redis_adapter` makes: the same adapter under the Redis name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred

from .broker import BrokerAdapter, BrokerLink
from .pubsub import PubSubLink
from .redis.requests import Request, Response, decode_request, decode_response
from .redis.wire import Broadcast, Channels, WireError, decode_broadcast, encode
from .sequence import Sequences

__all__ = ["AdapterLink", "ClassicAdapter", "classic_adapter"]


class AdapterLink(PubSubLink, BrokerLink, Protocol):
    """What the classic adapter runs over: a pub/sub link (:class:`txrealtime.adapters.redis.RedisLink`, the
    workers' :class:`txrealtime.cluster.link.ClusterLink`, or your own) that also keeps the adapter's counters."""


class ClassicAdapter(BrokerAdapter):
    """Rooms of one namespace, with broadcasts and requests shared over a pub/sub link (Redis, or the
    ``--workers`` master)."""

    def __init__(self, namespace: Any, link: AdapterLink) -> None:
        """The adapter of ``namespace`` (``classic_adapter(link)`` makes them).

        :param namespace: The namespace whose rooms these are.
        :param link: The link to Redis (or to a ``--workers`` master) shared by every namespace.
        """
        super().__init__(namespace, link)
        self.link: AdapterLink = link
        """The link shared by every namespace."""
        self.channels = Channels(link.key, namespace.name)
        """The namespace's channel names."""
        self.channel = self.channels.broadcast
        """The broadcast channel (Node's ``channel``)."""
        self.request_channel = self.channels.request
        """The channel requests to the other servers go to."""
        self.response_channel = self.channels.response
        """The channel the other servers answer on."""
        self.specific_response_channel = self.channels.specific_response(self.uid)
        """The channel answers meant for this server alone come on."""
        self._pattern = self.channels.broadcast_pattern
        self._sequences = Sequences(link)
        self._own = self.uid.encode()
        link.psubscribe(self._pattern, self._on_broadcast)
        link.subscribe(self.request_channel, self._on_request)
        link.subscribe(self.response_channel, self._on_response)
        link.subscribe(self.specific_response_channel, self._on_response)

    def close(self) -> None:
        """Unsubscribe, and give up on pending requests: no timer is left, pending results fail."""
        self.link.punsubscribe(self._pattern, self._on_broadcast)
        self.link.unsubscribe(self.request_channel, self._on_request)
        self.link.unsubscribe(self.response_channel, self._on_response)
        self.link.unsubscribe(self.specific_response_channel, self._on_response)
        super().close()

    # -- the classic format -----------------------------------------------------------------------

    def _encode_broadcast(self, message: Broadcast) -> tuple[str, bytes]:
        return self.channels.for_rooms(message.opts.rooms), encode(message)

    def _publish_encoded(self, channel: str, data: bytes) -> bool:
        stamped = self._sequences.stamp(data)
        if self.link.publish(channel, stamped):
            return True
        if stamped is not data:
            self._sequences.unsent()
        return False

    def _publish_request(self, request: Request) -> bool:
        return self.link.publish(self.request_channel, encode(request))

    def _publish_response(self, response: Response, request: Request) -> None:
        self.link.publish(self.response_channel, encode(response))

    def _servers(self) -> Deferred[int]:
        return self.link.numsub(self.request_channel)

    def _on_broadcast(self, channel: str, message: bytes) -> None:
        self._sequences.check(message, self._own)
        room = self.channels.room_of(channel)
        if room and room not in self.rooms and self.recovery is None:
            return  # nobody here; with recovery on, a socket that left may come back for it: it is logged
        try:
            broadcast = decode_broadcast(message)
        except WireError as e:
            self._malformed("a malformed broadcast", e)
            return
        self._received_broadcast(broadcast)

    def _on_request(self, channel: str, message: bytes) -> None:
        try:
            request = decode_request(message)
        except WireError as e:
            self._malformed("a malformed request", e)
            return
        if request is not None:
            self._received_request(request)

    def _on_response(self, channel: str, message: bytes) -> None:
        try:
            response = decode_response(message, self._pending_kind)
        except WireError as e:
            self._malformed("a malformed response", e)
            return
        if response is not None:
            self._received_response(response)


def classic_adapter(link: AdapterLink) -> Callable[[Any], ClassicAdapter]:
    """An adapter factory for :class:`txrealtime.socketio.Server`: ``Server(adapter=classic_adapter(link))``.

    ``link`` is any :class:`AdapterLink`: the workers of one host share a
    :class:`txrealtime.cluster.link.ClusterLink`; on a :class:`txrealtime.adapters.redis.RedisLink`,
    :func:`txrealtime.adapters.redis.adapter.redis_adapter` does the same.

    Starts the link if it is not started yet.
    """
    link.start()
    return lambda namespace: ClassicAdapter(namespace, link)
