"""The emitter's two front ends: :class:`Emitter` (redis-py, synchronous) and :class:`TwistedEmitter` (a
:class:`txrealtime.adapters.redis.RedisLink`), on :class:`BaseEmitter`, the API they share."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar, cast

from twisted.internet.defer import Deferred, ensureDeferred  # installs no reactor

from .._events import check_event
from ..adapters.redis.requests import ServerSideEmitRequest
from ..adapters.redis.streams_wire import DEFAULT_STREAM
from ..adapters.redis.wire import Channels
from .formats import UID, ClassicFormat, Format, ShardedFormat, StreamEntry, StreamsFormat
from .operator import EmitterOperator, Sender, _namespace

if TYPE_CHECKING:
    from ..adapters.redis.link import BaseRedisLink
    from ..emitter_acks import EmitterAcks

__all__ = ["BaseEmitter", "Emitter", "Publisher", "TwistedEmitter"]

R = TypeVar("R")


class Publisher(Protocol):
    """What :class:`Emitter` publishes through: ``redis.Redis`` (or ``RedisCluster``, or a test double)."""

    def publish(self, channel: str, message: bytes) -> Any:
        """Publish ``message`` on ``channel``; the number of subscribers that received it."""


class BaseEmitter(Generic[R]):
    """The API both front ends share, Node's ``Emitter``: a namespace (``/`` unless :meth:`of` says otherwise)
    and the key prefix of the channels, selections started with :meth:`to` and friends.

    ``publish(channel, message)`` is the front end's way of publishing (with ``add(entry)``, of adding stream
    entries, in a :class:`txrealtime.emitter.operator.Sender`); its result is what every publishing method
    returns.
    """

    uid = UID
    """The uid the servers see on broadcasts and server-side emits (``emitter``)."""

    def __init__(
        self,
        publish: Callable[[str, bytes], R] | Sender[R],
        *,
        key: str = "socket.io",
        nsp: str = "/",
        sharded: bool = False,
        streams: bool = False,
        stream_name: str = DEFAULT_STREAM,
        max_len: int = 10_000,
    ) -> None:
        """An emitter publishing with ``publish``.

        :param publish: The front end's ``publish(channel, message)``, or its
            :class:`txrealtime.emitter.operator.Sender` (which adds stream entries too, for ``streams``).
        :param key: The channels' prefix: the ``key`` of the servers' Redis adapter.
        :param nsp: The namespace emitted to.
        :param sharded: Speak to servers on the sharded adapter (:class:`txrealtime.emitter.formats.ShardedFormat`).
        :param streams: Speak to servers on the streams adapter (:class:`txrealtime.emitter.formats.StreamsFormat`).
        :param stream_name: With ``streams``, the servers' stream (their ``streamName``).
        :param max_len: With ``streams``, about how many entries the stream keeps (their ``maxLen``).
        """
        if not isinstance(key, str) or not key:
            raise ValueError("the key is a non-empty string (socket.io unless the servers were told otherwise)")
        if sharded and streams:
            raise ValueError("an emitter speaks to the sharded adapter or to the streams adapter, not both")
        self._send: Sender[R] = publish if isinstance(publish, Sender) else Sender(publish)
        nsp = _namespace(nsp)
        if streams:
            self._format: Format = StreamsFormat(key, nsp, stream_name, max_len)
        elif sharded:
            self._format = ShardedFormat(key, nsp)
        else:
            self._format = ClassicFormat(Channels(key, nsp))

    @property
    def key(self) -> str:
        """The prefix of every channel (``socket.io``): the servers' adapters must use the same."""
        return self._format.key

    @property
    def nsp(self) -> str:
        """The namespace this emitter addresses."""
        return self._format.nsp

    @property
    def sharded(self) -> bool:
        """Whether this emitter speaks to the sharded adapter (else to the classic one)."""
        return isinstance(self._format, ShardedFormat)

    @property
    def streams(self) -> bool:
        """Whether this emitter speaks to the streams adapter (adding entries to its stream)."""
        return isinstance(self._format, StreamsFormat)

    def of(self, nsp: str) -> Self:
        """An emitter for namespace ``nsp`` (a leading ``/`` is added if missing), sharing this one's Redis."""
        other = copy.copy(self)
        other._format = self._format.of(_namespace(nsp))
        return other

    def _operator(self) -> EmitterOperator[R]:
        return EmitterOperator(self._send, self._format)

    def to(self, rooms: str | Iterable[str]) -> EmitterOperator[R]:
        """Select the sockets in ``rooms``."""
        return self._operator().to(rooms)

    def in_(self, rooms: str | Iterable[str]) -> EmitterOperator[R]:
        """The same as :meth:`to`."""
        return self._operator().to(rooms)

    def except_(self, rooms: str | Iterable[str]) -> EmitterOperator[R]:
        """Select every socket but those in ``rooms``."""
        return self._operator().except_(rooms)

    @property
    def volatile(self) -> EmitterOperator[R]:
        """Select every socket; the event is dropped for clients not ready to receive it."""
        return self._operator().volatile

    def compress(self, compress: bool = True) -> EmitterOperator[R]:
        """Select every socket, with the compress flag set to ``compress``."""
        return self._operator().compress(compress)

    def emit(self, event: str, *args: Any) -> R:
        """Send ``event`` with ``args`` to every client of the namespace (see :meth:`EmitterOperator.emit`)."""
        return self._operator().emit(event, *args)

    def sockets_join(self, rooms: str | Iterable[str]) -> R:
        """Make every socket of the namespace join ``rooms``."""
        return self._operator().sockets_join(rooms)

    def sockets_leave(self, rooms: str | Iterable[str]) -> R:
        """Make every socket of the namespace leave ``rooms``."""
        return self._operator().sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> R:
        """Disconnect every socket of the namespace (closing their connections too if ``close``)."""
        return self._operator().disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any) -> R:
        """Call the servers' own handlers of ``event`` (``server.on(event, ...)``) with ``args``: JSON values
        and dates, no binary. No acknowledgement: a callable last argument is refused with ``TypeError``."""
        if args and callable(args[-1]):
            raise TypeError("the emitter cannot receive acknowledgements: server_side_emit takes no callback")
        check_event(event)
        return self._send(self._format.request(ServerSideEmitRequest(uid=UID, data=[event, *args])))


def _answer(received: Any) -> Any:
    """What a synchronous client answered; ``TypeError`` for an asyncio client's awaitable."""
    if inspect.isawaitable(received):
        if inspect.iscoroutine(received):
            received.close()
        raise TypeError(
            "Emitter publishes synchronously: give it a redis.Redis client, not an asyncio one "
            "(in Twisted code, use TwistedEmitter)"
        )
    return received


def _redis_from_url(url: str, sharded: bool) -> Publisher:
    try:
        import redis
        from redis.cluster import RedisCluster
    except ImportError as e:
        raise ImportError(
            "txrealtime.emitter.Emitter connects through redis-py: pip install 'txrealtime[emitter]'"
        ) from e
    client: Publisher = RedisCluster.from_url(url) if sharded else redis.Redis.from_url(url)
    return client


class Emitter(BaseEmitter[int]):
    """The synchronous emitter: every call publishes at once through ``redis``-py and returns how many Redis
    subscribers received the message (0 if no server listens on that channel).

    ``redis`` is a client (``redis.Redis(...)``, shared with the rest of the application) or a
    ``redis://`` / ``rediss://`` / ``unix://`` URL, for which the emitter makes its own client and closes it
    in :meth:`close` (or at the end of a ``with`` block). Redis errors (``redis.ConnectionError`` ...) are
    raised by the call that published. Safe to share between threads as far as the client is.

    With ``sharded``, it speaks to servers on the sharded adapter (``--adapter redis-sharded``, Node's
    ``createShardedAdapter``) with ``SPUBLISH`` (see :class:`txrealtime.emitter.formats.ShardedFormat`); a URL
    then makes a ``redis.cluster.RedisCluster`` (give a ``redis.Redis`` client for a single Redis 7).

    With ``streams``, it speaks to servers on the streams adapter (``--adapter redis-streams``, Node's
    ``@socket.io/redis-streams-adapter``) as ``@socket.io/redis-streams-emitter`` does: every call adds an entry
    to their stream (``XADD {stream_name} MAXLEN ~ {max_len}``, see
    :class:`txrealtime.emitter.formats.StreamsFormat`) and returns how many servers read that namespace
    (``PUBSUB NUMSUB`` of its channel, in the same round trip).
    """

    def __init__(
        self,
        redis: Publisher | str = "redis://127.0.0.1:6379",
        *,
        key: str = "socket.io",
        sharded: bool = False,
        streams: bool = False,
        stream_name: str = DEFAULT_STREAM,
        max_len: int = 10_000,
    ) -> None:
        """An emitter publishing through ``redis``.

        :param redis: The client or URL described above.
        :param key: The channels' prefix: the ``key`` of the servers' Redis adapter (``socket.io``).
        :param sharded: Speak to servers on the sharded adapter, with ``SPUBLISH``.
        :param streams: Speak to servers on the streams adapter, adding entries to their stream.
        :param stream_name: With ``streams``, the servers' stream (``socket.io``, their ``streamName``).
        :param max_len: With ``streams``, about how many entries the stream keeps (their ``maxLen``).
        """
        self._owned = isinstance(redis, str)
        client = _redis_from_url(redis, sharded) if isinstance(redis, str) else redis
        self.redis = client
        """The client published through."""
        send: Callable[[str, bytes], Any] = cast(Any, client).spublish if sharded else client.publish

        def publish(channel: str, message: bytes) -> int:
            return int(_answer(send(channel, message)))

        def add(entry: StreamEntry) -> int:
            pipe = cast(Any, client).pipeline(transaction=False)
            pipe.xadd(entry.stream, dict(entry.fields), maxlen=entry.max_len, approximate=True)
            pipe.pubsub_numsub(entry.servers_channel)
            _, counts = _answer(pipe.execute())
            return int(counts[0][1]) if counts else 0

        super().__init__(Sender(publish, add), key=key, sharded=sharded, streams=streams, stream_name=stream_name,
                         max_len=max_len)

    def emit_with_ack(
        self, event: str, *args: Any, timeout: float, rooms: Iterable[str] = (), except_rooms: Iterable[str] = ()
    ) -> EmitterAcks:
        """Emit to the selected clients of every server (txrealtime's and Node's) and return, once every client
        answered or after ``timeout`` seconds (blocking this thread meanwhile), their answers
        (:class:`txrealtime.emitter_acks.EmitterAcks`: ``answers``, and whether they are ``complete``),
        through the Redis adapter's own broadcast-with-acks request (the streams adapter's with ``streams``, the
        sharded adapter's with ``sharded``)."""
        from ..emitter_acks import emit_with_ack_blocking

        return emit_with_ack_blocking(self.redis, self.key, self.nsp, event, args, timeout, rooms, except_rooms,
                                      self.streams, self.sharded)

    def close(self) -> None:
        """Close the client if the emitter made it from a URL (a client given to it is left open)."""
        if not self._owned:
            return
        close = getattr(self.redis, "close", None)
        if close is not None:
            close()
        # redis-py before 5.0.1 leaves the connections of a client made by from_url open on close().
        pool = getattr(self.redis, "connection_pool", None)
        disconnect = getattr(pool, "disconnect", None)
        if disconnect is not None:
            disconnect()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class TwistedEmitter(BaseEmitter[Deferred[int]]):
    """The emitter for Twisted code: publishes through a :class:`txrealtime.adapters.redis.RedisLink` (or a
    :class:`txrealtime.adapters.redis.ShardedRedisLink`, for servers on the sharded adapter; or a
    :class:`txrealtime.adapters.redis.RedisStreamsLink`, for servers on the streams adapter: entries go to the
    link's stream, trimmed to its ``max_len``, and each call fires with how many servers read the namespace).

    Every call returns a ``Deferred`` firing with how many Redis subscribers received the message, or
    failing with :class:`txrealtime.redis.connection.RedisUnavailable` while the link is not connected (see
    :meth:`txrealtime.adapters.redis.RedisLink.when_connected`), or with Redis's error. In a txrealtime
    server's process, give it the server's link; elsewhere make one and start it
    (:meth:`txrealtime.adapters.redis.RedisLink.start`). The key is the link's unless told otherwise.
    """

    def __init__(self, link: BaseRedisLink, *, key: str | None = None) -> None:
        """An emitter publishing through ``link``.

        :param link: The Redis link to publish through (sharded messages on a ``ShardedRedisLink``, stream
            entries on a ``RedisStreamsLink``).
        :param key: The channels' prefix; the link's ``key`` if not given.
        """
        self.link = link
        """The link published through."""
        from ..adapters.redis.streams_link import RedisStreamsLink

        sharded = getattr(link, "channel_kind", "subscribe") == "ssubscribe"
        if not isinstance(link, RedisStreamsLink):
            super().__init__(link.send, key=link.key if key is None else key, sharded=sharded)
            return
        streams = link

        def add(entry: StreamEntry) -> Deferred[int]:
            return streams.add(list(entry.fields)).addCallback(lambda _: streams.numsub(entry.servers_channel))

        super().__init__(Sender(link.send, add), key=link.key if key is None else key, streams=True,
                         stream_name=link.stream_name, max_len=link.max_len)

    def emit_with_ack(
        self, event: str, *args: Any, timeout: float, rooms: Iterable[str] = (), except_rooms: Iterable[str] = ()
    ) -> Deferred[EmitterAcks]:
        """Emit to the selected clients of every server (txrealtime's and Node's) and fire, once every client
        answered or after ``timeout`` seconds, with their answers (:class:`txrealtime.emitter_acks.EmitterAcks`:
        ``answers``, and whether they are ``complete``), through the Redis adapter's own broadcast-with-acks
        request (the streams adapter's on a ``RedisStreamsLink``, the sharded adapter's on a
        ``ShardedRedisLink``)."""
        from ..emitter_acks import emit_with_ack

        return ensureDeferred(
            emit_with_ack(cast(Any, self.link), self.key, self.nsp, event, args, timeout, rooms, except_rooms,
                          self.streams, self.sharded)
        )
