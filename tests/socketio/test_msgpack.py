"""The msgpack parser: exact bytes against Node's socket.io-msgpack-parser, bad input, round trips."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from typing import Any, cast

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.servers import INTEROP, NODE_MODULES, node
from txrealtime.protocol.msgpack import MSGPACK, MsgpackDecoder, decode, encode
from txrealtime.protocol.packets import MAX_DEPTH, DecodeError, Packet
from txrealtime.protocol.packets import PacketType as T
from txrealtime.protocol.parser import JSON, DecoderLimits, resolve

UTC = datetime.UTC


def wire(packet: Packet) -> bytes:
    [message] = encode(packet)
    assert isinstance(message, bytes)
    return message


def keys(n: int) -> dict[str, int]:
    return {f"k{i}": i for i in range(n)}


def x(n: int) -> str:
    return "x" * n


# The packets of tests/interop/msgpack_bytes.js, as txrealtime builds them.
SERVER_CASES = {
    "event": Packet(T.EVENT, "/", ["hello", b"\x01\x02", {"a": 1.5}]),
    "eventWithAck": Packet(T.EVENT, "/custom", ["question", 41], 12),
    "ack": Packet(T.ACK, "/x", ["got", b"\x05"], 3),
    "connect": Packet(T.CONNECT, "/", {"sid": "abc"}),
    "connectWithPid": Packet(T.CONNECT, "/", {"sid": "abc", "pid": "p1"}),
    "disconnect": Packet(T.DISCONNECT, "/c"),
    "connectError": Packet(T.CONNECT_ERROR, "/admin", {"message": "not authorized", "data": {"code": 401}}),
    "date": Packet(T.EVENT, "/", [
        "d",
        datetime.datetime(2020, 1, 1, 12, 30, 15, 250000, tzinfo=UTC),
        datetime.datetime(1969, 12, 31, 23, 59, 58, 500000, tzinfo=UTC),
    ]),
    "integers": Packet(T.EVENT, "/", [
        "n", 0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 - 1,
        -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**53 - 1),
    ]),
    "floats": Packet(T.EVENT, "/", ["f", 1.5, -0.25, 5e-324]),
    "constants": Packet(T.EVENT, "/", ["c", None, True, False]),
    "strings": Packet(T.EVENT, "/", ["s", "", x(31), x(32), x(255), x(256), x(65536), "é€😀"]),
    "binaries": Packet(T.EVENT, "/", ["b", b"", b"\x07" * 255, b"\x07" * 256, b"\x07" * 65536]),
    "containers": Packet(T.EVENT, "/", ["a", [1] * 15, [1] * 16, [0] * 65536, keys(15), keys(16), [[[]]], {}]),
}

# What socket.io-client writes, and what txrealtime reads from it.
CLIENT_CASES = {
    "clientEvent": Packet(T.EVENT, "/", ["echo", "hi", None, None], 0),
    "clientAck": Packet(T.ACK, "/", [42, b"\x09"], 7),
    "clientConnect": Packet(T.CONNECT, "/"),
    "clientConnectAuth": Packet(T.CONNECT, "/admin", {"token": "s3cret"}),
    "clientArrayBuffer": Packet(T.EVENT, "/", ["ab", b"\x01\x02\x03"]),
    "serverConnectUndefinedPid": Packet(T.CONNECT, "/", {"sid": "abc", "pid": None}),
}


@pytest.fixture(scope="module")
def node_bytes() -> dict[str, bytes]:
    done = subprocess.run(
        [node(), str(INTEROP / "msgpack_bytes.js")], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, NODE_PATH=str(NODE_MODULES)), check=True,
    )
    return {name: bytes.fromhex(hexed) for name, hexed in json.loads(done.stdout).items()}


@pytest.mark.parametrize("name", SERVER_CASES)
def test_bytes_are_node_parsers(node_bytes: dict[str, bytes], name: str) -> None:
    assert encode(SERVER_CASES[name]) == [node_bytes[name]]
    assert decode(node_bytes[name]) == SERVER_CASES[name]


@pytest.mark.parametrize("name", CLIENT_CASES)
def test_reads_what_node_writes(node_bytes: dict[str, bytes], name: str) -> None:
    assert decode(node_bytes[name]) == CLIENT_CASES[name]


def test_exact_bytes() -> None:
    # Checked against socket.io-msgpack-parser 3.0.2 (test_bytes_are_node_parsers does so every run).
    assert encode(SERVER_CASES["event"]) == [bytes.fromhex(
        "83a47479706502a46461746193a568656c6c6fc402010281a161cb3ff8000000000000a36e7370a12f"
    )]
    assert encode(SERVER_CASES["ack"]) == [
        bytes.fromhex("84a2696403a47479706503a46461746192a3676f74c40105a36e7370a22f78")
    ]
    assert encode(SERVER_CASES["connect"]) == [bytes.fromhex("83a47479706500a46461746181a3736964a3616263a36e7370a12f")]
    assert encode(SERVER_CASES["disconnect"]) == [bytes.fromhex("82a47479706501a36e7370a22f63")]
    assert encode(SERVER_CASES["date"]) == [bytes.fromhex(
        "83a47479706502a46461746193a164d7000000016f6115c8d2d700fffffffffffffa24a36e7370a12f"
    )]


def test_values_python_has_and_javascript_does_not() -> None:
    naive = datetime.datetime(2020, 1, 1, 12, 0)
    [message] = encode(Packet(T.EVENT, "/", ["v", (1, 2), bytearray(b"a"), memoryview(b"b"), datetime.date(2020, 1, 2),
                                             naive]))
    expected_ms = int(naive.astimezone(UTC).timestamp() * 1000)
    assert msgpack.unpackb(message, ext_hook=lambda code, data: (code, int.from_bytes(data, "big")))["data"] == [
        "v", [1, 2], b"a", b"b", "2020-01-02", (0, expected_ms)
    ]
    with pytest.raises(TypeError, match="set values cannot be sent"):
        encode(Packet(T.EVENT, "/", ["v", {1}]))


def test_lone_surrogates_are_sent_as_they_are() -> None:
    message = wire(Packet(T.EVENT, "/", ["s", "\ud800"]))
    assert b"\xa3\xed\xa0\x80" in message
    # Read back, as Node reads them, as replacement characters.
    assert decode(message).data[1] == "\ufffd" * 3


def test_undefined_reads_as_none_and_other_extensions_as_pairs() -> None:
    body = msgpack.packb({"type": 2, "nsp": "/", "data": ["e", msgpack.ExtType(0, b"\x00"), msgpack.ExtType(5, b"xy"),
                                                         {"k": msgpack.ExtType(0, b"\x00")}]})
    assert decode(body).data == ["e", None, [5, b"xy"], {"k": None}]
    # Whatever its format (here ext 8 rather than fixext 1), a 1-byte ext type 0 is undefined.
    assert decode(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e\xc7\x01\x00\x00").data == ["e", None]
    timestamp = msgpack.packb({"type": 2, "nsp": "/", "data": ["t", datetime.datetime(2021, 5, 6, tzinfo=UTC)]},
                              datetime=True)
    assert decode(timestamp).data == ["t", datetime.datetime(2021, 5, 6, tzinfo=UTC)]


def test_lenient_where_node_is() -> None:
    # Integral floats are integers (Number.isInteger), unknown keys are ignored, bad UTF-8 is U+FFFD.
    body = msgpack.packb({"type": 2.0, "nsp": "/", "data": ["e"], "id": 3.0, "options": {"compress": True}})
    assert decode(body) == Packet(T.EVENT, "/", ["e"], 3)
    assert decode(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xa2\xff\xfe").data == ["\ufffd\ufffd"]


def pack(body: Any) -> bytes:
    return cast(bytes, msgpack.packb(body, use_bin_type=True))


BAD = [
    (b"", "invalid MessagePack payload"),
    (b"\xc1", "invalid MessagePack payload"),
    (pack({"type": 2, "nsp": "/", "data": ["e"]}) + b"\x00", "invalid MessagePack payload"),
    (b"\x81\x01\x02", "invalid MessagePack payload"),  # an integer key
    (b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e\xd4\xff\x00", "invalid MessagePack payload"),  # a bad timestamp
    (b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e\xd7\x00\x7f\xff\xff\xff\xff\xff\xff\xff",
     "invalid MessagePack payload"),  # a Date beyond datetime's range
    (pack(["not", "a", "map"]), "the packet is not a map"),
    (pack({"nsp": "/", "data": ["e"]}), "invalid packet type"),
    (pack({"type": "2", "nsp": "/", "data": ["e"]}), "invalid packet type"),
    (pack({"type": True, "nsp": "/", "data": ["e"]}), "invalid packet type"),
    (pack({"type": 5, "nsp": "/", "data": ["e"]}), "invalid packet type"),
    (pack({"type": -1, "nsp": "/", "data": ["e"]}), "invalid packet type"),
    (pack({"type": 2.5, "nsp": "/", "data": ["e"]}), "invalid packet type"),
    (pack({"type": 2, "data": ["e"]}), "invalid namespace"),
    (pack({"type": 2, "nsp": 1, "data": ["e"]}), "invalid namespace"),
    (pack({"type": 2, "nsp": "/", "data": "e"}), "invalid payload for a EVENT packet"),
    (pack({"type": 2, "nsp": "/", "data": []}), "invalid payload for a EVENT packet"),
    (pack({"type": 2, "nsp": "/"}), "invalid payload for a EVENT packet"),
    (pack({"type": 0, "nsp": "/", "data": None}), "invalid payload"),
    (pack({"type": 0, "nsp": "/", "data": "x"}), "invalid payload for a CONNECT packet"),
    (pack({"type": 1, "nsp": "/", "data": None}), "invalid payload"),
    (pack({"type": 4, "nsp": "/", "data": 1}), "invalid payload for a CONNECT_ERROR packet"),
    (pack({"type": 3, "nsp": "/", "data": [1]}), "an ACK packet needs an ack id"),
    (pack({"type": 0, "nsp": "/", "id": 1}), "a CONNECT packet cannot carry an ack id"),
    (pack({"type": 2, "nsp": "/", "data": ["e"], "id": None}), "invalid packet id"),
    (pack({"type": 2, "nsp": "/", "data": ["e"], "id": "1"}), "invalid packet id"),
    (pack({"type": 2, "nsp": "/", "data": ["e"], "id": -1}), "invalid packet id"),
    (pack({"type": 2, "nsp": "/", "data": ["e"], "id": 2**53}), "invalid packet id"),
    (pack({"type": 2, "nsp": "/", "data": ["e"], "id": 1.5}), "invalid packet id"),
    (pack({"type": 2, "nsp": "/", "data": ["e", [[[[]]]]]}), None),  # fine: the limit below is 3 for this one
]


@pytest.mark.parametrize(("message", "error"), BAD[:-1])
def test_bad_input_is_a_decode_error(message: bytes, error: str) -> None:
    with pytest.raises(DecodeError) as caught:
        MsgpackDecoder().feed(message)
    assert str(caught.value) == error


def test_limits() -> None:
    decoder = MSGPACK.decoder(DecoderLimits(max_bytes=64, max_depth=4))
    with pytest.raises(DecodeError, match="a text message on a MessagePack connection"):
        decoder.feed('2["e"]')
    with pytest.raises(DecodeError, match="packet over 64 bytes"):
        decoder.feed(pack({"type": 2, "nsp": "/", "data": ["e", "x" * 64]}))
    with pytest.raises(DecodeError, match="data nested deeper than 4"):
        decoder.feed(BAD[-1][0])
    assert decoder.feed(pack({"type": 2, "nsp": "/", "data": ["e", [[]]]})) == Packet(T.EVENT, "/", ["e", [[]]])
    assert decoder.pending is False


def test_deep_nesting_is_refused_whatever_the_encoding() -> None:
    deep: Any = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(DecodeError, match=f"nested deeper than {MAX_DEPTH}"):
        decode(pack({"type": 2, "nsp": "/", "data": ["e", deep]}))
    # Far deeper than msgpack's own stack: still a DecodeError.
    with pytest.raises(DecodeError):
        decode(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e" + b"\x91" * 5000 + b"\xc0")
    ordinary: Any = []
    for _ in range(MAX_DEPTH - 2):
        ordinary = [ordinary]
    assert decode(pack({"type": 2, "nsp": "/", "data": ["e", ordinary]})).event == "e"


def test_resolve() -> None:
    assert resolve("json") is JSON and resolve("msgpack") is MSGPACK and resolve(MSGPACK) is MSGPACK
    with pytest.raises(ValueError, match="unknown parser 'xml'"):
        resolve("xml")


leaf = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
        | st.text(max_size=20) | st.binary(max_size=16)
        | st.datetimes(min_value=datetime.datetime(1, 1, 2), max_value=datetime.datetime(9999, 12, 30),
                       timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)))
data = st.recursive(
    leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
namespaces = st.sampled_from(["/", "/admin", "/a/b", "/é"])


@given(namespaces, st.text(min_size=1, max_size=10), st.lists(data, max_size=4), st.none() | st.integers(0, 2**53 - 1))
def test_event_round_trip(namespace: str, event: str, args: list[Any], ack_id: int | None) -> None:
    packet = Packet(T.EVENT, namespace, [event, *args], ack_id)
    [message] = encode(packet)
    assert MsgpackDecoder().feed(message) == packet


@given(namespaces, st.lists(data, max_size=4), st.integers(0, 2**53 - 1))
def test_ack_round_trip(namespace: str, args: list[Any], ack_id: int) -> None:
    packet = Packet(T.ACK, namespace, args, ack_id)
    assert decode(wire(packet)) == packet


def mutate(message: bytes, edits: list[tuple[int, str, int]]) -> bytes:
    for position, op, byte in edits:
        i = position % (len(message) + 1)
        if op == "insert":
            message = message[:i] + bytes([byte]) + message[i:]
        elif op == "delete":
            message = message[:i] + message[i + 1:]
        else:
            message = message[:i] + bytes([byte]) + message[i + 1:]
    return message


TEMPLATES = [wire(p) for p in [*SERVER_CASES.values(), *CLIENT_CASES.values()] if len(wire(p)) < 200]
edits = st.lists(st.tuples(st.integers(0, 200), st.sampled_from(["insert", "delete", "replace"]), st.integers(0, 255)),
                 max_size=4)


@given(st.one_of(st.binary(max_size=60), st.builds(mutate, st.sampled_from(TEMPLATES), edits)))
def test_decoder_never_raises_anything_but_decode_error(message: bytes) -> None:
    try:
        packet = MsgpackDecoder(DecoderLimits(max_depth=8)).feed(message)
    except DecodeError as e:
        assert len(str(e)) < 100
    else:
        # Whatever it accepted is a valid packet that encodes again.
        assert packet is not None and isinstance(packet.namespace, str)
        encode(packet)
