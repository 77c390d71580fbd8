"""The frames between master and workers: exact bytes, round trips, and fuzzing of the decoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from txrealtime.cluster.wire import (
    Adopted,
    Connection,
    Frame,
    Hello,
    Load,
    Members,
    Message,
    NumSub,
    NumSubReply,
    PSubscribe,
    Publish,
    PUnsubscribe,
    Subscribe,
    Unsubscribe,
    WireError,
    decode,
    encode,
)


def test_exact_bytes() -> None:
    assert encode(Hello(1, 4242)) == b"\x01" + b"\x00\x00\x00\x011" + b"\x00\x00\x00\x044242"
    assert encode(Connection(7, b"GET / HTTP/1.1\r\n")) == (
        b"\x02\x00\x00\x00\x017\x00\x00\x00\x10GET / HTTP/1.1\r\n"
    )
    assert encode(Message("", "socket.io#/#", b"\x93\xa1x")) == (
        b"\x09\x00\x00\x00\x00\x00\x00\x00\x0csocket.io#/#\x00\x00\x00\x03\x93\xa1x"
    )
    assert encode(Subscribe("é")) == b"\x04\x00\x00\x00\x02\xc3\xa9"


texts = st.text(max_size=30)
numbers = st.integers(0, 2**63)
frames: st.SearchStrategy[Frame] = st.one_of(
    st.builds(Hello, numbers, numbers),
    st.builds(Connection, numbers, st.binary(max_size=64)),
    st.builds(Adopted, numbers),
    st.builds(Subscribe, texts),
    st.builds(Unsubscribe, texts),
    st.builds(PSubscribe, texts),
    st.builds(PUnsubscribe, texts),
    st.builds(Publish, texts, st.binary(max_size=64)),
    st.builds(Message, texts, texts, st.binary(max_size=64)),
    st.builds(NumSub, numbers, texts),
    st.builds(NumSubReply, numbers, numbers),
    st.builds(Load, numbers),
    st.builds(Members, texts),
)


@given(frames)
def test_every_frame_round_trips(frame: Frame) -> None:
    assert decode(encode(frame)) == frame


@given(st.binary(max_size=80))
def test_decoding_anything_gives_a_frame_or_a_wire_error(body: bytes) -> None:
    try:
        frame = decode(body)
    except WireError:
        return
    assert encode(frame) == body  # what decodes is exactly what the encoder makes


@given(frames, st.data())
def test_mutated_frames_give_a_frame_or_a_wire_error(frame: Frame, data: st.DataObject) -> None:
    body = bytearray(encode(frame))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(body)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.integers(0, 255))
        if op == "insert":
            body.insert(position, byte)
        elif position < len(body):
            if op == "delete":
                del body[position]
            else:
                body[position] = byte
    try:
        decode(bytes(body))
    except WireError:
        pass


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "empty frame"),
        (b"\x63", "unknown frame kind 99"),
        (b"\x03", "Adopted: missing field id"),
        (b"\x03\x00\x00\x00\x05ab", "Adopted.id: 5 bytes announced, 2 left"),
        (b"\x03\x00\x00\x00\x02-1", "Adopted.id: not a number"),
        (b"\x03\x00\x00\x00\x0207", "Adopted.id: not a number"),
        (b"\x03\x00\x00\x00\x017x", "Adopted: 1 bytes after the last field"),
        (b"\x04\x00\x00\x00\x01\xff", "Subscribe.channel: not UTF-8"),
    ],
)
def test_malformed_frames(body: bytes, error: str) -> None:
    with pytest.raises(WireError, match=error):
        decode(body)


def test_negative_numbers_are_not_encoded() -> None:
    with pytest.raises(ValueError, match="Load.sessions must be >= 0"):
        encode(Load(-1))


def test_members_list_the_workers() -> None:
    assert encode(Members("0,2")) == b"\x0d\x00\x00\x00\x030,2"
    assert decode(encode(Members("0,2"))).parsed() == [0, 2]  # type: ignore[union-attr]
    assert Members("").parsed() == []
    with pytest.raises(WireError, match="not a list of numbers"):
        Members("1,x").parsed()
