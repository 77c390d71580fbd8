"""Engine.IO protocol v3 wire codec (``socket.io-client`` 2.x): pure functions, no I/O.

Packets are those of v4 (:mod:`txrealtime.engineio.packets`); what differs is
how they are framed. A v3 client asks for base64 instead of binary with
``b64=1`` in its query (``binary`` is ``False`` below)::

    packet         = type *char                  ; as in v4
    b64-packet     = "b" type base64              ; a binary message as text: "b4" base64
    text-payload   = 1*( length ":" item ) / "0:" ; long-polling body (text/plain)
    item           = packet / b64-packet
    length         = 1*DIGIT                      ; the item's length in UTF-16 code units, as JavaScript counts
    binary-payload = 1*( kind 1*digit %xFF data ) ; long-polling body (application/octet-stream)
    kind           = %x00 / %x01                  ; 0: data is a packet as UTF-8; 1: a type byte, then raw bytes
    digit          = %x00-09                      ; the data's length in bytes, one decimal digit per byte
    ws-text-frame  = item
    ws-binary-frame = %x04 *OCTET                 ; a binary message, its type byte first

A long-polling answer is a binary payload when the client did not ask for
base64 and a binary message is among the packets, else a text payload. The
JSONP variant of long-polling (the client names its callback slot with
``j=N``) wraps a text payload as ``___eio[N]("<payload as a JS string>");``
and posts its packets as a form field: ``d=<text payload>`` (among the form's
first :data:`MAX_JSONP_FIELDS` ``&``-separated fields).

Decoding is lazy (:func:`iter_payload`): packets come out one by one and
decoding stops at the first invalid one with :class:`DecodeError`. This
codec is stricter than Node's parser, which takes ``0x1:`` as a length and a
binary packet of any type: lengths are decimal digits and the only binary
packet is a message.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from array import array
from collections.abc import Iterable, Iterator
from enum import IntEnum
from urllib.parse import parse_qs

from .packets import DecodeError, Packet, PacketType, utf8
from .packets import decode_ws_frame as decode_ws_frame_v4

__all__ = [
    "MAX_JSONP_FIELDS",
    "Framing",
    "PROTOCOL_VERSION",
    "decode_ws_frame",
    "encode_payload",
    "encode_ws_frame",
    "iter_binary_payload",
    "iter_payload",
    "jsonp_data",
    "jsonp_script",
]

PROTOCOL_VERSION = 3

_TYPES = {str(t.value): t for t in PacketType}
_MESSAGE = PacketType.MESSAGE.value
_MAX_DIGITS = 16
"""The longest length a payload item may declare, in decimal digits (Node stops at 310)."""


def _js_length(text: str) -> int:
    """``text.length`` in JavaScript: UTF-16 code units."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _as_text(packet: Packet) -> str:
    if isinstance(packet.data, bytes):
        return f"b{packet.type.value}" + base64.b64encode(packet.data).decode("ascii")
    return str(packet.type.value) + packet.data


def _digits(n: int) -> bytes:
    return bytes(int(c) for c in str(n)) + b"\xff"


def encode_payload(packets: Iterable[Packet], binary: bool) -> str | bytes:
    """Encode packets as one long-polling answer: a binary payload (``bytes``) if
    ``binary`` and a binary message is among them, else a text payload."""
    packets = list(packets)
    if binary and any(p.binary for p in packets):
        parts: list[bytes] = []
        for packet in packets:
            if isinstance(packet.data, bytes):
                parts += (b"\x01", _digits(len(packet.data) + 1), bytes((packet.type.value,)), packet.data)
            else:
                data = utf8(str(packet.type.value) + packet.data)
                parts += (b"\x00", _digits(len(data)), data)
        return b"".join(parts)
    if not packets:
        return "0:"
    return "".join(f"{_js_length(text)}:{text}" for text in map(_as_text, packets))


def _decode_text(text: str) -> Packet:
    if not text:
        raise DecodeError("empty packet")
    if text[0] == "b":
        if text[1:2] != str(_MESSAGE):
            raise DecodeError("base64 packet that is not a message")
        try:
            return Packet(PacketType.MESSAGE, base64.b64decode(text[2:], validate=True))
        except (binascii.Error, ValueError) as e:
            raise DecodeError("invalid base64 in binary packet") from e
    ptype = _TYPES.get(text[0])
    if ptype is None:
        raise DecodeError(f"unknown packet type {text[0]!r}")
    return Packet(ptype, text[1:])


def _units(text: str) -> str:
    """``text`` with each UTF-16 code unit as one character: indexes then count as JavaScript's do."""
    return "".join(map(chr, array("H", text.encode("utf-16-le", "surrogatepass"))))


def _joined(units: str) -> str:
    """Undo :func:`_units`: surrogate pairs become one character again."""
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _take(text: str, start: int, length: int) -> str | None:
    """The item of ``length`` UTF-16 units at code point ``start``; ``None`` if it ends inside a surrogate pair."""
    count = length
    item = text[start : start + count]
    units = _js_length(item)
    if units < length:
        raise DecodeError("payload shorter than its length")
    while units > length:  # each character beyond the BMP counts twice: drop the excess
        count -= units - length
        item = text[start : start + count]
        units = _js_length(item)
    return item if units == length else None


def iter_payload(payload: str) -> Iterator[Packet]:
    """Decode a text payload packet by packet; raise :class:`DecodeError` at the first invalid one.

    Empty items (``0:``) are skipped, as Node's parser does.
    """
    if not payload:
        raise DecodeError("empty payload")
    text, pos, size = payload, 0, len(payload)
    units = False  # whether ``text`` holds UTF-16 code units (once an item split a pair), not code points
    plain = payload.isascii()
    while pos < size:
        colon = text.find(":", pos, pos + _MAX_DIGITS + 1)
        digits = text[pos:colon] if colon >= 0 else ""
        if not digits.isascii() or not digits.isdigit():
            raise DecodeError("invalid length in payload")
        length = int(digits)
        start = colon + 1
        item = None if plain or units else _take(text, start, length)
        if item is None:
            if not plain and not units:
                # Rare: a length that ends inside a surrogate pair. JavaScript slices the pair; so do we.
                text, start, units = _units(text[start:]), 0, True
                size = len(text)
            if start + length > size:
                raise DecodeError("payload shorter than its length")
            item = text[start : start + length]
            pos = start + length
        else:
            pos = start + len(item)
        if length:
            yield _decode_text(_joined(item) if units else item)


def iter_binary_payload(payload: bytes) -> Iterator[Packet]:
    """Decode a binary payload packet by packet; raise :class:`DecodeError` at the first invalid one."""
    if not payload:
        raise DecodeError("empty payload")
    pos, size = 0, len(payload)
    while pos < size:
        kind = payload[pos]
        end = payload.find(b"\xff", pos + 1, pos + 2 + _MAX_DIGITS)
        digits = payload[pos + 1 : end] if end >= 0 else b""
        if kind > 1 or not digits or max(digits) > 9:
            raise DecodeError("invalid length in binary payload")
        length = int("".join(map(str, digits)))
        start = end + 1
        if start + length > size:
            raise DecodeError("payload shorter than its length")
        data = payload[start : start + length]
        pos = start + length
        if kind == 0:
            try:
                yield _decode_text(data.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise DecodeError("packet is not valid UTF-8") from e
        elif data[:1] == bytes((_MESSAGE,)):
            yield Packet(PacketType.MESSAGE, data[1:])
        else:
            raise DecodeError("binary packet that is not a message")


class Framing(IntEnum):
    """How a WebSocket connection frames binary messages: by its Engine.IO protocol, and for v3 by ``b64``."""

    V4 = 0
    """Engine.IO v4: a binary message is a binary frame (:func:`txrealtime.engineio.packets.encode_ws_frame`)."""
    V3_BINARY = 1
    """Engine.IO v3: a binary frame with the packet type's byte first."""
    V3_BASE64 = 2
    """Engine.IO v3 with ``b64=1``: a text frame, ``b`` and the type then base64."""

    @classmethod
    def of(cls, protocol: int, b64: bool) -> Framing:
        """The framing of a connection speaking Engine.IO ``protocol`` (3 or 4), asking for ``b64`` or not."""
        return cls.V4 if protocol == 4 else cls.V3_BASE64 if b64 else cls.V3_BINARY


def encode_ws_frame(packet: Packet, binary: bool) -> tuple[bytes, bool]:
    """Encode one packet as a WebSocket frame: ``(payload, is_binary)``."""
    if isinstance(packet.data, bytes):
        if binary:
            return bytes((packet.type.value,)) + packet.data, True
        return _as_text(packet).encode("ascii"), False
    return utf8(str(packet.type.value) + packet.data), False


def decode_ws_frame(payload: bytes, is_binary: bool) -> Packet:
    """Decode one WebSocket frame into a packet; raise :class:`DecodeError`."""
    if is_binary:
        if payload[:1] != bytes((_MESSAGE,)):
            raise DecodeError("binary frame that is not a message")
        return Packet(PacketType.MESSAGE, bytes(payload[1:]))
    if payload[:1] == b"b":
        try:
            return _decode_text(payload.decode("ascii"))
        except UnicodeDecodeError as e:
            raise DecodeError("invalid base64 in binary packet") from e
    return decode_ws_frame_v4(payload, False)


_JSONP_SLOT = re.compile(r"[^0-9]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_NEWLINE = re.compile(r"(\\)?\\n")


MAX_JSONP_FIELDS = 1000
"""Fields of a JSONP POST's form read to find ``d`` (Node's ``querystring`` default ``maxKeys``)."""


def jsonp_script(slot: str, payload: str) -> str:
    """The JSONP answer carrying ``payload``: a script calling the client's callback ``___eio[slot]``.

    ``slot`` is the client's ``j`` parameter, digits only kept (as Node does).
    The payload is written as ``JSON.stringify`` writes it, with U+2028 and
    U+2029 escaped (JSON allows them in strings, JavaScript did not).
    """
    js = json.dumps(payload, ensure_ascii=False)
    if not js.isascii():
        js = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", js)
        js = js.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"___eio[{_JSONP_SLOT.sub('', slot)}]({js});"


def jsonp_data(body: str) -> str | None:
    """The text payload of a JSONP POST (form field ``d``), or ``None`` if it has none (Node ignores it).

    The client escapes newlines as ``\\n`` and ``\\n`` as ``\\\\n``; this undoes both. Only the
    first :data:`MAX_JSONP_FIELDS` fields of the form are read, as Node's ``querystring`` reads
    its first 1,000 keys.
    """
    fields = body.split("&", MAX_JSONP_FIELDS)[:MAX_JSONP_FIELDS]
    values = parse_qs("&".join(fields), keep_blank_values=True, errors="replace").get("d")
    if values is None or len(values) != 1:
        return None
    data = _ESCAPED_NEWLINE.sub(lambda m: m.group() if m.group(1) else "\n", values[0])
    return data.replace("\\\\n", "\\n")
