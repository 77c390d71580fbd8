"""Rooms of one namespace shared through Redis (or any pub/sub link), as Node's ``@socket.io/redis-adapter``
(v8) shares them.

Each namespace gets a :class:`RedisAdapter` on the process's
:class:`txrealtime.adapters.redis.RedisLink`. What it publishes for each adapter operation and how it acts
on what other nodes publish is :class:`txrealtime.adapters.broker.BrokerAdapter`'s (shared with the sharded
adapter); here are the classic format's channels and encodings (:mod:`txrealtime.adapters.redis.wire`,
:mod:`txrealtime.adapters.redis.requests`) and the server count (``PUBSUB NUMSUB`` of the request channel).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred

from ..broker import BrokerAdapter, BrokerLink, RemoteSocket
from ..pubsub import PubSubLink
from ..sequence import Sequences
from .requests import Request, Response, decode_request, decode_response
from .wire import Broadcast, Channels, WireError, decode_broadcast, encode

__all__ = ["AdapterLink", "RedisAdapter", "RemoteSocket", "redis_adapter"]


class AdapterLink(PubSubLink, BrokerLink, Protocol):
    """What the classic adapter runs over: a pub/sub link (:class:`txrealtime.adapters.redis.RedisLink`, or the
    workers' :class:`txrealtime.cluster.link.ClusterLink`) that also keeps the adapter's counters."""


class RedisAdapter(BrokerAdapter):
    """Rooms of one namespace, with broadcasts and requests shared through Redis."""

    def __init__(self, namespace: Any, link: AdapterLink) -> None:
        """The adapter of ``namespace`` (``redis_adapter(link)`` makes them).

        :param namespace: The namespace whose rooms these are.
        :param link: The connections to Redis (or to a ``--workers`` master) shared by every namespace.
        """
        super().__init__(namespace, link)
        self.link: AdapterLink = link
        """The connections to Redis shared by every namespace."""
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


def redis_adapter(link: AdapterLink) -> Callable[[Any], RedisAdapter]:
    """An adapter factory for :class:`txrealtime.socketio.Server`: ``Server(adapter=redis_adapter(link))``.

    ``link`` is a :class:`txrealtime.adapters.redis.RedisLink`, or any other :class:`AdapterLink` (the
    workers of one host share a :class:`txrealtime.cluster.link.ClusterLink`).

    Starts the link if it is not started yet.
    """
    link.start()
    return lambda namespace: RedisAdapter(namespace, link)
