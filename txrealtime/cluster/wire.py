"""Frames between the master and its workers on their Unix socket: a pure codec, free of I/O.

Grammar (integers in frames are big-endian; ``text`` is UTF-8, ``number`` is
ASCII decimal digits without sign or leading zeros, ``bytes`` is anything)::

    stream   = *( length:u32 body )       ; the length prefix is the transport's (Int32StringReceiver)
    body     = kind:u8 *field             ; len(body) <= MAX_FRAME
    field    = size:u32 octets[size]

    kind  frame         fields                          direction
    1     Hello         index:number pid:number         worker -> master, first frame
    2     Connection    id:number data:bytes            master -> worker, the client's socket in SCM_RIGHTS
    3     Adopted       id:number                       worker -> master
    4     Subscribe     channel:text                    worker -> master
    5     Unsubscribe   channel:text                    worker -> master
    6     PSubscribe    pattern:text                    worker -> master
    7     PUnsubscribe  pattern:text                    worker -> master
    8     Publish       channel:text message:bytes      worker -> master
    9     Message       pattern:text channel:text message:bytes   master -> worker ("" pattern: a channel subscription)
    10    NumSub        id:number channel:text          worker -> master
    11    NumSubReply   id:number count:number          master -> worker
    12    Load          sessions:number                 worker -> master

A body with an unknown kind, the wrong number of fields, a field overrunning
the body, text that is not UTF-8 or a malformed number raises
:class:`WireError`.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

__all__ = [
    "MAX_FRAME",
    "Adopted",
    "Connection",
    "Frame",
    "Hello",
    "Load",
    "Message",
    "NumSub",
    "NumSubReply",
    "PSubscribe",
    "PUnsubscribe",
    "Publish",
    "Subscribe",
    "Unsubscribe",
    "WireError",
    "decode",
    "encode",
]

MAX_FRAME = 256 * 1024 * 1024
"""Largest frame body: a broadcast carries at most one message, and messages are bounded by max_payload."""

_SIZE = struct.Struct(">I")


class WireError(ValueError):
    """A frame that does not follow the grammar."""


@dataclass(frozen=True, slots=True)
class Hello:
    """A worker introduces itself: its index among the workers and its process id."""

    KIND: ClassVar[int] = 1
    index: int
    pid: int


@dataclass(frozen=True, slots=True)
class Connection:
    """A client connection handed to the worker: its socket travels beside this frame; ``data`` was read already."""

    KIND: ClassVar[int] = 2
    id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Adopted:
    """The worker holds connection ``id`` now: the master may close its copy of the socket."""

    KIND: ClassVar[int] = 3
    id: int


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Deliver messages published on ``channel`` to this worker."""

    KIND: ClassVar[int] = 4
    channel: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Stop delivering ``channel`` to this worker."""

    KIND: ClassVar[int] = 5
    channel: str


@dataclass(frozen=True, slots=True)
class PSubscribe:
    """Deliver messages published on channels matching the glob ``pattern`` to this worker."""

    KIND: ClassVar[int] = 6
    pattern: str


@dataclass(frozen=True, slots=True)
class PUnsubscribe:
    """Stop delivering ``pattern`` to this worker."""

    KIND: ClassVar[int] = 7
    pattern: str


@dataclass(frozen=True, slots=True)
class Publish:
    """Send ``message`` to every worker subscribed to ``channel`` (this one included)."""

    KIND: ClassVar[int] = 8
    channel: str
    message: bytes


@dataclass(frozen=True, slots=True)
class Message:
    """A message published on ``channel``, delivered for ``pattern`` (``""``: for the channel itself)."""

    KIND: ClassVar[int] = 9
    pattern: str
    channel: str
    message: bytes


@dataclass(frozen=True, slots=True)
class NumSub:
    """How many workers subscribe to ``channel``? Answered by :class:`NumSubReply` with the same ``id``."""

    KIND: ClassVar[int] = 10
    id: int
    channel: str


@dataclass(frozen=True, slots=True)
class NumSubReply:
    """The answer to :class:`NumSub` ``id``."""

    KIND: ClassVar[int] = 11
    id: int
    count: int


@dataclass(frozen=True, slots=True)
class Load:
    """The worker's number of open sessions (the master sends new clients to the least loaded)."""

    KIND: ClassVar[int] = 12
    sessions: int


Frame: TypeAlias = (
    Hello | Connection | Adopted | Subscribe | Unsubscribe | PSubscribe | PUnsubscribe | Publish | Message
    | NumSub | NumSubReply | Load
)
"""Every frame of the grammar."""

_KINDS: dict[int, type[Frame]] = {
    cls.KIND: cls
    for cls in (Hello, Connection, Adopted, Subscribe, Unsubscribe, PSubscribe, PUnsubscribe, Publish, Message,
                NumSub, NumSubReply, Load)
}
_FIELDS: dict[type[Frame], tuple[tuple[str, str], ...]] = {
    cls: tuple((f.name, str(f.type)) for f in dataclasses.fields(cls)) for cls in _KINDS.values()
}


def encode(frame: Frame) -> bytes:
    """The body of ``frame`` (without the transport's length prefix)."""
    parts = [bytes((frame.KIND,))]
    for name, kind in _FIELDS[type(frame)]:
        value = getattr(frame, name)
        if kind == "int":
            if value < 0:
                raise ValueError(f"{type(frame).__name__}.{name} must be >= 0")
            raw = str(value).encode()
        elif kind == "str":
            raw = value.encode("utf-8")
        else:
            raw = bytes(value)
        parts.append(_SIZE.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)


def decode(body: bytes) -> Frame:
    """The frame whose body is ``body``; :class:`WireError` if it does not follow the grammar."""
    if not body:
        raise WireError("empty frame")
    if len(body) > MAX_FRAME:
        raise WireError(f"frame of {len(body)} bytes is larger than {MAX_FRAME}")
    cls = _KINDS.get(body[0])
    if cls is None:
        raise WireError(f"unknown frame kind {body[0]}")
    values: list[object] = []
    offset = 1
    for name, kind in _FIELDS[cls]:
        if offset + 4 > len(body):
            raise WireError(f"{cls.__name__}: missing field {name}")
        (size,) = _SIZE.unpack_from(body, offset)
        offset += 4
        if offset + size > len(body):
            raise WireError(f"{cls.__name__}.{name}: {size} bytes announced, {len(body) - offset} left")
        raw = body[offset : offset + size]
        offset += size
        values.append(_value(cls, name, kind, raw))
    if offset != len(body):
        raise WireError(f"{cls.__name__}: {len(body) - offset} bytes after the last field")
    return cls(*values)  # type: ignore[arg-type]


def _value(cls: type, name: str, kind: str, raw: bytes) -> object:
    if kind == "int":
        if not raw or not raw.isdigit() or (len(raw) > 1 and raw[0] == 0x30) or len(raw) > 20:
            raise WireError(f"{cls.__name__}.{name}: not a number: {raw[:20]!r}")
        return int(raw)
    if kind == "str":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise WireError(f"{cls.__name__}.{name}: not UTF-8 ({e.reason})") from None
    return raw
