"""Typed event contracts: the events each side may emit, their arguments and their acknowledgement, declared once.

Node's TypeScript writes ``Server<ClientToServerEvents, ServerToClientEvents>`` and looks event
names up in those interfaces with ``keyof``. Python's type system has no ``keyof`` (a checker
plugin would be needed to map a string to a signature), so here an event is a typed object,
named once in a contract shared by the server and the Python client::

    class Chat:
        say = ToServer[[str], None]("say")          # the client emits say(text), no acknowledgement
        join = ToServer[[str], int]("join")         # join(room), acknowledged with an int
        news = ToClient[[str, int], None]("news")   # the server emits news(headline, count)

``ToServer[[A, B], R]`` is an event the client emits with arguments ``(A, B)`` and the server's
handler acknowledges with an ``R`` (``None``: no acknowledgement); ``ToClient`` the other way.
An event *is* its name (a ``str``), so the untyped API takes it unchanged at no cost; the typed
views (:func:`txrealtime.socketio.typed.typed`, :func:`txrealtime.client.typed.typed`) only
tell the type checker what the sockets accept. A misspelt event is an unknown attribute of the
contract, wrong arguments, handlers and acknowledgement types are type errors, for ``mypy
--strict`` and pyright alike, with no plugin.

This module imports nothing of the server or of the client: both sides share it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Generic, ParamSpec, TypeAlias, TypeVar

from twisted.internet.defer import Deferred

__all__ = ["Answer", "Event", "Handler", "ToClient", "ToServer", "signature"]

P = ParamSpec("P")
R = TypeVar("R")

Answer: TypeAlias = R | Deferred[R] | Coroutine[Any, Any, R]
"""What a typed handler returns: its acknowledgement, now or later (a Deferred, or ``async def``)."""

Handler: TypeAlias = Callable[P, Answer[R]]
"""A typed handler of an event with arguments ``P`` acknowledged with ``R``."""


class Event(str, Generic[P, R]):
    """An event name with the types of its arguments (``P``) and of its acknowledgement (``R``).

    Use :class:`ToServer` or :class:`ToClient`, which also say who emits it.
    """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str.__repr__(self)})"


class ToServer(Event[P, R]):
    """An event the client emits and the server handles: ``ToServer[[args...], ack]("name")``."""


class ToClient(Event[P, R]):
    """An event the server emits and the client handles: ``ToClient[[args...], ack]("name")``."""


def signature(event: str) -> tuple[tuple[Any, ...], Any] | None:
    """The argument types and the acknowledgement type ``event`` was declared with, or ``None``
    for a plain name (or an event declared without its types, ``ToServer("name")``)."""
    declared = getattr(event, "__orig_class__", None)
    arguments = getattr(declared, "__args__", None)
    if not arguments or len(arguments) != 2:
        return None
    params, ack = arguments
    if not isinstance(params, tuple):
        return None  # ``...`` or a ParamSpec: nothing to check at run time
    return params, ack
