"""Connection state recovery (Node's ``connectionStateRecovery``, socket.io 4.6+): the packet log and kept sessions.

With recovery on, every EVENT a namespace sends without an ack and not
volatile (broadcasts and direct emits alike) gets an *offset* appended as
its last argument and is kept in the namespace's :class:`RecoveryLog`. When
a socket leaves for a reason that may be temporary (transport close or
error, ping timeout, server shutdown, forced close), its id, private id
(``pid``), rooms and ``data`` are kept too. A client that reconnects within
``max_disconnection_duration`` with ``{pid, offset}`` in its CONNECT gets its
socket back and every kept packet after ``offset`` that was meant for it.

Memory is bounded: sessions and packets expire after the window, and the
log keeps at most ``max_log_bytes`` of packets (the oldest go first; a
client whose offset is gone gets a fresh session). Pure: time comes from a
``now`` function.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KeptSession", "RecoveryLog", "StateRecovery", "RECOVERABLE_REASONS"]

RECOVERABLE_REASONS = frozenset(
    {"transport error", "transport close", "forced close", "ping timeout", "server shutting down",
     "forced server close"}
)
"""Disconnect reasons after which a socket's state is kept (Node's list)."""


@dataclass(frozen=True)
class StateRecovery:
    """Settings of connection state recovery: ``Server(connection_state_recovery=StateRecovery())``."""

    max_disconnection_duration: float = 120.0
    """Seconds a disconnected socket's state and the packets it may miss are kept."""
    skip_middlewares: bool = True
    """Whether a recovered socket skips the namespace's connection middleware."""
    max_log_bytes: int = 10_000_000
    """Most bytes of packets kept per namespace; beyond, the oldest are dropped."""

    def __post_init__(self) -> None:
        if self.max_disconnection_duration <= 0:
            raise ValueError("max_disconnection_duration must be > 0")
        if self.max_log_bytes <= 0:
            raise ValueError("max_log_bytes must be > 0")


@dataclass(frozen=True, slots=True)
class KeptSession:
    """A disconnected socket's state, waiting for its client to come back."""

    sid: str
    pid: str
    rooms: frozenset[str]
    data: Any
    left_at: float


@dataclass(slots=True)
class _Logged:
    offset: str
    data: list[Any]
    rooms: frozenset[str]
    except_: frozenset[str]
    at: float
    size: int = 0


@dataclass
class RecoveryLog:
    """One namespace's kept packets and sessions."""

    options: StateRecovery
    now: Callable[[], float]
    _packets: deque[_Logged] = field(default_factory=deque)
    _by_offset: dict[str, _Logged] = field(default_factory=dict)
    _sessions: dict[str, KeptSession] = field(default_factory=dict)
    _bytes: int = 0
    _prefix: str = field(default_factory=lambda: secrets.token_hex(4))
    _count: int = 0

    def __len__(self) -> int:
        """Packets kept."""
        return len(self._packets)

    @property
    def sessions(self) -> int:
        """Sessions kept."""
        return len(self._sessions)

    def record(self, data: list[Any], rooms: Iterable[str], except_: Iterable[str]) -> list[Any]:
        """Keep an EVENT's data sent to ``rooms`` (all if empty) but ``except_``; return it with its offset."""
        self._expire()
        self._count += 1
        offset = f"{self._prefix}-{self._count:x}"
        entry = _Logged(offset, [*data, offset], frozenset(rooms), frozenset(except_), self.now())
        self._packets.append(entry)
        self._by_offset[offset] = entry
        return entry.data

    def charge(self, size: int) -> None:
        """The packet recorded last takes ``size`` bytes on the wire; drop the oldest beyond the cap."""
        if self._packets:
            self._packets[-1].size += size
            self._bytes += size
        while self._bytes > self.options.max_log_bytes and self._packets:
            self._drop_oldest()

    def keep(self, sid: str, pid: str, rooms: Iterable[str], data: Any) -> None:
        """Keep the state of a socket that left for a recoverable reason."""
        self._expire()
        self._sessions.pop(pid, None)
        self._sessions[pid] = KeptSession(sid, pid, frozenset(rooms), data, self.now())

    def restore(self, pid: str, offset: str) -> tuple[KeptSession, list[list[Any]]] | None:
        """The kept session ``pid`` and the packets it missed after ``offset``; ``None`` if it cannot be recovered."""
        self._expire()
        session = self._sessions.pop(pid, None)
        if session is None or offset not in self._by_offset:
            return None
        missed = []
        found = False
        for entry in self._packets:
            if found and self._meant_for(entry, session.rooms):
                missed.append(entry.data)
            found = found or entry.offset == offset
        return session, missed

    @staticmethod
    def _meant_for(entry: _Logged, rooms: frozenset[str]) -> bool:
        return (not entry.rooms or not entry.rooms.isdisjoint(rooms)) and entry.except_.isdisjoint(rooms)

    def _expire(self) -> None:
        horizon = self.now() - self.options.max_disconnection_duration
        while self._packets and self._packets[0].at < horizon:
            self._drop_oldest()
        # Sessions are kept in the order they left: the expired ones are at the front.
        while self._sessions:
            pid, session = next(iter(self._sessions.items()))
            if session.left_at >= horizon:
                break
            del self._sessions[pid]

    def _drop_oldest(self) -> None:
        entry = self._packets.popleft()
        del self._by_offset[entry.offset]
        self._bytes -= entry.size
