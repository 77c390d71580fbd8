"""txrealtime's Redis client for Twisted: RESP2 and RESP3, pub/sub and sharded pub/sub, Redis Cluster.

Layers, each usable on its own:

- :mod:`txrealtime.redis.resp`: the protocol's bytes (no I/O); hiredis's parser when installed, a pure one
  otherwise;
- :mod:`txrealtime.redis.url`: ``redis://`` / ``rediss://`` URLs (:class:`RedisURL`);
- :mod:`txrealtime.redis.connection`: one connection, commands pipelined with a ``Deferred`` per reply,
  pushes, the login handshake, a health check (:class:`RedisProtocol`);
- :mod:`txrealtime.redis.client`: one server, reconnecting with backoff and subscribing again
  (:class:`RedisClient`; :meth:`RedisClient.dedicated` for blocking commands);
- :mod:`txrealtime.redis.slots` and :mod:`txrealtime.redis.cluster`: Redis Cluster's slots, ``MOVED``/``ASK``,
  shard channels that follow their slot (:class:`ClusterClient`).

::

    client = RedisClient("redis://127.0.0.1:6379/0")
    client.start()
    await client.when_connected()
    await client.execute("SET", "key", b"value")

Nothing here installs a reactor on import, and the names below are imported on first use: a program that
only reads a URL (``twistd txrealtime --redis`` checking its options) does not load the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .client import ClientDown, ClientUp, RedisClient
    from .cluster import ClusterClient, ClusterDown, ClusterUp
    from .connection import RedisProtocol, RedisUnavailable
    from .resp import ProtocolError, ReplyError
    from .url import RedisURL

__all__ = [
    "ClientDown",
    "ClientUp",
    "ClusterClient",
    "ClusterDown",
    "ClusterUp",
    "ProtocolError",
    "RedisClient",
    "RedisProtocol",
    "RedisURL",
    "RedisUnavailable",
    "ReplyError",
]

_MODULES = {
    "ClientDown": "client",
    "ClientUp": "client",
    "RedisClient": "client",
    "ClusterClient": "cluster",
    "ClusterDown": "cluster",
    "ClusterUp": "cluster",
    "RedisProtocol": "connection",
    "RedisUnavailable": "connection",
    "ProtocolError": "resp",
    "ReplyError": "resp",
    "RedisURL": "url",
}


__getattr__ = lazy_attributes(__name__, _MODULES)
