"""Socket.IO packets as MessagePack, as Node's ``socket.io-msgpack-parser`` 3 reads and writes them: no I/O.

Every packet is one binary Engine.IO message holding one MessagePack map::

    packet   {type, data?, nsp, id?}        keys in any order; other keys (the
                                            JavaScript client's "options") ignored
    type     0 CONNECT | 1 DISCONNECT | 2 EVENT | 3 ACK | 4 CONNECT_ERROR
    nsp      str, the namespace ("/" included)
    data     CONNECT: map or absent         DISCONNECT: absent
             EVENT: [event, *args]          ACK: [*values]
             CONNECT_ERROR: str or map
    id       uint <= 2**53 - 1, the ack id  (EVENT: optional, ACK: required)

There are no binary types and no attachments: binary values are MessagePack
``bin`` in place. Values map as ``notepack.io`` 2 (the parser's encoder)
maps them: str for text, bin for ``bytes``/``bytearray``/``memoryview``,
float64 for every ``float``, the smallest integer format, and a
``datetime`` as a JavaScript ``Date`` (ext type 0, 8 bytes: signed
milliseconds since the epoch, naive values being local time); a ``date``
is sent as ``YYYY-MM-DD``, as the JSON parser sends it. Keys are written
in the order Node's socket.io writes them (``{id, type, data, nsp}`` for an
ACK, ``{type, data, id?, nsp}`` otherwise), so the bytes are Node's for the
same packet, except that txrealtime leaves out what Node writes as
``undefined`` (ext type 0, 1 byte: a CONNECT's ``pid`` with recovery off,
a refusal's missing ``data``), which JavaScript reads the same, and that
Node orders the keys of its "Invalid namespace" refusal ``{type, nsp,
data}`` and of broadcasts asking for acks ``{type, data, nsp, id}``.
Numbers that JavaScript holds as integers beyond 2**53 (``1e300``), which
``notepack.io`` 2 writes as a wrong uint64, are float64 here.

Reading follows ``notepack.io`` 2 and the parser's checks: ext type 0 is
``undefined`` (read as ``None``; an absent field at the packet's top level)
when 1 byte long, a ``Date`` (an aware UTC ``datetime``) when 8 bytes long,
an ``ArrayBuffer`` (``bytes``) otherwise; other ext types read as
``[type, bytes]``, and the timestamp extension (-1) as a ``datetime``.
Invalid UTF-8 reads as U+FFFD; map keys must be strings. The packet is
checked as the JSON parser checks it (:func:`txrealtime.protocol.packets.validate`),
nesting deeper than ``max_depth`` and trailing bytes are refused, and every
failure is a :class:`txrealtime.protocol.packets.DecodeError` whose message
never quotes the peer's data.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator, Mapping
from typing import Any

try:
    import msgpack
except ImportError as e:  # pragma: no cover - the msgpack extra is part of the test extra
    raise ImportError(
        "the msgpack parser needs the msgpack package: pip install 'txrealtime[msgpack]'"
    ) from e

from .packets import MAX_ACK_ID, MAX_DEPTH, DecodeError, DecoderLimits, Packet, PacketType, nesting_fault, validate

__all__ = ["MSGPACK", "MsgpackDecoder", "MsgpackParser", "decode", "encode"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MILLISECOND = datetime.timedelta(milliseconds=1)


class _Undefined:
    """JavaScript's ``undefined`` (ext type 0, 1 byte) while a message is read."""

    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED = _Undefined()


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        # A JavaScript Date: whole milliseconds since the epoch, as a signed 64-bit integer.
        ms = (value.astimezone(datetime.UTC) - _EPOCH) // _MILLISECOND  # a naive value is local time
        return msgpack.ExtType(0, ms.to_bytes(8, "big", signed=True))
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} values cannot be sent (not MessagePack-serializable)")


_packer = msgpack.Packer(default=_default, use_bin_type=True, unicode_errors="surrogatepass", datetime=False)


def encode(packet: Packet) -> list[str | bytes]:
    """The one binary message for ``packet`` (``TypeError`` for values MessagePack cannot carry)."""
    ptype = packet.type
    body: dict[str, Any]
    if ptype is PacketType.ACK or ptype is PacketType.BINARY_ACK:
        body = {"id": packet.id, "type": 3, "data": packet.data, "nsp": packet.namespace}
    else:
        body = {"type": 2 if ptype is PacketType.BINARY_EVENT else int(ptype)}
        if packet.data is not None:
            body["data"] = packet.data
        if packet.id is not None:
            body["id"] = packet.id
        body["nsp"] = packet.namespace
    return [_packer.pack(body)]


def _ext(code: int, data: bytes) -> Any:
    if code == 0:
        if len(data) == 1:
            return _UNDEFINED
        if len(data) == 8:
            return _EPOCH + int.from_bytes(data, "big", signed=True) * _MILLISECOND
        return data  # an ArrayBuffer, as notepack.io 2 writes one
    return [code, data]


def _entries(value: Any) -> Iterator[tuple[Any, Any]]:
    return enumerate(value) if type(value) is list else iter(value.items())


def _define(data: Any) -> None:
    """Replace every ``undefined`` inside ``data`` (a list or map just read) by ``None``, in place.

    Like the depth check, it holds one iterator per level, nothing per child.
    """
    containers: list[Any] = [data]
    stack = [_entries(data)]
    while stack:
        for key, value in stack[-1]:
            if value is _UNDEFINED:
                containers[-1][key] = None
            elif (type(value) is list or type(value) is dict) and value:
                containers.append(value)
                stack.append(_entries(value))
                break
        else:
            stack.pop()
            containers.pop()


# Bytes that may open an array or a map holding something: depth d needs d - 1 of them, so their count
# bounds the depth (an empty one, or an extension read as [type, bytes], can only be the innermost).
_NOT_OPENERS = bytes(b for b in range(256) if not (0x81 <= b <= 0x8F or 0x91 <= b <= 0x9F or 0xDC <= b <= 0xDF))
# Bytes that may start a bin or an extension: without them no map key can be bytes.
_BINARY = re.compile(b"[\xc4-\xc9\xd4-\xd8]")


_TYPES = tuple(PacketType)[: PacketType.CONNECT_ERROR + 1]


def _integer(value: Any) -> int | None:
    """``value`` as an integer if it is one (JavaScript's ``Number.isInteger``), else ``None``."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def decode(message: bytes, max_depth: int = MAX_DEPTH) -> Packet:
    """The packet one binary message holds; :class:`DecodeError` if it is not a valid one."""
    undefined: list[bool] = []

    def ext(code: int, data: bytes) -> Any:
        value = _ext(code, data)
        if value is _UNDEFINED:
            undefined.append(True)
        return value

    try:
        body = msgpack.unpackb(
            message, raw=False, ext_hook=ext, timestamp=3, unicode_errors="replace", strict_map_key=True
        )
    except (ValueError, TypeError, OverflowError, RecursionError, msgpack.UnpackException):
        raise DecodeError("invalid MessagePack payload") from None
    if type(body) is not dict:
        raise DecodeError("the packet is not a map")
    ptype = _integer(body.get("type"))
    if ptype is None or not PacketType.CONNECT <= ptype <= PacketType.CONNECT_ERROR:
        raise DecodeError("invalid packet type")
    nsp = body.get("nsp")
    if type(nsp) is not str:
        raise DecodeError("invalid namespace")
    data = body.get("data", _UNDEFINED)
    if type(data) is list or type(data) is dict:
        deep = len(message) > max_depth and len(message.translate(None, _NOT_OPENERS)) >= max_depth
        binary = _BINARY.search(message) is not None
        fault = nesting_fault(data, max_depth, string_keys=binary) if deep or binary else None
        if fault == "depth":
            raise DecodeError(f"data nested deeper than {max_depth}")
        if fault == "key":
            raise DecodeError("a map key is not a string")
    if data is None:
        # nil is not undefined: JavaScript's checks refuse it where only an object or nothing will do.
        if ptype in (PacketType.CONNECT, PacketType.DISCONNECT):
            raise DecodeError("invalid payload")
    elif data is _UNDEFINED:
        data = None
    elif undefined:  # an undefined somewhere inside
        _define(data)
    ack_id = body.get("id", _UNDEFINED)
    if ack_id is _UNDEFINED:
        ack_id = None
    else:
        ack_id = _integer(ack_id)
        if ack_id is None or not 0 <= ack_id <= MAX_ACK_ID:
            raise DecodeError("invalid packet id")
    packet = Packet(_TYPES[ptype], nsp, data, ack_id)
    validate(packet)
    return packet


_NO_LIMITS = DecoderLimits()


class MsgpackDecoder:
    """One connection's decoder: each binary message is a whole packet; a text message is an error."""

    pending = False
    """Never: a packet is always one message."""

    def __init__(self, limits: DecoderLimits = _NO_LIMITS) -> None:
        self.max_bytes = limits.max_bytes
        self.max_depth = limits.max_depth

    def feed(self, message: str | bytes) -> Packet | None:
        """The packet ``message`` holds."""
        if not isinstance(message, bytes):
            raise DecodeError("a text message on a MessagePack connection")
        if self.max_bytes is not None and len(message) > self.max_bytes:
            raise DecodeError(f"packet over {self.max_bytes} bytes")
        return decode(message, self.max_depth)

    def reset(self) -> None:
        """Nothing is ever kept between messages."""


class _MsgpackEncoder:
    @staticmethod
    def encode(packet: Packet) -> list[str | bytes]:
        return encode(packet)


class MsgpackParser:
    """Node's ``socket.io-msgpack-parser``: one MessagePack map per packet, binary in place."""

    name = "msgpack"

    def encoder(self) -> _MsgpackEncoder:
        return _MsgpackEncoder()

    def decoder(self, limits: DecoderLimits) -> MsgpackDecoder:
        return MsgpackDecoder(limits)

    def __repr__(self) -> str:
        return "<MessagePack parser>"


MSGPACK = MsgpackParser()
"""The parser ``parser="msgpack"`` names."""
