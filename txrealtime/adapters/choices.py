"""The adapters ``twistd txrealtime --adapter NAME --redis URL`` offers: one table, one row per adapter.

Each row says what the adapter is for and builds it: the link (which the service stops on shutdown and
the metrics read) and the adapter factory for :class:`txrealtime.socketio.Server`. A new adapter is a new
row in :data:`ADAPTERS`; the command line, its help and its checks follow from the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..redis.url import RedisURL
from .redis.sharded_link import SUBSCRIPTION_MODES

__all__ = ["ADAPTERS", "DEFAULT", "SUBSCRIPTION_MODES", "AdapterChoice"]


@dataclass(frozen=True)
class AdapterChoice:
    """One adapter of the command line."""

    name: str
    summary: str
    """What it gives, for ``--help``."""
    build: Callable[[str, dict[str, Any]], tuple[Any, Callable[[Any], Any]]]
    """``build(url, options)``: the link and the adapter factory (``options`` are the command line's)."""
    check: Callable[[RedisURL], str | None] = lambda url: None
    """What is wrong with a URL for this adapter, or ``None``."""


def _classic(url: str, options: dict[str, Any]) -> tuple[Any, Callable[[Any], Any]]:
    from .redis import RedisLink, redis_adapter

    link = RedisLink(url, key=options["redis-key"])
    return link, redis_adapter(link)


def _sharded(url: str, options: dict[str, Any]) -> tuple[Any, Callable[[Any], Any]]:
    from .redis import ShardedRedisLink, sharded_adapter

    link = ShardedRedisLink(url, key=options["redis-key"], subscription_mode=options["redis-subscription-mode"])
    return link, sharded_adapter(link)


def _streams(url: str, options: dict[str, Any]) -> tuple[Any, Callable[[Any], Any]]:
    from .redis import RedisStreamsLink, streams_adapter

    link = RedisStreamsLink(url, key=options["redis-key"], stream_name=options["redis-stream-name"],
                            max_len=options["redis-max-len"])
    return link, streams_adapter(link)


def _no_database(url: RedisURL) -> str | None:
    return "a Redis Cluster has database 0 only: drop the /db part" if url.db else None


ADAPTERS: dict[str, AdapterChoice] = {
    choice.name: choice
    for choice in (
        AdapterChoice(
            "redis", "Redis pub/sub, as Node's createAdapter", _classic
        ),
        AdapterChoice(
            "redis-streams", "Redis Streams, as Node's @socket.io/redis-streams-adapter: recovery across nodes, "
            "catching up after a Redis outage", _streams,
        ),
        AdapterChoice(
            "redis-sharded", "Redis Cluster sharded pub/sub, as Node's createShardedAdapter; any node's URL",
            _sharded, _no_database,
        ),
    )
}
"""Every adapter ``--adapter`` accepts, by name."""

DEFAULT = "redis"
"""The adapter ``--redis URL`` alone means."""
