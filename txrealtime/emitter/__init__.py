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

Two front ends share one selection API (:class:`EmitterOperator`, ``BroadcastOperator`` in Node's emitter;
that old name still imports, with a ``DeprecationWarning``) and one
encoding, :mod:`txrealtime.adapters.redis.wire` and
:mod:`txrealtime.adapters.redis.requests`, the modules the adapter itself uses:

- :class:`Emitter` publishes synchronously through ``redis``-py (the ``emitter``
  extra): for a Django view, a Celery task, a script. No reactor is involved or
  installed. Each call returns how many Redis subscribers received the message.
- :class:`TwistedEmitter` publishes through a :class:`txrealtime.adapters.redis.RedisLink`
  (the one a txrealtime server already has, or one of its own); each call
  returns a ``Deferred`` firing with that count.

Servers on the sharded adapter take ``sharded=True`` (a ``ShardedRedisLink``), servers on the streams
adapter ``streams=True`` (a ``RedisStreamsLink``): :mod:`txrealtime.emitter.formats` has what each of the
three formats writes. The selection API is :mod:`txrealtime.emitter.operator`'s, the front ends are
:mod:`txrealtime.emitter.front`'s.

What the messages are (``{key}`` is ``socket.io`` unless told otherwise,
``{nsp}`` the namespace; the layouts are in :mod:`txrealtime.adapters.redis.wire`)::

    emit                  {key}#{nsp}#{room}#  (exactly one room)  MessagePack ["emitter", packet, opts]
                          {key}#{nsp}#         (no room, or several)
    sockets_join          {key}-request#{nsp}#  JSON {type: 2, opts: {rooms, except}, rooms}
    sockets_leave         {key}-request#{nsp}#  JSON {type: 3, opts: {rooms, except}, rooms}
    disconnect_sockets    {key}-request#{nsp}#  JSON {type: 4, opts: {rooms, except}, close}
    server_side_emit      {key}-request#{nsp}#  JSON {uid: "emitter", type: 6, data: [event, *args]}

With ``streams``, each of these is instead an entry of the servers' stream (``XADD {stream} MAXLEN ~
{max_len} * uid emitter nsp {nsp} type {type} data {data}``, the streams adapter's own entries), as
``@socket.io/redis-streams-emitter`` writes them.

As in Node, these calls expect no answers (``server_side_emit`` refuses a callback) and it cannot
``fetch_sockets``; ``emit_with_ack`` (:mod:`txrealtime.emitter_acks`) gathers the clients' acknowledgements
(on the classic and streams adapters).
Arguments are what Socket.IO carries: JSON values, ``bytes`` (binary, in
``emit``; JSON requests cannot carry it and raise ``TypeError``), and dates as
the rest of txrealtime sends them (a ``Date`` on Node, an ISO string on the
clients). An emit reaches only the sockets connected when the servers receive it.
"""

from __future__ import annotations

from .._lazy import deprecated_aliases
from .formats import UID, ClassicFormat, Format, ShardedFormat, StreamEntry, StreamsFormat
from .front import BaseEmitter, Emitter, Publisher, TwistedEmitter
from .operator import EmitterOperator, Sender

__all__ = [
    "UID",
    "BaseEmitter",
    "EmitterOperator",
    "ClassicFormat",
    "Emitter",
    "Format",
    "Publisher",
    "Sender",
    "ShardedFormat",
    "StreamEntry",
    "StreamsFormat",
    "TwistedEmitter",
]

__getattr__ = deprecated_aliases(__name__, {"BroadcastOperator": "EmitterOperator"})
"""Old names, still importable with a ``DeprecationWarning``: ``BroadcastOperator`` is :class:`EmitterOperator`
(not to be confused with :class:`txrealtime.socketio.BroadcastOperator`, the server's)."""
