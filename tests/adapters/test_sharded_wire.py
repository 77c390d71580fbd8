"""The sharded adapter's messages without a server: Node's own bytes, round trips, fuzzing, sequence numbers."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.adapters.strategies import ids, options, packets, responses, text, values
from txrealtime.adapters.broker import wire_options
from txrealtime.adapters.cluster_messages import (
    ClusterMessage,
    Heartbeat,
    MessageType,
    decode_message,
    encode_message,
)
from txrealtime.adapters.redis import wire
from txrealtime.adapters.redis.requests import (
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
)
from txrealtime.adapters.redis.wire import Broadcast, WireError, WireFlags, WireOptions, WirePacket
from txrealtime.adapters.sequence import Sequences
from txrealtime.socketio.adapter import BroadcastFlags, BroadcastOptions

FIXTURE = Path(__file__).parent / "fixtures" / "node_sharded_adapter.json"
"""What tests/interop/capture_sharded_adapter.js recorded of Node's sharded adapter (socket.io 4.8.1)."""


def captured() -> tuple[dict[str, Any], list[tuple[str, str, bytes]]]:
    report = json.loads(FIXTURE.read_text())
    return report, [(m["step"], m["channel"], base64.b64decode(m["base64"])) for m in report["messages"]]


def test_every_node_message_decodes_and_encodes_back_to_its_bytes() -> None:
    report, messages = captured()
    assert report["packages"]["@socket.io/redis-adapter"] == "8.3.0"
    kinds = []
    for step, _, data in messages:
        message = decode_message(data)
        assert message is not None, step
        assert encode_message(message.body, message.uid, message.nsp) == data, step
        kinds.append(type(message.body).__name__)
    assert set(kinds) == {
        "Broadcast", "FetchRequest", "FetchResponse", "ServerSideEmitRequest", "ServerSideEmitResponse",
        "JoinRequest", "LeaveRequest", "BroadcastAckRequest", "ClientCountResponse", "BroadcastAckResponse",
        "DisconnectRequest",
    }


def by_step(step: str) -> list[tuple[str, bytes]]:
    return [(channel, data) for s, channel, data in captured()[1] if s == step]


def test_txrealtime_writes_what_node_writes() -> None:
    report, _ = captured()
    io1, chat = report["uids"]["io1"], report["uids"]["io1_chat"]

    def broadcast(data: list[Any], opts: BroadcastOptions, nsp: str = "/") -> bytes:
        return encode_message(Broadcast(uid=io1 if nsp == "/" else chat, packet=WirePacket(data=data, nsp=nsp),
                                        opts=wire_options(opts)), io1 if nsp == "/" else chat, nsp)

    assert [broadcast(["plain", 1, "two", {"three": [3]}], BroadcastOptions())] == [d for _, d in by_step("broadcast")]
    [(channel, data)] = by_step("broadcast_room_except_binary")
    assert channel == "socket.io#/#room1#"
    opts = BroadcastOptions(rooms=frozenset({"room1"}), except_=frozenset({"room3"}))
    assert broadcast(["news", "hello", b"\x01\x02\x03", {"nested": b"\x04"}], opts) == data
    volatile = BroadcastOptions(rooms=frozenset({"room1", "room2"}), flags=BroadcastFlags(volatile=True))
    assert [broadcast(["rooms", None, True, 1.5, -7], volatile)] == [d for _, d in by_step("broadcast_rooms_volatile")]
    plain = BroadcastOptions(flags=BroadcastFlags(compress=False))
    assert [broadcast(["chat", "hi"], plain, "/chat")] == [d for _, d in by_step("broadcast_namespace")]
    # Requests write a selection with its flags, {} when there are none.
    [(_, join)] = by_step("sockets_join")
    selection = wire_options(BroadcastOptions(rooms=frozenset({"room1"}), except_=frozenset({"room3"})))
    assert encode_message(JoinRequest(opts=selection, rooms=("x", "y"), uid=io1), io1, "/") == join
    [(_, emit)] = by_step("server_side_emit")
    assert encode_message(ServerSideEmitRequest(data=["hello", 1, "two"], uid=io1), io1, "/") == emit


def test_the_sequence_number_is_a_last_key_node_ignores() -> None:
    body = Broadcast(uid="u", packet=WirePacket(data=["e"]), opts=WireOptions(flags=WireFlags()))
    data = encode_message(body, "u", "/", seq=7)
    assert data.endswith(b',"nsp":"/","seq":7}')
    assert decode_message(data) == ClusterMessage("u", "/", body, 7)
    binary = Broadcast(uid="u", packet=WirePacket(data=["e", b"\x00"]), opts=WireOptions(flags=WireFlags()))
    assert decode_message(encode_message(binary, "u", "/", seq=8)) == ClusterMessage("u", "/", binary, 8)


def test_classic_stamps_and_gaps() -> None:
    class Link:
        missed = 0

    sender, receiver = Sequences(Link()), Sequences(link := Link())
    plain = wire.encode(Broadcast(uid="abc", packet=WirePacket(data=["e"]), opts=WireOptions()))
    stamped = [sender.stamp(plain) for _ in range(5)]
    assert wire.decode_broadcast(stamped[0]) == wire.decode_broadcast(plain)  # a fourth element, ignored
    for data in (stamped[0], stamped[1], stamped[4], stamped[3]):  # 3 and 4 lost, then one late
        receiver.check(data, b"me")
    assert link.missed == 2
    receiver.check(plain, b"me")  # Node's and the emitter's carry no number
    receiver.check(stamped[4], b"abc")  # one's own
    assert link.missed == 2


# -- round trips and fuzzing ----------------------------------------------------------------------------

selections = st.builds(WireOptions, rooms=options.map(lambda o: o.rooms), except_=options.map(lambda o: o.except_),
                       flags=st.builds(WireFlags, volatile=st.booleans(), compress=st.none() | st.booleans(),
                                       timeout=st.none() | st.integers(0, 2**53)))
bodies = st.one_of(
    st.builds(Broadcast, uid=ids, packet=packets(binary=True), opts=selections),
    st.builds(BroadcastAckRequest, request_id=ids, packet=packets(binary=True), opts=selections, uid=ids),
    st.builds(JoinRequest, opts=selections, rooms=st.lists(text, max_size=3).map(tuple), uid=ids),
    st.builds(LeaveRequest, opts=selections, rooms=st.lists(text, max_size=3).map(tuple), uid=ids),
    st.builds(DisconnectRequest, opts=selections, close=st.booleans(), uid=ids),
    st.builds(FetchRequest, request_id=ids, opts=selections, uid=ids, count=st.booleans()),
    st.builds(ServerSideEmitRequest, data=st.lists(values(binary=True), max_size=4), request_id=st.none() | ids,
              uid=ids),
    responses.filter(lambda r: isinstance(r, FetchResponse | ServerSideEmitResponse | ClientCountResponse
                                          | BroadcastAckResponse)),
    st.sampled_from([Heartbeat(MessageType.INITIAL_HEARTBEAT), Heartbeat(MessageType.HEARTBEAT),
                     Heartbeat(MessageType.ADAPTER_CLOSE)]),
)


def normal(body: Any, uid: str, nsp: str) -> Any:
    """What decoding gives back: the packet's namespace is the message's, the sender is the message's."""
    if isinstance(body, Broadcast):
        return Broadcast(uid=uid, packet=WirePacket(data=body.packet.data, nsp=nsp, type=body.packet.type,
                                                    id=body.packet.id), opts=body.opts)
    if isinstance(body, BroadcastAckRequest):
        packet = WirePacket(data=body.packet.data, nsp=nsp, type=body.packet.type, id=body.packet.id)
        return BroadcastAckRequest(request_id=body.request_id, packet=packet, opts=body.opts, uid=uid)
    if hasattr(body, "uid"):
        return dataclasses.replace(body, uid=uid)
    return body


@given(bodies, ids, text, st.none() | st.integers(0, 2**53))
def test_round_trip(body: Any, uid: str, nsp: str, seq: int | None) -> None:
    try:
        data = encode_message(body, uid, nsp, seq)
    except ValueError:
        return  # NaN in a JSON-only message: JSON.parse could not read it either
    assert decode_message(data) == ClusterMessage(uid, nsp or "/", normal(body, uid, nsp or "/"), seq)


@given(st.binary(max_size=300))
def test_fuzz_only_wire_errors(data: bytes) -> None:
    for candidate in (data, b"{" + data):
        try:
            decode_message(candidate)
        except WireError:
            pass


KEYS = ["type", "data", "uid", "nsp", "seq", "packet", "opts", "rooms", "except", "flags", "requestId", "close",
        "sockets", "clientCount", "id", "handshake"]
like = st.recursive(
    values(binary=True) | st.sampled_from(range(14)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    max_leaves=20,
)


@given(like)
def test_fuzz_message_like_bodies(body: Any) -> None:
    for data in (wire.pack(body), json.dumps(body, default=repr).encode()):
        try:
            decode_message(data)
        except WireError:
            pass


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "data",
    [
        wire.pack({"type": 3, "data": {"packet": {"type": 2, "data": [{b"bin": 1}]}, "opts": {}}, "uid": "u"}),
        wire.pack({"type": 3, "data": {"packet": {"type": 2, "data": [nested(200)]}, "opts": {}}, "uid": "u"}),
        b"\x84\xa4type\x03\xa4data\x80\xa3uid\xa1u\xa3nsp\xd7\xff" + b"\xff" * 8,  # a timestamp that overflows
        b'{"type": 3, "data": {"packet": {"type": 2, "data": 1}}, "uid": "u"}',
        b'{"type": "3", "uid": "u"}',
        b'{"type": 3, "uid": 5}',
    ],
)
def test_hostile_messages_are_wire_errors(data: bytes) -> None:
    with pytest.raises(WireError):
        decode_message(data)
