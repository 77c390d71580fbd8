"""Scale-out through Redis pub/sub, wire-compatible with Node's ``@socket.io/redis-adapter`` (v8).

One :class:`RedisLink` per process holds the connections to Redis
(:mod:`txrealtime.adapters.redis.link`); each namespace gets a :class:`RedisAdapter`
(the classic adapter of :mod:`txrealtime.adapters.classic`, which also runs over the ``--workers`` link)
speaking the Node adapter's channels and messages
(:mod:`txrealtime.adapters.redis.wire` for channels, encodings and broadcasts,
:mod:`txrealtime.adapters.redis.requests` for requests between nodes; both free of I/O), so
txrealtime nodes, Node ``socket.io`` nodes and ``@socket.io/redis-emitter`` senders (or
:mod:`txrealtime.emitter`) sharing one Redis reach each other's clients::

    link = RedisLink("redis://127.0.0.1:6379")
    server = Server(adapter=redis_adapter(link))

Redis Cluster users have the sharded adapter, wire-compatible with Node's ``createShardedAdapter``
(:mod:`txrealtime.adapters.redis.sharded`, on a :class:`ShardedRedisLink` to any node of the cluster)::

    link = ShardedRedisLink("redis://any-node:6379")
    server = Server(adapter=sharded_adapter(link))

The streams adapter, wire-compatible with Node's ``@socket.io/redis-streams-adapter``, keeps broadcasts in a
Redis stream, so a node that lost Redis catches up and a client recovers its session on any node
(:mod:`txrealtime.adapters.redis.streams`, on a :class:`RedisStreamsLink`)::

    link = RedisStreamsLink("redis://127.0.0.1:6379")
    server = Server(adapter=streams_adapter(link), connection_state_recovery=StateRecovery())

The names below are imported on first use: the link brings in Twisted's
networking and txrealtime's Redis client (:mod:`txrealtime.redis`), and the pure
modules (which the synchronous emitter uses in processes without a reactor)
must not pull them in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_attributes

if TYPE_CHECKING:
    from .adapter import RedisAdapter, RemoteSocket, redis_adapter
    from .link import RedisDown, RedisLink, RedisUnavailable, RedisUp, RedisURL
    from .sharded import ShardedRedisAdapter, sharded_adapter
    from .sharded_link import ShardedRedisLink
    from .streams import RedisStreamsAdapter, streams_adapter
    from .streams_link import RedisStreamsLink

__all__ = [
    "RedisAdapter",
    "RedisDown",
    "RedisLink",
    "RedisStreamsAdapter",
    "RedisStreamsLink",
    "RedisURL",
    "RedisUnavailable",
    "RedisUp",
    "RemoteSocket",
    "ShardedRedisAdapter",
    "ShardedRedisLink",
    "redis_adapter",
    "sharded_adapter",
    "streams_adapter",
]

_MODULES = {
    "RedisAdapter": "adapter",
    "RemoteSocket": "adapter",
    "redis_adapter": "adapter",
    "RedisDown": "link",
    "RedisLink": "link",
    "RedisURL": "link",
    "RedisUnavailable": "link",
    "RedisUp": "link",
    "ShardedRedisAdapter": "sharded",
    "sharded_adapter": "sharded",
    "ShardedRedisLink": "sharded_link",
    "RedisStreamsAdapter": "streams",
    "streams_adapter": "streams",
    "RedisStreamsLink": "streams_link",
}


__getattr__ = lazy_attributes(__name__, _MODULES)
