"""Throttling admin logins: per client address, and a queue for the checks that no one address can fill.

Node's ``@socket.io/admin-ui`` has neither: any client may try passwords as
fast as it can send CONNECT packets. Here each address may try
:attr:`LoginThrottle.burst` wrong passwords, then one every
:attr:`LoginThrottle.interval` seconds; it has at most one login being
checked at a time; a right password gives it its full allowance back. An
attempt over the allowance is refused without looking at the password.

The checks themselves (bcrypt is slow by design) wait in a :class:`CheckQueue`:
a few run at once, a bounded number wait, and when the queue is full the
waiting attempt of the address with the most recent failures is the one
refused, not the newcomer: a flood of wrong guesses cannot lock out an
operator who has not been failing.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred

from .._reactor import Clock, now

__all__ = ["BUSY", "CHECKING", "TOO_MANY", "CheckQueue", "LoginThrottle", "QueueFull"]

TOO_MANY = "too many login attempts, retry later"
"""The CONNECT_ERROR message of an attempt over its address's allowance."""

CHECKING = "a login from this address is being checked"
"""The CONNECT_ERROR message of an attempt while the same address has one being checked."""

BUSY = "too many logins being checked, retry later"
"""The CONNECT_ERROR message of an attempt the full queue of checks refused."""


@dataclass(slots=True)
class _Allowance:
    tokens: float
    stamp: float
    checking: bool = False


class LoginThrottle:
    """Wrong passwords per client address: a burst, then one per interval; one check at a time per address."""

    def __init__(self, reactor: Clock, burst: int = 10, interval: float = 6.0, max_addresses: int = 10_000) -> None:
        """Every address starts with a full allowance.

        :param reactor: The clock the allowances refill by.
        :param burst: Wrong passwords an address may try at once.
        :param interval: Seconds for one more attempt to be allowed.
        :param max_addresses: Addresses remembered; beyond, the one unused longest is forgotten.
        """
        self.reactor = reactor
        """The clock the allowances refill by."""
        self.burst = burst
        """Wrong passwords an address may try at once (10)."""
        self.interval = interval
        """Seconds for one more attempt to be allowed (6: ten a minute)."""
        self.max_addresses = max_addresses
        """Addresses remembered (10,000); beyond, the one unused longest is forgotten."""
        self._allowances: OrderedDict[str, _Allowance] = OrderedDict()

    def __len__(self) -> int:
        return len(self._allowances)

    def _allowance(self, address: str) -> _Allowance:
        at = now(self.reactor)
        allowance = self._allowances.get(address)
        if allowance is None:
            allowance = self._allowances[address] = _Allowance(float(self.burst), at)
            self._forget_beyond_bound()
        else:
            self._allowances.move_to_end(address)
            allowance.tokens = min(float(self.burst), allowance.tokens + (at - allowance.stamp) / self.interval)
            allowance.stamp = at
        return allowance

    def _forget_beyond_bound(self) -> None:
        while len(self._allowances) > self.max_addresses:
            address, oldest = next(iter(self._allowances.items()))
            if oldest.checking:  # a check in flight keeps its entry: move it out of the way
                self._allowances.move_to_end(address)
                if all(a.checking for a in self._allowances.values()):
                    return
                continue
            del self._allowances[address]

    def admit(self, address: str) -> str | None:
        """Take one attempt from ``address``'s allowance: ``None`` if it may be checked (then call
        :meth:`done`), else why not (:data:`TOO_MANY`, :data:`CHECKING`)."""
        allowance = self._allowance(address)
        if allowance.checking:
            return CHECKING
        if allowance.tokens < 1:
            return TOO_MANY
        allowance.tokens -= 1
        allowance.checking = True
        return None

    def failures(self, address: str) -> int:
        """How many whole attempts of ``address``'s allowance are spent (its recent wrong passwords), not counting
        the one being checked."""
        allowance = self._allowances.get(address)
        if allowance is None:
            return 0
        return max(0, math.ceil(self.burst - allowance.tokens) - (1 if allowance.checking else 0))

    def done(self, address: str, accepted: bool) -> None:
        """The check :meth:`admit` let through ended; a right password gives the full allowance back."""
        allowance = self._allowances.get(address)
        if allowance is not None:
            allowance.checking = False
            if accepted:
                allowance.tokens = float(self.burst)


@dataclass(slots=True)
class _Waiting:
    priority: float
    order: int
    deferred: Deferred[Any]
    work: Callable[[], Any]


class CheckQueue:
    """At most ``concurrency`` checks at once, ``max_waiting`` more in line, the lowest priority first.

    When the line is full, an attempt with a lower priority than the highest
    waiting one takes its place, and that one is refused: a waiting attempt's
    Deferred fails with :class:`QueueFull`, as does a newcomer's that does not
    get in.
    """

    def __init__(self, concurrency: int = 2, max_waiting: int = 32) -> None:
        """An empty queue.

        :param concurrency: Checks that run at once.
        :param max_waiting: Checks that may wait.
        """
        self.concurrency = concurrency
        """Checks that run at once."""
        self.max_waiting = max_waiting
        """Checks that may wait."""
        self.running = 0
        """Checks running now."""
        self._waiting: list[_Waiting] = []
        self._order = 0

    @property
    def waiting(self) -> int:
        """Checks waiting now."""
        return len(self._waiting)

    def run(self, priority: float, work: Callable[[], Any]) -> Deferred[Any]:
        """Run ``work`` (which may return a Deferred) when its turn comes: lower ``priority`` first."""
        if self.running < self.concurrency:
            return self._start(work)
        self._order += 1
        entry = _Waiting(priority, self._order, Deferred(), work)
        if len(self._waiting) >= self.max_waiting:
            worst = max(self._waiting, key=lambda w: (w.priority, w.order))
            if priority >= worst.priority:  # the newcomer has failed as much: it is the one refused
                entry.deferred.errback(QueueFull())
                return entry.deferred
            self._waiting.remove(worst)
            worst.deferred.errback(QueueFull())
        self._waiting.append(entry)
        return entry.deferred

    def _start(self, work: Callable[[], Any]) -> Deferred[Any]:
        self.running += 1

        def finished(result: object) -> object:
            self.running -= 1
            if self._waiting and self.running < self.concurrency:
                best = min(self._waiting, key=lambda w: (w.priority, w.order))
                self._waiting.remove(best)
                self._start(best.work).chainDeferred(best.deferred)
            return result

        return maybeDeferred(work).addBoth(finished)


class QueueFull(Exception):
    """The queue of checks refused this one (:data:`BUSY`)."""
