"""Engine.IO protocol v4 wire codec: pure functions, no I/O.

A packet is a type digit followed by its data. Over WebSocket, each packet is
one frame (binary messages are sent as raw binary frames). Over HTTP
long-polling, packets are joined by the record separator ``\\x1e`` and binary
messages are written as ``b`` followed by their base64 encoding::

    packet   = type *char               ; type: one digit, 0 (open) to 6 (noop)
    ws-frame = packet / "b" base64 / binary-message
                                         ; a text frame holds one packet, or a binary message as base64
                                         ; (a client's forceBase64, accepted as Node's parser does);
                                         ; a binary frame holds one binary message
    payload  = item *( %x1E item )       ; long-polling body; packet data cannot hold %x1E there
    item     = packet / "b" base64       ; base64 as RFC 4648, padded

A polling payload is decoded lazily (:func:`iter_payload`): packets come
out one by one and decoding stops at the first invalid one.

Text goes out as UTF-8 the way browsers and Node write it: a lone surrogate
(which Python strings may hold, UTF-8 may not) becomes U+FFFD, so encoding
never fails.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "PROTOCOL_VERSION",
    "RECORD_SEPARATOR",
    "DecodeError",
    "Packet",
    "PacketType",
    "UncompressedPacket",
    "decode_payload",
    "decode_ws_frame",
    "encode_payload",
    "encode_ws_frame",
    "iter_payload",
    "utf8",
]

PROTOCOL_VERSION = 4
RECORD_SEPARATOR = "\x1e"


class PacketType(IntEnum):
    """The seven Engine.IO packet types."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


class DecodeError(ValueError):
    """Raised when bytes on the wire are not a valid Engine.IO v4 packet."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One Engine.IO packet. ``data`` is ``bytes`` only for binary messages."""

    type: PacketType
    data: str | bytes = ""
    def __post_init__(self) -> None:
        if isinstance(self.data, bytes) and self.type is not PacketType.MESSAGE:
            raise ValueError("only MESSAGE packets may carry binary data")

    @property
    def binary(self) -> bool:
        """Whether this is a binary message."""
        return isinstance(self.data, bytes)

    @property
    def compress(self) -> bool:
        """Whether a transport may compress it (Node's ``options.compress``); not part of the wire.

        ``False`` for an :class:`UncompressedPacket` (a class, not a field: packets cost no more
        to make; a property, not a class variable, so that the compiled build can override it).
        """
        return True


@dataclass(frozen=True, slots=True)
class UncompressedPacket(Packet):
    """A packet sent with ``compress`` false (Node's ``compress(false)``): never compressed, whatever its size."""

    @property
    def compress(self) -> bool:
        """Never: this packet goes out as it is."""
        return False


_TYPES = {str(t.value): t for t in PacketType}


def utf8(text: str) -> bytes:
    """Encode ``text`` as UTF-8, lone surrogates replaced by U+FFFD (as ``TextEncoder`` and Node do)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16, surrogate pairs held as two code points join up and lone ones become U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode("utf-8")


def _decode_text(text: str) -> Packet:
    if not text:
        raise DecodeError("empty packet")
    ptype = _TYPES.get(text[0])
    if ptype is None:
        raise DecodeError(f"unknown packet type {text[0]!r}")
    return Packet(ptype, text[1:])


def encode_ws_frame(packet: Packet) -> tuple[bytes, bool]:
    """Encode one packet as a WebSocket frame: ``(payload, is_binary)``."""
    if isinstance(packet.data, bytes):
        return packet.data, True
    return utf8(str(packet.type.value) + packet.data), False


def decode_ws_frame(payload: bytes, is_binary: bool) -> Packet:
    """Decode one WebSocket frame into a packet; raise :class:`DecodeError`."""
    if is_binary:
        return Packet(PacketType.MESSAGE, bytes(payload))
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError("text frame is not valid UTF-8") from e
    if text[:1] == "b":
        return Packet(PacketType.MESSAGE, _base64(text[1:]))
    return _decode_text(text)


def _base64(text: str) -> bytes:
    """The bytes of a ``b`` item's base64; raise :class:`DecodeError`."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise DecodeError("invalid base64 in binary packet") from e


def _encode_polling(packet: Packet) -> str:
    if isinstance(packet.data, bytes):
        return "b" + base64.b64encode(packet.data).decode("ascii")
    return str(packet.type.value) + packet.data


def encode_payload(packets: Iterable[Packet]) -> str:
    """Encode packets as one HTTP long-polling payload."""
    return RECORD_SEPARATOR.join(_encode_polling(p) for p in packets)


def decode_payload(payload: str) -> list[Packet]:
    """Decode an HTTP long-polling payload; raise :class:`DecodeError`."""
    return list(iter_payload(payload))


def iter_payload(payload: str) -> Iterator[Packet]:
    """Decode an HTTP long-polling payload packet by packet.

    Each packet is decoded when it is taken; :class:`DecodeError` is raised
    on reaching the first invalid one (after the valid ones before it), and
    nothing after it is looked at.
    """
    if not payload:
        raise DecodeError("empty payload")
    find, start = payload.find, 0
    while True:
        end = find(RECORD_SEPARATOR, start)
        chunk = payload[start:end] if end >= 0 else payload[start:]
        ptype = _TYPES.get(chunk[:1])
        if ptype is not None:
            yield Packet(ptype, chunk[1:])
        elif chunk[:1] == "b":
            yield Packet(PacketType.MESSAGE, _base64(chunk[1:]))
        else:
            _decode_text(chunk)  # raises the error that fits: empty packet, unknown type
        if end < 0:
            return
        start = end + 1
