"""Acknowledgements through the emitter: a broadcast whose clients' answers come back from every server.

The request is the Redis adapter's own broadcast-with-acks (``@socket.io/redis-adapter`` 8.x, type 7),
so txrealtime nodes and Node ``socket.io`` nodes both answer it::

    request   {key}-request#{nsp}#          MessagePack {uid, requestId, type: 7, packet, opts}
    answers   {key}-response#{nsp}#          JSON {type: 8, requestId, clientCount}   one per server
              (or {key}-response#{nsp}#{uid}#)  MessagePack {type: 9, requestId, packet}   one per client's ack

The emitter subscribes to both answer channels under a uid of its own, makes sure Redis has
subscribed it (``PUBSUB NUMSUB`` of its own channel) before it publishes, counts the servers
(``PUBSUB NUMSUB`` of the request channel), and is done once every server reported its client count
and every counted client answered, or at the timeout, with what came by then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from ._events import check_event
from ._reactor import DelayedCall, cancel
from .adapters.redis.requests import BroadcastAckRequest, BroadcastAckResponse, ClientCountResponse, decode_response
from .adapters.redis.wire import Channels, RequestType, WireError, WireFlags, WireOptions, WirePacket, encode, new_id

if TYPE_CHECKING:
    from .adapters.redis.link import RedisLink

__all__ = ["EmitterAcks", "emit_with_ack"]


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


async def emit_with_ack(
    link: RedisLink,
    key: str,
    nsp: str,
    event: str,
    args: Iterable[Any],
    timeout: float,
    rooms: Iterable[str] = (),
    except_rooms: Iterable[str] = (),
) -> EmitterAcks:
    """Emit ``event`` to the selected clients of every server and gather their acknowledgements until all
    came or ``timeout`` seconds passed (see :meth:`txrealtime.emitter.TwistedEmitter.emit_with_ack`)."""
    check_event(event)
    channels = Channels(key, nsp)
    uid, request_id = new_id(), new_id()
    result = EmitterAcks()
    done: Deferred[EmitterAcks] = Deferred()
    timer: DelayedCall | None = None

    def finish() -> None:
        nonlocal timer
        timer = cancel(timer)
        if not done.called:
            done.callback(result)

    def kind(answering: str) -> RequestType | None:
        return RequestType.BROADCAST if answering == request_id else None

    def on_response(channel: str, message: bytes) -> None:
        try:
            response = decode_response(message, kind)
        except WireError:
            return  # another asker's answer, or garbage: not ours
        if isinstance(response, ClientCountResponse):
            result.reported += 1
            result.clients += response.client_count
        elif isinstance(response, BroadcastAckResponse):
            result.answers.append(response.value)
        else:
            return
        if result.complete:
            finish()

    answer_channels = [channels.response, channels.specific_response(uid)]
    for channel in answer_channels:
        link.subscribe(channel, on_response)
    try:
        # Subscriptions go in order on one connection: once the last is in place, so are the others.
        while await link.numsub(answer_channels[-1]) < 1:
            await _turn(link)
        result.servers = await link.numsub(channels.request)
        request = BroadcastAckRequest(
            uid=uid,
            request_id=request_id,
            packet=WirePacket(data=[event, *args], nsp=nsp),
            opts=WireOptions(rooms=tuple(rooms), except_=tuple(except_rooms), flags=WireFlags()),
        )
        await link.send(channels.request, encode(request))
        if result.complete:
            return result
        timer = link.reactor.callLater(timeout, finish)
        return await done
    finally:
        timer = cancel(timer)
        for channel in answer_channels:
            link.unsubscribe(channel, on_response)


def _turn(link: RedisLink) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    link.reactor.callLater(0.01, d.callback, None)
    return d
