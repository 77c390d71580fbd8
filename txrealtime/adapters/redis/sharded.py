"""Rooms of one namespace shared through Redis sharded pub/sub, as Node's ``createShardedAdapter``
(``@socket.io/redis-adapter`` 8.3) shares them.

Each namespace gets a :class:`ShardedRedisAdapter` on the process's
:class:`txrealtime.adapters.redis.ShardedRedisLink`. The logic is
:class:`txrealtime.adapters.broker.BrokerAdapter`'s (the classic adapter's too); the messages are
``socket.io-adapter``'s cluster messages (:mod:`txrealtime.adapters.cluster_messages`); the channels, for a
prefix (``socket.io``) and a namespace::

    {prefix}#{nsp}#           the namespace's channel: broadcasts, requests; every node subscribes
    {prefix}#{nsp}#{uid}#     the answers to adapter ``uid``'s requests (its uid: 16 hex digits)
    {prefix}#{nsp}#{room}#    broadcasts to exactly that one room, in the dynamic modes

With ``subscription_mode`` ``dynamic`` (the default), a node subscribes to the channel of each room it
holds that is not a socket's own room, and a broadcast to exactly one room that does not look like a socket
id (20 characters) goes to that room's channel, so only the nodes holding the room receive it;
``dynamic-private`` does the same for every room, ``static`` for none. A broadcast that wants acks always
goes to the namespace's channel. The server count is ``PUBSUB SHARDNUMSUB`` of the namespace's channel,
summed over the masters.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed

from ...socketio.adapter import BroadcastOptions
from ..broker import BrokerAdapter, wire_options
from ..cluster_messages import Body, Heartbeat, decode_message, encode_message
from ..sequence import Sequences
from .requests import (
    BroadcastAckResponse,
    ClientCountResponse,
    FetchResponse,
    Request,
    Response,
    ServerSideEmitResponse,
)
from .sharded_link import ShardedRedisLink
from .wire import Broadcast, WireError, WireOptions

__all__ = ["ShardedRedisAdapter", "sharded_adapter"]

_RESPONSES = (FetchResponse, ServerSideEmitResponse, ClientCountResponse, BroadcastAckResponse)


def looks_like_a_socket_id(room: str) -> bool:
    """Node's test: a 20-character room is taken for a socket's own room."""
    return len(room) == 20


class ShardedRedisAdapter(BrokerAdapter):
    """Rooms of one namespace, with broadcasts and requests shared through Redis sharded pub/sub."""

    def __init__(self, namespace: Any, link: ShardedRedisLink) -> None:
        """The adapter of ``namespace`` (``sharded_adapter(link)`` makes them).

        :param namespace: The namespace whose rooms these are.
        :param link: The link to the Redis Cluster shared by every namespace.
        """
        super().__init__(namespace, link, uid=secrets.token_hex(8))
        self.link: ShardedRedisLink = link
        """The link to the Redis Cluster shared by every namespace."""
        self.mode = link.subscription_mode
        """Which rooms get a channel of their own (the link's ``subscription_mode``)."""
        self.channel = f"{link.key}#{namespace.name}#"
        """The namespace's channel."""
        self.response_channel = self.answers_to(self.uid)
        """Where the answers to this adapter's requests come."""
        self._sequences = Sequences(link)
        link.subscribe(self.channel, self._on_message)
        link.subscribe(self.response_channel, self._on_message)
        if self.mode != "static":
            self.on("create-room", self._room_created)
            self.on("delete-room", self._room_deleted)

    def answers_to(self, uid: str) -> str:
        """The channel of the answers to adapter ``uid``'s requests."""
        return f"{self.channel}{uid}#"

    def room_channel(self, room: str) -> str:
        """A room's own channel."""
        return f"{self.channel}{room}#"

    def _own_channel(self, room: str) -> bool:
        """Whether ``room`` has a channel of its own here (a socket's own room has not, in ``dynamic``)."""
        return self.mode == "dynamic-private" or (self.mode == "dynamic" and room not in self.sids)

    def _room_created(self, room: str) -> None:
        if self._own_channel(room):
            self.link.subscribe(self.room_channel(room), self._on_message)

    def _room_deleted(self, room: str) -> None:
        if self._own_channel(room):
            self.link.unsubscribe(self.room_channel(room), self._on_message)

    def close(self) -> None:
        """Unsubscribe from every channel, and give up on pending requests."""
        self.link.unsubscribe(self.channel, self._on_message)
        self.link.unsubscribe(self.response_channel, self._on_message)
        if self.mode != "static":
            for room in list(self.rooms):
                self._room_deleted(room)
            self.off("create-room", self._room_created)
            self.off("delete-room", self._room_deleted)
        super().close()

    # -- the format and the channels --------------------------------------------------------------

    def _encode(self, body: Body, channel: str) -> bytes:
        seq = self._sequences.next() if channel == self.channel else None
        try:
            return encode_message(body, self.uid, self.namespace.name, seq)
        except BaseException:
            if seq is not None:
                self._sequences.unsent()
            raise

    def _publish(self, channel: str, data: bytes) -> bool:
        if self.link.publish(channel, data):
            return True
        if channel == self.channel:
            self._sequences.unsent()
        return False

    def _encode_broadcast(self, message: Broadcast) -> tuple[str, bytes]:
        rooms = message.opts.rooms
        if len(rooms) == 1 and (
            self.mode == "dynamic-private" or (self.mode == "dynamic" and not looks_like_a_socket_id(rooms[0]))
        ):
            channel = self.room_channel(rooms[0])
        else:
            channel = self.channel
        return channel, self._encode(message, channel)

    def _publish_encoded(self, channel: str, data: bytes) -> bool:
        return self._publish(channel, data)

    def _publish_request(self, request: Request) -> bool:
        return self._publish(self.channel, self._encode(request, self.channel))  # type: ignore[arg-type]

    def _publish_response(self, response: Response, request: Request) -> None:
        if request.uid is not None and isinstance(response, _RESPONSES):
            channel = self.answers_to(request.uid)
            self._publish(channel, self._encode(response, channel))

    def _servers(self) -> Deferred[int]:
        return self.link.numsub(self.channel)

    def _selection(self, opts: BroadcastOptions) -> WireOptions:
        return wire_options(opts)  # Node writes flags in every selection ({} when none)

    def all_rooms(self) -> Deferred[set[str]]:
        """This node's rooms: the cluster messages have no request for the others' (nor has Node's adapter)."""
        return succeed(set(self.rooms))

    def _on_message(self, channel: str, data: bytes) -> None:
        try:
            message = decode_message(data)
        except WireError as e:
            self._malformed("a malformed message", e)
            return
        if message is None or message.uid == self.uid or message.nsp != self.namespace.name:
            return
        if message.seq is not None and channel == self.channel:
            self._sequences.seen(message.uid, message.seq)
        body = message.body
        if isinstance(body, Broadcast):
            self._received_broadcast(body)
        elif isinstance(body, _RESPONSES):
            self._received_response(body)
        elif not isinstance(body, Heartbeat):
            self._received_request(body)


def sharded_adapter(link: ShardedRedisLink) -> Callable[[Any], ShardedRedisAdapter]:
    """An adapter factory for :class:`txrealtime.socketio.Server`: ``Server(adapter=sharded_adapter(link))``.

    Starts the link if it is not started yet.
    """
    link.start()
    return lambda namespace: ShardedRedisAdapter(namespace, link)
