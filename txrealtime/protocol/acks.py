"""Acknowledgements: the one table of pending answers, their calling conventions, a broadcast's collector.

:class:`Pending` holds entries awaiting an answer, each with an optional
timeout; it serves cluster requests as they are. :class:`AckTable` adds ack
ids and the calling convention of a socket's acknowledgements (server and
client sockets alike): an answer's arguments as a Deferred's value
(:func:`ack_value`), a handler's return value as an answer (:func:`ack_args`,
:data:`NO_ACK`), Node's ``ack`` keyword (:func:`takes_ack`,
:func:`ack_callback`) and ``ack(err, *answer)`` callbacks (:func:`node_callbacks`).
:class:`BroadcastAcks` counts the answers to one broadcast across servers.
Nothing here does I/O: time comes from a clock passed in.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred

from .._reactor import Clock, DelayedCall, cancel
from .errors import AckTimeout
from .handlers import Handler

__all__ = ["NO_ACK", "Ack", "AckTable", "BroadcastAcks", "Pending", "ack_args", "ack_callback", "ack_deferred",
           "ack_value", "node_callbacks", "takes_ack"]

K = TypeVar("K")
V = TypeVar("V")


def ack_value(args: list[Any]) -> Any:
    """What an acknowledgement's Deferred fires with: one value, ``None``, or a tuple of several."""
    if not args:
        return None
    return args[0] if len(args) == 1 else tuple(args)


def ack_args(result: Any) -> list[Any]:
    """The ACK packet's arguments for a handler's return value (a tuple means several)."""
    if result is None:
        return []
    return list(result) if isinstance(result, tuple) else [result]


class _NoAck:
    def __repr__(self) -> str:
        return "NO_ACK"


NO_ACK: Any = _NoAck()
"""Return this from a handler to send no acknowledgement at all (Node: never calling the callback)."""

_takes_ack: dict[Any, bool] = {}
"""By code object: closures made by one ``def`` share it, so the cache stays as small as the program."""


def takes_ack(handler: Handler) -> bool:
    """Whether ``handler`` has a keyword-only ``ack`` parameter (Node's callback style).

    Such a handler answers by calling ``ack(*values)`` (``ack`` is ``None``
    when the peer asked for no acknowledgement); its return value answers nothing.
    """
    code = getattr(getattr(handler, "__func__", handler), "__code__", None)
    known = _takes_ack.get(code) if code is not None else None
    if known is None:
        try:
            parameter = inspect.signature(handler).parameters.get("ack")
        except (TypeError, ValueError):
            parameter = None
        known = parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY
        if code is not None:
            _takes_ack[code] = known
    return known


def ack_callback(answer: Callable[[tuple[Any, ...]], object]) -> Callable[..., None]:
    """The ``ack`` handed to a handler that :func:`takes_ack`: ``ack(*values)`` answers once, later calls do nothing."""
    answered = False

    def ack(*values: Any) -> None:
        nonlocal answered
        if not answered:
            answered = True
            answer(values)

    return ack


def node_callbacks(callback: Callable[..., object]) -> tuple[Callable[[list[Any]], None], Callable[[Exception], None]]:
    """Node's ``callback(err, *answer)`` as the ``(answered, failed)`` pair :meth:`AckTable.register` takes:
    ``callback(None, *answer)`` for an answer, ``callback(error)`` for a timeout or a disconnection."""

    def answered(answer: list[Any]) -> None:
        callback(None, *answer)

    def failed(error: Exception) -> None:
        callback(error)

    return answered, failed


def ack_deferred(
    canceller: Callable[[Deferred[Any]], None] | None = None,
) -> tuple[Deferred[Any], Callable[[list[Any]], None], Callable[[Exception], None]]:
    """A Deferred for one answer, with the ``(answered, failed)`` pair that fires it (the first call wins).

    It fires with :func:`ack_value` of the answer, or fails with the error.
    """
    result: Deferred[Any] = Deferred(canceller)

    def answered(args: list[Any]) -> None:
        if not result.called:
            result.callback(ack_value(args))

    def failed(error: Exception) -> None:
        if not result.called:
            result.errback(error)

    return result, answered, failed


class Pending(Generic[K, V]):
    """Entries awaiting an answer by key, each with an optional timeout."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[K, tuple[V, DelayedCall | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[K]:
        """The keys waiting, in the order they were added."""
        return list(self._entries)

    def values(self) -> list[V]:
        """The entries waiting, in the order they were added."""
        return [value for value, _ in self._entries.values()]

    def add(self, key: K, value: V, timeout: float | None = None, on_timeout: Callable[[V], object] | None = None) -> K:
        """Keep ``value`` under ``key``; after ``timeout`` seconds it is dropped and ``on_timeout(value)`` called."""
        timer = None
        if timeout is not None:
            timer = self._clock.callLater(timeout, self._expire, key, on_timeout)
        self._entries[key] = (value, timer)
        return key

    def get(self, key: K) -> V | None:
        """The entry under ``key``, left in place (for requests answered several times)."""
        entry = self._entries.get(key)
        return entry[0] if entry is not None else None

    def take(self, key: K) -> V | None:
        """Remove and return the entry under ``key``, its timeout cancelled; ``None`` if there is none."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        cancel(entry[1])
        return entry[0]

    def take_all(self) -> list[V]:
        """Remove every entry, timeouts cancelled; return them in the order they were added."""
        entries, self._entries = self._entries, {}
        for _, timer in entries.values():
            cancel(timer)
        return [value for value, _ in entries.values()]

    def _expire(self, key: K, on_timeout: Callable[[V], object] | None) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and on_timeout is not None:
            on_timeout(entry[0])


@dataclass(frozen=True, slots=True)
class Ack:
    """One pending acknowledgement: what to do with the answer, and with a failure."""

    answered: Callable[[list[Any]], object]
    """Called with the answer's arguments."""
    failed: Callable[[Exception], object] | None = None
    """Called with :class:`AckTimeout`, or the error given to :meth:`AckTable.fail_all`."""


class AckTable(Pending[int, Ack]):
    """A socket's acknowledgements: ids 0, 1, 2… as Node numbers them, answers, timeouts, failing all."""

    def __init__(self, clock: Clock, timed_out: Callable[[], object] | None = None) -> None:
        super().__init__(clock)
        self._ids: Iterator[int] = count()
        self._timed_out = timed_out
        """Called (with no argument) each time an acknowledgement times out: the server counts them."""

    def next_id(self) -> int:
        """The next ack id."""
        return next(self._ids)

    def register(
        self,
        answered: Callable[[list[Any]], object],
        failed: Callable[[Exception], object] | None = None,
        timeout: float | None = None,
    ) -> int:
        """Wait for the answer to a new ack id; ``failed(AckTimeout())`` after ``timeout`` seconds."""
        return self.add(self.next_id(), Ack(answered, failed), timeout, self._time_out)

    def deferred(self, timeout: float | None = None) -> tuple[int, Deferred[Any]]:
        """A new ack id and a Deferred for its answer.

        It fires with the answer (one value, a tuple of several, or ``None``);
        fails with :class:`AckTimeout` after ``timeout`` or with the error of
        :meth:`fail_all`. Cancelling it forgets the ack id.
        """
        ack_id = -1

        def forget(_: Deferred[Any]) -> None:
            self.take(ack_id)

        result, answered, failed = ack_deferred(forget)
        ack_id = self.register(answered, failed, timeout)
        return ack_id, result

    def _time_out(self, ack: Ack) -> None:
        if self._timed_out is not None:
            self._timed_out()
        if ack.failed is not None:
            ack.failed(AckTimeout())

    def fail_all(self, error: Exception) -> None:
        """Fail every pending acknowledgement with ``error`` (the socket went away)."""
        for ack in self.take_all():
            if ack.failed is not None:
                ack.failed(error)


class BroadcastAcks:
    """Collects the answers to one broadcast: done once every server reported its client count and
    every counted client answered, or at the timeout (then failing with :class:`AckTimeout` and the
    answers received)."""

    def __init__(self, clock: Clock, timeout: float, timed_out: Callable[[], object] | None = None) -> None:
        self.result: Deferred[list[Any]] = Deferred()
        """Fires with every client's answer."""
        self._on_timeout = timed_out
        self.responses: list[Any] = []
        """The answers received so far."""
        self._servers_expected = -1
        self._servers = 0
        self._clients = 0
        self._timer: DelayedCall | None = clock.callLater(timeout, self._timed_out)

    def client_count(self, count: int) -> None:
        """One server asked ``count`` of its clients."""
        self._clients += count
        self._servers += 1
        self._check()

    def answer(self, args: list[Any]) -> None:
        """One client answered."""
        self.responses.append(ack_value(args))
        self._check()

    def expect_servers(self, count: int) -> None:
        """How many servers share the namespace, this one included."""
        self._servers_expected = count
        self._check()

    def _check(self) -> None:
        if (
            not self.result.called
            and self._servers_expected == self._servers
            and len(self.responses) == self._clients
        ):
            self._timer = cancel(self._timer)
            self.result.callback(list(self.responses))

    def _timed_out(self) -> None:
        self._timer = None
        if not self.result.called:
            if self._on_timeout is not None:
                self._on_timeout()
            self.result.errback(AckTimeout(list(self.responses)))
