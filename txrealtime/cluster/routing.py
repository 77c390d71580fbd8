"""Which worker gets a connection: the owner of the ``sid`` in its first request line, else the least loaded.

Pure functions, free of I/O. Each worker makes sids that start with its
index (:func:`worker_sid`, ``"3.Zx…"``); the master reads the first request
line of every new connection (:func:`first_line`), finds the ``sid`` in its
query string (:func:`sid_of`) and the worker in the sid (:func:`worker_of`).
No table is shared: a sid names its worker for as long as it lives. Requests
without a sid (handshakes, static files) go to the worker with the fewest
sessions, ties broken round-robin (:class:`Balancer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl, urlsplit

__all__ = ["MAX_FIRST_LINE", "Balancer", "first_line", "sid_of", "worker_of", "worker_sid"]

MAX_FIRST_LINE = 16 * 1024
"""Longest first request line the master reads before handing the connection over (else 414 and close)."""

SEPARATOR = "."
"""Between the worker's index and the rest of a sid: URL-safe, never percent-encoded."""


def worker_sid(index: int, sid: str) -> str:
    """The sid worker ``index`` gives a session that would otherwise get ``sid``."""
    return f"{index}{SEPARATOR}{sid}"


def worker_of(sid: str) -> int | None:
    """The index of the worker that made ``sid``, or ``None`` if no worker made it."""
    index, sep, rest = sid.partition(SEPARATOR)
    if not sep or not rest or not index.isascii() or not index.isdigit() or len(index) > 6:
        return None
    if len(index) > 1 and index[0] == "0":
        return None
    return int(index)


def first_line(buffer: bytes) -> bytes | None:
    """The request line at the start of ``buffer`` once it is complete (without its line end), else ``None``."""
    end = buffer.find(b"\n")
    if end < 0:
        return None
    return buffer[:end].rstrip(b"\r")


def sid_of(line: bytes) -> str | None:
    """The ``sid`` query parameter of an HTTP request line such as ``GET /socket.io/?sid=… HTTP/1.1``."""
    parts = line.split(b" ")
    if len(parts) != 3 or b"sid=" not in parts[1]:
        return None
    try:
        query = urlsplit(parts[1].decode("ascii")).query
    except (UnicodeDecodeError, ValueError):
        return None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "sid":
            return value
    return None


class Balancer:
    """Picks the worker for a connection: the sid's owner if it is up, else the least loaded, round-robin on ties."""

    def __init__(self) -> None:
        self._next = 0

    def choose(self, line: bytes, up: Sequence[int], loads: Sequence[int]) -> int | None:
        """The worker for a connection whose first request line is ``line``.

        ``up`` lists the indexes of the workers ready to take connections,
        ``loads`` (indexed by worker) their session counts. ``None`` when no
        worker is up. A sid whose worker is down goes to another worker, which
        answers that it does not know the session: the client starts a new one.
        """
        if not up:
            return None
        sid = sid_of(line)
        owner = worker_of(sid) if sid is not None else None
        if owner is not None and owner in up:
            return owner
        least = min(loads[i] for i in up)
        candidates = [i for i in up if loads[i] == least]
        choice = candidates[self._next % len(candidates)]
        self._next += 1
        return choice
