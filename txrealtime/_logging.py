"""txrealtime's logging: one level gate for every module, and a throttle for lines a flood repeats.

Every txrealtime module logs through ``Logger(__name__, observer=gate)``: events below
the level set with :func:`set_log_level` (``info`` by default) are dropped
before any observer formats them, so routine per-connection ``debug`` lines
stay out of ``twistd``'s log unless asked for (``--log-level debug``).
Lines that a hostile client can make the server repeat (refused handshakes,
protocol errors) go through a :class:`Throttle`. The namespace is given, not
left to ``Logger`` to guess from the calling frame: a module compiled with mypyc
has no frame of its own, and the guess would name ``importlib._bootstrap``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
)

__all__ = ["LEVELS", "Throttle", "gate", "name_for_log", "reset_throttles", "set_log_level"]

LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn, "error": LogLevel.error}
"""The level names :func:`set_log_level` and ``twistd txrealtime --log-level`` accept."""

_predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
gate = cast(
    ILogObserver,
    FilteringLogObserver(cast(ILogObserver, globalLogPublisher), [cast(ILogFilterPredicate, _predicate)]),
)
"""The observer every txrealtime ``Logger`` writes to; it forwards to the global publisher."""


def set_log_level(level: str | LogLevel) -> None:
    """Log txrealtime's events at ``level`` and above (``"debug"``, ``"info"``, ``"warn"``, ``"error"``)."""
    if isinstance(level, str):
        if level not in LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
        level = LEVELS[level]
    _predicate.setLogLevelForNamespace("", level)


_throttles: list[Throttle] = []


def reset_throttles() -> None:
    """Start every throttle's periods afresh (for tests that count log lines)."""
    for throttle in _throttles:
        throttle._windows.clear()


def name_for_log(name: str, limit: int = 64) -> str:
    """Text a client or a hook chose (an event, a namespace, a refusal's reason), cut to ``limit`` characters
    for a log line, a lone surrogate escaped (``\\ud800``): a log file is UTF-8, which cannot hold one."""
    if len(name) > limit:
        name = f"{name[:limit]}... ({len(name)} characters)"
    return name if name.isascii() else name.encode("utf-8", "backslashreplace").decode("utf-8")


class Throttle:
    """At most ``burst`` lines of each format per ``period`` seconds; the rest are counted.

    When a new period starts, one line says how many were left out. A flood of
    refused or broken sessions then costs a few lines, not one per session.
    """

    def __init__(
        self, log: Logger, burst: int = 20, period: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.log = log
        self.burst = burst
        self.period = period
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        """Per format: when its period started, and lines seen in it."""
        _throttles.append(self)

    def info(self, format: str, **fields: Any) -> None:
        """Log ``format`` at info level unless this period's burst is spent."""
        self._emit(self.log.info, format, fields)

    def warn(self, format: str, **fields: Any) -> None:
        """Log ``format`` at warn level unless this period's burst is spent."""
        self._emit(self.log.warn, format, fields)

    def _emit(self, emit: Callable[..., None], format: str, fields: dict[str, Any]) -> None:
        now = self._clock()
        start, seen = self._windows.get(format, (now, 0))
        if now - start >= self.period:
            if seen > self.burst:
                self.log.info(
                    "{suppressed} more lines like {what!r} left out in {period:g} s",
                    suppressed=seen - self.burst,
                    what=format,
                    period=self.period,
                )
            start, seen = now, 0
        seen += 1
        self._windows[format] = (start, seen)
        if seen <= self.burst:
            emit(format, **fields)
