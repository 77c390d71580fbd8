"""The streams adapter's format without a server: Node's own entries, messages and sessions, round trips,
fuzzing."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.adapters.strategies import ids, packets, responses, text, values
from txrealtime.adapters.broker import wire_options
from txrealtime.adapters.cluster_messages import ClusterMessage
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
from txrealtime.adapters.redis.streams_wire import (
    decode_entry,
    decode_published,
    decode_session,
    encode_entry,
    encode_published,
    encode_session,
    entry_id,
    format_entry_id,
    is_ephemeral,
)
from txrealtime.adapters.redis.wire import Broadcast, WireError, WireFlags, WireOptions, WirePacket
from txrealtime.socketio.adapter import BroadcastFlags, BroadcastOptions, KeptSession

FIXTURE = Path(__file__).parent / "fixtures" / "node_streams_adapter.json"
"""What tests/interop/capture_streams_adapter.js recorded of Node's streams adapter (socket.io 4.8.1)."""


def report() -> dict[str, Any]:
    captured: dict[str, Any] = json.loads(FIXTURE.read_text())
    assert captured["versions"]["@socket.io/redis-streams-adapter"] == "0.3.1"
    return captured


def test_every_node_entry_decodes_and_encodes_back_to_its_fields() -> None:
    kinds = []
    for entry in report()["entries"]:
        message = decode_entry({k.encode(): v.encode() for k, v in entry["message"].items()})
        assert message is not None
        assert encode_entry(message.body, message.uid, message.nsp) == list(entry["message"].items())
        assert not is_ephemeral(message.body)
        kinds.append(type(message.body).__name__)
    assert kinds == ["Broadcast"] * 5 + ["JoinRequest", "LeaveRequest", "Broadcast"]


def test_every_node_message_decodes_and_encodes_back_to_its_bytes() -> None:
    captured = report()
    io1 = captured["uids"]["io1"]
    kinds = []
    for published in captured["published"]:
        data = base64.b64decode(published["message"])
        message = decode_published(data)
        assert message is not None
        assert encode_published(message.body, message.uid, message.nsp) == data
        # Requests go to the namespace's channel, answers to the requester's.
        expected = "socket.io#/#" if message.uid == io1 else f"socket.io#/#{io1}#"
        assert published["channel"] == expected
        kinds.append(type(message.body).__name__)
    assert kinds == ["FetchRequest", "FetchResponse", "ServerSideEmitRequest", "ServerSideEmitResponse",
                     "BroadcastAckRequest", "ClientCountResponse", "BroadcastAckResponse"]
    assert all(is_ephemeral(decode_published(base64.b64decode(p["message"])).body)  # type: ignore[union-attr]
               for p in captured["published"] if p["channel"] == "socket.io#/#")


def test_txrealtime_writes_what_node_writes() -> None:
    captured = report()
    io1 = captured["uids"]["io1"]
    entries = [list(e["message"].items()) for e in captured["entries"]]

    def broadcast(data: list[Any], opts: BroadcastOptions) -> list[tuple[str, str]]:
        return encode_entry(Broadcast(uid=io1, packet=WirePacket(data=data), opts=wire_options(opts)), io1, "/")

    assert broadcast(["hello", "world", 1], BroadcastOptions()) == entries[0]
    room = BroadcastOptions(rooms=frozenset({"room1"}), except_=frozenset({"room3"}))
    assert broadcast(["room", {"a": [1, 2.5, None, True]}], room) == entries[1]
    assert broadcast(["bin", b"\x01\x02\x03", "text"], BroadcastOptions(rooms=frozenset({"room2"}))) == entries[2]
    assert broadcast(["volatile", 1], BroadcastOptions(flags=BroadcastFlags(volatile=True))) == entries[3]
    assert broadcast(["nocompress", "x"], BroadcastOptions(flags=BroadcastFlags(compress=False))) == entries[4]
    join = JoinRequest(opts=wire_options(BroadcastOptions(rooms=frozenset({"room1"}))), rooms=("room4",), uid=io1)
    assert encode_entry(join, io1, "/") == entries[5]


def test_node_session_round_trip() -> None:
    captured = report()
    session, since = decode_session(captured["session"]["value"])
    assert since is None
    assert captured["session"]["key"] == f"sio:session:{session.pid}"
    assert session.sid == captured["sid"] and session.data == {"user": "ann", "n": 1}
    assert session.rooms == {captured["sid"], "room2", "room4"}
    assert encode_session(session) == captured["session"]["value"]


def test_entry_ids() -> None:
    assert entry_id("1796609100541-0") == (1796609100541, 0)
    assert format_entry_id((5, 7)) == "5-7"
    for bad in ("", "1", "1-", "-1", "1-2-3", "a-1", " 1-2", "1-2 ", "+1-2", "18446744073709551616-0", "1-0x1"):
        assert entry_id(bad) is None, bad
    assert entry_id("18446744073709551615-18446744073709551615") is not None


# -- round trips and fuzzing ----------------------------------------------------------------------------

selections = st.builds(WireOptions, rooms=st.lists(text, max_size=3).map(tuple),
                       except_=st.lists(text, max_size=3).map(tuple),
                       flags=st.builds(WireFlags, volatile=st.booleans(), compress=st.none() | st.booleans(),
                                       timeout=st.none() | st.integers(0, 2**53)))
bodies = st.one_of(
    st.builds(Broadcast, uid=ids, packet=packets(binary=True), opts=selections),
    st.builds(BroadcastAckRequest, request_id=ids, packet=packets(binary=True), opts=selections, uid=ids),
    st.builds(JoinRequest, opts=selections, rooms=st.lists(text, max_size=3).map(tuple), uid=ids),
    st.builds(LeaveRequest, opts=selections, rooms=st.lists(text, max_size=3).map(tuple), uid=ids),
    st.builds(DisconnectRequest, opts=selections, close=st.booleans(), uid=ids),
    st.builds(FetchRequest, request_id=ids, opts=selections, uid=ids),
    st.builds(ServerSideEmitRequest, data=st.lists(values(binary=True), max_size=4), request_id=st.none() | ids,
              uid=ids),
    responses.filter(lambda r: isinstance(r, FetchResponse | ServerSideEmitResponse | ClientCountResponse
                                          | BroadcastAckResponse)),
)
namespaces = text.filter(bool)


def normal(body: Any, uid: str, nsp: str) -> Any:
    """What decoding gives back: the packet's namespace is the message's, the sender is the message's."""
    if isinstance(body, Broadcast | BroadcastAckRequest):
        packet = WirePacket(data=body.packet.data, nsp=nsp, type=body.packet.type, id=body.packet.id)
        return dataclasses.replace(body, uid=uid, packet=packet)
    if hasattr(body, "uid"):
        return dataclasses.replace(body, uid=uid)
    return body


@given(bodies, ids, namespaces)
def test_entry_round_trip(body: Any, uid: str, nsp: str) -> None:
    try:
        fields = encode_entry(body, uid, nsp)
    except ValueError:
        return  # NaN where JSON goes: JSON.parse could not read it either
    assert [name for name, _ in fields][:3] == ["uid", "nsp", "type"]
    # Redis hands fields back as bytes.
    as_bytes = {k.encode(): v.encode("utf-8", "surrogatepass") for k, v in fields}
    try:
        decoded = decode_entry(as_bytes)
    except WireError:
        assert any("\ud800" <= c <= "\udfff" for c in uid + nsp), "only lone surrogates fail: not UTF-8"
        return
    assert decoded == ClusterMessage(uid, nsp, normal(body, uid, nsp))
    assert decode_entry(dict(fields)) == decoded


@given(bodies, ids, namespaces)
def test_published_round_trip(body: Any, uid: str, nsp: str) -> None:
    data = encode_published(body, uid, nsp)
    assert decode_published(data) == ClusterMessage(uid, nsp, normal(body, uid, nsp))


@given(st.builds(KeptSession, sid=text, pid=text, rooms=st.frozensets(text, max_size=4),
                 data=values(binary=True)),
       st.none() | st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)).map(format_entry_id))
def test_session_round_trip(session: KeptSession, since: str | None) -> None:
    assert decode_session(encode_session(session, since)) == (session, since)


FIELDS = [b"uid", b"nsp", b"type", b"data", b"other"]


@given(st.dictionaries(st.sampled_from(FIELDS) | st.binary(max_size=4),
                       st.binary(max_size=40) | st.sampled_from([b"3", b"4", b"{", b"{}", b"/", b"gA=="]),
                       max_size=6))
def test_fuzz_entries_only_wire_errors(fields: dict[bytes, bytes]) -> None:
    try:
        decode_entry(fields)
    except WireError:
        pass


like = st.recursive(
    values(binary=True) | st.sampled_from(range(14)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "data", "uid", "nsp", "packet", "opts", "rooms", "requestId", "sockets"]), inner,
        max_size=6),
    max_leaves=20,
)


@given(like, st.binary(max_size=60))
def test_fuzz_data_messages_and_sessions_only_wire_errors(body: Any, raw: bytes) -> None:
    packed = wire.pack(body)
    for data in (base64.b64encode(packed), json.dumps(body, default=repr).encode(), raw):
        try:
            decode_entry({b"uid": b"u", b"nsp": b"/", b"type": b"3", b"data": data})
        except WireError:
            pass
    for candidate in (packed, raw):
        try:
            decode_published(candidate)
        except WireError:
            pass
    for value in (base64.b64encode(packed), raw):
        try:
            decode_session(value)
        except WireError:
            pass


@pytest.mark.parametrize("fields", [
    {b"uid": b"u", b"type": b"3"},
    {b"uid": b"u", b"nsp": b"", b"type": b"3"},
])
def test_entries_without_a_namespace_are_skipped_as_node_skips_them(fields: dict[bytes, bytes]) -> None:
    assert decode_entry(fields) is None


@pytest.mark.parametrize("fields", [
    {b"uid": b"u", b"nsp": b"/", b"type": b"x"},
    {b"uid": b"u", b"nsp": b"/"},
    {b"uid": b"u", b"nsp": b"/", b"type": b"3", b"data": b"not base64!"},
    {b"uid": b"u", b"nsp": b"/", b"type": b"3", b"data": b"{not json"},
    {b"uid": b"\xff", b"nsp": b"/", b"type": b"3"},
    {b"nsp": b"/", b"type": b"2"},
])
def test_malformed_entries(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(WireError):
        decode_entry(fields)
