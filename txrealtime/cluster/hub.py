"""The master's publish/subscribe table: who hears what is published (Redis's PUBLISH semantics, in memory).

Pure and free of I/O: :meth:`Hub.publish` returns the deliveries and the
master writes them. As in Redis, a publisher subscribed to the channel hears
its own message, and a worker subscribed to a channel and a matching pattern
hears it once for each. Patterns are Redis globs (``*``, ``?``, ``[...]``,
``\\`` escapes), matched by :func:`glob_match`.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

__all__ = ["Delivery", "Hub", "glob_match"]

W = TypeVar("W", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Delivery(Generic[W]):
    """``message`` published on ``channel`` goes to ``worker``, for ``pattern`` (``""``: the channel itself)."""

    worker: W
    pattern: str
    channel: str
    message: bytes


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("^")
                if negate:
                    body = body[1:]
                out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error:
        return re.compile(re.escape(pattern), re.DOTALL)


def glob_match(pattern: str, channel: str) -> bool:
    """Whether ``channel`` matches the Redis glob ``pattern``."""
    return _compile(pattern).fullmatch(channel) is not None


class Hub(Generic[W]):
    """Channel and pattern subscriptions of each worker."""

    def __init__(self) -> None:
        self._channels: dict[str, set[W]] = {}
        self._patterns: dict[str, set[W]] = {}

    def subscribe(self, worker: W, channel: str) -> None:
        """``worker`` hears ``channel``."""
        self._channels.setdefault(channel, set()).add(worker)

    def unsubscribe(self, worker: W, channel: str) -> None:
        """``worker`` no longer hears ``channel``."""
        _discard(self._channels, channel, worker)

    def psubscribe(self, worker: W, pattern: str) -> None:
        """``worker`` hears every channel matching ``pattern``."""
        self._patterns.setdefault(pattern, set()).add(worker)

    def punsubscribe(self, worker: W, pattern: str) -> None:
        """``worker`` no longer hears ``pattern``."""
        _discard(self._patterns, pattern, worker)

    def forget(self, worker: W) -> None:
        """Drop every subscription of ``worker`` (it is gone)."""
        for table in (self._channels, self._patterns):
            for name in [name for name, workers in table.items() if worker in workers]:
                _discard(table, name, worker)

    def numsub(self, channel: str) -> int:
        """How many workers subscribe to ``channel`` itself (Redis's ``PUBSUB NUMSUB``: patterns not counted)."""
        return len(self._channels.get(channel, ()))

    def publish(self, channel: str, message: bytes) -> list[Delivery[W]]:
        """Every delivery of ``message`` published on ``channel``."""
        out = [Delivery(w, "", channel, message) for w in self._channels.get(channel, ())]
        for pattern, workers in self._patterns.items():
            if glob_match(pattern, channel):
                out.extend(Delivery(w, pattern, channel, message) for w in workers)
        return out


def _discard(table: dict[str, set[W]], name: str, worker: W) -> None:
    workers = table.get(name)
    if workers is not None:
        workers.discard(worker)
        if not workers:
            del table[name]
