"""Frames between the master and its workers on their Unix socket: a pure codec, free of I/O.

Grammar (integers in frames are big-endian; ``text`` is UTF-8, ``number`` is
ASCII decimal digits without sign or leading zeros, ``bytes`` is anything)::

    stream   = *( length:u32 body )       ; the length prefix is the transport's (Int32StringReceiver)
    body     = kind:u8 *field             ; len(body) <= MAX_FRAME (:mod:`txrealtime._frames`)
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
    13    Members       indexes:text                    master -> worker ("0,2,3": the workers connected)

A body with an unknown kind, the wrong number of fields, a field overrunning
the body, text that is not UTF-8 or a malformed number raises
:class:`WireError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from .._frames import FrameCodec

__all__ = [
    "MAX_FRAME",
    "Adopted",
    "Connection",
    "Frame",
    "Hello",
    "Load",
    "Members",
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


@dataclass(frozen=True, slots=True)
class Members:
    """The indexes of the workers connected to the master (comma-separated, ascending), sent on every change."""

    KIND: ClassVar[int] = 13
    indexes: str

    def parsed(self) -> list[int]:
        """The indexes as numbers; :class:`WireError` if the text is not a list of numbers."""
        if not self.indexes:
            return []
        parts = self.indexes.split(",")
        if not all(p.isdigit() and len(p) <= 6 for p in parts):
            raise WireError(f"Members: not a list of numbers: {self.indexes[:40]!r}")
        return [int(p) for p in parts]


Frame: TypeAlias = (
    Hello | Connection | Adopted | Subscribe | Unsubscribe | PSubscribe | PUnsubscribe | Publish | Message
    | NumSub | NumSubReply | Load | Members
)
"""Every frame of the grammar."""

_CODEC: FrameCodec[Frame] = FrameCodec(
    (Hello, Connection, Adopted, Subscribe, Unsubscribe, PSubscribe, PUnsubscribe, Publish, Message, NumSub,
     NumSubReply, Load, Members),
    WireError,
    MAX_FRAME,
)


def encode(frame: Frame) -> bytes:
    """The body of ``frame`` (without the transport's length prefix)."""
    return _CODEC.encode(frame)


def decode(body: bytes) -> Frame:
    """The frame whose body is ``body``; :class:`WireError` if it does not follow the grammar."""
    return _CODEC.decode(body)
