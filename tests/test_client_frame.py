"""The WebSocket fast path's frame reader (:func:`txrealtime._autobahn.client_frame`): what it takes and
what it leaves to Autobahn, against frames built here by RFC 6455's rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from txrealtime._autobahn import client_frame


def frame(payload: bytes, mask: bytes, first: int = 0x81, wide: bool = False) -> bytes:
    """A masked client frame; ``wide`` writes the length in 64 bits (which the fast path leaves)."""
    size = len(payload)
    if wide:
        head = bytes((first, 0x80 | 127)) + size.to_bytes(8, "big")
    elif size < 126:
        head = bytes((first, 0x80 | size))
    else:
        head = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


payloads = st.binary(max_size=300)
masks = st.binary(min_size=4, max_size=4)


@given(st.binary(max_size=20), payloads, masks, st.booleans(), st.binary(max_size=20))
def test_a_whole_frame_is_taken_unmasked(before: bytes, payload: bytes, mask: bytes, binary: bool,
                                         after: bytes) -> None:
    data = before + frame(payload, mask, 0x82 if binary else 0x81) + after
    assert client_frame(data, len(before), 300) == (payload, binary, len(data) - len(after))


@given(payloads, masks, st.data())
def test_a_partial_frame_is_left(payload: bytes, mask: bytes, data: st.DataObject) -> None:
    whole = frame(payload, mask)
    cut = data.draw(st.integers(0, len(whole) - 1))
    assert client_frame(whole[:cut], 0, 300) == (None, False, 0)


@given(payloads, masks, st.sampled_from([0x01, 0x02, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0xA1, 0x91, 0x83]))
def test_anything_but_a_final_text_or_binary_frame_without_rsv_is_left(payload: bytes, mask: bytes,
                                                                       first: int) -> None:
    # fragments, continuations, close/ping/pong, RSV1-3 (compressed or invalid), reserved opcodes
    assert client_frame(frame(payload, mask, first), 0, 300) == (None, False, 0)


@given(payloads, masks)
def test_unmasked_oversize_and_64_bit_lengths_are_left(payload: bytes, mask: bytes) -> None:
    whole = frame(payload, mask)
    unmasked = bytes((whole[0], whole[1] & 0x7F)) + whole[2:]
    assert client_frame(unmasked + b"\x00" * 8, 0, 300) == (None, False, 0)
    assert client_frame(frame(payload, mask, wide=True), 0, 300) == (None, False, 0)
    if payload:
        assert client_frame(whole, 0, len(payload) - 1) == (None, False, 0)
