"""The wire format of Node's ``@socket.io/redis-adapter`` 8.x (and ``@socket.io/redis-emitter`` 5): no I/O.

Channels, for a key (``socket.io`` by default) and a namespace ``nsp``
(``/`` included), as :class:`Channels` names them::

    {key}#{nsp}#              broadcasts to all sockets or to several rooms
    {key}#{nsp}#{room}#       a broadcast to exactly one room
    {key}-request#{nsp}#      requests to every node
    {key}-response#{nsp}#     their answers ({key}-response#{nsp}#{uid}# if the
                              requester asked for answers on its own channel)
    {key}-nodes#              txrealtime's heartbeats (not in Node's protocol)

A node subscribes to the glob ``{key}#{nsp}#*`` (the prefix glob-escaped),
the request channel and both response channels.

Encodings: MessagePack as ``notepack.io`` writes it (str for text, bin for
``Buffer``, float64 for non-integers, nil for ``undefined``; the ext type 0
older versions wrote for ``undefined`` reads as ``None``), or JSON (a UTF-8
object). On the request and response channels a message starting with ``{``
is JSON, anything else MessagePack. Keys are written in the Node adapter's
order, so the output is byte for byte what it writes for the same values
(the emitter puts ``flags`` before ``except``: :attr:`Broadcast.flags_first`). Broadcasts and heartbeats are
here; requests and responses, as typed dataclasses, are in :mod:`txrealtime.adapters.redis.requests`::

    broadcast   MessagePack [uid, packet, opts]
      packet    {type: 2, data: [event, *args], nsp, id?}
      opts      {rooms: [room], except: [room], flags?: {volatile?, compress?, timeout? (ms)}}
                the emitter: {rooms, flags, except}, flags always there (``{}`` if none)

    requests (JSON unless noted; ``uid`` is left out by the emitter)
      0 SOCKETS            {uid, requestId, type, rooms}
      1 ALL_ROOMS          {uid, requestId, type}
      2 REMOTE_JOIN        {uid, type, opts, rooms}   or, older: {uid, requestId, type, sid, room}
      3 REMOTE_LEAVE       {uid, type, opts, rooms}   or, older: {uid, requestId, type, sid, room}
      4 REMOTE_DISCONNECT  {uid, type, opts, close}   or, older: {uid, requestId, type, sid, close}
      5 REMOTE_FETCH       {uid, requestId, type, opts, count?}   count (true), txrealtime's: the number suffices
      6 SERVER_SIDE_EMIT   {uid, requestId?, type, data: [event, *args]}
      7 BROADCAST          MessagePack {uid, requestId, type, packet, opts}: a broadcast awaiting acks

    responses: their shape depends on the request they answer
      SOCKETS              {requestId, sockets: [sid]}
      ALL_ROOMS            {requestId, rooms: [room]}
      older 2, 3, 4        {requestId}
      REMOTE_FETCH         {requestId, sockets: [{id, handshake, rooms, data}], node?, count?}
                           node (the answering link's uid) and count (sockets matched, sockets then []):
                           txrealtime's additions, which Node's adapter ignores (it answers a count request
                           with the sockets, counted by the asker)
      SERVER_SIDE_EMIT     {type: 6, requestId, data}
      BROADCAST            {type: 8, requestId, clientCount}, then for each
                           client's ack MessagePack {type: 9, requestId, packet: value}

    nodes       JSON {uid, type: "heartbeat" | "leave"}   (uid: 1 to 64 printable characters)

Strings may hold lone surrogates: MessagePack carries them as they are
(Node reads them as U+FFFD), JSON escapes them. Integers beyond 64 bits
(a client may send ``2**100`` in JSON) travel in MessagePack as float64, the
number every JavaScript peer reads for them anyway (``JSON.parse`` and
``notepack.io`` alike); JSON writes their digits. Decoding is strict about
structure, refuses object keys that are not strings and nesting deeper than
:data:`MAX_DEPTH` (no Socket.IO client could be sent either), and is lenient
where Node is (a missing ``nsp`` is ``/``, a missing room list is empty,
numbers naming rooms become strings, unknown flags are dropped); every
decoding failure is a :class:`WireError`. Encoding raises ``TypeError`` for
values the encoding cannot carry (binary in a JSON message, objects) and
``ValueError`` for nesting MessagePack refuses (over 1,024 levels) and for
integers too large even for a float.

Nothing here imports Twisted, :mod:`txrealtime.redis` or :mod:`txrealtime.socketio`:
packets and options have wire-level types (:class:`WirePacket`,
:class:`WireOptions`: rooms in order, timeouts in milliseconds) that the
adapter maps to its own, and that the write-only :mod:`txrealtime.emitter` builds directly. Importing
this module (or :mod:`txrealtime.adapters.redis.requests`) installs no reactor: the package
imports its Twisted modules only when their names are used.
"""

from __future__ import annotations

import datetime
import json
import math
import secrets
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Literal, Protocol, cast

import msgpack

from ..._js import msgpack_default, stringify

__all__ = [
    "Broadcast",
    "Channels",
    "Encodable",
    "MAX_DEPTH",
    "MAX_UID",
    "NodeMessage",
    "RequestType",
    "WireError",
    "WireFlags",
    "WireOptions",
    "WirePacket",
    "check_values",
    "decode_broadcast",
    "decode_node_message",
    "encode",
    "new_id",
    "nodes_channel",
    "options_body",
    "options_from_body",
    "pack",
    "packet_body",
    "packet_from_body",
    "unpack",
]

EVENT = 2
"""Socket.IO's EVENT packet type, the one broadcasts carry (BINARY_EVENT, 5, is accepted too)."""


class RequestType(IntEnum):
    """The ``type`` of requests and responses, numbered as Node numbers them."""

    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


class WireError(ValueError):
    """Bytes that are not a well-formed message of the adapter's protocol; the message never quotes them."""


def new_id() -> str:
    """A random node uid or request id (6 characters, as Node's ``uid2(6)``)."""
    return secrets.token_hex(3)


# -- channels ----------------------------------------------------------------------------


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def nodes_channel(key: str = "socket.io") -> str:
    """The channel of txrealtime's heartbeats."""
    return f"{key}-nodes#"


@dataclass(frozen=True, slots=True)
class Channels:
    """The channel names of one namespace under one key."""

    key: str = "socket.io"
    nsp: str = "/"

    @property
    def broadcast(self) -> str:
        """``{key}#{nsp}#``: broadcasts to every socket or to several rooms."""
        return f"{self.key}#{self.nsp}#"

    @property
    def broadcast_pattern(self) -> str:
        """The glob matching the broadcast channel and every room channel."""
        return _escape_glob(self.broadcast) + "*"

    def room(self, room: str) -> str:
        """``{key}#{nsp}#{room}#``: broadcasts to that room alone."""
        return f"{self.key}#{self.nsp}#{room}#"

    def for_rooms(self, rooms: tuple[str, ...]) -> str:
        """Where a broadcast to ``rooms`` goes: the room's channel for exactly one, else the broadcast channel."""
        return self.room(rooms[0]) if len(rooms) == 1 else self.broadcast

    def room_of(self, channel: str) -> str:
        """The room a broadcast channel names, ``""`` for the broadcast channel (Node's slicing)."""
        return channel[len(self.broadcast) : -1]

    @property
    def request(self) -> str:
        """``{key}-request#{nsp}#``."""
        return f"{self.key}-request#{self.nsp}#"

    @property
    def response(self) -> str:
        """``{key}-response#{nsp}#``."""
        return f"{self.key}-response#{self.nsp}#"

    def specific_response(self, uid: str) -> str:
        """``{key}-response#{nsp}#{uid}#``: answers meant for node ``uid`` alone."""
        return f"{self.response}{uid}#"


# -- MessagePack and JSON ---------------------------------------------------------------


def pack(value: Any) -> bytes:
    """MessagePack as notepack.io writes it: str for text (lone surrogates kept), bin for bytes, timestamps
    for ``datetime`` values (a JavaScript ``Date`` on a Node node; naive ones are local time), ``date``
    values as ``YYYY-MM-DD`` (see :mod:`txrealtime._js`), integers beyond 64 bits as float64."""
    return cast(
        bytes,
        msgpack.packb(value, use_bin_type=True, unicode_errors="surrogatepass", default=_default),
    )


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        # In whole seconds and nanoseconds: msgpack's own conversion (datetime=True) goes through a float
        # before msgpack 1.0.5 and can be a microsecond off.
        since = value.astimezone(datetime.UTC) - _EPOCH  # a naive datetime is local time
        return msgpack.Timestamp(since.days * 86_400 + since.seconds, since.microseconds * 1000)
    if type(value) is int:  # beyond 64 bits: the float JavaScript would read for it
        try:
            return float(value)
        except OverflowError:
            raise ValueError("an integer too large even for a float cannot be sent") from None
    return msgpack_default(value)


def _undefined(code: int, data: bytes) -> None:
    return None


def unpack(message: bytes) -> Any:
    """The value of one MessagePack message; ``undefined`` (ext type 0) and other ext types read as ``None``,
    timestamps (a Node ``Date``) as aware ``datetime`` values, which Socket.IO sends on as ``Date.toJSON`` does."""
    try:
        return msgpack.unpackb(
            message, raw=False, ext_hook=_undefined, strict_map_key=False, unicode_errors="surrogatepass",
            timestamp=3,
        )
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as e:
        raise WireError("not one MessagePack value") from e


def dump_json(body: Any) -> bytes:
    """UTF-8 JSON as ``JSON.stringify`` writes it (lone surrogates escaped, dates as ``Date.toJSON`` writes
    them; see :mod:`txrealtime._js`); ``TypeError`` for binary values, ``ValueError`` for ``NaN``."""
    return stringify(body).encode()


def load_json(message: bytes) -> Any:
    """The value of a UTF-8 JSON text."""
    try:
        return json.loads(message.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise WireError("not JSON") from e


def load_body(message: bytes) -> dict[Any, Any]:
    """The object a request or response holds: JSON if it starts with ``{``, else MessagePack (checked with
    :func:`check_values`)."""
    body = load_json(message) if message[:1] == b"{" else unpack(message)
    if not isinstance(body, dict):
        raise WireError("not an object")
    check_values(body)
    return body


MAX_DEPTH = 100
"""The deepest nesting of arrays and objects accepted in a message (Socket.IO's own limit on a packet's data)."""


def check_values(value: Any, limit: int = MAX_DEPTH) -> None:
    """:class:`WireError` unless every object key in ``value`` is a string (as in JSON and JavaScript) and arrays
    and objects nest at most ``limit`` deep: what a Socket.IO client could be sent."""
    stack = [value]
    depths = [0]
    while stack:
        item = stack.pop()
        depth = depths.pop()
        if depth > limit:
            raise WireError(f"nested deeper than {limit}")
        children = item.values() if type(item) is dict else item
        if type(item) is dict:
            for key in item:
                if type(key) is not str:
                    raise WireError("an object key is not a string")
        elif type(item) is not list:
            continue
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append(child)
                depths.append(depth + 1)


# -- reading fields (for the message types here and in .requests) -----------------------------


def read_str(body: dict[Any, Any], key: str) -> str:
    """``body[key]``, a string."""
    value = body.get(key)
    if not isinstance(value, str):
        raise WireError(f"{key} is not a string")
    return value


def read_optional_str(body: dict[Any, Any], key: str) -> str | None:
    """``body[key]``, a string or missing (``None``)."""
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise WireError(f"{key} is not a string")
    return value


def read_bool(body: dict[Any, Any], key: str) -> bool:
    """``body[key]``, a boolean; missing is ``False``."""
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise WireError(f"{key} is not a boolean")
    return value


def read_int(body: dict[Any, Any], key: str) -> int:
    """``body[key]``, an integer."""
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(f"{key} is not an integer")
    return value


def read_list(body: dict[Any, Any], key: str) -> list[Any]:
    """``body[key]``, a list."""
    value = body.get(key)
    if not isinstance(value, list):
        raise WireError(f"{key} is not a list")
    return value


def read_dict(body: dict[Any, Any], key: str) -> dict[Any, Any]:
    """``body[key]``, an object; missing is empty."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WireError(f"{key} is not an object")
    return value


def read_room(value: Any) -> str:
    """A room name (or socket id): a string, or a number as Node allows."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # Node lets numbers name rooms
    raise WireError("a room or socket id is not a string")


def read_rooms(body: dict[Any, Any], key: str) -> tuple[str, ...]:
    """``body[key]``, a list of room names; missing is empty."""
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WireError(f"{key} is not a list")
    return tuple(read_room(r) for r in value)


# -- packets and options -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WirePacket:
    """A Socket.IO packet as broadcasts carry it, binary values in place."""

    data: list[Any]
    """``[event, *args]``; ``bytes`` values travel as MessagePack bin."""
    nsp: str = "/"
    type: int = EVENT
    id: int | None = None


def packet_body(packet: WirePacket) -> dict[str, Any]:
    """``{type, data, nsp, id?}``."""
    body: dict[str, Any] = {"type": packet.type, "data": packet.data, "nsp": packet.nsp}
    if packet.id is not None:
        body["id"] = packet.id
    return body


def packet_from_body(body: Any) -> WirePacket:
    """The packet ``body`` describes; a missing ``nsp`` is ``/``, as in Node."""
    if not isinstance(body, dict):
        raise WireError("the packet is not an object")
    nsp = body.get("nsp")
    if nsp is None:
        nsp = "/"
    elif not isinstance(nsp, str):
        raise WireError("nsp is not a string")
    packet_id = body.get("id")
    if packet_id is not None and (not isinstance(packet_id, int) or isinstance(packet_id, bool)):
        raise WireError("id is not an integer")
    return WirePacket(data=read_list(body, "data"), nsp=nsp, type=read_int(body, "type"), id=packet_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class WireFlags:
    """The broadcast flags that cross the wire (Node sends others, dropped on reading)."""

    volatile: bool = False
    compress: bool | None = None
    timeout: int | None = None
    """Milliseconds to wait for acks."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WireOptions:
    """Which sockets a broadcast or request targets: rooms in the order given, flags for broadcasts only."""

    rooms: tuple[str, ...] = ()
    except_: tuple[str, ...] = ()
    flags: WireFlags | None = None
    """``None`` leaves ``flags`` out, as requests other than broadcasts do."""


def options_body(opts: WireOptions, *, flags_first: bool = False) -> dict[str, Any]:
    """``{rooms, except, flags?}`` (``{rooms, flags, except}`` if ``flags_first``, as the emitter writes it);
    flags at their default are left out of ``flags``."""
    body: dict[str, Any] = {"rooms": list(opts.rooms)}
    if not flags_first:
        body["except"] = list(opts.except_)
    if opts.flags is not None:
        flags: dict[str, Any] = {}
        if opts.flags.volatile:
            flags["volatile"] = True
        if opts.flags.compress is not None:
            flags["compress"] = opts.flags.compress
        if opts.flags.timeout is not None:
            flags["timeout"] = opts.flags.timeout
        body["flags"] = flags
    if flags_first:
        body["except"] = list(opts.except_)
    return body


def _flags(value: Any) -> WireFlags | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WireError("flags is not an object")
    compress = value.get("compress")
    timeout = value.get("timeout")
    if isinstance(timeout, float) and math.isfinite(timeout):
        timeout = int(timeout)
    elif not isinstance(timeout, int) or isinstance(timeout, bool):
        timeout = None
    return WireFlags(
        volatile=bool(value.get("volatile")),
        compress=None if compress is None else bool(compress),
        timeout=timeout,
    )


def options_from_body(body: Any) -> WireOptions:
    """The options ``body`` describes; missing room lists are empty, as in Node."""
    if not isinstance(body, dict):
        raise WireError("the options are not an object")
    rooms, except_ = read_rooms(body, "rooms"), read_rooms(body, "except")
    return WireOptions(rooms=rooms, except_=except_, flags=_flags(body.get("flags")))


# -- broadcasts and heartbeats ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Broadcast:
    """A packet for the matching sockets of every node (``uid`` is the sender's, ``emitter`` for the emitter)."""

    packed: ClassVar[bool] = True
    uid: str
    packet: WirePacket
    opts: WireOptions
    flags_first: bool = field(default=False, compare=False)
    """Write ``flags`` before ``except`` in ``opts``, as ``@socket.io/redis-emitter`` does (the adapter writes
    them after); only the order of the bytes differs, so it is not compared and decoding leaves it false."""

    def body(self) -> list[Any]:
        return [self.uid, packet_body(self.packet), options_body(self.opts, flags_first=self.flags_first)]


def decode_broadcast(message: bytes) -> Broadcast:
    """A message of a broadcast or room channel (elements after the third are ignored, as in Node)."""
    value = unpack(message)
    if not isinstance(value, list) or len(value) < 3:
        raise WireError("a broadcast is not [uid, packet, opts]")
    check_values(value[:3], MAX_DEPTH + 3)  # the packet's data sits three levels down
    uid, packet, opts = value[:3]
    if not isinstance(uid, str):
        raise WireError("uid is not a string")
    return Broadcast(uid=uid, packet=packet_from_body(packet), opts=options_from_body(opts))


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeMessage:
    """A txrealtime node's heartbeat, or its goodbye."""

    packed: ClassVar[bool] = False
    uid: str
    kind: Literal["heartbeat", "leave"] = "heartbeat"

    def body(self) -> dict[str, Any]:
        return {"uid": self.uid, "type": self.kind}


def decode_node_message(message: bytes) -> NodeMessage:
    """A message of the nodes channel."""
    body = load_json(message)
    if not isinstance(body, dict):
        raise WireError("not an object")
    kind = body.get("type")
    if kind != "heartbeat" and kind != "leave":
        raise WireError("type is neither heartbeat nor leave")
    uid = read_str(body, "uid")
    if not 0 < len(uid) <= MAX_UID or not uid.isprintable():
        raise WireError(f"a node uid is 1 to {MAX_UID} printable characters")
    return NodeMessage(uid=uid, kind=kind)


MAX_UID = 64
"""The longest node uid a heartbeat may carry (txrealtime's are 6 characters, Node's adapters' 6 or 16)."""


# -- encoding -------------------------------------------------------------------------------------


class Encodable(Protocol):
    """A message :func:`encode` writes: its body, and whether Node packs that kind with MessagePack."""

    @property
    def packed(self) -> bool: ...

    def body(self) -> Any: ...


def encode(message: Encodable) -> bytes:
    """The bytes to publish for ``message``: MessagePack or JSON, as Node encodes that kind."""
    body = message.body()
    return pack(body) if message.packed else dump_json(body)
