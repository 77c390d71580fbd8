"""Connection state recovery (Node's ``connectionStateRecovery``, socket.io 4.6+): offsets, and the in-memory log.

With recovery on, every EVENT a namespace sends without an ack (broadcasts
and direct emits alike) carries an *offset* as its last argument, and those
that are not volatile are kept. When a socket leaves for a reason that may
be temporary (:data:`RECOVERABLE_REASONS`), its id, private id (``pid``),
rooms and ``data`` are kept too (a :class:`KeptSession`). A client that
reconnects within ``max_disconnection_duration`` with ``{pid, offset}`` in
its CONNECT gets its socket back and every kept packet after ``offset``
that was meant for it (a :class:`RestoredSession`).

The adapter owns this (``persist_session``/``restore_session``, and the
offset of each broadcast): :class:`RecoveryLog` is the in-memory
implementation the default adapter uses; a cluster adapter may keep
sessions and packets elsewhere (Redis Streams) and use its own offsets.

:class:`RecoveryLog` keeps each packet *encoded*, as it went to the
clients, so what it holds is what it counts: its byte cap covers the
messages and every object kept beside them. Packets and sessions expire on
a timer, also when nothing new happens. A packet is replayed to a session
only for rooms the socket was already in when the packet was sent (join
positions), so a client that joined a room late never gets that room's
earlier packets.

Offsets of a :class:`RecoveryLog` (``format_offset``/``parse_offset``)::

    offset   = prefix "-" position
    prefix   = 8 lowercase hex digits, random per log
    position = lowercase hex digits without leading zeros ("0": before the first packet)

Position *n* is the *n*-th packet the log kept; an event that is not kept
(volatile) carries the position of the last one kept before it. Only the
canonical spelling parses, so an offset is at most 26 characters.
"""

from __future__ import annotations

import secrets
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from .._reactor import Clock, DelayedCall, cancel, now
from ..protocol.packets import Packet

__all__ = [
    "RECOVERABLE_REASONS",
    "Encoded",
    "KeptSession",
    "RecoveryLog",
    "RestoredSession",
    "StateRecovery",
    "format_offset",
    "parse_offset",
    "with_offset",
]

RECOVERABLE_REASONS = frozenset(
    {"transport error", "transport close", "forced close", "ping timeout", "server shutting down",
     "forced server close"}
)
"""Disconnect reasons after which a socket's state is kept (Node's list)."""

Encoded = list[str | bytes]
"""A packet as the server's encoder wrote it (``Encoder.encode``): the messages to send, in order."""

_MAX_POSITION_DIGITS = 16


@dataclass(frozen=True)
class StateRecovery:
    """Settings of connection state recovery: ``Server(connection_state_recovery=StateRecovery())``."""

    max_disconnection_duration: float = 120.0
    """Seconds a disconnected socket's state and the packets it may miss are kept."""
    skip_middlewares: bool = True
    """Whether a recovered socket skips the namespace's connection middleware."""
    max_log_bytes: int = 10_000_000
    """Most bytes of memory the kept packets of one namespace may take; beyond, the oldest are dropped."""

    def __post_init__(self) -> None:
        if self.max_disconnection_duration <= 0:
            raise ValueError("max_disconnection_duration must be > 0")
        if self.max_log_bytes <= 0:
            raise ValueError("max_log_bytes must be > 0")


@dataclass(frozen=True, slots=True)
class KeptSession:
    """A disconnected socket's state, waiting for its client to come back (Node's ``Session``)."""

    sid: str
    pid: str
    rooms: frozenset[str]
    """Its rooms when it left, its own id included."""
    data: Any


@dataclass(frozen=True, slots=True)
class RestoredSession:
    """A kept session handed back to its client, and what the client missed (Node's ``Session`` with
    ``missedPackets``)."""

    session: KeptSession
    missed: Sequence[Encoded]
    """Every kept packet meant for the session after the client's offset, oldest first, encoded."""


def format_offset(prefix: str, position: int) -> str:
    """The offset of ``position`` in the log named ``prefix``."""
    return f"{prefix}-{position:x}"


def parse_offset(prefix: str, offset: str) -> int | None:
    """The position ``offset`` names in the log ``prefix``; ``None`` unless it is one of that log's
    offsets, spelled as :func:`format_offset` spells it."""
    if len(offset) > len(prefix) + 1 + _MAX_POSITION_DIGITS or not offset.startswith(prefix + "-"):
        return None
    digits = offset[len(prefix) + 1 :]
    try:
        position = int(digits, 16)
    except ValueError:
        return None
    # int() also takes "+1", " 1", "0x1", "1_0" and leading zeros: only the canonical spelling is an offset.
    return position if f"{position:x}" == digits else None


def with_offset(packet: Packet, offset: str) -> Packet:
    """``packet`` (an EVENT) with ``offset`` appended to its arguments, as recovering clients expect it."""
    return Packet(packet.type, packet.namespace, [*packet.data, offset], packet.id)


class _Entry:
    """One kept packet: its messages, who it was for, when, and the bytes it holds."""

    __slots__ = ("messages", "rooms", "except_", "at", "size")

    def __init__(self, messages: Encoded, rooms: tuple[str, ...], except_: tuple[str, ...], at: float) -> None:
        self.messages = messages
        self.rooms = rooms
        self.except_ = except_
        self.at = at
        self.size = 0


# Memory an entry holds besides its messages and rooms: the object, its time (a float) and its deque slot.
_ENTRY_SIZE = sys.getsizeof(_Entry([], (), (), 0.5)) + sys.getsizeof(0.5) + 8


def _size_of_strings(strings: tuple[str, ...] | Encoded) -> int:
    return sys.getsizeof(strings) + sum(map(sys.getsizeof, strings)) if strings else 0


@dataclass(slots=True)
class _Kept:
    session: KeptSession
    joined: dict[str, int]
    """Room -> the log's position when the socket joined it."""
    left_at: float


class RecoveryLog:
    """One namespace's kept packets and sessions, in memory, released on a timer.

    ``clock`` schedules the expiry (a reactor, or ``task.Clock`` in tests)
    and tells the time.
    """

    def __init__(self, options: StateRecovery, clock: Clock) -> None:
        self.options = options
        self.prefix = secrets.token_hex(4)
        """Names this log in its offsets: an offset from another log (or process) parses as nothing."""
        self.position = 0
        """Position of the last packet kept (0 before the first)."""
        self.bytes = 0
        """Memory the kept packets hold, as counted against ``max_log_bytes``."""
        self._clock = clock
        self._packets: deque[_Entry] = deque()
        self._sessions: dict[str, _Kept] = {}
        self._timer: DelayedCall | None = None
        # Released at most this long after they expire: expiries close together share one timer call.
        self._grace = min(1.0, options.max_disconnection_duration / 10)

    def __len__(self) -> int:
        """Packets kept."""
        return len(self._packets)

    @property
    def sessions(self) -> int:
        """Sessions kept."""
        return len(self._sessions)

    @property
    def latest_offset(self) -> str:
        """The offset of the last packet kept: what an event that is not kept (volatile) carries."""
        return format_offset(self.prefix, self.position)

    @property
    def next_offset(self) -> str:
        """The offset the next packet :meth:`append` keeps will have."""
        return format_offset(self.prefix, self.position + 1)

    # -- packets ---------------------------------------------------------------

    def append(self, messages: Encoded, rooms: Iterable[str], except_: Iterable[str]) -> None:
        """Keep a packet sent to ``rooms`` (every socket if empty) but ``except_``, encoded as ``messages`` with
        :attr:`next_offset` as its last argument; drop the oldest beyond ``max_log_bytes``."""
        entry = _Entry(messages, tuple(rooms), tuple(except_), now(self._clock))
        entry.size = _ENTRY_SIZE + _size_of_strings(messages) + _size_of_strings(entry.rooms) \
            + _size_of_strings(entry.except_)
        self._packets.append(entry)
        self.position += 1
        self.bytes += entry.size
        while self.bytes > self.options.max_log_bytes:
            self.bytes -= self._packets.popleft().size
        self._schedule()

    # -- sessions ----------------------------------------------------------------

    def keep(self, session: KeptSession, joined: Mapping[str, int]) -> None:
        """Keep a session; ``joined`` gives the position at which its socket joined each of its rooms."""
        self._sessions.pop(session.pid, None)
        positions = {room: joined.get(room, self.position) for room in session.rooms}
        self._sessions[session.pid] = _Kept(session, positions, now(self._clock))
        self._schedule()

    def restore(self, pid: str, offset: str | None) -> tuple[RestoredSession, dict[str, int]] | None:
        """Hand out the session ``pid`` with every packet meant for it after ``offset``, and its rooms' join
        positions; ``None`` if that cannot be done exactly.

        ``offset`` ``None`` means the client got no packet since its socket
        joined. A session is handed out once; one asked for with an offset
        that is not this log's, or whose packets were partly dropped, stays
        kept (as Node keeps it) until it expires.
        """
        kept = self._sessions.get(pid)
        if kept is None:
            return None
        if kept.left_at < now(self._clock) - self.options.max_disconnection_duration:
            del self._sessions[pid]  # expired, the timer not run yet
            return None
        start = -1 if offset is None else parse_offset(self.prefix, offset)
        if start is None or start > self.position:
            return None
        # Nothing before the socket joined its first room can be meant for it.
        start = max(start, min(kept.joined.values(), default=self.position))
        first = self.position - len(self._packets) + 1  # position of the oldest packet kept
        if start + 1 < first:
            return None  # some of what it may have missed was dropped
        del self._sessions[pid]
        missed = list(self._meant_for(kept.joined, islice(self._packets, start + 1 - first, None), start + 1))
        return RestoredSession(kept.session, missed), kept.joined

    @staticmethod
    def _meant_for(joined: Mapping[str, int], entries: Iterable[_Entry], position: int) -> Iterator[Encoded]:
        """The messages of ``entries`` (the first at ``position``) sent to a room the socket had joined before,
        and not to a room it had joined before among their exceptions."""
        for entry in entries:
            rooms = entry.rooms or joined  # no rooms: every socket of the namespace
            if any(joined.get(room, position) < position for room in rooms) and not any(
                joined.get(room, position) < position for room in entry.except_
            ):
                yield entry.messages
            position += 1

    # -- expiry ---------------------------------------------------------------------

    def close(self) -> None:
        """Drop everything and stop the timer (the namespace is gone)."""
        self._timer = cancel(self._timer)
        self._packets.clear()
        self._sessions.clear()
        self.bytes = 0

    def _schedule(self) -> None:
        if self._timer is not None:
            return
        # Both are in the order they were kept: the oldest of each is the first.
        oldest = [self._packets[0].at] if self._packets else []
        if self._sessions:
            oldest.append(next(iter(self._sessions.values())).left_at)
        if oldest:
            delay = max(0.0, min(oldest) + self.options.max_disconnection_duration - now(self._clock)) + self._grace
            self._timer = self._clock.callLater(delay, self._expire)

    def _expire(self) -> None:
        self._timer = None
        horizon = now(self._clock) - self.options.max_disconnection_duration
        packets = self._packets
        while packets and packets[0].at < horizon:
            self.bytes -= packets.popleft().size
        sessions = self._sessions
        while sessions:
            pid, kept = next(iter(sessions.items()))
            if kept.left_at >= horizon:
                break
            del sessions[pid]
        self._schedule()
