"""Socket.IO protocol v5 wire codec: pure functions and a small decoder state machine, no I/O.

A Socket.IO packet travels as one Engine.IO text message, followed, for the
binary types, by one Engine.IO binary message per attachment::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]

Binary values (``bytes``, ``bytearray``, ``memoryview``) inside the data are
replaced by ``{"_placeholder": true, "num": N}`` and sent as attachments.
``datetime`` values are sent as ``Date.toJSON`` writes them (UTC ISO 8601 to
the millisecond), ``date`` values as ``YYYY-MM-DD``.

The JSON is strict, as ``JSON.parse`` is: ``NaN``, ``Infinity`` and numbers
that overflow to infinity are refused, and so is nesting deeper than
:data:`MAX_DEPTH`. A lone surrogate (``"\\ud800"``) is accepted and written
back escaped, as ``JSON.stringify`` does. Every failure is a
:class:`DecodeError`; its message never quotes the peer's data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from .._json import dumps
from .._json import loads as json_loads

__all__ = [
    "Decoder",
    "DecoderLimits",
    "DecodeError",
    "MAX_DEPTH",
    "Packet",
    "PacketType",
    "deconstruct",
    "depth_over",
    "nesting_fault",
    "encode",
    "reconstruct",
    "validate",
]

MAX_ACK_ID = 2**53 - 1
"""The largest ack id a JavaScript peer can represent exactly."""

MAX_DEPTH = 100
"""The deepest nesting of arrays and objects accepted in a packet's data."""

_BINARY_TYPES = frozenset({5, 6})


class PacketType(IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


class DecodeError(ValueError):
    """The peer sent something that is not a valid Socket.IO packet."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One Socket.IO packet with its binary attachments already in place."""

    type: PacketType
    namespace: str = "/"
    data: Any = None
    """JSON-compatible data; ``bytes`` values stand for binary attachments."""
    id: int | None = None
    """Acknowledgement id, for EVENT and ACK packets."""

    @property
    def event(self) -> str:
        """The event name of an EVENT packet."""
        return str(self.data[0])

    @property
    def args(self) -> list[Any]:
        """The arguments of an EVENT packet, or the values of an ACK."""
        return list(self.data[1:]) if self.type in (PacketType.EVENT, PacketType.BINARY_EVENT) else list(self.data)


@dataclass(slots=True)
class _Partial:
    header: Packet
    expected: int
    size: int
    """Bytes held so far: the header's text and the attachments."""
    attachments: list[bytes] = field(default_factory=list)


def _is_binary(value: object) -> bool:
    return isinstance(value, bytes | bytearray | memoryview)


def deconstruct(data: Any) -> tuple[Any, list[bytes]]:
    """Replace binary values in ``data`` by placeholders; return the new data and the attachments."""
    attachments: list[bytes] = []

    def walk(value: Any) -> Any:
        if _is_binary(value):
            attachments.append(bytes(value))
            return {"_placeholder": True, "num": len(attachments) - 1}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        if isinstance(value, Mapping):
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk(data), attachments


_SCALARS = (str, int, float, bool, type(None))


def has_binary(data: Any) -> bool:
    """Whether ``data`` holds a binary value anywhere."""
    kind = type(data)
    if kind in _SCALARS:
        return False
    if kind is list or kind is tuple:
        for value in data:
            if type(value) not in _SCALARS and has_binary(value):
                return True
        return False
    if kind is dict or isinstance(data, Mapping):
        for value in data.values():
            if type(value) not in _SCALARS and has_binary(value):
                return True
        return False
    if isinstance(data, list | tuple):
        return any(has_binary(v) for v in data)
    return _is_binary(data)


def reconstruct(data: Any, attachments: Sequence[bytes]) -> Any:
    """Put ``attachments`` back where their placeholders are; raise :class:`DecodeError` on a bad one.

    ``data`` (just decoded) is changed in place and returned, or the attachment
    if ``data`` is itself a placeholder. The walk holds one iterator per level,
    nothing per child.
    """
    root = [data]
    containers: list[Any] = [root]
    stack: list[Iterator[tuple[Any, Any]]] = [enumerate(root)]
    while stack:
        for key, value in stack[-1]:
            kind = type(value)
            if kind is dict:
                if value.get("_placeholder") is True and "num" in value:
                    containers[-1][key] = _attachment(value["num"], attachments)
                    continue
                entries: Iterator[tuple[Any, Any]] = iter(value.items())
            elif kind is list:
                entries = enumerate(value)
            else:
                continue
            if value:
                containers.append(value)
                stack.append(entries)
                break
        else:
            stack.pop()
            containers.pop()
    return root[0]


def _attachment(num: Any, attachments: Sequence[bytes]) -> bytes:
    if type(num) is not int:
        raise DecodeError(f"placeholder number is a {type(num).__name__}")
    if not 0 <= num < len(attachments):
        raise DecodeError(f"placeholder refers to missing attachment {num}")
    return attachments[num]


def nesting_fault(data: Any, limit: int, string_keys: bool = False) -> str | None:
    """Why ``data`` cannot be taken, or ``None``: ``"depth"`` if arrays and objects nest deeper than ``limit``
    (``data`` itself is level 1), ``"key"`` if ``string_keys`` and an object key is not a string.

    The walk holds one iterator per level it is in, never anything per child: a
    megabyte of empty objects costs no memory beside them.
    """
    kind = type(data)
    if kind is not list and kind is not dict:
        return None
    if limit < 1:
        return "depth"
    if string_keys and kind is dict and not _string_keys(data):
        return "key"
    stack: list[Iterator[Any]] = [iter(data if kind is list else data.values())]
    room = limit - 1  # how many levels may still open below the one being walked
    while stack:
        for child in stack[-1]:
            kind = type(child)
            if kind is list or kind is dict:
                if room == 0:
                    return "depth"
                if child:  # an empty one has nothing inside: no iterator for it
                    if kind is list:
                        stack.append(iter(child))
                    elif string_keys and not _string_keys(child):
                        return "key"
                    else:
                        stack.append(iter(child.values()))
                    room -= 1
                    break
        else:
            stack.pop()
            room += 1
    return None


def _string_keys(value: dict[Any, Any]) -> bool:
    for key in value:
        if type(key) is not str:
            return False
    return True


def depth_over(data: Any, limit: int) -> bool:
    """Whether arrays and objects in ``data`` nest deeper than ``limit`` (:func:`nesting_fault`'s walk)."""
    return nesting_fault(data, limit) is not None


def loads(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON as strictly as ``JSON.parse``, with nesting at most ``max_depth``; raise :class:`DecodeError`."""
    try:
        data = json_loads(text)
    except (ValueError, RecursionError):
        raise DecodeError("invalid JSON payload") from None
    # Depth d needs d - 1 arrays or objects that are not empty: brackets not closed at once (those in strings
    # too) bound their number. Count them before walking.
    if (type(data) is list or type(data) is dict) \
            and text.count("[") - text.count("[]") + text.count("{") - text.count("{}") >= max_depth \
            and depth_over(data, max_depth):
        raise DecodeError(f"data nested deeper than {max_depth}")
    return data


_TYPES = {str(int(t)): t for t in PacketType}
"""The packet types by the digit that starts a message."""

_DIGITS = {t: str(int(t)) for t in PacketType}
"""The digit that starts a message of each packet type."""

_ACK_DIGITS = re.compile("[0-9]+")
"""An ack id's digits (ASCII only, as ``"0" <= c <= "9"``)."""


def encode(packet: Packet) -> list[str | bytes]:
    """Encode a packet as Engine.IO messages: the text header, then any binary attachments."""
    ptype = packet.type
    data = packet.data
    if (ptype is PacketType.EVENT or ptype is PacketType.ACK) and has_binary(data):
        ptype = PacketType.BINARY_EVENT if ptype is PacketType.EVENT else PacketType.BINARY_ACK
    attachments: list[bytes] = []
    if ptype in _BINARY_TYPES:
        data, attachments = deconstruct(data)
        head = f"{int(ptype)}{len(attachments)}-"
    else:
        head = _DIGITS[ptype]
    namespace = "" if packet.namespace == "/" else packet.namespace + ","
    ack_id = "" if packet.id is None else str(packet.id)
    body = "" if data is None else dumps(data)
    return [head + namespace + ack_id + body, *attachments]


def validate(packet: Packet) -> None:
    """Raise :class:`DecodeError` unless ``packet``'s data and ack id suit its type (shared by every parser)."""
    ptype, data = packet.type, packet.data
    if ptype is PacketType.CONNECT:
        ok = data is None or isinstance(data, dict)
    elif ptype is PacketType.DISCONNECT:
        ok = data is None
    elif ptype is PacketType.CONNECT_ERROR:
        ok = isinstance(data, str | dict)
    elif ptype in (PacketType.EVENT, PacketType.BINARY_EVENT):
        ok = isinstance(data, list) and len(data) > 0 and isinstance(data[0], str | int) and type(data[0]) is not bool
    else:
        ok = isinstance(data, list)
    if not ok:
        raise DecodeError(f"invalid payload for a {ptype.name} packet")
    if packet.id is not None and ptype not in (PacketType.EVENT, PacketType.ACK, PacketType.BINARY_EVENT,
                                                PacketType.BINARY_ACK):
        raise DecodeError(f"a {ptype.name} packet cannot carry an ack id")
    if packet.id is None and ptype in (PacketType.ACK, PacketType.BINARY_ACK):
        raise DecodeError("an ACK packet needs an ack id")


def decode_header(text: str, max_attachments: int, max_depth: int = MAX_DEPTH) -> tuple[Packet, int]:
    """Decode a text message into a packet (placeholders still in place) and its attachment count."""
    ptype = _TYPES.get(text[:1])
    if ptype is None:
        if not text or not text[0].isdigit():
            raise DecodeError("missing packet type")
        raise DecodeError(f"unknown packet type {text[0]}")
    i = 1
    count = 0
    if ptype in _BINARY_TYPES:
        dash = text.find("-", i)
        digits = text[i:dash] if dash > i else ""
        if not digits.isascii() or not digits.isdigit() or len(digits) > 6:
            raise DecodeError("missing attachment count")
        count = int(digits)
        if count > max_attachments:
            raise DecodeError(f"too many attachments ({count} > {max_attachments})")
        i = dash + 1
    namespace = "/"
    if i < len(text) and text[i] == "/":
        comma = text.find(",", i)
        if comma == -1:
            namespace, i = text[i:], len(text)
        else:
            namespace, i = text[i:comma], comma + 1
    start = i
    found = _ACK_DIGITS.match(text, i)
    if found is not None:
        i = found.end()
    ack_id: int | None = None
    if i > start:
        if i - start > 16 or (ack_id := int(text[start:i])) > MAX_ACK_ID:
            raise DecodeError("ack id out of range")
    data: Any = None
    if i < len(text):
        data = loads(text[i:], max_depth)
    packet = Packet(ptype, namespace, data, ack_id)
    validate(packet)
    return packet, count


@dataclass(frozen=True, slots=True)
class DecoderLimits:
    """The limits a decoder enforces on what a peer sends."""

    max_attachments: int = 100
    """Binary attachments one packet may announce (formats with attachments only)."""
    max_bytes: int | None = None
    """Bytes one packet may take, attachments included (``None``: the transport's limit alone)."""
    max_depth: int = MAX_DEPTH
    """How deep arrays and maps may nest in a packet's data."""


class Decoder:
    """Turns a session's Engine.IO messages into complete packets, attachments included.

    Feed each message to :meth:`feed`; it returns the packet once complete, or
    ``None`` while attachments are still expected. A message that breaks the
    protocol raises :class:`DecodeError` (and drops any partial packet); the
    session should then be closed. ``max_bytes`` caps a binary packet's
    header and attachments together.
    """

    def __init__(self, max_attachments: int = 100, max_bytes: int | None = None, max_depth: int = MAX_DEPTH) -> None:
        self.max_attachments = max_attachments
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self._partial: _Partial | None = None

    @property
    def pending(self) -> bool:
        """Whether a binary packet is waiting for attachments."""
        return self._partial is not None

    def reset(self) -> None:
        """Drop a partial binary packet and its attachments."""
        self._partial = None

    def feed(self, message: str | bytes) -> Packet | None:
        """Take one Engine.IO message; return the packet it completes, if any."""
        try:
            return self._feed(message)
        except DecodeError:
            self._partial = None
            raise

    def _feed(self, message: str | bytes) -> Packet | None:
        if isinstance(message, bytes):
            partial = self._partial
            if partial is None:
                raise DecodeError("got binary data when not reconstructing a packet")
            partial.size += len(message)
            if self.max_bytes is not None and partial.size > self.max_bytes:
                raise DecodeError(f"binary packet over {self.max_bytes} bytes")
            partial.attachments.append(message)
            if len(partial.attachments) < partial.expected:
                return None
            self._partial = None
            return self._complete(partial.header, partial.attachments)
        if self._partial is not None:
            raise DecodeError("got plaintext data when reconstructing a packet")
        header, count = decode_header(message, self.max_attachments, self.max_depth)
        if header.type in _BINARY_TYPES:
            if count == 0:
                return self._complete(header, [])
            self._partial = _Partial(header, count, len(message))
            return None
        return header

    @staticmethod
    def _complete(header: Packet, attachments: list[bytes]) -> Packet:
        plain = PacketType.EVENT if header.type is PacketType.BINARY_EVENT else PacketType.ACK
        return Packet(plain, header.namespace, reconstruct(header.data, attachments), header.id)
