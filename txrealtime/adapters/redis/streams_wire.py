"""What Node's ``@socket.io/redis-streams-adapter`` (0.3.1) writes to Redis: stream entries, published
messages, kept sessions, entry ids. No I/O.

The messages are ``socket.io-adapter``'s cluster messages (:mod:`txrealtime.adapters.cluster_messages`).
Those that must survive a node (broadcasts without acks, ``socketsJoin``/``socketsLeave``,
``disconnectSockets``) are entries of one stream; the others (fetches, server-side emits, broadcasts with
acks, and every answer) are published, as for the sharded adapter, but always as MessagePack::

    stream          {streamName}                      "socket.io" by default
    entry           XADD {stream} MAXLEN ~ {maxLen} * uid {uid} nsp {nsp} type {type} [data {data}]
    type            the message type in decimal ("3" for a broadcast)
    data            JSON.stringify(message.data)                 when it starts with "{"
                  | base64(MessagePack(message.data))            types 3, 8, 9, 10, 12 holding binary
    entry id        {ms} "-" {seq}                    both decimal; what clients get as their offset
    published       MessagePack({type, data?, uid, nsp})
    channels        {prefix}#{nsp}#                   requests, to every node ("socket.io" prefix)
                    {prefix}#{nsp}#{uid}#             the answers to adapter uid's requests
    session         SET {sessionKeyPrefix}{pid} base64(MessagePack({sid, pid, rooms, data, since?})) PX {ms}
                    ("sio:session:" prefix; read back with GET + DEL in one MULTI; since: txrealtime's,
                    the id of the last entry delivered before the socket connected, which Node ignores)

A reader takes the ``data`` field for JSON when it starts with ``{``, else for base64 MessagePack. Every
failure to decode is a :class:`txrealtime.adapters.redis.wire.WireError`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from ...socketio.recovery import KeptSession
from ..cluster_messages import Body, ClusterMessage, may_carry_binary, message_from_object, message_object
from .requests import BroadcastAckRequest, FetchRequest, ServerSideEmitRequest
from .wire import WireError, check_values, dump_json, load_json, pack, unpack

__all__ = [
    "DEFAULT_STREAM",
    "SESSION_PREFIX",
    "decode_entry",
    "decode_published",
    "decode_session",
    "encode_entry",
    "encode_published",
    "encode_session",
    "entry_id",
    "format_entry_id",
    "is_ephemeral",
]

DEFAULT_STREAM = "socket.io"
"""The stream Node's adapter writes to (its ``streamName`` option)."""
SESSION_PREFIX = "sio:session:"
"""The prefix of the keys that hold kept sessions (its ``sessionKeyPrefix`` option)."""

_ENTRY_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_FIELDS = ("uid", "nsp", "type", "data")


def entry_id(text: str) -> tuple[int, int] | None:
    """The ``(ms, seq)`` of a stream entry id, ``None`` unless ``text`` is one (as Node's ``/^[0-9]+-[0-9]+$/``)."""
    match = _ENTRY_ID.fullmatch(text)
    if match is None:
        return None
    ms, seq = int(match.group(1)), int(match.group(2))
    if ms >= 2**64 or seq >= 2**64:
        return None
    return ms, seq


def format_entry_id(value: tuple[int, int]) -> str:
    """The text of an entry id."""
    return f"{value[0]}-{value[1]}"


def is_ephemeral(body: Body) -> bool:
    """Whether Node's adapter publishes ``body`` rather than adding it to the stream (broadcasts with acks,
    server-side emits, fetches; answers are always published)."""
    return isinstance(body, BroadcastAckRequest | ServerSideEmitRequest | FetchRequest)


def encode_entry(body: Body, uid: str, nsp: str) -> list[tuple[str, str]]:
    """The fields of the stream entry Node's adapter adds for ``body``, in its order.

    ``TypeError`` for values the format cannot carry (binary where only JSON goes), ``ValueError`` for
    ``NaN`` and for nesting MessagePack refuses.
    """
    kind, message = message_object(body, uid, nsp)
    fields = [("uid", uid), ("nsp", nsp), ("type", str(int(kind)))]
    data = message.get("data")
    if data is not None:
        try:
            text = dump_json(data).decode()
        except TypeError:
            if not may_carry_binary(kind):
                raise
            text = base64.b64encode(pack(data)).decode("ascii")
        fields.append(("data", text))
    return fields


def _text(value: Any, name: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise WireError(f"{name} is not UTF-8") from e
    if isinstance(value, str):
        return value
    raise WireError(f"{name} is not a string")


def decode_entry(fields: Mapping[Any, Any]) -> ClusterMessage | None:
    """The message of one stream entry (its fields by name, as text or bytes); ``None`` for a well-formed one
    without a namespace (Node's adapter skips those) or of a type no node acts on."""
    named = {_text(k, "a field name"): v for k, v in fields.items()}
    if not named.get("nsp"):
        return None
    message: dict[str, Any] = {}
    for name in _FIELDS:
        if name in named:
            message[name] = _text(named[name], name)
    kind = message.get("type")
    if kind is None or not kind.isdigit() or len(kind) > 10:
        raise WireError("type is not a decimal number")
    message["type"] = int(kind)
    data = message.pop("data", None)
    if data:
        if data.startswith("{"):
            message["data"] = load_json(data.encode())
        else:
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError) as e:
                raise WireError("data is neither JSON nor base64") from e
            message["data"] = unpack(raw)
    return message_from_object(message)


def encode_published(body: Body, uid: str, nsp: str) -> bytes:
    """The bytes Node's adapter publishes for ``body`` (always MessagePack)."""
    return pack(message_object(body, uid, nsp)[1])


def decode_published(message: bytes) -> ClusterMessage | None:
    """One published message; ``None`` for a well-formed one of a type no node acts on."""
    return message_from_object(unpack(message))


def encode_session(session: KeptSession, since: str | None = None) -> str:
    """The value Node's adapter keeps for a session: base64 of ``{sid, pid, rooms, data}`` in MessagePack
    (``TypeError``/``ValueError`` for ``data`` MessagePack cannot carry); with ``since``, a last key
    ``since`` (txrealtime's: the last entry delivered before the socket connected; Node ignores it)."""
    body = {"sid": session.sid, "pid": session.pid, "rooms": sorted(session.rooms), "data": session.data}
    if since is not None:
        body["since"] = since
    return base64.b64encode(pack(body)).decode("ascii")


def decode_session(value: str | bytes) -> tuple[KeptSession, str | None]:
    """The session a kept value stands for, and its ``since`` (``None`` if it has none, as Node writes it)."""
    try:
        body = unpack(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as e:
        raise WireError("the session is not base64") from e
    if not isinstance(body, dict):
        raise WireError("the session is not an object")
    check_values(body)
    sid, pid, rooms = body.get("sid"), body.get("pid"), body.get("rooms")
    if not isinstance(sid, str) or not isinstance(pid, str):
        raise WireError("the session has no sid or pid")
    if not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms):
        raise WireError("the session's rooms are not strings")
    since = body.get("since")
    if since is not None and (not isinstance(since, str) or entry_id(since) is None):
        raise WireError("since is not an entry id")
    return KeptSession(sid=sid, pid=pid, rooms=frozenset(rooms), data=body.get("data")), since
