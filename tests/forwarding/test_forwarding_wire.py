"""The messages between nodes serving each other's sessions: exact bytes, round trips, fuzzing of the decoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from txrealtime.engineio.packets import Packet, PacketType, UncompressedPacket
from txrealtime.forwarding.wire import (
    Cancel,
    Closed,
    Ended,
    Lookup,
    Message,
    Outgoing,
    Owner,
    Packets,
    Request,
    Response,
    Upgrade,
    WireError,
    decode,
    decode_headers,
    decode_packets,
    encode,
    encode_headers,
    encode_packets,
    lookup_channel,
    node_channel,
    tag_of,
)


def test_exact_bytes() -> None:
    assert encode(Cancel("a1b2c3", 7)) == b"\x03" + b"\x00\x00\x00\x06a1b2c3" + b"\x00\x00\x00\x017"
    assert encode(Owner("n", 12, 1)) == b"\x08\x00\x00\x00\x01n\x00\x00\x00\x0212\x00\x00\x00\x011"
    assert encode_headers([("accept", "*/*"), ("x-a", "")]) == b"accept:*/*\nx-a:\n"
    assert encode_packets([Packet(PacketType.MESSAGE, "hi"), UncompressedPacket(PacketType.MESSAGE, b"\x01")]) == (
        b"\x00\x00\x00\x00\x034hi" + b"\x03\x00\x00\x00\x01\x01"
    )
    assert lookup_channel("socket.io") == "socket.io-forward#"
    assert node_channel("socket.io", "a1b2c3") == "socket.io-forward#a1b2c3#"


def test_tags() -> None:
    assert tag_of("Zx3_-abcdefghijklmnop~a1b2c3") == "a1b2c3"
    assert tag_of("1.Zx3_-abcdefghijklmnop~w1") == "w1"  # inside a worker's prefix
    assert tag_of("no-tag") is None
    assert tag_of("bad~tag!") is None
    assert tag_of("empty~") is None


texts = st.text(max_size=20)
ids = st.integers(0, 2**63)
bits = st.integers(0, 1)
blobs = st.binary(max_size=64)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Request, texts, ids, texts, texts, texts, blobs, texts, bits, blobs),
    st.builds(Response, texts, ids, st.integers(100, 599), blobs, blobs),
    st.builds(Cancel, texts, ids),
    st.builds(Upgrade, texts, ids, texts, texts, blobs, texts, bits),
    st.builds(Packets, texts, ids, blobs),
    st.builds(Closed, texts, ids, texts, texts),
    st.builds(Lookup, texts, ids, texts),
    st.builds(Owner, texts, ids, bits),
    st.builds(Outgoing, texts, ids, blobs),
    st.builds(Ended, texts, ids, texts, texts),
)


@given(messages)
def test_every_message_round_trips(message: Message) -> None:
    assert decode(encode(message)) == message


@given(st.binary(max_size=120))
def test_decoding_anything_gives_a_message_or_a_wire_error(data: bytes) -> None:
    try:
        message = decode(data)
    except WireError:
        return
    assert encode(message) == data


@given(messages, st.data())
def test_mutated_messages_give_a_message_or_a_wire_error(message: Message, data: st.DataObject) -> None:
    body = bytearray(encode(message))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(body)))
        byte = data.draw(st.integers(0, 255))
        if data.draw(st.booleans()):
            body.insert(position, byte)
        elif position < len(body):
            body[position] = byte
    try:
        decode(bytes(body))
    except WireError:
        pass


header_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters=":"), min_size=1,
                       max_size=12)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=20)


@given(st.lists(st.tuples(header_names, header_values), max_size=6))
def test_headers_round_trip(headers: list[tuple[str, str]]) -> None:
    assert decode_headers(encode_headers(headers)) == headers


@given(st.binary(max_size=60))
def test_decoding_any_headers_gives_pairs_or_a_wire_error(data: bytes) -> None:
    try:
        pairs = decode_headers(data)
    except WireError:
        return
    assert encode_headers(pairs) == data


@pytest.mark.parametrize("pair", [("a:b", "c"), ("", "c"), ("a", "b\nc"), ("a\r", "b"), ("a", "é€")])
def test_headers_the_wire_cannot_hold(pair: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        encode_headers([pair])


packets = st.one_of(
    st.builds(Packet, st.sampled_from([PacketType.PING, PacketType.PONG, PacketType.MESSAGE, PacketType.CLOSE,
                                       PacketType.NOOP, PacketType.UPGRADE]),
              st.text(st.characters(exclude_categories=["Cs"]), max_size=20)),
    st.builds(Packet, st.just(PacketType.MESSAGE), st.binary(max_size=20)),
    st.builds(UncompressedPacket, st.just(PacketType.MESSAGE), st.text(max_size=5) | st.binary(max_size=5)),
)


@given(st.lists(packets, max_size=5))
def test_packets_round_trip(batch: list[Packet]) -> None:
    decoded = decode_packets(encode_packets(batch))
    assert decoded == batch
    assert [p.compress for p in decoded] == [p.compress for p in batch]


@given(st.binary(max_size=60))
def test_decoding_any_packets_gives_packets_or_a_wire_error(data: bytes) -> None:
    try:
        decode_packets(data)
    except WireError:
        pass


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x02\x00\x00\x00\x02", "Response.origin: 2 bytes announced, 0 left"),
        (b"\x07\x00\x00\x00\x01n\x00\x00\x00\x011\x00\x00\x00\x00\x00", "after the last field"),
        (b"\x08\x00\x00\x00\x01n\x00\x00\x00\x011\x00\x00\x00\x012", "Owner.owned must be 0 or 1"),
    ],
)
def test_malformed_messages(data: bytes, error: str) -> None:
    with pytest.raises(WireError, match=error):
        decode(data)


@pytest.mark.parametrize(("data", "error"), [(b"\x00\x00", "truncated"), (b"\x04\x00\x00\x00\x00", "bad flags"),
                                              (b"\x01\x00\x00\x00\x02\x01", "bad flags or length"),
                                              (b"\x00\x00\x00\x00\x01\xff", "not valid UTF-8")])
def test_malformed_packets(data: bytes, error: str) -> None:
    with pytest.raises(WireError, match=error):
        decode_packets(data)
