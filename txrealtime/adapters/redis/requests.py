"""Requests between nodes and their responses, as Node's ``@socket.io/redis-adapter`` 8.x lays them out: no I/O.

One frozen dataclass per message shape (the layouts are listed in
:mod:`txrealtime.adapters.redis.wire`); :func:`txrealtime.adapters.redis.wire.encode` writes any
of them. A request names its type, so :func:`decode_request` reads it alone; a response does not, so
:func:`decode_response` asks which request is pending under its id.

Dataclasses rather than ``TypedDict``: the wire names (``requestId``,
``except``) are not Python names, optional keys and defaults (a missing
``nsp`` is ``/``) need a decoding step anyway, and the adapter's dispatch
keys on the class. ``uid`` is ``None`` where the sender left it out (the
emitter does, for joins, leaves and disconnects).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeAlias

from .wire import (
    RequestType,
    WireError,
    WireOptions,
    WirePacket,
    load_body,
    options_body,
    options_from_body,
    packet_body,
    packet_from_body,
    read_bool,
    read_dict,
    read_int,
    read_list,
    read_optional_str,
    read_room,
    read_rooms,
    read_str,
)

__all__ = [
    "AllRoomsRequest",
    "AllRoomsResponse",
    "BroadcastAckRequest",
    "BroadcastAckResponse",
    "ClientCountResponse",
    "DisconnectRequest",
    "DoneResponse",
    "FetchRequest",
    "FetchResponse",
    "JoinRequest",
    "LeaveRequest",
    "Request",
    "Response",
    "ServerSideEmitRequest",
    "ServerSideEmitResponse",
    "SocketDetails",
    "SocketDisconnectRequest",
    "SocketJoinRequest",
    "SocketLeaveRequest",
    "SocketsRequest",
    "SocketsResponse",
    "decode_request",
    "decode_response",
    "extras",
    "read_count",
]


def _head(kind: RequestType, uid: str | None, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if uid is not None:
        body["uid"] = uid
    if request_id is not None:
        body["requestId"] = request_id
    body["type"] = int(kind)
    return body


# -- requests ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketsRequest:
    """The ids of every node's sockets in ``rooms`` (all sockets if empty)."""

    request_type: ClassVar[RequestType] = RequestType.SOCKETS
    packed: ClassVar[bool] = False
    request_id: str
    rooms: tuple[str, ...] = ()
    uid: str | None = None

    def body(self) -> dict[str, Any]:
        return {**_head(self.request_type, self.uid, self.request_id), "rooms": list(self.rooms)}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> SocketsRequest:
        rooms = read_rooms(body, "rooms")
        return cls(request_id=read_str(body, "requestId"), rooms=rooms, uid=read_optional_str(body, "uid"))


@dataclass(frozen=True, slots=True, kw_only=True)
class AllRoomsRequest:
    """Every node's rooms."""

    request_type: ClassVar[RequestType] = RequestType.ALL_ROOMS
    packed: ClassVar[bool] = False
    request_id: str
    uid: str | None = None

    def body(self) -> dict[str, Any]:
        return _head(self.request_type, self.uid, self.request_id)

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> AllRoomsRequest:
        return cls(request_id=read_str(body, "requestId"), uid=read_optional_str(body, "uid"))


@dataclass(frozen=True, slots=True, kw_only=True)
class _RoomsRequest:
    request_type: ClassVar[RequestType]
    packed: ClassVar[bool] = False
    opts: WireOptions
    rooms: tuple[str, ...]
    uid: str | None = None

    def body(self) -> dict[str, Any]:
        return {**_head(self.request_type, self.uid), "opts": options_body(self.opts), "rooms": list(self.rooms)}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> Self:
        opts = options_from_body(body.get("opts"))
        return cls(opts=opts, rooms=read_rooms(body, "rooms"), uid=read_optional_str(body, "uid"))


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinRequest(_RoomsRequest):
    """Make the sockets ``opts`` selects join ``rooms`` (``sockets_join``); not answered."""

    request_type: ClassVar[RequestType] = RequestType.REMOTE_JOIN


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveRequest(_RoomsRequest):
    """Make the sockets ``opts`` selects leave ``rooms`` (``sockets_leave``); not answered."""

    request_type: ClassVar[RequestType] = RequestType.REMOTE_LEAVE


@dataclass(frozen=True, slots=True, kw_only=True)
class DisconnectRequest:
    """Disconnect the sockets ``opts`` selects (closing their connections if ``close``); not answered."""

    request_type: ClassVar[RequestType] = RequestType.REMOTE_DISCONNECT
    packed: ClassVar[bool] = False
    opts: WireOptions
    close: bool = False
    uid: str | None = None

    def body(self) -> dict[str, Any]:
        return {**_head(self.request_type, self.uid), "opts": options_body(self.opts), "close": self.close}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> DisconnectRequest:
        opts = options_from_body(body.get("opts"))
        return cls(opts=opts, close=read_bool(body, "close"), uid=read_optional_str(body, "uid"))


@dataclass(frozen=True, slots=True, kw_only=True)
class _SocketRoomRequest:
    request_type: ClassVar[RequestType]
    packed: ClassVar[bool] = False
    sid: str
    room: str
    request_id: str | None = None
    uid: str | None = None

    def body(self) -> dict[str, Any]:
        return {**_head(self.request_type, self.uid, self.request_id), "sid": self.sid, "room": self.room}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> Self:
        return cls(
            sid=read_str(body, "sid"),
            room=read_room(body.get("room")),
            request_id=read_optional_str(body, "requestId"),
            uid=read_optional_str(body, "uid"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketJoinRequest(_SocketRoomRequest):
    """The older one-socket form of REMOTE_JOIN, answered with :class:`DoneResponse`."""

    request_type: ClassVar[RequestType] = RequestType.REMOTE_JOIN


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketLeaveRequest(_SocketRoomRequest):
    """The older one-socket form of REMOTE_LEAVE, answered with :class:`DoneResponse`."""

    request_type: ClassVar[RequestType] = RequestType.REMOTE_LEAVE


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketDisconnectRequest:
    """The older one-socket form of REMOTE_DISCONNECT, answered with :class:`DoneResponse`."""

    request_type: ClassVar[RequestType] = RequestType.REMOTE_DISCONNECT
    packed: ClassVar[bool] = False
    sid: str
    close: bool = False
    request_id: str | None = None
    uid: str | None = None

    def body(self) -> dict[str, Any]:
        return {**_head(self.request_type, self.uid, self.request_id), "sid": self.sid, "close": self.close}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> SocketDisconnectRequest:
        return cls(
            sid=read_str(body, "sid"),
            close=read_bool(body, "close"),
            request_id=read_optional_str(body, "requestId"),
            uid=read_optional_str(body, "uid"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchRequest:
    """The details of the sockets ``opts`` selects (``fetch_sockets``)."""

    request_type: ClassVar[RequestType] = RequestType.REMOTE_FETCH
    packed: ClassVar[bool] = False
    request_id: str
    opts: WireOptions
    uid: str | None = None
    count: bool = False
    """Only the number of sockets is wanted (txrealtime's addition: Node's nodes answer with the sockets)."""

    def body(self) -> dict[str, Any]:
        body = {**_head(self.request_type, self.uid, self.request_id), "opts": options_body(self.opts)}
        if self.count:
            body["count"] = True
        return body

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> FetchRequest:
        opts = options_from_body(body.get("opts"))
        return cls(request_id=read_str(body, "requestId"), opts=opts, uid=read_optional_str(body, "uid"),
                   count=body.get("count") is True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSideEmitRequest:
    """``[event, *args]`` for the other servers' handlers; answered when it has a ``request_id``."""

    request_type: ClassVar[RequestType] = RequestType.SERVER_SIDE_EMIT
    packed: ClassVar[bool] = False
    data: list[Any]
    request_id: str | None = None
    uid: str | None = None

    def body(self) -> dict[str, Any]:
        return {**_head(self.request_type, self.uid, self.request_id), "data": self.data}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> ServerSideEmitRequest:
        request_id, uid = read_optional_str(body, "requestId"), read_optional_str(body, "uid")
        return cls(data=read_list(body, "data"), request_id=request_id, uid=uid)


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastAckRequest:
    """A broadcast whose clients' acks are sent back (MessagePack: the packet may hold binary)."""

    request_type: ClassVar[RequestType] = RequestType.BROADCAST
    packed: ClassVar[bool] = True
    request_id: str
    packet: WirePacket
    opts: WireOptions
    uid: str | None = None

    def body(self) -> dict[str, Any]:
        return {
            **_head(self.request_type, self.uid, self.request_id),
            "packet": packet_body(self.packet),
            "opts": options_body(self.opts),
        }

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> BroadcastAckRequest:
        return cls(
            request_id=read_str(body, "requestId"),
            packet=packet_from_body(body.get("packet")),
            opts=options_from_body(body.get("opts")),
            uid=read_optional_str(body, "uid"),
        )


Request: TypeAlias = (
    SocketsRequest
    | AllRoomsRequest
    | JoinRequest
    | LeaveRequest
    | DisconnectRequest
    | SocketJoinRequest
    | SocketLeaveRequest
    | SocketDisconnectRequest
    | FetchRequest
    | ServerSideEmitRequest
    | BroadcastAckRequest
)
"""Everything the request channel carries that a node acts on."""

_REQUESTS: dict[int, Callable[[dict[Any, Any]], Request]] = {
    RequestType.SOCKETS: SocketsRequest.from_body,
    RequestType.ALL_ROOMS: AllRoomsRequest.from_body,
    RequestType.REMOTE_FETCH: FetchRequest.from_body,
    RequestType.SERVER_SIDE_EMIT: ServerSideEmitRequest.from_body,
    RequestType.BROADCAST: BroadcastAckRequest.from_body,
}

# REMOTE_JOIN, REMOTE_LEAVE and REMOTE_DISCONNECT: the form with ``opts``, or the older one-socket form.
_MEMBERSHIP: dict[int, tuple[Callable[[dict[Any, Any]], Request], Callable[[dict[Any, Any]], Request]]] = {
    RequestType.REMOTE_JOIN: (JoinRequest.from_body, SocketJoinRequest.from_body),
    RequestType.REMOTE_LEAVE: (LeaveRequest.from_body, SocketLeaveRequest.from_body),
    RequestType.REMOTE_DISCONNECT: (DisconnectRequest.from_body, SocketDisconnectRequest.from_body),
}


def decode_request(message: bytes) -> Request | None:
    """A message of the request channel; ``None`` for a well-formed one of a type no node acts on."""
    body = load_body(message)
    kind = read_int(body, "type")
    membership = _MEMBERSHIP.get(kind)
    if membership is not None:
        with_opts, one_socket = membership
        return with_opts(body) if body.get("opts") is not None else one_socket(body)
    decoder = _REQUESTS.get(kind)
    return decoder(body) if decoder is not None else None


# -- responses ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketsResponse:
    """A node's answer to :class:`SocketsRequest`."""

    packed: ClassVar[bool] = False
    request_id: str
    sockets: tuple[str, ...]

    def body(self) -> dict[str, Any]:
        return {"requestId": self.request_id, "sockets": list(self.sockets)}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> SocketsResponse:
        sockets = tuple(read_room(s) for s in read_list(body, "sockets"))
        return cls(request_id=read_str(body, "requestId"), sockets=sockets)


@dataclass(frozen=True, slots=True, kw_only=True)
class AllRoomsResponse:
    """A node's answer to :class:`AllRoomsRequest`."""

    packed: ClassVar[bool] = False
    request_id: str
    rooms: tuple[str, ...]

    def body(self) -> dict[str, Any]:
        return {"requestId": self.request_id, "rooms": list(self.rooms)}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> AllRoomsResponse:
        return cls(request_id=read_str(body, "requestId"), rooms=tuple(read_room(r) for r in read_list(body, "rooms")))


@dataclass(frozen=True, slots=True, kw_only=True)
class DoneResponse:
    """The answer to the older one-socket join, leave and disconnect requests."""

    packed: ClassVar[bool] = False
    request_id: str

    def body(self) -> dict[str, Any]:
        return {"requestId": self.request_id}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> DoneResponse:
        return cls(request_id=read_str(body, "requestId"))


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketDetails:
    """One socket as :class:`FetchResponse` describes it."""

    id: str
    handshake: dict[str, Any] = field(default_factory=dict)
    rooms: tuple[str, ...] = ()
    data: Any = None

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "handshake": self.handshake, "rooms": list(self.rooms), "data": self.data}

    @classmethod
    def from_body(cls, body: Any) -> SocketDetails:
        if not isinstance(body, dict):
            raise WireError("a socket is not an object")
        handshake, rooms = read_dict(body, "handshake"), read_rooms(body, "rooms")
        return cls(id=read_str(body, "id"), handshake=handshake, rooms=rooms, data=body.get("data"))


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchResponse:
    """A node's answer to :class:`FetchRequest`."""

    packed: ClassVar[bool] = False
    request_id: str
    sockets: tuple[SocketDetails, ...]
    node: str | None = None
    """The answering node's link uid (txrealtime's addition; Node's nodes do not say)."""
    count: int | None = None
    """The number of sockets matched, answering a count request (txrealtime's addition)."""

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"requestId": self.request_id, "sockets": [s.body() for s in self.sockets]}
        body.update(extras(self))
        return body

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> FetchResponse:
        sockets = tuple(SocketDetails.from_body(s) for s in read_list(body, "sockets"))
        return cls(request_id=read_str(body, "requestId"), sockets=sockets, node=read_optional_str(body, "node"),
                   count=read_count(body))


def extras(response: FetchResponse) -> dict[str, Any]:
    """The fields txrealtime adds to a :class:`FetchResponse` (none when it has none to give)."""
    added: dict[str, Any] = {}
    if response.node is not None:
        added["node"] = response.node
    if response.count is not None:
        added["count"] = response.count
    return added


def read_count(body: dict[Any, Any]) -> int | None:
    """The ``count`` of a :class:`FetchResponse`, ``None`` if absent."""
    count = body.get("count")
    if count is None:
        return None
    if type(count) is not int or count < 0:
        raise WireError("count is not a non-negative integer")
    return count


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSideEmitResponse:
    """A server's ack to :class:`ServerSideEmitRequest`: the first value its handler gave."""

    packed: ClassVar[bool] = False
    request_id: str
    data: Any = None

    def body(self) -> dict[str, Any]:
        return {"type": int(RequestType.SERVER_SIDE_EMIT), "requestId": self.request_id, "data": self.data}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> ServerSideEmitResponse:
        return cls(request_id=read_str(body, "requestId"), data=body.get("data"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientCountResponse:
    """How many of a node's clients a :class:`BroadcastAckRequest` reached (as many acks may follow)."""

    packed: ClassVar[bool] = False
    request_id: str
    client_count: int

    def body(self) -> dict[str, Any]:
        kind = int(RequestType.BROADCAST_CLIENT_COUNT)
        return {"type": kind, "requestId": self.request_id, "clientCount": self.client_count}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> ClientCountResponse:
        return cls(request_id=read_str(body, "requestId"), client_count=read_int(body, "clientCount"))


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastAckResponse:
    """One client's ack to a :class:`BroadcastAckRequest`: its first argument (MessagePack: it may be binary)."""

    packed: ClassVar[bool] = True
    request_id: str
    value: Any = None

    def body(self) -> dict[str, Any]:
        return {"type": int(RequestType.BROADCAST_ACK), "requestId": self.request_id, "packet": self.value}

    @classmethod
    def from_body(cls, body: dict[Any, Any]) -> BroadcastAckResponse:
        return cls(request_id=read_str(body, "requestId"), value=body.get("packet"))


Response: TypeAlias = (
    SocketsResponse
    | AllRoomsResponse
    | DoneResponse
    | FetchResponse
    | ServerSideEmitResponse
    | ClientCountResponse
    | BroadcastAckResponse
)
"""Everything the response channels carry."""

_RESPONSES: dict[RequestType, Callable[[dict[Any, Any]], Response]] = {
    RequestType.SOCKETS: SocketsResponse.from_body,
    RequestType.ALL_ROOMS: AllRoomsResponse.from_body,
    RequestType.REMOTE_JOIN: DoneResponse.from_body,
    RequestType.REMOTE_LEAVE: DoneResponse.from_body,
    RequestType.REMOTE_DISCONNECT: DoneResponse.from_body,
    RequestType.REMOTE_FETCH: FetchResponse.from_body,
    RequestType.SERVER_SIDE_EMIT: ServerSideEmitResponse.from_body,
}

# The answers to a BROADCAST request carry their own type.
_BROADCAST_RESPONSES: dict[int, Callable[[dict[Any, Any]], Response]] = {
    RequestType.BROADCAST_CLIENT_COUNT: ClientCountResponse.from_body,
    RequestType.BROADCAST_ACK: BroadcastAckResponse.from_body,
}


def decode_response(message: bytes, kind_of: Callable[[str], RequestType | None]) -> Response | None:
    """A message of a response channel, shaped by the request it answers.

    ``kind_of(request_id)`` names the type of this node's pending request
    under that id, or ``None``; an answer to a request not pending here, or of
    a shape its request does not expect, gives ``None``.
    """
    body = load_body(message)
    request_id = body.get("requestId")
    if not isinstance(request_id, str):
        return None
    kind = kind_of(request_id)
    if kind == RequestType.BROADCAST:
        response_type = body.get("type")
        decoder = _BROADCAST_RESPONSES.get(response_type) if isinstance(response_type, int) else None
    else:
        decoder = _RESPONSES.get(kind) if kind is not None else None
    return decoder(body) if decoder is not None else None
