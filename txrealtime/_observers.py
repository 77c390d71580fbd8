"""A stream of typed events and the callbacks subscribed to it: one shape for the session manager,
the client's manager and the Redis link."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from ._logging import gate

__all__ = ["Observers", "first"]

E = TypeVar("E")

log = Logger(__name__, observer=gate)


class Observers(Generic[E]):
    """Callbacks called with every event, in the order they subscribed; one that raises is logged and
    the others still run."""

    def __init__(self, what: str) -> None:
        self.what = what
        """What publishes, for the log line of a failing callback."""
        self._callbacks: list[Callable[[E], object]] = []

    def __len__(self) -> int:
        return len(self._callbacks)

    def subscribe(self, callback: Callable[[E], object]) -> Callable[[], None]:
        """Call ``callback`` with every event; returns a function that unsubscribes it."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def publish(self, event: E) -> None:
        """Hand ``event`` to every callback (the event's type is logged on failure, never its contents)."""
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:
                log.failure("{what}: subscriber {callback!r} failed on {event}", what=self.what, callback=callback,
                            event=type(event).__name__)


def first(
    subscribe: Callable[[Callable[[E], object]], Callable[[], None]], matches: Callable[[E], bool]
) -> Deferred[None]:
    """Fire (with ``None``) at the first event that ``matches``, from a stream ``subscribe`` subscribes to (an
    :meth:`Observers.subscribe`, or a method that wraps one); cancelling the result stops waiting."""
    unsubscribe: Callable[[], None] = lambda: None  # noqa: E731 (replaced below)
    ready: Deferred[None] = Deferred(lambda _: unsubscribe())

    def watch(event: E) -> None:
        if matches(event) and not ready.called:
            unsubscribe()
            ready.callback(None)

    unsubscribe = subscribe(watch)
    return ready
