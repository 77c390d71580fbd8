"""What a link to the other nodes could not carry: counted every time, logged once per outage.

A link (Redis, Redis Cluster, the workers' master) that cannot hand a message
to its broker counts it and goes on: the local clients got the broadcast, the
other nodes did not. A flood of broadcasts during an outage must not become a
flood of log lines, so :class:`Outage` writes at most two per outage: one when
it starts (the link was lost, or a first message could not be sent), one when
it ends, with how many messages were not sent and for how long.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

__all__ = ["Deafness", "Outage"]


class Outage:
    """One link's outages: :meth:`lost` and :meth:`back` as the link goes and comes, :meth:`dropped` for each
    message not sent. :attr:`undelivered` counts them all, across outages."""

    def __init__(self, what: str, log: Logger, clock: Callable[[], float]) -> None:
        self.what = what
        """How log lines name the link (``Redis link 1a2b3c``)."""
        self.log = log
        self.clock = clock
        self.undelivered = 0
        """Messages not sent to the other nodes, since the link was made."""
        self._since: float | None = None
        self._dropped = 0

    @property
    def ongoing(self) -> bool:
        """Whether an outage started and has not ended."""
        return self._since is not None

    def lost(self, reason: str) -> None:
        """The link went down (logged once, as an error: cross-node delivery stops)."""
        if self._since is None:
            self._since = self.clock()
            self.log.error(
                "{what} lost ({reason}): broadcasts reach this node's clients only until it is back; "
                "what is not sent is counted", what=self.what, reason=reason,
            )

    def dropped(self, count: int = 1, why: str = "unreachable") -> None:
        """``count`` messages were not sent; the first of an outage not announced by :meth:`lost` is logged."""
        self.undelivered += count
        self._dropped += count
        if self._since is None:
            self._since = self.clock()
            self.log.warn("{what} {why}: messages for other nodes are counted, not sent, until it is back",
                          what=self.what, why=why)

    def back(self) -> None:
        """The link is up again: one line with what the outage cost, if it cost anything."""
        if self._since is None:
            return
        seconds, dropped = self.clock() - self._since, self._dropped
        self._since, self._dropped = None, 0
        if dropped:
            self.log.warn("{what} back after {seconds:.1f} s: {dropped} messages for other nodes were not sent "
                          "meanwhile", what=self.what, seconds=seconds, dropped=dropped)
        else:
            self.log.info("{what} back after {seconds:.1f} s; every message this node sent meanwhile went out",
                          what=self.what, seconds=seconds)

    def close(self) -> None:
        """The link is stopped: the count of an outage still under way is logged now."""
        if self._dropped:
            self.back()
        self._since, self._dropped = None, 0


class Deafness:
    """The spans during which a link could not receive (its subscriptions were down): how many, how long.

    Redis pub/sub keeps nothing for a subscriber that is away, so what other
    nodes published in such a span never arrives; this counts the spans, not
    the messages (see :mod:`txrealtime.adapters.sequence` for those).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.spans = 0
        """Spans that ended (the link subscribed again)."""
        self.seconds = 0.0
        """Their total length, in seconds."""
        self._since: float | None = None

    def deaf(self) -> None:
        """The subscriptions are down (from now, unless already)."""
        if self._since is None:
            self._since = self.clock()

    def hearing(self) -> None:
        """The subscriptions are back: the span ends and is counted."""
        if self._since is not None:
            self.spans += 1
            self.seconds += self.clock() - self._since
            self._since = None
