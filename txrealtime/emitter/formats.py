"""What the emitter writes for each kind of server adapter, and where: pure encoding, no I/O.

Each format turns the emitter's typed messages (:mod:`txrealtime.adapters.redis.wire`,
:mod:`txrealtime.adapters.redis.requests`) into an :data:`Outgoing`: a ``(channel, bytes)`` pair to
publish (the classic and sharded adapters), or a :class:`StreamEntry` to add to the streams adapter's
stream. The front ends (:mod:`txrealtime.emitter.front`) send what the format gives them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..adapters.cluster_messages import encode_message
from ..adapters.redis.requests import Request
from ..adapters.redis.streams_wire import DEFAULT_STREAM, encode_entry
from ..adapters.redis.wire import Broadcast, Channels, WireFlags, WireOptions, encode

__all__ = ["UID", "ClassicFormat", "Format", "Outgoing", "ShardedFormat", "StreamEntry", "StreamsFormat"]

UID = "emitter"
"""The uid the emitter's broadcasts and server-side emits carry, as Node's emitter names itself."""


@dataclass(frozen=True)
class StreamEntry:
    """One entry to add to the streams adapter's stream (``XADD {stream} MAXLEN ~ {max_len} * ...``)."""

    stream: str
    """The stream (the adapter's ``streamName``)."""
    fields: tuple[tuple[str, str], ...]
    """The entry's fields, in order."""
    max_len: int
    """About how many entries the stream keeps."""
    servers_channel: str
    """The namespace's channel, which every server of the namespace subscribes to: its ``PUBSUB NUMSUB`` is
    how many servers read the entry."""


Outgoing = tuple[str, bytes] | StreamEntry
"""What a format gives its front end: a channel and the bytes to publish there, or a stream entry to add."""


def _with_flags(request: Request) -> Request:
    """``request`` from the emitter, with flags in its selection (``{}`` when none: cluster messages always
    carry them)."""
    opts = getattr(request, "opts", None)
    if opts is not None and opts.flags is None:
        request = replace(request, opts=replace(opts, flags=WireFlags()))
    return replace(request, uid=UID)


def _broadcast_with_flags(message: Broadcast) -> Broadcast:
    opts = message.opts
    flags = opts.flags if opts.flags is not None else WireFlags()
    return Broadcast(uid=message.uid, packet=message.packet,
                     opts=WireOptions(rooms=opts.rooms, except_=opts.except_, flags=flags))


class ClassicFormat:
    """The messages and channels of ``@socket.io/redis-emitter`` (the classic Redis adapter's)."""

    def __init__(self, channels: Channels) -> None:
        """The format of the namespace whose ``channels`` these are."""
        self.channels = channels
        """The namespace's channel names."""

    @property
    def key(self) -> str:
        """The channels' prefix."""
        return self.channels.key

    @property
    def nsp(self) -> str:
        """The namespace."""
        return self.channels.nsp

    def of(self, nsp: str) -> ClassicFormat:
        """The same format for namespace ``nsp``."""
        return ClassicFormat(Channels(self.channels.key, nsp))

    def broadcast(self, message: Broadcast) -> Outgoing:
        """Where a broadcast goes (a room's channel for exactly one room), and its bytes."""
        return self.channels.for_rooms(message.opts.rooms), encode(message)

    def request(self, request: Request) -> Outgoing:
        """Where a request goes, and its bytes."""
        return self.channels.request, encode(request)


class ShardedFormat:
    """What the sharded adapter (Node's ``createShardedAdapter``) expects from an emitter: its cluster messages,
    from uid ``emitter``, on the namespace's channel ``{key}#{nsp}#`` (Node has no sharded emitter yet).

    Broadcasts to one room go there too, not to the room's channel: every server subscribes to the
    namespace's channel whatever its ``subscription_mode``, and keeps the sockets of the rooms named.
    """

    def __init__(self, key: str, nsp: str) -> None:
        """The format of namespace ``nsp`` under the prefix ``key``."""
        self.key = key
        """The channels' prefix."""
        self.nsp = nsp
        """The namespace."""
        self.channel = f"{key}#{nsp}#"
        """The namespace's channel, where everything goes."""

    def of(self, nsp: str) -> ShardedFormat:
        """The same format for namespace ``nsp``."""
        return ShardedFormat(self.key, nsp)

    def broadcast(self, message: Broadcast) -> Outgoing:
        """The namespace's channel, and the broadcast's bytes (flags always there, as Node's adapter writes)."""
        return self.channel, encode_message(_broadcast_with_flags(message), UID, self.nsp)

    def request(self, request: Request) -> Outgoing:
        """The namespace's channel, and the request's bytes."""
        return self.channel, encode_message(_with_flags(request), UID, self.nsp)  # type: ignore[arg-type]


class StreamsFormat:
    """What ``@socket.io/redis-streams-emitter`` writes for servers on the streams adapter: every message an
    entry of the adapter's stream, as the adapter writes its own
    (:func:`txrealtime.adapters.redis.streams_wire.encode_entry`), from uid ``emitter``.

    Server-side emits are entries too (the adapter publishes its own, but reads them from the stream as
    well): the emitter needs nothing but the stream. With connection state recovery on, the servers give the
    broadcasts they read offsets (the entries' ids), so a recovering client gets the emitter's broadcasts it
    missed, as the servers' own.
    """

    def __init__(self, key: str, nsp: str, stream: str = DEFAULT_STREAM, max_len: int = 10_000) -> None:
        """The format of namespace ``nsp``.

        :param key: The servers' channel prefix (``channelPrefix``), which names the channel counted.
        :param nsp: The namespace.
        :param stream: The stream (the adapter's ``streamName``).
        :param max_len: About how many entries the stream keeps (``maxLen``; the adapter's and the emitter's
            trim the same stream).
        """
        if max_len < 1:
            raise ValueError("max_len must be >= 1")
        self.key = key
        """The channels' prefix."""
        self.nsp = nsp
        """The namespace."""
        self.stream = stream
        """The stream entries are added to."""
        self.max_len = max_len
        """About how many entries the stream keeps."""

    def of(self, nsp: str) -> StreamsFormat:
        """The same format for namespace ``nsp``."""
        return StreamsFormat(self.key, nsp, self.stream, self.max_len)

    def _entry(self, fields: list[tuple[str, str]]) -> StreamEntry:
        return StreamEntry(self.stream, tuple(fields), self.max_len, f"{self.key}#{self.nsp}#")

    def broadcast(self, message: Broadcast) -> Outgoing:
        """The broadcast's entry (flags always there, as Node's adapter writes)."""
        return self._entry(encode_entry(_broadcast_with_flags(message), UID, self.nsp))

    def request(self, request: Request) -> Outgoing:
        """The request's entry."""
        return self._entry(encode_entry(_with_flags(request), UID, self.nsp))  # type: ignore[arg-type]


Format = ClassicFormat | ShardedFormat | StreamsFormat
"""How the messages look and where they go."""
