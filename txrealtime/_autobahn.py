"""Autobahn, as txrealtime uses it: frames built and unmasked by hand for the fast paths, and its timers
made cancellable, for the server's and the client's WebSocket alike."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from autobahn.websocket.compress import (
    PerMessageDeflate,
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)

from ._reactor import Clock, DelayedCall, cancel

__all__ = [
    "DirectTimer",
    "accept_deflate",
    "cancel_timers",
    "release_inflater",
    "bounded_inflate",
    "require_bounded_inflate",
    "unmask",
    "ws_frame",
]


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR a client frame's payload with its 4-byte mask (RFC 6455 section 5.3)."""
    size = len(payload)
    if not size:
        return payload
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


def ws_frame(payload: bytes, binary: bool, compressed: bool = False) -> bytes:
    """One final, unmasked WebSocket frame (text or binary) carrying ``payload``;
    ``compressed`` sets RSV1, for a permessage-deflate ``payload``."""
    first = 0x82 if binary else 0x81
    if compressed:
        first |= 0x40
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


# -- permessage-deflate (RFC 7692) ----------------------------------------------


def bounded_inflate() -> bool:
    """Whether this Autobahn bounds inflation by ``maxMessagePayloadSize`` (26.7 and later)."""
    return "max_output_len" in inspect.signature(PerMessageDeflate.decompress_message_data).parameters


def require_bounded_inflate() -> None:
    """Raise unless Autobahn bounds inflation by ``maxMessagePayloadSize`` (else a small
    compressed frame could inflate to gigabytes before the size check)."""
    if not bounded_inflate():
        raise RuntimeError(
            "per_message_deflate needs an Autobahn whose permessage-deflate bounds decompression "
            "(GHSA-hxp9-w8x3-p566): upgrade autobahn"
        )


class _Accept(PerMessageDeflateOfferAccept):
    """Autobahn's accept, which also announces the server's own choices, as Node's ``ws`` does."""

    def get_extension_string(self) -> str:
        text: str = super().get_extension_string()  # type: ignore[no-untyped-call]
        if self.no_context_takeover and not self.offer.request_no_context_takeover:
            text += "; server_no_context_takeover"
        if self.window_bits is not None and not self.offer.request_max_window_bits:
            text += f"; server_max_window_bits={self.window_bits}"
        return text


def accept_deflate(
    offers: Sequence[object],
    server_no_context_takeover: bool = False,
    client_no_context_takeover: bool = False,
    server_max_window_bits: int | None = None,
    client_max_window_bits: int | None = None,
    mem_level: int | None = None,
) -> PerMessageDeflateOfferAccept | None:
    """Accept the first permessage-deflate offer these settings can serve, as ``ws`` picks one (``None``: none)."""
    for offer in offers:
        if not isinstance(offer, PerMessageDeflateOffer):
            continue
        if client_max_window_bits is not None and not offer.accept_max_window_bits:
            continue  # we would ask for a window the client cannot promise
        window = server_max_window_bits
        if window is not None and offer.request_max_window_bits:
            window = min(window, offer.request_max_window_bits)
        return _Accept(  # type: ignore[no-untyped-call]
            offer,
            request_no_context_takeover=client_no_context_takeover and offer.accept_no_context_takeover,
            request_max_window_bits=client_max_window_bits or 0,
            no_context_takeover=server_no_context_takeover or offer.request_no_context_takeover,
            window_bits=window,
            mem_level=mem_level,
        )
    return None


def release_inflater(extension: Any) -> None:
    """After a message, drop the server's inflater when the client compresses without context
    takeover: Autobahn makes a new one for each message anyway, but keeps the last (~44 KiB)."""
    if extension is not None and extension.client_no_context_takeover:
        extension._decompressor = None
