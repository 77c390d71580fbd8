"""The messages of ``socket.io-adapter``'s ``ClusterAdapter`` (2.5), which Node's sharded Redis adapter
(``createShardedAdapter`` of ``@socket.io/redis-adapter`` 8.3) publishes: no I/O.

Every message is one object, its keys in this order::

    message   {type, data?, uid, nsp, seq?}    JSON, or MessagePack when it may carry binary and does
              (seq: txrealtime's number for messages on a namespace's main channel; Node ignores it)
    type      1 INITIAL_HEARTBEAT   2 HEARTBEAT   13 ADAPTER_CLOSE           (no data)
              3 BROADCAST           data {packet, opts}                      a broadcast
                                    data {packet, requestId, opts}           one whose clients' acks come back
              4 SOCKETS_JOIN        data {opts, rooms}
              5 SOCKETS_LEAVE       data {opts, rooms}
              6 DISCONNECT_SOCKETS  data {opts, close}
              7 FETCH_SOCKETS       data {opts, requestId}
              8 FETCH_SOCKETS_RESPONSE     data {requestId, sockets: [{id, handshake, rooms, data}]}
              9 SERVER_SIDE_EMIT    data {packet: [event, *args]}  or  {requestId, packet}
              10 SERVER_SIDE_EMIT_RESPONSE data {requestId, packet: value}
              11 BROADCAST_CLIENT_COUNT    data {requestId, clientCount}
              12 BROADCAST_ACK      data {requestId, packet: value}
    packet    {type: 2, data: [event, *args]}  (no nsp: the message's own says it)
    opts      {rooms: [room], except: [room], flags: {volatile?, compress?, timeout? (ms)}}

Types 3, 8, 9, 10 and 12 are MessagePack (as ``notepack.io`` writes it) when their data holds binary, and
JSON (as ``JSON.stringify`` writes it) otherwise; the others are always JSON. A reader tells them apart
by the first byte: ``{`` is JSON. ``uid`` is the sender's adapter (``emitter`` for an emitter), and the
requester's uid also names the channel its answers go to.

Bodies are the typed messages of :mod:`txrealtime.adapters.redis.wire` and
:mod:`txrealtime.adapters.redis.requests` (the classic adapter's, which carry the same information), so
one adapter logic serves both formats; :class:`Heartbeat` stands for types 1, 2 and 13. Decoding is as
strict and as lenient as the classic format's (:func:`txrealtime.adapters.redis.wire.check_values`);
every failure is a :class:`txrealtime.adapters.redis.wire.WireError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeAlias

from .redis.requests import (
    BroadcastAckRequest,
    BroadcastAckResponse,
    ClientCountResponse,
    DisconnectRequest,
    FetchRequest,
    FetchResponse,
    JoinRequest,
    LeaveRequest,
    ServerSideEmitRequest,
    ServerSideEmitResponse,
    SocketDetails,
    extras,
    read_count,
)
from .redis.wire import (
    Broadcast,
    WireError,
    WireOptions,
    WirePacket,
    check_values,
    dump_json,
    load_json,
    options_body,
    options_from_body,
    pack,
    read_bool,
    read_int,
    read_list,
    read_optional_str,
    read_rooms,
    read_str,
    unpack,
)

__all__ = [
    "Body",
    "ClusterMessage",
    "Heartbeat",
    "MessageType",
    "decode_message",
    "encode_message",
    "may_carry_binary",
    "message_from_object",
    "message_object",
]


class MessageType(IntEnum):
    """The ``type`` of a message, numbered as ``socket.io-adapter`` numbers them."""

    INITIAL_HEARTBEAT = 1
    HEARTBEAT = 2
    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12
    ADAPTER_CLOSE = 13


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A node says it is there (``INITIAL_HEARTBEAT``, ``HEARTBEAT``) or leaving (``ADAPTER_CLOSE``)."""

    type: MessageType


Body: TypeAlias = (
    Broadcast
    | BroadcastAckRequest
    | JoinRequest
    | LeaveRequest
    | DisconnectRequest
    | FetchRequest
    | FetchResponse
    | ServerSideEmitRequest
    | ServerSideEmitResponse
    | ClientCountResponse
    | BroadcastAckResponse
    | Heartbeat
)
"""What a message says."""


@dataclass(frozen=True, slots=True)
class ClusterMessage:
    """One message: who sent it (its adapter's uid), for which namespace, what."""

    uid: str
    nsp: str
    body: Body
    seq: int | None = None
    """The sender's number for this message (a txrealtime extension, see :mod:`txrealtime.adapters.sequence`)."""


_MAY_CARRY_BINARY = frozenset({MessageType.BROADCAST, MessageType.BROADCAST_ACK, MessageType.FETCH_SOCKETS_RESPONSE,
                               MessageType.SERVER_SIDE_EMIT, MessageType.SERVER_SIDE_EMIT_RESPONSE})


def _packet(packet: WirePacket) -> dict[str, Any]:
    body: dict[str, Any] = {"type": packet.type, "data": packet.data}
    if packet.id is not None:
        body["id"] = packet.id
    return body


def _data(body: Body) -> tuple[MessageType, dict[str, Any] | None]:
    """The type and ``data`` of ``body``, keys in Node's order."""
    if isinstance(body, Broadcast):
        return MessageType.BROADCAST, {"packet": _packet(body.packet), "opts": options_body(body.opts)}
    if isinstance(body, BroadcastAckRequest):
        data = {"packet": _packet(body.packet), "requestId": body.request_id, "opts": options_body(body.opts)}
        return MessageType.BROADCAST, data
    if isinstance(body, JoinRequest | LeaveRequest):
        kind = MessageType.SOCKETS_JOIN if isinstance(body, JoinRequest) else MessageType.SOCKETS_LEAVE
        return kind, {"opts": options_body(body.opts), "rooms": list(body.rooms)}
    if isinstance(body, DisconnectRequest):
        return MessageType.DISCONNECT_SOCKETS, {"opts": options_body(body.opts), "close": body.close}
    if isinstance(body, FetchRequest):
        fetch = {"opts": options_body(body.opts), "requestId": body.request_id}
        return MessageType.FETCH_SOCKETS, {**fetch, "count": True} if body.count else fetch
    if isinstance(body, FetchResponse):
        sockets = [s.body() for s in body.sockets]
        return MessageType.FETCH_SOCKETS_RESPONSE, {"requestId": body.request_id, "sockets": sockets, **extras(body)}
    if isinstance(body, ServerSideEmitRequest):
        request = {} if body.request_id is None else {"requestId": body.request_id}
        return MessageType.SERVER_SIDE_EMIT, {**request, "packet": body.data}
    if isinstance(body, ServerSideEmitResponse):
        return MessageType.SERVER_SIDE_EMIT_RESPONSE, {"requestId": body.request_id, "packet": body.data}
    if isinstance(body, ClientCountResponse):
        return MessageType.BROADCAST_CLIENT_COUNT, {"requestId": body.request_id, "clientCount": body.client_count}
    if isinstance(body, BroadcastAckResponse):
        return MessageType.BROADCAST_ACK, {"requestId": body.request_id, "packet": body.value}
    return body.type, None


def message_object(body: Body, uid: str, nsp: str, seq: int | None = None) -> tuple[MessageType, dict[str, Any]]:
    """The type of ``body`` and the object Node's ``ClusterAdapter`` writes for it: ``{type, data?, uid, nsp,
    seq?}``, keys in Node's order."""
    kind, data = _data(body)
    message: dict[str, Any] = {"type": int(kind)}
    if data is not None:
        message["data"] = data
    message["uid"] = uid
    message["nsp"] = nsp
    if seq is not None:
        message["seq"] = seq
    return kind, message


def may_carry_binary(kind: MessageType) -> bool:
    """Whether messages of type ``kind`` may hold binary (the others are always JSON)."""
    return kind in _MAY_CARRY_BINARY


def encode_message(body: Body, uid: str, nsp: str, seq: int | None = None) -> bytes:
    """The bytes Node's adapter publishes for ``body`` from adapter ``uid`` of namespace ``nsp`` (and, with
    ``seq``, a last key ``seq``, which Node's adapter ignores).

    ``TypeError`` for values the format cannot carry (binary where only JSON goes), ``ValueError`` for
    ``NaN`` in JSON and for nesting MessagePack refuses.
    """
    kind, message = message_object(body, uid, nsp, seq)
    if kind in _MAY_CARRY_BINARY:
        try:
            return dump_json(message)
        except TypeError:  # binary (or a value JSON cannot write: MessagePack says which)
            return pack(message)
    return dump_json(message)


# -- decoding -------------------------------------------------------------------------------------


def _packet_from(value: Any, nsp: str) -> WirePacket:
    if not isinstance(value, dict):
        raise WireError("the packet is not an object")
    packet_id = value.get("id")
    if packet_id is not None and (not isinstance(packet_id, int) or isinstance(packet_id, bool)):
        raise WireError("id is not an integer")
    return WirePacket(data=read_list(value, "data"), nsp=nsp, type=read_int(value, "type"), id=packet_id)


def _opts(data: dict[Any, Any]) -> WireOptions:
    return options_from_body(data.get("opts"))


def _broadcast(data: dict[Any, Any], uid: str, nsp: str) -> Body:
    packet, opts = _packet_from(data.get("packet"), nsp), _opts(data)
    request_id = read_optional_str(data, "requestId")
    if request_id is None:
        return Broadcast(uid=uid, packet=packet, opts=opts)
    return BroadcastAckRequest(request_id=request_id, packet=packet, opts=opts, uid=uid)


def _sockets(data: dict[Any, Any]) -> tuple[SocketDetails, ...]:
    return tuple(SocketDetails.from_body(s) for s in read_list(data, "sockets"))


def _server_side_emit(data: dict[Any, Any], uid: str) -> ServerSideEmitRequest:
    return ServerSideEmitRequest(data=read_list(data, "packet"), request_id=read_optional_str(data, "requestId"),
                                 uid=uid)


_DECODERS: dict[int, Callable[[dict[Any, Any], str, str], Body]] = {
    MessageType.BROADCAST: _broadcast,
    MessageType.SOCKETS_JOIN: lambda d, uid, nsp: JoinRequest(opts=_opts(d), rooms=read_rooms(d, "rooms"), uid=uid),
    MessageType.SOCKETS_LEAVE: lambda d, uid, nsp: LeaveRequest(opts=_opts(d), rooms=read_rooms(d, "rooms"), uid=uid),
    MessageType.DISCONNECT_SOCKETS: lambda d, uid, nsp: DisconnectRequest(
        opts=_opts(d), close=read_bool(d, "close"), uid=uid
    ),
    MessageType.FETCH_SOCKETS: lambda d, uid, nsp: FetchRequest(
        request_id=read_str(d, "requestId"), opts=_opts(d), uid=uid, count=d.get("count") is True
    ),
    MessageType.FETCH_SOCKETS_RESPONSE: lambda d, uid, nsp: FetchResponse(
        request_id=read_str(d, "requestId"), sockets=_sockets(d), node=read_optional_str(d, "node"),
        count=read_count(d)
    ),
    MessageType.SERVER_SIDE_EMIT: lambda d, uid, nsp: _server_side_emit(d, uid),
    MessageType.SERVER_SIDE_EMIT_RESPONSE: lambda d, uid, nsp: ServerSideEmitResponse(
        request_id=read_str(d, "requestId"), data=d.get("packet")
    ),
    MessageType.BROADCAST_CLIENT_COUNT: lambda d, uid, nsp: ClientCountResponse(
        request_id=read_str(d, "requestId"), client_count=read_int(d, "clientCount")
    ),
    MessageType.BROADCAST_ACK: lambda d, uid, nsp: BroadcastAckResponse(
        request_id=read_str(d, "requestId"), value=d.get("packet")
    ),
}
_HEARTBEATS = frozenset({MessageType.INITIAL_HEARTBEAT, MessageType.HEARTBEAT, MessageType.ADAPTER_CLOSE})


def decode_message(message: bytes) -> ClusterMessage | None:
    """One message (JSON if it starts with ``{``, else MessagePack); ``None`` for a well-formed one of a type
    no node acts on."""
    return message_from_object(load_json(message) if message[:1] == b"{" else unpack(message))


def message_from_object(body: Any) -> ClusterMessage | None:
    """The message a decoded object (``{type, data?, uid, nsp}``) stands for; ``None`` for a well-formed one of
    a type no node acts on."""
    if not isinstance(body, dict):
        raise WireError("not an object")
    check_values(body, 104)  # a packet's data sits four levels down
    uid = read_str(body, "uid")
    nsp = read_optional_str(body, "nsp") or "/"
    kind = read_int(body, "type")
    seq = body.get("seq")
    if type(seq) is not int:
        seq = None
    if kind in _HEARTBEATS:
        return ClusterMessage(uid, nsp, Heartbeat(MessageType(kind)), seq)
    decoder = _DECODERS.get(kind)
    if decoder is None:
        return None
    data = body.get("data")
    if not isinstance(data, dict):
        raise WireError("data is not an object")
    return ClusterMessage(uid, nsp, decoder(data, uid, nsp), seq)
