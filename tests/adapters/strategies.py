"""Hypothesis strategies for the Redis adapters' messages, shared by the classic and the sharded format's tests."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import strategies as st

from txrealtime.adapters.redis.requests import (
    AllRoomsRequest,
    AllRoomsResponse,
    BroadcastAckRequest,
    BroadcastAckResponse,
    ClientCountResponse,
    DisconnectRequest,
    DoneResponse,
    FetchRequest,
    FetchResponse,
    JoinRequest,
    LeaveRequest,
    ServerSideEmitRequest,
    ServerSideEmitResponse,
    SocketDetails,
    SocketDisconnectRequest,
    SocketJoinRequest,
    SocketLeaveRequest,
    SocketsRequest,
    SocketsResponse,
)
from txrealtime.adapters.redis.wire import Broadcast, WireFlags, WireOptions, WirePacket

_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")

# JSON, as JavaScript, reads an escaped surrogate pair as one character: strings keep lone surrogates only.
text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=12).map(
    lambda s: _SURROGATE_PAIR.sub("\ud800-", s)
)
ids = st.text(max_size=8)
room_lists = st.lists(text, max_size=3).map(tuple)


def values(binary: bool) -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**64 - 1)
        | st.floats(allow_nan=False, allow_infinity=binary)  # JSON, as JSON.parse reads it, has no infinity
        | text
        | (st.binary(max_size=16) if binary else st.nothing())
    )
    return st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=10
    )


flags = st.builds(
    WireFlags, volatile=st.booleans(), compress=st.none() | st.booleans(), timeout=st.none() | st.integers(0, 2**53)
)
options = st.builds(WireOptions, rooms=room_lists, except_=room_lists, flags=st.none() | flags)


def packets(binary: bool) -> st.SearchStrategy[WirePacket]:
    return st.builds(
        WirePacket,
        data=st.lists(values(binary), max_size=4),
        nsp=text,
        type=st.integers(-(2**63), 2**63),
        id=st.none() | st.integers(0, 2**53),
    )


broadcasts = st.builds(Broadcast, uid=ids, packet=packets(binary=True), opts=options)
uids = st.none() | ids
requests = st.one_of(
    st.builds(SocketsRequest, request_id=ids, rooms=room_lists, uid=uids),
    st.builds(AllRoomsRequest, request_id=ids, uid=uids),
    st.builds(JoinRequest, opts=options, rooms=room_lists, uid=uids),
    st.builds(LeaveRequest, opts=options, rooms=room_lists, uid=uids),
    st.builds(DisconnectRequest, opts=options, close=st.booleans(), uid=uids),
    st.builds(SocketJoinRequest, sid=text, room=text, request_id=st.none() | ids, uid=uids),
    st.builds(SocketLeaveRequest, sid=text, room=text, request_id=st.none() | ids, uid=uids),
    st.builds(SocketDisconnectRequest, sid=text, close=st.booleans(), request_id=st.none() | ids, uid=uids),
    st.builds(FetchRequest, request_id=ids, opts=options, uid=uids, count=st.booleans()),
    st.builds(
        ServerSideEmitRequest, data=st.lists(values(binary=False), max_size=4), request_id=st.none() | ids, uid=uids
    ),
    st.builds(BroadcastAckRequest, request_id=ids, packet=packets(binary=True), opts=options, uid=uids),
)
socket_details = st.builds(
    SocketDetails,
    id=text,
    handshake=st.dictionaries(text, values(binary=False), max_size=4),
    rooms=room_lists,
    data=values(binary=False),
)
responses = st.one_of(
    st.builds(SocketsResponse, request_id=ids, sockets=room_lists),
    st.builds(AllRoomsResponse, request_id=ids, rooms=room_lists),
    st.builds(DoneResponse, request_id=ids),
    st.builds(FetchResponse, request_id=ids, sockets=st.lists(socket_details, max_size=3).map(tuple),
              node=st.none() | ids, count=st.none() | st.integers(min_value=0, max_value=2**31)),
    st.builds(ServerSideEmitResponse, request_id=ids, data=values(binary=False)),
    st.builds(ClientCountResponse, request_id=ids, client_count=st.integers(0, 2**53)),
    st.builds(BroadcastAckResponse, request_id=ids, value=values(binary=True)),
)
