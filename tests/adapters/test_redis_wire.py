"""The Redis adapter's wire format without a redis-server: exact encodings, round trips, fuzzing, Node's own bytes."""

from __future__ import annotations

import ast
import base64
import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.adapters.strategies import broadcasts, options, packets, requests, responses, values
from txrealtime.adapters.redis import requests as rq
from txrealtime.adapters.redis import wire
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
from txrealtime.adapters.redis.wire import (
    Broadcast,
    Channels,
    NodeMessage,
    RequestType,
    WireError,
    WireFlags,
    WireOptions,
    WirePacket,
)

FIXTURE = Path(__file__).parent / "fixtures" / "node_redis_adapter.json"

ROOMS = WireOptions(rooms=("a",), except_=("b", "c"))
PACKET = WirePacket(data=["ev", 1, b"\x00\xff"], nsp="/chat", id=3)

# What answers each response type, for decode_response.
ANSWERS: dict[type, RequestType] = {
    SocketsResponse: RequestType.SOCKETS,
    AllRoomsResponse: RequestType.ALL_ROOMS,
    DoneResponse: RequestType.REMOTE_JOIN,
    FetchResponse: RequestType.REMOTE_FETCH,
    ServerSideEmitResponse: RequestType.SERVER_SIDE_EMIT,
    ClientCountResponse: RequestType.BROADCAST,
    BroadcastAckResponse: RequestType.BROADCAST,
}


def answering(response: rq.Response) -> Callable[[str], RequestType | None]:
    return {response.request_id: ANSWERS[type(response)]}.get


# -- channels ----------------------------------------------------------------------------------


def test_channel_names() -> None:
    channels = Channels("socket.io", "/chat")
    assert channels.broadcast == "socket.io#/chat#"
    assert channels.room("r 1") == "socket.io#/chat#r 1#"
    assert channels.request == "socket.io-request#/chat#"
    assert channels.response == "socket.io-response#/chat#"
    assert channels.specific_response("abc123") == "socket.io-response#/chat#abc123#"
    assert channels.broadcast_pattern == "socket.io#/chat#*"
    assert wire.nodes_channel("socket.io") == "socket.io-nodes#"
    assert Channels() == Channels("socket.io", "/")


def test_broadcast_channel_for_rooms_and_back() -> None:
    channels = Channels("k", "/")
    assert channels.for_rooms(()) == "k#/#"
    assert channels.for_rooms(("r",)) == "k#/#r#"
    assert channels.for_rooms(("r", "s")) == "k#/#"
    assert channels.room_of("k#/#") == ""
    assert channels.room_of("k#/#r#") == "r"
    assert channels.room_of("k#/#a#b#") == "a#b"


def test_broadcast_pattern_escapes_glob_characters() -> None:
    assert Channels("a*b", "/[x]?\\").broadcast_pattern == "a\\*b#/\\[x\\]\\?\\\\#*"


# -- exact encodings ---------------------------------------------------------------------------------


def test_broadcast_bytes() -> None:
    message = Broadcast(uid="u1", packet=WirePacket(data=["e", b"\x01"]), opts=WireOptions(flags=WireFlags()))
    expected = (
        b"\x93\xa2u1"
        b"\x83\xa4type\x02\xa4data\x92\xa1e\xc4\x01\x01\xa3nsp\xa1/"
        b"\x83\xa5rooms\x90\xa6except\x90\xa5flags\x80"
    )
    assert wire.encode(message) == expected
    assert wire.decode_broadcast(expected) == message


def test_broadcast_flags_and_packet_id() -> None:
    flags = WireFlags(volatile=True, compress=False, timeout=1500)
    message = Broadcast(uid="u", packet=PACKET, opts=WireOptions(rooms=("a",), except_=("b",), flags=flags))
    assert msgpack.unpackb(wire.encode(message)) == [
        "u",
        {"type": 2, "data": ["ev", 1, b"\x00\xff"], "nsp": "/chat", "id": 3},
        {"rooms": ["a"], "except": ["b"], "flags": {"volatile": True, "compress": False, "timeout": 1500}},
    ]


def test_options_and_packet_bodies() -> None:
    assert wire.options_body(ROOMS) == {"rooms": ["a"], "except": ["b", "c"]}
    assert wire.options_body(WireOptions(flags=WireFlags(timeout=5))) == {
        "rooms": [],
        "except": [],
        "flags": {"timeout": 5},
    }
    assert wire.options_from_body({"rooms": ["a"], "except": ["b", "c"]}) == ROOMS
    assert wire.packet_body(WirePacket(data=["x"])) == {"type": 2, "data": ["x"], "nsp": "/"}
    assert wire.packet_from_body({"type": 5, "data": ["x"], "nsp": "/a", "id": 0}) == WirePacket(
        data=["x"], nsp="/a", type=5, id=0
    )


REQUESTS: list[tuple[rq.Request, bytes]] = [
    (
        SocketsRequest(uid="u", request_id="r", rooms=("a", "b")),
        b'{"uid":"u","requestId":"r","type":0,"rooms":["a","b"]}',
    ),
    (AllRoomsRequest(uid="u", request_id="r"), b'{"uid":"u","requestId":"r","type":1}'),
    (
        JoinRequest(uid="u", opts=ROOMS, rooms=("x",)),
        b'{"uid":"u","type":2,"opts":{"rooms":["a"],"except":["b","c"]},"rooms":["x"]}',
    ),
    (
        LeaveRequest(opts=WireOptions(), rooms=("x", "y")),
        b'{"type":3,"opts":{"rooms":[],"except":[]},"rooms":["x","y"]}',
    ),
    (
        DisconnectRequest(uid="u", opts=ROOMS, close=True),
        b'{"uid":"u","type":4,"opts":{"rooms":["a"],"except":["b","c"]},"close":true}',
    ),
    (
        SocketJoinRequest(uid="u", request_id="r", sid="s", room="x"),
        b'{"uid":"u","requestId":"r","type":2,"sid":"s","room":"x"}',
    ),
    (SocketLeaveRequest(uid="u", sid="s", room="x"), b'{"uid":"u","type":3,"sid":"s","room":"x"}'),
    (
        SocketDisconnectRequest(uid="u", request_id="r", sid="s"),
        b'{"uid":"u","requestId":"r","type":4,"sid":"s","close":false}',
    ),
    (
        FetchRequest(uid="u", request_id="r", opts=ROOMS),
        b'{"uid":"u","requestId":"r","type":5,"opts":{"rooms":["a"],"except":["b","c"]}}',
    ),
    (  # txrealtime's count request: Node's adapter ignores "count" and answers with the sockets
        FetchRequest(uid="u", request_id="r", opts=ROOMS, count=True),
        b'{"uid":"u","requestId":"r","type":5,"opts":{"rooms":["a"],"except":["b","c"]},"count":true}',
    ),
    (ServerSideEmitRequest(uid="u", data=["e", 1]), b'{"uid":"u","type":6,"data":["e",1]}'),
    (
        ServerSideEmitRequest(uid="u", request_id="r", data=["e", "\ud800"]),
        b'{"uid":"u","requestId":"r","type":6,"data":["e","\\ud800"]}',
    ),
    (
        BroadcastAckRequest(
            uid="u", request_id="r", packet=WirePacket(data=["q"]), opts=WireOptions(flags=WireFlags())
        ),
        b"\x85\xa3uid\xa1u\xa9requestId\xa1r\xa4type\x07"
        b"\xa6packet\x83\xa4type\x02\xa4data\x91\xa1q\xa3nsp\xa1/"
        b"\xa4opts\x83\xa5rooms\x90\xa6except\x90\xa5flags\x80",
    ),
]


@pytest.mark.parametrize(("request_", "expected"), REQUESTS, ids=lambda x: type(x).__name__)
def test_request_bytes(request_: rq.Request, expected: bytes) -> None:
    assert wire.encode(request_) == expected
    assert rq.decode_request(expected) == request_


RESPONSES: list[tuple[rq.Response, bytes]] = [
    (SocketsResponse(request_id="r", sockets=("s1", "s2")), b'{"requestId":"r","sockets":["s1","s2"]}'),
    (AllRoomsResponse(request_id="r", rooms=("a",)), b'{"requestId":"r","rooms":["a"]}'),
    (DoneResponse(request_id="r"), b'{"requestId":"r"}'),
    (
        FetchResponse(
            request_id="r",
            sockets=(SocketDetails(id="s", handshake={"auth": {"t": 1}}, rooms=("s", "a"), data={"k": [1]}),),
        ),
        b'{"requestId":"r","sockets":[{"id":"s","handshake":{"auth":{"t":1}},"rooms":["s","a"],"data":{"k":[1]}}]}',
    ),
    (
        FetchResponse(request_id="r", sockets=(), node="n1", count=7),
        b'{"requestId":"r","sockets":[],"node":"n1","count":7}',
    ),
    (ServerSideEmitResponse(request_id="r", data={"ok": True}), b'{"type":6,"requestId":"r","data":{"ok":true}}'),
    (ServerSideEmitResponse(request_id="r"), b'{"type":6,"requestId":"r","data":null}'),
    (ClientCountResponse(request_id="r", client_count=3), b'{"type":8,"requestId":"r","clientCount":3}'),
    (BroadcastAckResponse(request_id="r", value=b"\x07"), b"\x83\xa4type\x09\xa9requestId\xa1r\xa6packet\xc4\x01\x07"),
]


@pytest.mark.parametrize(("response", "expected"), RESPONSES, ids=lambda x: type(x).__name__)
def test_response_bytes(response: rq.Response, expected: bytes) -> None:
    assert wire.encode(response) == expected
    assert rq.decode_response(expected, answering(response)) == response


def test_node_messages() -> None:
    assert wire.encode(NodeMessage(uid="u")) == b'{"uid":"u","type":"heartbeat"}'
    assert wire.encode(NodeMessage(uid="u", kind="leave")) == b'{"uid":"u","type":"leave"}'
    assert wire.decode_node_message(b'{"uid": "u", "type": "leave"}') == NodeMessage(uid="u", kind="leave")
    for bad in (b'{"uid": "u", "type": "other"}', b'{"uid": 1, "type": "leave"}', b"[]", b"\xff"):
        with pytest.raises(WireError):
            wire.decode_node_message(bad)


def test_lone_surrogates_cross_messagepack_as_they_are() -> None:
    packed = wire.pack(["x\ud800y", {"k\udc00": 1}, "\ud800\udc00"])
    assert b"x\xed\xa0\x80y" in packed
    assert wire.unpack(packed) == ["x\ud800y", {"k\udc00": 1}, "\ud800\udc00"]


def test_binary_in_a_json_message_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        wire.encode(ServerSideEmitRequest(uid="u", data=["e", b"\x00"]))


# -- decoding: leniency where Node is lenient -----------------------------------------------------------


def test_decoding_defaults_as_node() -> None:
    # No nsp is "/", no room lists are empty, numbers name rooms, unknown flags are dropped.
    opts = {"rooms": [7], "flags": {"binary": True, "x": 1}}
    message = msgpack.packb(["u", {"type": 2, "data": ["e"]}, opts, "more"])
    assert wire.decode_broadcast(message) == Broadcast(
        uid="u", packet=WirePacket(data=["e"]), opts=WireOptions(rooms=("7",), flags=WireFlags())
    )
    assert wire.options_from_body({}) == WireOptions()
    assert wire.options_from_body({"flags": {"timeout": 2.5, "volatile": 1}}).flags == WireFlags(
        volatile=True, timeout=2
    )


def test_undefined_reads_as_none() -> None:
    # Older notepack.io versions wrote `undefined` as the fixext 1 of type 0.
    assert wire.unpack(b"\x92\xd4\x00\x00\x01") == [None, 1]


def test_requests_no_node_acts_on() -> None:
    for kind in (8, 9, 10, -1):
        assert rq.decode_request(json.dumps({"type": kind, "requestId": "r"}).encode()) is None


def test_responses_not_for_this_node() -> None:
    count = wire.encode(ClientCountResponse(request_id="r", client_count=1))
    assert rq.decode_response(count, lambda _: None) is None
    assert rq.decode_response(b'{"requestId": 5}', lambda _: RequestType.SOCKETS) is None
    assert rq.decode_response(b'{"requestId": "r", "type": 6}', {"r": RequestType.BROADCAST}.get) is None
    assert rq.decode_response(b'{"requestId": "r", "type": [1]}', {"r": RequestType.BROADCAST}.get) is None


def test_a_response_takes_its_shape_from_the_request() -> None:
    message = b'{"requestId":"r","sockets":["a"]}'
    expected = SocketsResponse(request_id="r", sockets=("a",))
    assert rq.decode_response(message, {"r": RequestType.SOCKETS}.get) == expected
    with pytest.raises(WireError):
        rq.decode_response(message, {"r": RequestType.REMOTE_FETCH}.get)


MALFORMED = [
    b"",
    b"{",
    b'{"type": 0}',
    b'{"type": "0", "requestId": "r"}',
    b'{"type": true, "requestId": "r"}',
    b'{"type": 2, "opts": {"rooms": "a"}, "rooms": []}',
    b'{"type": 2, "opts": {"rooms": [["a"]]}, "rooms": []}',
    b'{"type": 2, "sid": 1, "room": "a"}',
    b'{"type": 4, "opts": {}, "close": "yes"}',
    b'{"type": 6, "data": "e"}',
    b'{"type": 6, "uid": 7, "data": ["e"]}',
    b'{"type": 0, "requestId": "r", "rooms": [1.5]}',
    b"[" * 100_000,
    b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"type": 0, "requestId": "\xff"}',
    b"\x91" * 100_000,
    b"\xc1",
    b"\x01\x02",
    b"\x81\x91\x01\x02",
    b"\x90",
    msgpack.packb({"type": 7, "requestId": "r", "packet": {"type": 2, "data": "x"}, "opts": {}}),
    msgpack.packb({"type": 7, "requestId": "r", "packet": {"type": 2, "data": [], "nsp": 1}, "opts": {}}),
    msgpack.packb({"type": 7, "requestId": "r", "packet": {"type": 2, "data": [], "id": "1"}, "opts": {}}),
    msgpack.packb({"type": 7, "requestId": "r", "packet": {"type": 2, "data": []}, "opts": {"flags": 1}}),
    msgpack.packb({"type": 7, "requestId": "r", "packet": [], "opts": {}}),
]


@pytest.mark.parametrize("message", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_requests(message: bytes) -> None:
    with pytest.raises(WireError):
        rq.decode_request(message)


@pytest.mark.parametrize(
    "message",
    [b"", b"\x92\xa1u\x80", b"\x93\x01\x80\x80", b"\x93\xa1u\x80\x80", b'\x93\xa1u\x82\xa4type\x02\xa4data\x90\x90'],
)
def test_malformed_broadcasts(message: bytes) -> None:
    with pytest.raises(WireError):
        wire.decode_broadcast(message)


def test_json_is_written_as_json_stringify_writes_it() -> None:
    # UTF-8 as it is, lone surrogates escaped, dates as Date.toJSON; what JSON.parse cannot read is refused.
    when = datetime.datetime(2026, 11, 29, 5, 6, 7, 891000, tzinfo=datetime.UTC)
    request = ServerSideEmitRequest(data=["é😀", "\ud800", when, datetime.date(2026, 11, 29)])
    expected = '{"type":6,"data":["é😀","\\ud800","2026-11-29T05:06:07.891Z","2026-11-29"]}'
    assert wire.encode(request) == expected.encode()
    for number in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError):
            wire.encode(ServerSideEmitRequest(data=["x", number]))
    # MessagePack carries them (as float64), as notepack.io does.
    broadcast = Broadcast(uid="u", packet=WirePacket(data=["x", float("inf")]), opts=WireOptions())
    assert wire.decode_broadcast(wire.encode(broadcast)) == broadcast


def test_errors_do_not_quote_the_message() -> None:
    with pytest.raises(WireError) as caught:
        rq.decode_request(b'{"type": 0, "requestId": "SECRET\xff"}')
    assert "SECRET" not in str(caught.value)


def test_the_wire_modules_import_no_twisted_nor_the_redis_client() -> None:
    allowed = {
        "__future__", "datetime", "json", "math", "secrets", "collections.abc", "dataclasses", "enum", "typing",
        "msgpack",
    }
    for module in (wire, rq):
        assert module.__file__ is not None
        tree = ast.parse(Path(module.__file__).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert {alias.name for alias in node.names} <= allowed
            elif isinstance(node, ast.ImportFrom) and node.level:
                assert (node.level, node.module) in {(1, "wire"), (3, "_js")}
            elif isinstance(node, ast.ImportFrom):
                assert node.module in allowed


# -- round trips (hypothesis) ---------------------------------------------------------------------------

@given(broadcasts)
def test_broadcast_round_trip(message: Broadcast) -> None:
    assert wire.decode_broadcast(wire.encode(message)) == message


@given(requests)
def test_request_round_trip(request: rq.Request) -> None:
    assert rq.decode_request(wire.encode(request)) == request


@given(responses)
def test_response_round_trip(response: rq.Response) -> None:
    assert rq.decode_response(wire.encode(response), answering(response)) == response


@given(options, packets(binary=True))
def test_options_and_packet_round_trip(opts: WireOptions, packet: WirePacket) -> None:
    assert wire.options_from_body(wire.unpack(wire.pack(wire.options_body(opts)))) == opts
    assert wire.packet_from_body(wire.unpack(wire.pack(wire.packet_body(packet)))) == packet


node_uids = st.text(min_size=1, max_size=wire.MAX_UID).filter(str.isprintable)


@given(st.builds(NodeMessage, uid=node_uids, kind=st.sampled_from(["heartbeat", "leave"])))
def test_node_message_round_trip(message: NodeMessage) -> None:
    assert wire.decode_node_message(wire.encode(message)) == message


@pytest.mark.parametrize("uid", ["", "x" * (wire.MAX_UID + 1), "a\nb", "a\x1b[31m"])
def test_node_uids_are_short_and_printable(uid: str) -> None:
    """A heartbeat's uid lands in log lines: a megabyte or terminal escapes are refused."""
    with pytest.raises(WireError):
        wire.decode_node_message(wire.encode(NodeMessage(uid=uid)))


# -- fuzzing: only WireError ---------------------------------------------------------------------------


def decoders(kind: RequestType) -> list[Callable[[bytes], object]]:
    return [
        wire.decode_broadcast,
        wire.decode_node_message,
        rq.decode_request,
        lambda message: rq.decode_response(message, lambda _: kind),
    ]


def only_wire_errors(message: bytes, kind: RequestType) -> None:
    for decode in decoders(kind):
        try:
            decode(message)
        except WireError:
            pass


@given(st.binary(max_size=200), st.sampled_from(RequestType))
def test_fuzz_arbitrary_bytes(message: bytes, kind: RequestType) -> None:
    only_wire_errors(message, kind)
    only_wire_errors(b"{" + message, kind)


KEYS = ["uid", "requestId", "type", "rooms", "except", "flags", "opts", "packet", "data", "nsp", "id", "sid", "room"]
KEYS += ["close", "sockets", "handshake", "clientCount", "volatile", "timeout", "compress"]

# Bodies that look like messages: the right keys, any values, nested the way messages nest.
bodies = st.recursive(
    values(binary=True) | st.sampled_from(range(10)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    max_leaves=20,
)


@given(bodies, st.sampled_from(RequestType))
def test_fuzz_message_like_bodies(body: Any, kind: RequestType) -> None:
    only_wire_errors(wire.pack(body), kind)
    try:
        as_json = wire.dump_json(body)
    except TypeError:
        return  # binary: JSON cannot carry it
    except ValueError:
        return  # an infinity: JSON.parse could not read it
    only_wire_errors(as_json, kind)


# -- what Node's adapter and emitter publish ---------------------------------------------------------------


def captured() -> tuple[dict[str, Any], list[tuple[str, str, bytes]]]:
    report = json.loads(FIXTURE.read_text())
    return report, [(m["step"], m["channel"], base64.b64decode(m["base64"])) for m in report["messages"]]


def test_node_capture_decodes() -> None:
    report, messages = captured()
    io1, chat, client = report["uids"]["io1"], report["uids"]["io1_chat"], report["client"]
    channels = Channels("socket.io", "/")
    pending: dict[str, RequestType] = {}
    decoded: dict[str, list[tuple[str, object]]] = {}
    for step, channel, message in messages:
        value: object
        if channel.startswith("socket.io#"):
            value = wire.decode_broadcast(message)
        elif channel == channels.request:
            value = rq.decode_request(message)
            if isinstance(value, (AllRoomsRequest, FetchRequest, ServerSideEmitRequest, BroadcastAckRequest)):
                if value.request_id is not None:
                    pending[value.request_id] = value.request_type
        else:
            assert channel == channels.response
            value = rq.decode_response(message, pending.get)
        assert value is not None, (step, message)
        decoded.setdefault(step, []).append((channel, value))
        if not step.startswith("emitter"):
            assert wire.encode(cast(wire.Encodable, value)) == message, step

    def request_id(step: str) -> str:
        value = decoded[step][0][1]
        assert isinstance(value, (AllRoomsRequest, FetchRequest, ServerSideEmitRequest, BroadcastAckRequest))
        assert value.request_id is not None
        return value.request_id

    no_flags = WireFlags()
    assert decoded["broadcast"] == [
        (
            "socket.io#/#",
            Broadcast(
                uid=io1,
                packet=WirePacket(data=["plain", 1, "two", {"three": [3]}]),
                opts=WireOptions(flags=no_flags),
            ),
        )
    ]
    assert decoded["broadcast_room_except_binary"] == [
        (
            "socket.io#/#room1#",
            Broadcast(
                uid=io1,
                packet=WirePacket(data=["news", "hello", b"\x01\x02\x03", {"nested": b"\x04"}]),
                opts=WireOptions(rooms=("room1",), except_=("room3",), flags=no_flags),
            ),
        )
    ]
    assert decoded["broadcast_rooms_volatile"] == [
        (
            "socket.io#/#",
            Broadcast(
                uid=io1,
                packet=WirePacket(data=["rooms", None, True, 1.5, -7]),
                opts=WireOptions(rooms=("room1", "room2"), flags=WireFlags(volatile=True)),
            ),
        )
    ]
    assert decoded["broadcast_namespace"] == [
        (
            "socket.io#/chat#",
            Broadcast(
                uid=chat,
                packet=WirePacket(data=["chat", "hi"], nsp="/chat"),
                opts=WireOptions(flags=WireFlags(compress=False)),
            ),
        )
    ]

    fetch_id = request_id("fetch_sockets")
    [(_, fetch), (_, answer)] = decoded["fetch_sockets"]
    assert fetch == FetchRequest(uid=io1, request_id=fetch_id, opts=WireOptions(rooms=("room1",), except_=("room3",)))
    assert isinstance(answer, FetchResponse) and answer.request_id == fetch_id
    [socket] = answer.sockets
    assert (socket.id, socket.rooms) == (client, (client, "room1", "room2"))
    assert socket.data == {"name": "client on io2", "bytes": [1, 2]}
    assert socket.handshake["auth"] == {"token": "abc"}
    assert socket.handshake["query"]["q"] == "1"
    assert {"headers", "time", "address", "xdomain", "secure", "issued", "url"} <= socket.handshake.keys()

    rooms_id = request_id("all_rooms")
    assert [v for _, v in decoded["all_rooms"]] == [
        AllRoomsRequest(uid=io1, request_id=rooms_id),
        AllRoomsResponse(request_id=rooms_id, rooms=(client, "room1", "room2")),
    ]
    assert [v for _, v in decoded["server_side_emit"]] == [ServerSideEmitRequest(uid=io1, data=["hello", 1, "two"])]
    emit_id = request_id("server_side_emit_with_ack")
    assert [v for _, v in decoded["server_side_emit_with_ack"]] == [
        ServerSideEmitRequest(uid=io1, request_id=emit_id, data=["ping", 42]),
        ServerSideEmitResponse(request_id=emit_id, data={"pong": 42}),
    ]
    assert [v for _, v in decoded["sockets_join"]] == [
        JoinRequest(uid=io1, opts=WireOptions(rooms=("room1",), except_=("room3",)), rooms=("x", "y"))
    ]
    assert [v for _, v in decoded["sockets_leave"]] == [LeaveRequest(uid=io1, opts=WireOptions(), rooms=("x",))]
    ack_id = request_id("broadcast_with_ack")
    assert [v for _, v in decoded["broadcast_with_ack"]] == [
        BroadcastAckRequest(
            uid=io1,
            request_id=ack_id,
            packet=WirePacket(data=["question", 41]),
            opts=WireOptions(flags=WireFlags(timeout=5000)),
        ),
        ClientCountResponse(request_id=ack_id, client_count=1),
        BroadcastAckResponse(request_id=ack_id, value=42),
    ]
    assert decoded["disconnect_sockets"] == [
        (channels.request, DisconnectRequest(uid=io1, opts=WireOptions(rooms=("room2",)), close=True))
    ]

    # The emitter: uid "emitter" on broadcasts and server-side emits, none on the rest.
    assert decoded["emitter_broadcast"] == [
        (
            "socket.io#/#room1#",
            Broadcast(
                uid="emitter",
                packet=WirePacket(data=["emitted", {"ok": True}, b"\x09"]),
                opts=WireOptions(rooms=("room1",), except_=("room3",), flags=no_flags),
            ),
        )
    ]
    assert [v for _, v in decoded["emitter_sockets_join"]] == [
        JoinRequest(opts=WireOptions(rooms=("room1",)), rooms=("z",))
    ]
    assert [v for _, v in decoded["emitter_sockets_leave"]] == [LeaveRequest(opts=WireOptions(), rooms=("z",))]
    assert [v for _, v in decoded["emitter_server_side_emit"]] == [
        ServerSideEmitRequest(uid="emitter", data=["hello", "from emitter"])
    ]
    assert [v for _, v in decoded["emitter_disconnect_sockets"]] == [
        DisconnectRequest(opts=WireOptions(rooms=("nobody",)), close=False)
    ]
    assert len(decoded) == 17


def test_the_emitter_orders_broadcast_options_differently() -> None:
    _, messages = captured()
    [message] = [m for step, _, m in messages if step == "emitter_broadcast"]
    assert list(msgpack.unpackb(message)[2]) == ["rooms", "flags", "except"]
    assert wire.encode(wire.decode_broadcast(message)) != message


def test_compress_flag_crosses_nodes_as_node_writes_it() -> None:
    """Left out unless false (as Node's adapter writes ``flags``); read back as the operator's flag."""
    from txrealtime.adapters.broker import options as _options
    from txrealtime.adapters.broker import wire_options as _wire_options
    from txrealtime.socketio.adapter import BroadcastFlags, BroadcastOptions

    plain = BroadcastOptions(flags=BroadcastFlags(compress=False))
    assert _wire_options(plain).flags == WireFlags(compress=False)
    assert _wire_options(BroadcastOptions()).flags == WireFlags()
    for flags, compress in [(WireFlags(compress=False), False), (WireFlags(compress=True), True), (WireFlags(), True)]:
        assert _options(WireOptions(flags=flags)).flags.compress is compress
    assert _options(WireOptions()).flags.compress is True


@pytest.mark.parametrize("count", [b"-1", b"1.5", b"true", b'"3"'])
def test_a_count_that_is_not_a_number_is_malformed(count: bytes) -> None:
    with pytest.raises(wire.WireError):
        rq.decode_response(b'{"requestId":"r","sockets":[],"count":' + count + b"}", lambda _: RequestType.REMOTE_FETCH)
