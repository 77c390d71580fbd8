"""Scale-out through Redis pub/sub, wire-compatible with Node's ``@socket.io/redis-adapter`` (v8).

One :class:`RedisLink` per process holds the connections to Redis
(:mod:`txrealtime.adapters.redis.link`); each namespace gets a :class:`RedisAdapter`
(:mod:`txrealtime.adapters.redis.adapter`) speaking the Node adapter's channels and messages
(:mod:`txrealtime.adapters.redis.wire` for channels, encodings and broadcasts,
:mod:`txrealtime.adapters.redis.requests` for requests between nodes; both free of I/O), so
txrealtime nodes, Node ``socket.io`` nodes and ``@socket.io/redis-emitter`` senders sharing one
Redis reach each other's clients::

    link = RedisLink("redis://127.0.0.1:6379")
    server = Server(adapter=redis_adapter(link))
"""

from .adapter import RedisAdapter, RemoteSocket, redis_adapter
from .link import RedisDown, RedisLink, RedisUnavailable, RedisUp, RedisURL

__all__ = [
    "RedisAdapter",
    "RedisDown",
    "RedisLink",
    "RedisURL",
    "RedisUnavailable",
    "RedisUp",
    "RemoteSocket",
    "redis_adapter",
]
