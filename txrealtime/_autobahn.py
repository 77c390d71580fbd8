"""Autobahn, as txrealtime uses it: frames built and unmasked by hand for the fast paths, and its timers
made cancellable, for the server's and the client's WebSocket alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._reactor import Clock, DelayedCall, cancel

__all__ = ["DirectTimer", "cancel_timers", "unmask", "ws_frame"]


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR a client frame's payload with its 4-byte mask (RFC 6455 section 5.3)."""
    size = len(payload)
    if not size:
        return payload
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


def ws_frame(payload: bytes, binary: bool) -> bytes:
    """One final, unmasked WebSocket frame (text or binary) carrying ``payload``."""
    first = 0x82 if binary else 0x81
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size < 65536:
        header = bytes((first, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, 127)) + size.to_bytes(8, "big")
    return header + payload


_AUTOBAHN_TIMERS = (
    "openHandshakeTimeoutCall",
    "closeHandshakeTimeoutCall",
    "serverConnectionDropTimeoutCall",
    "autoPingTimeoutCall",
    "autoPingPendingCall",
)


def cancel_timers(protocol: Any) -> None:
    """Cancel the timeouts Autobahn leaves behind when a connection ends mid-handshake."""
    for name in _AUTOBAHN_TIMERS:
        call = getattr(protocol, name, None)
        if call is not None and hasattr(call, "active"):
            cancel(call)
        setattr(protocol, name, None)


class DirectTimer:
    """Autobahn's timer hook, one ``callLater`` per timeout.

    Autobahn batches its timeouts into 200 ms buckets whose DelayedCalls
    outlive the connections they served; cancelling a timeout here really
    cancels it, so a stopped server leaves no pending call behind.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def call_later(self, delay: float, func: Callable[..., object], *args: Any, **kwargs: Any) -> DelayedCall:
        return self.clock.callLater(delay, lambda: func(*args, **kwargs))
