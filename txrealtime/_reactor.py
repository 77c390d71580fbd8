"""The reactor floor: the default reactor, the clock Protocols everything is typed against, timer helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar


def default_reactor(reactor: Any = None) -> Any:
    """``reactor`` if given, else the global Twisted reactor (imported only when needed)."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    return reactor


def now(reactor: Any) -> float:
    """The reactor's notion of the current time (``seconds()``; a ``task.Clock`` included)."""
    seconds = getattr(reactor, "seconds", None)
    return float(seconds()) if seconds is not None else time.monotonic()


class DelayedCall(Protocol):
    """The part of ``IDelayedCall`` txrealtime uses."""

    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class Clock(Protocol):
    """The part of ``IReactorTime`` txrealtime uses (a reactor, or ``task.Clock``)."""

    def callLater(self, delay: float, callable: Callable[..., object], *args: object) -> DelayedCall: ...


C = TypeVar("C", bound=DelayedCall)


def cancel(call: C | None) -> C | None:
    """Cancel a pending delayed call, if there is one and it has not run; return ``None``.

    Written ``self._timer = cancel(self._timer)`` so the attribute is cleared too.
    """
    if call is not None and call.active():
        call.cancel()
    return None
