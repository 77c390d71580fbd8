"""Emitting to Socket.IO clients from processes that are not Socket.IO servers, as ``@socket.io/redis-emitter``.

A write-only peer of the Redis adapter: it publishes, through Redis, the
messages Node's ``@socket.io/redis-emitter`` 5 publishes, byte for byte (but
for the order of the ``volatile`` and ``compress`` flags when both are set:
Node writes them in the order they were set, this emitter always volatile
first), so
every node sharing that Redis (txrealtime nodes with
:mod:`txrealtime.adapters.redis`, Node ``socket.io`` servers with
``@socket.io/redis-adapter``) acts on them for its own clients::

    emitter = Emitter("redis://127.0.0.1:6379")        # or Emitter(redis.Redis(...))
    emitter.emit("news", {"headline": "..."})          # every client of "/"
    emitter.to("room1").except_("room2").emit("hello", b"\\x00\\x01")
    emitter.of("/admin").in_("room1").sockets_join(["room2"])
    emitter.in_("room1").disconnect_sockets(close=True)
    emitter.server_side_emit("reload", "config.json")  # the servers' own handlers

Two front ends share one selection API (:class:`BroadcastOperator`) and one
encoding, :mod:`txrealtime.adapters.redis.wire` and
:mod:`txrealtime.adapters.redis.requests`, the modules the adapter itself uses:

- :class:`Emitter` publishes synchronously through ``redis``-py (the ``emitter``
  extra): for a Django view, a Celery task, a script. No reactor is involved or
  installed. Each call returns how many Redis subscribers received the message.
- :class:`TwistedEmitter` publishes through a :class:`txrealtime.adapters.redis.RedisLink`
  (the one a txrealtime server already has, or one of its own); each call
  returns a ``Deferred`` firing with that count.

What the messages are (``{key}`` is ``socket.io`` unless told otherwise,
``{nsp}`` the namespace; the layouts are in :mod:`txrealtime.adapters.redis.wire`)::

    emit                  {key}#{nsp}#{room}#  (exactly one room)  MessagePack ["emitter", packet, opts]
                          {key}#{nsp}#         (no room, or several)
    sockets_join          {key}-request#{nsp}#  JSON {type: 2, opts: {rooms, except}, rooms}
    sockets_leave         {key}-request#{nsp}#  JSON {type: 3, opts: {rooms, except}, rooms}
    disconnect_sockets    {key}-request#{nsp}#  JSON {type: 4, opts: {rooms, except}, close}
    server_side_emit      {key}-request#{nsp}#  JSON {uid: "emitter", type: 6, data: [event, *args]}

As in Node, these calls expect no answers (``server_side_emit`` refuses a callback) and it cannot
``fetch_sockets``; ``emit_with_ack`` (:mod:`txrealtime.emitter_acks`) gathers the clients' acknowledgements.
Arguments are what Socket.IO carries: JSON values, ``bytes`` (binary, in
``emit``; JSON requests cannot carry it and raise ``TypeError``), and dates as
the rest of txrealtime sends them (a ``Date`` on Node, an ISO string on the
clients). An emit reaches only the sockets connected when the servers receive it.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar, cast

from twisted.internet.defer import Deferred, ensureDeferred  # installs no reactor

from ._events import check_event
from .adapters.cluster_messages import encode_message
from .adapters.redis.requests import (
    DisconnectRequest,
    JoinRequest,
    LeaveRequest,
    Request,
    ServerSideEmitRequest,
)
from .adapters.redis.wire import Broadcast, Channels, WireFlags, WireOptions, WirePacket, encode

if TYPE_CHECKING:
    from .adapters.redis.link import BaseRedisLink
    from .emitter_acks import EmitterAcks

__all__ = [
    "UID",
    "BaseEmitter",
    "BroadcastOperator",
    "ClassicFormat",
    "Emitter",
    "Publisher",
    "ShardedFormat",
    "TwistedEmitter",
]

UID = "emitter"
"""The uid the emitter's broadcasts and server-side emits carry, as Node's emitter names itself."""

R = TypeVar("R")

_NO_FLAGS = WireFlags()


class Publisher(Protocol):
    """What :class:`Emitter` publishes through: ``redis.Redis`` (or ``RedisCluster``, or a test double)."""

    def publish(self, channel: str, message: bytes) -> Any:
        """Publish ``message`` on ``channel``; the number of subscribers that received it."""


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

    def broadcast(self, message: Broadcast) -> tuple[str, bytes]:
        """Where a broadcast goes (a room's channel for exactly one room), and its bytes."""
        return self.channels.for_rooms(message.opts.rooms), encode(message)

    def request(self, request: Request) -> tuple[str, bytes]:
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

    def broadcast(self, message: Broadcast) -> tuple[str, bytes]:
        """The namespace's channel, and the broadcast's bytes (flags always there, as Node's adapter writes)."""
        opts = message.opts
        flags = opts.flags if opts.flags is not None else WireFlags()
        body = Broadcast(uid=message.uid, packet=message.packet, opts=WireOptions(rooms=opts.rooms,
                                                                                  except_=opts.except_, flags=flags))
        return self.channel, encode_message(body, UID, self.nsp)

    def request(self, request: Request) -> tuple[str, bytes]:
        """The namespace's channel, and the request's bytes."""
        opts = getattr(request, "opts", None)
        if opts is not None and opts.flags is None:
            request = replace(request, opts=replace(opts, flags=WireFlags()))
        return self.channel, encode_message(replace(request, uid=UID), UID, self.nsp)  # type: ignore[arg-type]


Format = ClassicFormat | ShardedFormat


def _room_list(rooms: str | Iterable[str]) -> tuple[str, ...]:
    listed = (rooms,) if isinstance(rooms, str) else tuple(rooms)
    for room in listed:
        if not isinstance(room, str):
            raise TypeError(f"room names are strings, not {type(room).__name__}")
    return listed


def _namespace(nsp: str) -> str:
    if not isinstance(nsp, str):
        raise TypeError(f"namespace names are strings, not {type(nsp).__name__}")
    return nsp if nsp.startswith("/") else "/" + nsp


class BroadcastOperator(Generic[R]):
    """An immutable selection of sockets (rooms, exceptions, flags) of one namespace, to emit to or act on.

    Every method that narrows the selection returns a new operator, so
    ``emitter.to("a").except_("b").emit(...)`` reads as in Node. Rooms keep
    the order they were given in (without repeats), as Node's ``Set`` does:
    the published bytes are Node's. The other methods publish and return what
    the front end's publishing returns (``R``).
    """

    __slots__ = ("_publish", "_format", "_rooms", "_except", "_flags")

    def __init__(
        self,
        publish: Callable[[str, bytes], R],
        format: Channels | Format,
        rooms: tuple[str, ...] = (),
        except_rooms: tuple[str, ...] = (),
        flags: WireFlags = _NO_FLAGS,
    ) -> None:
        """A selection; :meth:`BaseEmitter.to` and the like make them.

        :param publish: The front end's ``publish(channel, message)``.
        :param format: How messages look and where they go: :class:`ClassicFormat` (or the namespace's
            ``Channels``, for it) or :class:`ShardedFormat`.
        :param rooms: Target these rooms (every socket of the namespace if none).
        :param except_rooms: Skip the sockets in any of these rooms.
        :param flags: ``volatile`` and ``compress``, as Node's emitter sends them.
        """
        self._publish = publish
        self._format: Format = ClassicFormat(format) if isinstance(format, Channels) else format
        self._rooms = rooms
        self._except = except_rooms
        self._flags = flags

    def _with(
        self,
        rooms: tuple[str, ...] | None = None,
        except_rooms: tuple[str, ...] | None = None,
        flags: WireFlags | None = None,
    ) -> BroadcastOperator[R]:
        return BroadcastOperator(
            self._publish,
            self._format,
            self._rooms if rooms is None else rooms,
            self._except if except_rooms is None else except_rooms,
            self._flags if flags is None else flags,
        )

    @property
    def nsp(self) -> str:
        """The namespace the selection is in."""
        return self._format.nsp

    @property
    def rooms(self) -> tuple[str, ...]:
        """The rooms targeted (none: every socket of the namespace)."""
        return self._rooms

    @property
    def except_rooms(self) -> tuple[str, ...]:
        """The rooms whose sockets are left out."""
        return self._except

    # -- narrowing ----------------------------------------------------------------------

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator[R]:
        """Target sockets in ``rooms`` too (a union with the rooms already targeted)."""
        return self._with(rooms=tuple(dict.fromkeys(self._rooms + _room_list(rooms))))

    def in_(self, rooms: str | Iterable[str]) -> BroadcastOperator[R]:
        """The same as :meth:`to`."""
        return self.to(rooms)

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator[R]:
        """Leave out sockets in ``rooms``."""
        return self._with(except_rooms=tuple(dict.fromkeys(self._except + _room_list(rooms))))

    @property
    def volatile(self) -> BroadcastOperator[R]:
        """Drop the event for clients not ready to receive it right now."""
        return self._with(flags=WireFlags(volatile=True, compress=self._flags.compress))

    def compress(self, compress: bool = True) -> BroadcastOperator[R]:
        """Ask the servers to compress the event (WebSocket permessage-deflate) or, with ``False``, not to."""
        return self._with(flags=WireFlags(volatile=self._flags.volatile, compress=bool(compress)))

    # -- publishing -------------------------------------------------------------------------

    def _request(self, request: Request) -> R:
        return self._publish(*self._format.request(request))

    def _selection(self) -> WireOptions:
        return WireOptions(rooms=self._rooms, except_=self._except)

    def emit(self, event: str, *args: Any) -> R:
        """Send ``event`` with ``args`` (JSON values, ``bytes``, dates) to every selected client of every server.

        ``ValueError`` for a reserved event name (``connect``, ``disconnect`` ...), ``TypeError`` for a value
        that cannot be sent; both before anything is published.
        """
        check_event(event)
        message = Broadcast(
            uid=UID,
            packet=WirePacket(data=[event, *args], nsp=self._format.nsp),
            opts=WireOptions(rooms=self._rooms, except_=self._except, flags=self._flags),
            flags_first=True,
        )
        return self._publish(*self._format.broadcast(message))

    def sockets_join(self, rooms: str | Iterable[str]) -> R:
        """Make the selected sockets of every server join ``rooms``."""
        return self._request(JoinRequest(opts=self._selection(), rooms=_room_list(rooms)))

    def sockets_leave(self, rooms: str | Iterable[str]) -> R:
        """Make the selected sockets of every server leave ``rooms``."""
        return self._request(LeaveRequest(opts=self._selection(), rooms=_room_list(rooms)))

    def disconnect_sockets(self, close: bool = False) -> R:
        """Disconnect the selected sockets of every server; with ``close``, close their connections too
        (every namespace of those clients is disconnected)."""
        return self._request(DisconnectRequest(opts=self._selection(), close=bool(close)))


class BaseEmitter(Generic[R]):
    """The API both front ends share, Node's ``Emitter``: a namespace (``/`` unless :meth:`of` says otherwise)
    and the key prefix of the channels, selections started with :meth:`to` and friends.

    ``publish(channel, message)`` is the front end's way of publishing; its result is what every publishing
    method returns.
    """

    uid = UID
    """The uid the servers see on broadcasts and server-side emits (``emitter``)."""

    def __init__(
        self, publish: Callable[[str, bytes], R], *, key: str = "socket.io", nsp: str = "/", sharded: bool = False
    ) -> None:
        """An emitter publishing with ``publish``.

        :param publish: The front end's ``publish(channel, message)``.
        :param key: The channels' prefix: the ``key`` of the servers' Redis adapter.
        :param nsp: The namespace emitted to.
        :param sharded: Speak to servers on the sharded adapter (:class:`ShardedFormat`).
        """
        if not isinstance(key, str) or not key:
            raise ValueError("the key is a non-empty string (socket.io unless the servers were told otherwise)")
        self._publish = publish
        nsp = _namespace(nsp)
        self._format: Format = ShardedFormat(key, nsp) if sharded else ClassicFormat(Channels(key, nsp))

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

    def of(self, nsp: str) -> Self:
        """An emitter for namespace ``nsp`` (a leading ``/`` is added if missing), sharing this one's Redis."""
        other = copy.copy(self)
        other._format = self._format.of(_namespace(nsp))
        return other

    def _operator(self) -> BroadcastOperator[R]:
        return BroadcastOperator(self._publish, self._format)

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator[R]:
        """Select the sockets in ``rooms``."""
        return self._operator().to(rooms)

    def in_(self, rooms: str | Iterable[str]) -> BroadcastOperator[R]:
        """The same as :meth:`to`."""
        return self._operator().to(rooms)

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator[R]:
        """Select every socket but those in ``rooms``."""
        return self._operator().except_(rooms)

    @property
    def volatile(self) -> BroadcastOperator[R]:
        """Select every socket; the event is dropped for clients not ready to receive it."""
        return self._operator().volatile

    def compress(self, compress: bool = True) -> BroadcastOperator[R]:
        """Select every socket, with the compress flag set to ``compress``."""
        return self._operator().compress(compress)

    def emit(self, event: str, *args: Any) -> R:
        """Send ``event`` with ``args`` to every client of the namespace (see :meth:`BroadcastOperator.emit`)."""
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
        return self._publish(*self._format.request(ServerSideEmitRequest(uid=UID, data=[event, *args])))


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
    ``createShardedAdapter``) with ``SPUBLISH`` (see :class:`ShardedFormat`); a URL then makes a
    ``redis.cluster.RedisCluster`` (give a ``redis.Redis`` client for a single Redis 7).
    """

    def __init__(
        self, redis: Publisher | str = "redis://127.0.0.1:6379", *, key: str = "socket.io", sharded: bool = False
    ) -> None:
        """An emitter publishing through ``redis``.

        :param redis: The client or URL described above.
        :param key: The channels' prefix: the ``key`` of the servers' Redis adapter (``socket.io``).
        :param sharded: Speak to servers on the sharded adapter, with ``SPUBLISH``.
        """
        self._owned = isinstance(redis, str)
        client = _redis_from_url(redis, sharded) if isinstance(redis, str) else redis
        self.redis = client
        """The client published through."""
        send: Callable[[str, bytes], Any] = cast(Any, client).spublish if sharded else client.publish

        def publish(channel: str, message: bytes) -> int:
            received = send(channel, message)
            if inspect.isawaitable(received):
                if inspect.iscoroutine(received):
                    received.close()
                raise TypeError(
                    "Emitter publishes synchronously: give it a redis.Redis client, not an asyncio one "
                    "(in Twisted code, use TwistedEmitter)"
                )
            return int(received)

        super().__init__(publish, key=key, sharded=sharded)

    def emit_with_ack(
        self, event: str, *args: Any, timeout: float, rooms: Iterable[str] = (), except_rooms: Iterable[str] = ()
    ) -> EmitterAcks:
        """Emit to the selected clients of every server (txrealtime's and Node's) and return, once every client
        answered or after ``timeout`` seconds (blocking this thread meanwhile), their answers
        (:class:`txrealtime.emitter_acks.EmitterAcks`: ``answers``, and whether they are ``complete``),
        through the Redis adapter's own broadcast-with-acks request. The classic adapter's format only."""
        if self.sharded:
            raise NotImplementedError("emit_with_ack goes through the classic Redis adapter's requests")
        from .emitter_acks import emit_with_ack_blocking

        return emit_with_ack_blocking(self.redis, self.key, self.nsp, event, args, timeout, rooms, except_rooms)

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
    :class:`txrealtime.adapters.redis.ShardedRedisLink`, for servers on the sharded adapter).

    Every call returns a ``Deferred`` firing with how many Redis subscribers received the message, or
    failing with :class:`txrealtime.redis.connection.RedisUnavailable` while the link is not connected (see
    :meth:`txrealtime.adapters.redis.RedisLink.when_connected`), or with Redis's error. In a txrealtime
    server's process, give it the server's link; elsewhere make one and start it
    (:meth:`txrealtime.adapters.redis.RedisLink.start`). The key is the link's unless told otherwise.
    """

    def __init__(self, link: BaseRedisLink, *, key: str | None = None) -> None:
        """An emitter publishing through ``link``.

        :param link: The Redis link to publish through (sharded messages on a ``ShardedRedisLink``).
        :param key: The channels' prefix; the link's ``key`` if not given.
        """
        self.link = link
        """The link published through."""
        sharded = getattr(link, "channel_kind", "subscribe") == "ssubscribe"
        super().__init__(link.send, key=link.key if key is None else key, sharded=sharded)

    def emit_with_ack(
        self, event: str, *args: Any, timeout: float, rooms: Iterable[str] = (), except_rooms: Iterable[str] = ()
    ) -> Deferred[EmitterAcks]:
        """Emit to the selected clients of every server (txrealtime's and Node's) and fire, once every client
        answered or after ``timeout`` seconds, with their answers (:class:`txrealtime.emitter_acks.EmitterAcks`:
        ``answers``, and whether they are ``complete``), through the Redis adapter's own broadcast-with-acks
        request. The classic adapter's format only (not ``sharded``)."""
        if self.sharded:
            raise NotImplementedError("emit_with_ack goes through the classic Redis adapter's requests")
        from .emitter_acks import emit_with_ack

        return ensureDeferred(
            emit_with_ack(cast(Any, self.link), self.key, self.nsp, event, args, timeout, rooms, except_rooms)
        )
