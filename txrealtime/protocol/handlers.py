"""Listener registries and the calling convention every handler follows."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar, overload

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed

from .._events import RESERVED_EVENTS, check_event

__all__ = ["CatchAll", "EventEmitter", "Flagged", "Handler", "RESERVED_EVENTS", "call_handler", "call_in_turn",
           "call_in_turn_now", "check_event"]

Handler = Callable[..., Any]
"""An event handler: a plain, ``async def`` or Deferred-returning callable."""
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


def call_in_turn(middlewares: list[Handler], *args: Any) -> Deferred[None]:
    """Run middleware one after the other (each may be async); fails with the first one's failure."""
    pending = call_in_turn_now(middlewares, *args)
    return succeed(None) if pending is None else pending


def call_in_turn_now(middlewares: list[Handler], *args: Any) -> Deferred[None] | None:
    """:func:`call_in_turn` without a Deferred while each middleware returns at once: ``None`` when all passed,
    else a Deferred, failed if one raised, firing after the rest if one returned a Deferred or coroutine."""
    remaining = list(middlewares)
    for index, middleware in enumerate(remaining):
        try:
            result = middleware(*args)
        except Exception:
            return fail()
        if isinstance(result, Deferred) or inspect.iscoroutine(result):
            d: Deferred[Any] = result if isinstance(result, Deferred) else ensureDeferred(result)
            return d.addCallback(lambda _, rest: call_in_turn(rest, *args), remaining[index + 1 :])
    return None


S = TypeVar("S")


class Flagged(Generic[S]):
    """``socket.volatile`` / ``socket.timeout(s)`` / ``socket.compress(c)``: a socket and the flags of
    the next emit, server or client side."""

    def __init__(self, socket: S, volatile: bool = False, timeout: float | None = None, compress: bool = True) -> None:
        self._socket = socket
        self._volatile = volatile
        self._timeout = timeout
        self._compress = compress

    @property
    def volatile(self) -> Self:
        """Skip the emit instead of queueing it while the connection cannot take it."""
        return type(self)(self._socket, True, self._timeout, self._compress)

    def timeout(self, seconds: float) -> Self:
        """Fail the acknowledgement with ``AckTimeout`` after ``seconds``."""
        return type(self)(self._socket, self._volatile, seconds, self._compress)

    def compress(self, compress: bool) -> Self:
        """With ``False``, the packet is sent uncompressed whatever its size (on the server; the
        Twisted client does not compress)."""
        return type(self)(self._socket, self._volatile, self._timeout, compress)


class EventEmitter:
    """``on``/``once``/``off`` with Node's semantics; ``on`` doubles as a decorator."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._once: dict[str, list[Handler]] = {}
        """Per event, the handlers registered with :meth:`once` (still in ``_handlers`` until they run)."""

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

    def prepend(self, event: str, handler: H) -> H:
        """Like :meth:`on`, but call ``handler`` before those already registered (Node's ``prependListener``)."""
        self._handlers.setdefault(event, []).insert(0, handler)
        return handler

    def once(self, event: str, handler: H) -> H:
        """Like :meth:`on`, for the next ``event`` only."""
        self._once.setdefault(event, []).append(handler)
        return self.on(event, handler)

    def off(self, event: str | None = None, handler: Handler | None = None) -> None:
        """Remove one handler, every handler of ``event``, or every handler."""
        if event is None:
            self._handlers.clear()
            self._once.clear()
        elif handler is None:
            self._handlers.pop(event, None)
            self._once.pop(event, None)
        elif handler in self._handlers.get(event, ()):
            self._handlers[event].remove(handler)
            if handler in self._once.get(event, ()):
                self._once[event].remove(handler)

    def listeners(self, event: str) -> list[Handler]:
        """The handlers of ``event``, in the order they are called."""
        return list(self._handlers.get(event, ()))

    def take_handlers(self, event: str) -> list[Handler]:
        """The handlers to call for one ``event`` now, in order, removing the ``once`` ones (what dispatching
        an event does first; :meth:`listeners` only looks)."""
        handlers = self._handlers.get(event)
        if not handlers:
            return []
        current = list(handlers)
        once = self._once.pop(event, None)
        for handler in once or ():
            handlers.remove(handler)
        return current


class CatchAll:
    """Catch-all listeners, ``listener(event, *args)``, for incoming and outgoing events."""

    def __init__(self) -> None:
        self._any: list[Handler] = []
        self._any_outgoing: list[Handler] = []

    def on_any(self, listener: Handler) -> Handler:
        """Call ``listener(event, *args)`` for every incoming event."""
        self._any.append(listener)
        return listener

    def prepend_any(self, listener: Handler) -> Handler:
        """Like :meth:`on_any`, called before the others."""
        self._any.insert(0, listener)
        return listener

    def off_any(self, listener: Handler | None = None) -> None:
        """Stop calling ``listener`` (every catch-all listener if not given)."""
        _remove(self._any, listener)

    def listeners_any(self) -> list[Handler]:
        """The catch-all listeners of incoming events."""
        return list(self._any)

    def on_any_outgoing(self, listener: Handler) -> Handler:
        """Call ``listener(event, *args)`` for every outgoing event."""
        self._any_outgoing.append(listener)
        return listener

    def prepend_any_outgoing(self, listener: Handler) -> Handler:
        """Like :meth:`on_any_outgoing`, called before the others."""
        self._any_outgoing.insert(0, listener)
        return listener

    def off_any_outgoing(self, listener: Handler | None = None) -> None:
        """Stop calling ``listener`` (every outgoing catch-all listener if not given)."""
        _remove(self._any_outgoing, listener)

    def listeners_any_outgoing(self) -> list[Handler]:
        """The catch-all listeners of outgoing events."""
        return list(self._any_outgoing)


def _remove(listeners: list[Handler], listener: Handler | None) -> None:
    if listener is None:
        listeners.clear()
    elif listener in listeners:
        listeners.remove(listener)
