"""Acknowledgements through the emitter: a broadcast whose clients' answers come back from every server.

The request is the Redis adapter's own broadcast-with-acks (``@socket.io/redis-adapter`` 8.x, type 7),
so txrealtime nodes and Node ``socket.io`` nodes both answer it::

    request   {key}-request#{nsp}#          MessagePack {uid, requestId, type: 7, packet, opts}
    answers   {key}-response#{nsp}#          JSON {type: 8, requestId, clientCount}   one per server
              (or {key}-response#{nsp}#{uid}#)  MessagePack {type: 9, requestId, packet}   one per client's ack

For servers on the streams adapter (``streams``), the request and answers are that adapter's published
cluster messages instead (``@socket.io/redis-streams-adapter``'s own broadcast with acks; Node's streams
emitter has none)::

    request   {key}#{nsp}#                  MessagePack {type: 3, data: {packet, requestId, opts}, uid, nsp}
    answers   {key}#{nsp}#{uid}#            MessagePack {type: 11, data: {requestId, clientCount}, ...}  per server
                                            MessagePack {type: 12, data: {requestId, packet}, ...}   per client's ack

For servers on the sharded adapter (``sharded``: Node's ``createShardedAdapter``, whose own
``io.emitWithAck`` this is), the same messages on the same channels, with ``SPUBLISH``/``SSUBSCRIBE`` and
``PUBSUB SHARDNUMSUB``, each JSON unless it carries binary (then MessagePack), as that adapter writes them.

The emitter subscribes to the answer channels under a uid of its own, makes sure Redis has
subscribed it (``PUBSUB NUMSUB`` of its own channel) before it publishes, counts the servers
(``PUBSUB NUMSUB`` of the request channel), and is done once every server reported its client count
and every counted client answered, or at the timeout, with what came by then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from ._events import check_event
from ._reactor import DelayedCall, cancel
from .adapters.cluster_messages import decode_message, encode_message
from .adapters.redis.requests import BroadcastAckRequest, BroadcastAckResponse, ClientCountResponse, decode_response
from .adapters.redis.streams_wire import decode_published, encode_published
from .adapters.redis.wire import Channels, RequestType, WireError, WireFlags, WireOptions, WirePacket, encode, new_id

if TYPE_CHECKING:
    from .adapters.redis.link import RedisLink

__all__ = ["EmitterAcks", "Gathering", "emit_with_ack", "emit_with_ack_blocking"]


@dataclass
class EmitterAcks:
    """The clients' answers to an emit through the emitter, and how complete they are."""

    answers: list[Any] = field(default_factory=list)
    """One value per client that acknowledged, in arrival order."""
    servers: int = 0
    """The servers subscribed to the namespace's requests when the emit went out."""
    reported: int = 0
    """The servers that said how many of their clients got the event."""
    clients: int = 0
    """The clients those servers sent it to."""

    @property
    def complete(self) -> bool:
        """Whether every server reported and every client it counted answered (else the timeout came first)."""
        return self.reported >= self.servers and len(self.answers) >= self.clients


class Gathering:
    """One emit's answers as they come (no I/O): the request to publish, and what each answer adds."""

    def __init__(
        self,
        key: str,
        nsp: str,
        event: str,
        args: Iterable[Any],
        rooms: Iterable[str],
        except_rooms: Iterable[str],
        streams: bool = False,
        sharded: bool = False,
    ) -> None:
        """The request for ``event`` with ``args`` to the clients of ``nsp`` in ``rooms`` but ``except_rooms``, for
        servers on the classic adapter whose channels start with ``key`` or, with ``streams`` (``sharded``), on
        the streams (sharded) adapter whose channel prefix is ``key``."""
        if streams and sharded:
            raise ValueError("the servers are on the streams adapter or on the sharded one, not both")
        check_event(event)
        uid, self.request_id = new_id(), new_id()
        self.streams = streams
        """Whether the servers are on the streams adapter."""
        self.sharded = sharded
        """Whether the servers are on the sharded adapter."""
        request = BroadcastAckRequest(
            uid=uid,
            request_id=self.request_id,
            packet=WirePacket(data=[event, *args], nsp=nsp),
            opts=WireOptions(rooms=tuple(rooms), except_=tuple(except_rooms), flags=WireFlags()),
        )
        channels = Channels(key, nsp)
        cluster = streams or sharded  # the cluster adapters' messages and channels
        self.request_channel = f"{key}#{nsp}#" if cluster else channels.request
        """Where the request goes (whose subscribers are the servers)."""
        self.answer_channels = [f"{key}#{nsp}#{uid}#"] if cluster else [
            channels.response, channels.specific_response(uid)]
        """Where answers come, to subscribe to in this order (the last one is the emitter's own)."""
        if sharded:
            self.request = encode_message(request, uid, nsp)
        else:
            self.request = encode_published(request, uid, nsp) if streams else encode(request)
        """The request's bytes."""
        self.result = EmitterAcks()
        """What came so far."""

    def _kind(self, answering: str) -> RequestType | None:
        return RequestType.BROADCAST if answering == self.request_id else None

    def receive(self, message: bytes) -> bool:
        """Count one message of an answer channel; whether the answers are now complete."""
        response: Any
        try:
            if self.streams or self.sharded:
                decoded = decode_published(message) if self.streams else decode_message(message)
                response = decoded.body if decoded is not None else None
                if getattr(response, "request_id", None) != self.request_id:
                    response = None
            else:
                response = decode_response(message, self._kind)
        except WireError:
            response = None  # another asker's answer, or garbage: not ours
        if isinstance(response, ClientCountResponse):
            self.result.reported += 1
            self.result.clients += response.client_count
        elif isinstance(response, BroadcastAckResponse):
            self.result.answers.append(response.value)
        return self.result.complete


async def emit_with_ack(
    link: RedisLink,
    key: str,
    nsp: str,
    event: str,
    args: Iterable[Any],
    timeout: float,
    rooms: Iterable[str] = (),
    except_rooms: Iterable[str] = (),
    streams: bool = False,
    sharded: bool = False,
) -> EmitterAcks:
    """Emit ``event`` to the selected clients of every server through ``link`` and gather their
    acknowledgements until all came or ``timeout`` seconds passed (see
    :meth:`txrealtime.emitter.TwistedEmitter.emit_with_ack`); ``streams`` for servers on the streams adapter,
    ``sharded`` for servers on the sharded adapter (``link`` a ``ShardedRedisLink``)."""
    gathering = Gathering(key, nsp, event, args, rooms, except_rooms, streams, sharded)
    done: Deferred[EmitterAcks] = Deferred()
    timer: DelayedCall | None = None

    def finish() -> None:
        nonlocal timer
        timer = cancel(timer)
        if not done.called:
            done.callback(gathering.result)

    def on_response(channel: str, message: bytes) -> None:
        if gathering.receive(message):
            finish()

    for channel in gathering.answer_channels:
        link.subscribe(channel, on_response)
    try:
        # Subscriptions go in order on one connection: once the last is in place, so are the others.
        while await link.numsub(gathering.answer_channels[-1]) < 1:
            await _turn(link)
        gathering.result.servers = await link.numsub(gathering.request_channel)
        await link.send(gathering.request_channel, gathering.request)
        if gathering.result.complete:
            return gathering.result
        timer = link.reactor.callLater(timeout, finish)
        return await done
    finally:
        timer = cancel(timer)
        for channel in gathering.answer_channels:
            link.unsubscribe(channel, on_response)


def emit_with_ack_blocking(
    redis: Any,
    key: str,
    nsp: str,
    event: str,
    args: Iterable[Any],
    timeout: float,
    rooms: Iterable[str] = (),
    except_rooms: Iterable[str] = (),
    streams: bool = False,
    sharded: bool = False,
) -> EmitterAcks:
    """The same through a ``redis``-py client, blocking the calling thread up to ``timeout`` seconds (see
    :meth:`txrealtime.emitter.Emitter.emit_with_ack`); with ``sharded``, a ``redis.cluster.RedisCluster`` or a
    ``redis.Redis`` of a Redis 7."""
    gathering = Gathering(key, nsp, event, args, rooms, except_rooms, streams, sharded)
    deadline = time.monotonic() + timeout
    pubsub = redis.pubsub(ignore_subscribe_messages=False)
    get: Callable[..., Any]

    def read() -> Any:
        return get(timeout=max(0.0, deadline - time.monotonic()))

    try:
        if sharded:
            subscribed, published, count, publish = "ssubscribe", "smessage", redis.pubsub_shardnumsub, redis.spublish
            pubsub.ssubscribe(*gathering.answer_channels)
            if hasattr(redis, "get_node_from_key"):  # a cluster: one connection per node, read the one
                node = redis.get_node_from_key(gathering.answer_channels[-1])  # that has the answer channel
                get = partial(pubsub.get_sharded_message, target_node=node)
                # Summed over the primaries (redis-py asks one node otherwise), as ShardedRedisLink.numsub does.
                count = partial(redis.pubsub_shardnumsub, target_nodes=redis.PRIMARIES)
            else:
                get = pubsub.get_message
        else:
            subscribed, published, count, publish = "subscribe", "message", redis.pubsub_numsub, redis.publish
            pubsub.subscribe(*gathering.answer_channels)
            get = pubsub.get_message
        confirmed = 0
        while confirmed < len(gathering.answer_channels) and time.monotonic() < deadline:
            message = read()
            if message is not None and message["type"] == subscribed:
                confirmed += 1
        [(_, servers)] = count(gathering.request_channel)
        gathering.result.servers = int(servers)
        publish(gathering.request_channel, gathering.request)
        while not gathering.result.complete and time.monotonic() < deadline:
            message = read()
            if message is not None and message["type"] == published:
                gathering.receive(message["data"])
        return gathering.result
    finally:
        # A cluster's pub/sub holds a connection per node, which its close leaves taken in redis-py 5.0.
        for node_pubsub in list(getattr(pubsub, "node_pubsub_mapping", {}).values()):
            node_pubsub.close()
        pubsub.close()


def _turn(link: RedisLink) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    link.reactor.callLater(0.01, d.callback, None)
    return d
