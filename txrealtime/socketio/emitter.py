"""Listener registries and the calling convention every handler follows."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed

__all__ = ["EventEmitter", "Handler", "call_handler"]

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)


def call_handler(handler: Handler, *args: Any) -> Deferred[Any]:
    """Call a plain, ``async def`` or Deferred-returning handler; always return a Deferred."""
    try:
        result = handler(*args)
    except Exception:
        return fail()
    if isinstance(result, Deferred):
        return result
    if inspect.iscoroutine(result):
        return ensureDeferred(result)
    return succeed(result)


class EventEmitter:
    """``on``/``once``/``off`` with Node's semantics; ``on`` doubles as a decorator."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._once: set[int] = set()

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...

    @overload
    def on(self, event: str, handler: H) -> H: ...

    def on(self, event: str, handler: H | None = None) -> H | Callable[[H], H]:
        """Call ``handler`` for every ``event``. Without a handler, return a decorator."""
        if handler is None:
            return lambda h: self.on(event, h)
        self._handlers.setdefault(event, []).append(handler)
        return handler

    def once(self, event: str, handler: H) -> H:
        """Like :meth:`on`, for the next ``event`` only."""
        self._once.add(id(handler))
        return self.on(event, handler)

    def off(self, event: str | None = None, handler: Handler | None = None) -> None:
        """Remove one handler, every handler of ``event``, or every handler."""
        if event is None:
            self._handlers.clear()
        elif handler is None:
            self._handlers.pop(event, None)
        elif handler in self._handlers.get(event, ()):
            self._handlers[event].remove(handler)

    def listeners(self, event: str) -> list[Handler]:
        return list(self._handlers.get(event, ()))

    def _take(self, event: str) -> list[Handler]:
        """The handlers to call for one ``event``, removing ``once`` handlers."""
        handlers = self._handlers.get(event)
        if not handlers:
            return []
        current = list(handlers)
        if self._once:
            for h in current:
                if id(h) in self._once:
                    self._once.discard(id(h))
                    handlers.remove(h)
        return current
