"""Autobahn, as txrealtime uses it through its public API: frames built and unmasked by hand for the fast
paths and permessage-deflate negotiated as Node's ``ws`` does, for the server's and the client's WebSocket
alike (what relies on Autobahn's internals is in :mod:`txrealtime._compat`)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from autobahn.websocket.compress import (
    PerMessageDeflate,
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)

__all__ = [
    "accept_deflate",
    "bounded_inflate",
    "client_frame",
    "frame_payload_size",
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


def client_frame(data: bytes, pos: int, limit: int) -> tuple[bytes | None, bool, int]:
    """The complete, final, masked text or binary frame at ``data[pos:]`` with no RSV bits and a payload
    of at most ``limit`` bytes: ``(unmasked payload, binary, end)``; ``(None, False, pos)`` for anything
    else (a control frame, a fragment, a partial, oversize or malformed frame), left to Autobahn."""
    size = len(data)
    if size - pos < 6:
        return None, False, pos
    b0 = data[pos]
    b1 = data[pos + 1]
    if (b0 != 0x81 and b0 != 0x82) or not b1 & 0x80:
        return None, False, pos
    length = b1 & 0x7F
    head = pos + 2
    if length == 126:
        if size - head < 2:
            return None, False, pos
        length = (data[head] << 8) | data[head + 1]
        head += 2
    elif length == 127:
        return None, False, pos
    end = head + 4 + length
    if length > limit or end > size:
        return None, False, pos
    return unmask(data[head + 4 : end], data[head : head + 4]), b0 == 0x82, end


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


# -- permessage-deflate (RFC 7692) ----------------------------------------------


def frame_payload_size(frame: bytes) -> int:
    """The payload length of an unmasked frame built by :func:`ws_frame`."""
    size = frame[1] & 0x7F
    return size if size < 126 else len(frame) - (4 if size == 126 else 10)


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
