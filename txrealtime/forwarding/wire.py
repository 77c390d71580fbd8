"""The messages txrealtime nodes exchange to serve each other's sessions: a pure codec, free of I/O.

Channels, for the link's key (``socket.io`` by default)::

    {key}-forward#            lookups, heard by every node
    {key}-forward#{uid}#      messages for node ``uid`` (its link's uid)

A message is a frame of :mod:`txrealtime._frames` (``kind:u8``, then each
field as ``size:u32 octets``); every one starts with the sender's uid
(``origin``) and a number (``id``: the request, or the relayed connection,
as the node that started it numbered it)::

    kind  message   fields after origin, id                          from -> to
    1     Request   sid method uri headers address secure body       receiver of a polling request -> owner
    2     Response  status headers body                              owner -> receiver (answers 1 and 4)
    3     Cancel    -                                                receiver -> owner (its client left)
    4     Upgrade   sid uri headers address secure                   receiver of a WebSocket upgrade -> owner
    5     Packets   packets                                          receiver -> owner: from the relayed client
    6     Closed    reason description                               receiver -> owner: the relayed connection ended
    7     Lookup    sid                                              any node -> every node (sid without a tag)
    8     Owner     owned                                            every node -> the one that asked (1: here)
    9     Outgoing  packets                                          owner -> receiver: for the relayed client
    10    Ended     reason description                               owner -> receiver: close the relayed connection

    number   = ASCII decimal digits (no sign, no leading zero)
    headers  = *( name ":" value LF )     ; latin-1; no CR or LF in either, no ":" in a name
    packets  = *( flags:u8 size:u32 data[size] )
    flags    = %x00-03                    ; bit 0: binary, bit 1: sent uncompressed
                                          ; data: the packet as a v4 WebSocket frame payload

A relayed connection is numbered by the receiver (the ``id`` of its
:class:`Upgrade`); messages about it go one way or the other by kind, since
each node numbers its own requests. ``secure`` and ``owned`` are 0 or 1;
``status`` is an HTTP status (101: the upgrade is accepted, with ``body``
``decline`` if the connection is to be accepted and closed at once). A body or field that does not follow the
grammar raises :class:`WireError`. Sids end with ``~`` and their owner's
uid when the owner made them (:func:`tag_of`).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from .._frames import FrameCodec
from ..engineio.packets import DecodeError, Packet, UncompressedPacket, decode_ws_frame, encode_ws_frame

__all__ = [
    "MAX_MESSAGE",
    "Cancel",
    "Closed",
    "Ended",
    "Lookup",
    "Message",
    "Outgoing",
    "Owner",
    "Packets",
    "Request",
    "Response",
    "Upgrade",
    "WireError",
    "decode",
    "decode_headers",
    "decode_packets",
    "encode",
    "encode_headers",
    "encode_packets",
    "lookup_channel",
    "node_channel",
    "tag_of",
    "valid_uid",
]

MAX_MESSAGE = 256 * 1024 * 1024
"""Largest message decoded (a request carries at most one body, bounded by ``max_payload``)."""

TAG = "~"
"""Between a sid and the uid of the node that made it."""

_UID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class WireError(ValueError):
    """A message that does not follow the grammar."""


def valid_uid(uid: str) -> bool:
    """Whether ``uid`` can tag sids: 1 to 32 of ``A-Z a-z 0-9 _ -``."""
    return _UID.fullmatch(uid) is not None


def tag_of(sid: str) -> str | None:
    """The uid a sid is tagged with (``…~uid``), or ``None``."""
    _, sep, uid = sid.rpartition(TAG)
    return uid if sep and valid_uid(uid) else None


def lookup_channel(key: str) -> str:
    """The channel every node hears lookups on."""
    return f"{key}-forward#"


def node_channel(key: str, uid: str) -> str:
    """The channel of node ``uid``."""
    return f"{key}-forward#{uid}#"


@dataclass(frozen=True, slots=True)
class Request:
    """A polling request for a session of the recipient, to replay through its Engine.IO resource."""

    KIND: ClassVar[int] = 1
    origin: str
    id: int
    sid: str
    method: str
    uri: str
    headers: bytes
    address: str
    secure: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to a :class:`Request` or an :class:`Upgrade`."""

    KIND: ClassVar[int] = 2
    origin: str
    id: int
    status: int
    headers: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class Cancel:
    """The client of request ``id`` went away before its answer."""

    KIND: ClassVar[int] = 3
    origin: str
    id: int


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A WebSocket upgrade for a session of the recipient, whose connection stays with the sender."""

    KIND: ClassVar[int] = 4
    origin: str
    id: int
    sid: str
    uri: str
    headers: bytes
    address: str
    secure: int


@dataclass(frozen=True, slots=True)
class Packets:
    """Engine.IO packets from the client of relayed connection ``id`` (:func:`encode_packets`)."""

    KIND: ClassVar[int] = 5
    origin: str
    id: int
    packets: bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """Relayed connection ``id`` ended on the receiver (an Engine.IO close reason, and what happened)."""

    KIND: ClassVar[int] = 6
    origin: str
    id: int
    reason: str
    description: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """Who holds ``sid``? Every node answers with an :class:`Owner`."""

    KIND: ClassVar[int] = 7
    origin: str
    id: int
    sid: str


@dataclass(frozen=True, slots=True)
class Owner:
    """The answer to :class:`Lookup` ``id``: whether the sender holds the sid."""

    KIND: ClassVar[int] = 8
    origin: str
    id: int
    owned: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Engine.IO packets for the client of relayed connection ``id`` (:func:`encode_packets`)."""

    KIND: ClassVar[int] = 9
    origin: str
    id: int
    packets: bytes


@dataclass(frozen=True, slots=True)
class Ended:
    """The owner closed relayed connection ``id`` (an Engine.IO close reason, and why)."""

    KIND: ClassVar[int] = 10
    origin: str
    id: int
    reason: str
    description: str


Message: TypeAlias = Request | Response | Cancel | Upgrade | Packets | Closed | Lookup | Owner | Outgoing | Ended
"""Every message of the grammar."""

_CODEC: FrameCodec[Message] = FrameCodec(
    (Request, Response, Cancel, Upgrade, Packets, Closed, Lookup, Owner, Outgoing, Ended), WireError, MAX_MESSAGE
)


def encode(message: Message) -> bytes:
    """The bytes of ``message``."""
    return _CODEC.encode(message)


def decode(data: bytes) -> Message:
    """The message in ``data``; :class:`WireError` if it does not follow the grammar."""
    message = _CODEC.decode(data)
    for name in ("secure", "owned"):
        if getattr(message, name, 0) not in (0, 1):
            raise WireError(f"{type(message).__name__}.{name} must be 0 or 1")
    return message


def _bad(text: str, name: bool) -> bool:
    return "\n" in text or "\r" in text or (name and (":" in text or not text))


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    """Header pairs as the ``headers`` field; ``ValueError`` for a name or value the grammar cannot hold."""
    out = []
    for name, value in headers:
        if _bad(name, True) or _bad(value, False):
            raise ValueError(f"header {name[:40]!r} cannot be forwarded")
        out.append(f"{name}:{value}\n")
    try:
        return "".join(out).encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("a header is not latin-1") from None


def decode_headers(data: bytes) -> list[tuple[str, str]]:
    """The header pairs of a ``headers`` field; :class:`WireError` if malformed."""
    text = data.decode("latin-1")
    if not text:
        return []
    if not text.endswith("\n"):
        raise WireError("headers: the last line does not end")
    pairs = []
    for line in text[:-1].split("\n"):
        name, sep, value = line.partition(":")
        if not sep or not name or "\r" in line:
            raise WireError(f"headers: malformed line {line[:40]!r}")
        pairs.append((name, value))
    return pairs


_ITEM = struct.Struct(">BI")


def encode_packets(packets: list[Packet]) -> bytes:
    """Packets as the ``packets`` field."""
    out = []
    for packet in packets:
        data, binary = encode_ws_frame(packet)
        out.append(_ITEM.pack((1 if binary else 0) | (0 if packet.compress else 2), len(data)))
        out.append(data)
    return b"".join(out)


def decode_packets(data: bytes) -> list[Packet]:
    """The packets of a ``packets`` field; :class:`WireError` if malformed."""
    packets: list[Packet] = []
    offset, size = 0, len(data)
    while offset < size:
        if offset + _ITEM.size > size:
            raise WireError("packets: truncated header")
        flags, length = _ITEM.unpack_from(data, offset)
        offset += _ITEM.size
        if flags > 3 or offset + length > size:
            raise WireError("packets: bad flags or length")
        try:
            packet = decode_ws_frame(data[offset : offset + length], bool(flags & 1))
        except DecodeError as e:
            raise WireError(f"packets: {e}") from None
        offset += length
        packets.append(UncompressedPacket(packet.type, packet.data) if flags & 2 else packet)
    return packets
