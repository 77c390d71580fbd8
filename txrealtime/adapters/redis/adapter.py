"""The classic adapter under the names Redis users know it by.

The adapter shares rooms over any pub/sub link and lives in :mod:`txrealtime.adapters.classic`;
:class:`RedisAdapter` is its :class:`txrealtime.adapters.classic.ClassicAdapter`, named for the
:class:`txrealtime.adapters.redis.RedisLink` it is given, and adds nothing to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..broker import RemoteSocket
from ..classic import AdapterLink, ClassicAdapter

__all__ = ["AdapterLink", "RedisAdapter", "RemoteSocket", "redis_adapter"]


class RedisAdapter(ClassicAdapter):
    """Rooms of one namespace, with broadcasts and requests shared through Redis: the classic adapter."""


def redis_adapter(link: AdapterLink) -> Callable[[Any], RedisAdapter]:
    """An adapter factory for :class:`txrealtime.socketio.Server`: ``Server(adapter=redis_adapter(link))``, with
    ``link`` a :class:`txrealtime.adapters.redis.RedisLink` (any other :class:`AdapterLink` works too: see
    :func:`txrealtime.adapters.classic.classic_adapter`).

    Starts the link if it is not started yet.
    """
    link.start()
    return lambda namespace: RedisAdapter(namespace, link)
