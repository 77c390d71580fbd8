"""Runtime validation of incoming events against their contract (the ``validation`` extra: msgspec).

A :class:`Validator` is a socket's event middleware (``socket.use``): before the handlers of a
:class:`txrealtime.contract.ToServer` event run, the client's arguments are checked (and
converted: a dataclass or ``msgspec.Struct`` argument arrives as one) against the types the
event was declared with. A bad payload never reaches the handlers and never closes the
connection: an event the client wants acknowledged is answered with one error object,
``{"error": "invalid arguments", "event": NAME, "detail": WHY}``; one without acknowledgement is
dropped. Either way it is counted in :attr:`Validator.invalid` and goes to the socket's
``error`` handlers as an :class:`txrealtime.socketio.EventRefused` (no payload in its message).

msgspec is the default backend (``docs/typed-events.md`` has the measured cost per event of
both); pydantic is the other (``backend="pydantic"``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from ..contract import Event, ToServer, signature
from .errors import EventRefused
from .namespace import Namespace
from .server import Server
from .socket import Socket

__all__ = ["Backend", "Validator"]

Backend = Literal["msgspec", "pydantic"]
"""The libraries a :class:`Validator` can check with."""

Check = Callable[[list[Any]], Sequence[Any]]


def _events(contracts: Iterable[object]) -> list[ToServer[Any, Any]]:
    """The ``ToServer`` events of contract classes (their attributes) or given directly."""
    found: list[ToServer[Any, Any]] = []
    for contract in contracts:
        values = [contract] if isinstance(contract, Event) else list(vars(contract).values())
        found.extend(value for value in values if isinstance(value, ToServer))
    return found


def _msgspec_check(params: tuple[Any, ...]) -> tuple[Check, type[Exception]]:
    msgspec = importlib.import_module("msgspec")
    # A Struct whose fields are the arguments, read from an array: msgspec caches what it learnt of a
    # Struct's types, not of a ``tuple[...]`` (which it would read again at each call, twice the cost).
    fields = [(f"a{index}", param) for index, param in enumerate(params)]
    arguments = msgspec.defstruct("Arguments", fields, array_like=True, forbid_unknown_fields=True)
    convert, astuple = msgspec.convert, msgspec.structs.astuple

    def check(args: list[Any]) -> Sequence[Any]:
        return astuple(convert(args, arguments, strict=True))  # type: ignore[no-any-return]

    return check, msgspec.ValidationError


def _pydantic_check(params: tuple[Any, ...]) -> tuple[Check, type[Exception]]:
    pydantic = importlib.import_module("pydantic")
    expected: Any = tuple.__class_getitem__(params) if params else tuple[()]
    adapter = pydantic.TypeAdapter(expected)

    def check(args: list[Any]) -> Sequence[Any]:
        return adapter.validate_python(tuple(args), strict=True)  # type: ignore[no-any-return]

    return check, pydantic.ValidationError


def _detail(error: Exception, backend: Backend) -> str:
    """Why the arguments are wrong, without the values the client sent (pydantic would quote them)."""
    if backend == "pydantic":
        errors: list[dict[str, Any]] = error.errors(include_input=False)  # type: ignore[attr-defined]
        return "; ".join(f"{e['msg']} at {'.'.join(map(str, e['loc']))}" for e in errors)
    return str(error)


class Validator:
    """Checks the arguments of incoming ``ToServer`` events against their declared types.

    ``socket.use(validator)`` on each socket, or :meth:`install` on a server or namespace.
    Events declared without types, and names the contracts do not declare, pass unchecked.
    """

    def __init__(self, *contracts: object, backend: Backend = "msgspec") -> None:
        """A validator of the events of ``contracts``.

        :param contracts: Classes whose attributes are events (as ``Chat`` in ``docs/typed-events.md``),
            or events themselves.
        :param backend: ``"msgspec"`` (the default, the faster) or ``"pydantic"``; the library must
            be installed (``pip install 'txrealtime[validation]'`` brings msgspec).
        :raises ImportError: If the backend's library is not installed.
        """
        make = _msgspec_check if backend == "msgspec" else _pydantic_check
        self.backend: Backend = backend
        """The library that checks."""
        self._checks: dict[str, tuple[Check, type[Exception]]] = {}
        for event in _events(contracts):
            declared = signature(event)
            if declared is not None:
                self._checks[str(event)] = make(declared[0])
        self.invalid: dict[str, int] = {}
        """Per event name, how many were refused (answered with an error) or dropped (no acknowledgement asked)."""

    def __call__(self, event: str, args: list[Any]) -> None:
        """Check (and convert, in place) one event's arguments; raise :class:`EventRefused` if they are wrong."""
        known = self._checks.get(event)
        if known is None:
            return
        check, invalid = known
        try:
            args[:] = check(args)
        except invalid as error:
            self.invalid[event] = self.invalid.get(event, 0) + 1
            detail = _detail(error, self.backend)
            answer = {"error": "invalid arguments", "event": event, "detail": detail}
            raise EventRefused("invalid arguments", answer) from None

    def install(self, target: Server | Namespace) -> None:
        """Check the events of every socket that connects to ``target`` (a server: its default namespace),
        before any other event middleware."""
        namespace = target.sockets if isinstance(target, Server) else target

        def connected(socket: Socket) -> None:
            socket.use(self)

        namespace.prepend("connection", connected)
