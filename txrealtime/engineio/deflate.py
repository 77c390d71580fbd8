"""permessage-deflate compression (RFC 7692) shared between WebSocket connections.

With context takeover, each compressed message may refer back to the
messages compressed before it on the same connection, so a connection's
compressor normally holds that history (about 260 KB of zlib state for a
15-bit window) and every message is compressed once per connection. Yet
connections that were sent the same compressed messages, in the same order,
have compressors in the same state, and compress the next message to the
same bytes. So a :class:`DeflateState` stands for one such history and is
shared by every connection at it:

- a message compressed at a state is kept there (the last one, by identity,
  as the transport keeps its last plain frame), with the state it leads to;
  the next connection at that state sending the same message takes both,
  so a broadcast to connections with one history is compressed once;
- a state no connection is at any more is freed (states only refer weakly to
  the ones they lead to); a connection alone at its state advances it in
  place, with no copy.

Without context takeover every message is compressed from the empty history,
so one state per set of parameters serves every connection.
"""

from __future__ import annotations

import weakref
import zlib
from typing import Any

from .._autobahn import ws_frame

__all__ = ["DeflateState", "Deflater"]


def _compress(compressor: Any, payload: bytes) -> bytes:
    """One message: compressed, sync-flushed, without the flush's final ``00 00 FF FF`` (RFC 7692 7.2.1)."""
    body: bytes = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return body[:-4]


class DeflateState:
    """One compression history (a zlib compressor), shared by the connections at it."""

    __slots__ = ("__weakref__", "_compressor", "_last", "fresh", "users")

    def __init__(self, compressor: Any, fresh: bool = False) -> None:
        self._compressor: Any = compressor
        """``None`` once handed on to the state that follows (the compressor moved on with it)."""
        self.fresh = fresh
        """No context takeover: every message is compressed from this state, which never changes."""
        self.users = 0
        """Connections at this state."""
        self._last: tuple[object, bytes, weakref.ref[DeflateState] | None] | None = None
        """The last message compressed here, its compressed body, and the state it led to."""

    @property
    def alive(self) -> bool:
        return self._compressor is not None


class Deflater:
    """The compression states of one endpoint's WebSocket connections."""

    def __init__(self) -> None:
        self._roots: dict[tuple[int, int, bool], DeflateState] = {}
        self._last_framed: tuple[bytes, bytes] = (b"", b"")

    def frame(self, body: bytes, binary: bool) -> bytes:
        """The compressed WebSocket frame of ``body``: the one built last if ``body`` is the same object (a
        broadcast's body, compressed once for the connections at one history, is framed once too)."""
        last_body, last_frame = self._last_framed
        if body is last_body:
            return last_frame
        frame = ws_frame(body, binary, compressed=True)
        self._last_framed = (body, frame)
        return frame

    def start(self, window_bits: int, mem_level: int, no_context_takeover: bool) -> DeflateState:
        """The state of a connection that has not compressed anything yet (counted as one more user)."""
        key = (window_bits, mem_level, no_context_takeover)
        root = self._roots.get(key)
        if root is None or not root.alive:
            compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits, mem_level)
            root = self._roots[key] = DeflateState(compressor, fresh=no_context_takeover)
            root.users = 1  # the root stays shared: never advanced in place
        root.users += 1
        return root

    @staticmethod
    def leave(state: DeflateState) -> None:
        """A connection at ``state`` is gone."""
        state.users -= 1

    @staticmethod
    def reuse(state: DeflateState, message: object) -> tuple[bytes, DeflateState] | None:
        """What :meth:`compress` gives for ``message`` at ``state`` if another connection at ``state`` had it
        compressed already (the same body object each time), else ``None``: the payload is not needed then."""
        last = state._last
        if last is not None and last[0] is message:
            after = state if last[2] is None else last[2]()
            if after is not None and after.alive:
                return last[1], _moved(state, after)
        return None

    def compress(self, state: DeflateState, message: object, payload: bytes) -> tuple[bytes, DeflateState]:
        """The compressed ``payload`` of ``message`` (compared by identity) for a connection at
        ``state``, and the state the connection is at afterwards (users moved over)."""
        reused = self.reuse(state, message)
        if reused is not None:
            return reused
        if state.fresh:
            body = _compress(state._compressor.copy(), payload)
            state._last = (message, body, None)
            return body, state
        if state.users <= 1:
            # Nobody else has this history: the compressor moves on with the one connection at it.
            compressor, state._compressor = state._compressor, None
            after = DeflateState(compressor)
            body = _compress(compressor, payload)
        else:
            after = DeflateState(state._compressor.copy())
            body = _compress(after._compressor, payload)
            state._last = (message, body, weakref.ref(after))
        return body, _moved(state, after)


def _moved(state: DeflateState, after: DeflateState) -> DeflateState:
    if after is not state:
        state.users -= 1
        after.users += 1
    return after
