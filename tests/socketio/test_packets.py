"""Socket.IO v5 codec: the protocol document's examples, validation, and round-trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from txrealtime.protocol.packets import DecodeError, Decoder, Packet, PacketType, encode

T = PacketType


@pytest.mark.parametrize(
    "packet, wire",
    [
        (Packet(T.CONNECT), ["0"]),
        (Packet(T.CONNECT, "/admin", {"token": "123"}), ['0/admin,{"token":"123"}']),
        (Packet(T.CONNECT, "/", {"sid": "oSO0OpakMV_3jnilAAAA"}), ['0{"sid":"oSO0OpakMV_3jnilAAAA"}']),
        (Packet(T.DISCONNECT, "/admin"), ["1/admin,"]),
        (Packet(T.EVENT, "/", ["foo"]), ['2["foo"]']),
        (Packet(T.EVENT, "/admin", ["bar"], 12), ['2/admin,12["bar"]']),
        (Packet(T.ACK, "/admin", ["bar"], 13), ['3/admin,13["bar"]']),
        (Packet(T.CONNECT_ERROR, "/", {"message": "Not authorized"}), ['4{"message":"Not authorized"}']),
        (
            Packet(T.EVENT, "/", ["baz", b"\x01\x02\x03\x04"]),
            ['51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
        ),
        (Packet(T.ACK, "/admin", [b"\x03"], 15), ['61-/admin,15[{"_placeholder":true,"num":0}]', b"\x03"]),
        (Packet(T.EVENT, "/", ["unicode", "é✓"]), ['2["unicode","é✓"]']),
    ],
)
def test_protocol_examples(packet: Packet, wire: list[str | bytes]) -> None:
    assert encode(packet) == wire
    decoder = Decoder()
    results = [decoder.feed(m) for m in wire]
    assert results[:-1] == [None] * (len(wire) - 1)
    assert results[-1] == packet
    assert not decoder.pending


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "missing packet type"),
        ("x", "missing packet type"),
        ("7", "unknown packet type"),
        ('2{"a":1}', "invalid payload"),
        ("2[]", "invalid payload"),
        ("2[true]", "invalid payload"),
        ("2[null]", "invalid payload"),
        ("2", "invalid payload"),
        ("2[1", "invalid JSON"),
        ('3["x"]', "needs an ack id"),
        ("3", "invalid payload"),
        ('1/admin,{"a":1}', "invalid payload"),
        ('0/admin,"str"', "invalid payload"),
        ("4", "invalid payload"),
        ('012{"a":1}', "cannot carry an ack id"),
        ('2' + "9" * 17 + '["x"]', "ack id out of range"),
        ('2' + "9" * 16 + '["x"]', "ack id out of range"),
        ('5-["x"]', "missing attachment count"),
        ('5x-["x"]', "missing attachment count"),
        ('5101-["x",{"_placeholder":true,"num":0}]', "too many attachments"),
    ],
)
def test_invalid_packets(text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        Decoder(max_attachments=100).feed(text)


def test_largest_ack_id() -> None:
    assert Decoder().feed('29007199254740991["x"]') == Packet(T.EVENT, "/", ["x"], 2**53 - 1)


def test_binary_needs_its_attachments_in_order() -> None:
    decoder = Decoder()
    with pytest.raises(DecodeError, match="not reconstructing"):
        decoder.feed(b"\x00")
    assert decoder.feed('52-["x",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]') is None
    assert decoder.feed(b"a") is None
    with pytest.raises(DecodeError, match="plaintext data when reconstructing"):
        decoder.feed('2["y"]')


def test_attachments_are_put_back_where_their_numbers_say() -> None:
    decoder = Decoder()
    decoder.feed('52-["x",{"_placeholder":true,"num":1},{"k":{"_placeholder":true,"num":0}}]')
    decoder.feed(b"first")
    assert decoder.feed(b"second") == Packet(T.EVENT, "/", ["x", b"second", {"k": b"first"}])


def test_placeholder_pointing_nowhere() -> None:
    decoder = Decoder()
    decoder.feed('51-["x",{"_placeholder":true,"num":3}]')
    with pytest.raises(DecodeError, match="missing attachment"):
        decoder.feed(b"a")


def test_binary_packet_with_no_attachments() -> None:
    assert Decoder().feed('50-["x"]') == Packet(T.EVENT, "/", ["x"])


def test_namespace_without_payload_and_nonroot_names() -> None:
    assert Decoder().feed("0/chat") == Packet(T.CONNECT, "/chat")
    assert Decoder().feed("1/chat,") == Packet(T.DISCONNECT, "/chat")


def test_args_and_event() -> None:
    packet = Packet(T.EVENT, "/", ["name", 1, 2], 3)
    assert (packet.event, packet.args) == ("name", [1, 2])
    assert Packet(T.ACK, "/", [1, 2], 3).args == [1, 2]


json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20) | st.binary(max_size=16)
json_data = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
namespaces = st.sampled_from(["/", "/admin", "/a/b", "/é"])
ack_ids = st.none() | st.integers(0, 2**53 - 1)


@given(namespaces, st.text(min_size=1, max_size=10), st.lists(json_data, max_size=4), ack_ids)
def test_event_round_trip(namespace: str, event: str, args: list[Any], ack_id: int | None) -> None:
    packet = Packet(T.EVENT, namespace, [event, *args], ack_id)
    decoder = Decoder(max_attachments=1000)
    *head, last = [decoder.feed(m) for m in encode(packet)]
    assert head == [None] * len(head)
    assert last == packet


@given(namespaces, st.lists(json_data, max_size=4), st.integers(0, 2**53 - 1))
def test_ack_round_trip(namespace: str, args: list[Any], ack_id: int) -> None:
    packet = Packet(T.ACK, namespace, args, ack_id)
    decoder = Decoder(max_attachments=1000)
    assert [decoder.feed(m) for m in encode(packet)][-1] == packet


@given(st.text(max_size=40))
def test_decoder_never_raises_anything_but_decode_error(text: str) -> None:
    try:
        Decoder().feed(text)
    except DecodeError:
        pass
