"""Engine.IO v3 codec: encodings checked against Node's parser-v3, round trips, rejected input, fuzzing."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txrealtime.engineio.packets import DecodeError, Packet, PacketType
from txrealtime.engineio.packets_v3 import (
    _decode_text,
    decode_ws_frame,
    encode_payload,
    encode_ws_frame,
    iter_binary_payload,
    iter_payload,
    jsonp_data,
    jsonp_script,
)

M, PING, PONG, NOOP = PacketType.MESSAGE, PacketType.PING, PacketType.PONG, PacketType.NOOP
MIXED = [Packet(M, "héllo 𝄞"), Packet(M, b"\x01\x02\x03\x04"), Packet(PONG)]

# Text without lone surrogates: they cannot travel as UTF-8 (they become U+FFFD, see packets.utf8).
text = st.text(st.characters(exclude_categories=["Cs"]))
text_packets = st.builds(Packet, st.sampled_from(list(PacketType)), text)
binary_packets = st.builds(Packet, st.just(M), st.binary())
packets = st.one_of(text_packets, binary_packets)


class KnownEncodingsTests(SynchronousTestCase):
    """Expected values are what Node's engine.io/build/parser-v3 produces for the same packets."""

    def test_text_payload_counts_utf16_units(self) -> None:
        self.assertEqual(encode_payload(MIXED, binary=False), "9:4héllo 𝄞10:b4AQIDBA==1:3")

    def test_binary_payload(self) -> None:
        expected = bytes([0, 1, 2, 255, *"4héllo 𝄞".encode(), 1, 5, 255, 4, 1, 2, 3, 4, 0, 1, 255, 51])
        self.assertEqual(encode_payload(MIXED, binary=True), expected)

    def test_text_payload_when_nothing_is_binary(self) -> None:
        self.assertEqual(encode_payload([Packet(PacketType.OPEN, "{}")], binary=True), "3:0{}")
        self.assertEqual(encode_payload([], binary=False), "0:")

    def test_ws_frames(self) -> None:
        self.assertEqual(encode_ws_frame(Packet(M, b"\x01\x02"), binary=True), (b"\x04\x01\x02", True))
        self.assertEqual(encode_ws_frame(Packet(M, b"\x01\x02"), binary=False), (b"b4AQI=", False))
        self.assertEqual(encode_ws_frame(Packet(M, "é"), binary=True), ("4é".encode(), False))
        self.assertEqual(decode_ws_frame(b"\x04\x01\x02", True), Packet(M, b"\x01\x02"))
        self.assertEqual(decode_ws_frame(b"b4AQI=", False), Packet(M, b"\x01\x02"))
        self.assertEqual(decode_ws_frame(b"2probe", False), Packet(PING, "probe"))

    def test_decode_text_payload(self) -> None:
        self.assertEqual(
            list(iter_payload("9:4héllo 𝄞2:2x0:1:610:b4AQIDBA==")),
            [Packet(M, "héllo 𝄞"), Packet(PING, "x"), Packet(NOOP), Packet(M, b"\x01\x02\x03\x04")],
        )

    def test_decode_binary_payload(self) -> None:
        body = bytes([0, 3, 255, 0x34, 0x68, 0x69, 1, 3, 255, 4, 9, 8])
        self.assertEqual(list(iter_binary_payload(body)), [Packet(M, "hi"), Packet(M, b"\x09\x08")])

    def test_split_surrogate_pair_as_javascript_slices(self) -> None:
        # A length that ends inside a surrogate pair leaves a lone surrogate on each side, as in JS.
        packets = iter_payload("2:4𝄞")
        self.assertEqual(next(packets), Packet(M, "\ud834"))
        self.assertRaises(DecodeError, next, packets)  # what is left, "\udd1e", is no length

    def test_jsonp(self) -> None:
        # Node: "___eio[" + j digits + "](" + JSON.stringify(payload) with U+2028/9 escaped + ");"
        self.assertEqual(jsonp_script("3x", '4a\x1e\u2028"\\ \ud800'), '___eio[3]("4a\\u001e\\u2028\\"\\\\ \\ud800");')
        self.assertEqual(jsonp_data("d=5%3A4a%5Cnb"), "5:4a\nb")
        self.assertEqual(jsonp_data("d=6%3A4a%5C%5Cnb"), "6:4a\\nb")
        self.assertIsNone(jsonp_data("x=1"))
        self.assertIsNone(jsonp_data("d=1&d=2"))


class RoundTripTests(SynchronousTestCase):
    @given(st.lists(packets, min_size=1, max_size=5))
    def test_text_payload(self, items: list[Packet]) -> None:
        payload = encode_payload(items, binary=False)
        assert isinstance(payload, str)
        self.assertEqual(list(iter_payload(payload)), items)

    @given(st.lists(packets, min_size=1, max_size=5))
    def test_binary_payload(self, items: list[Packet]) -> None:
        payload = encode_payload(items, binary=True)
        decoded = list(iter_binary_payload(payload) if isinstance(payload, bytes) else iter_payload(payload))
        self.assertEqual(decoded, items)

    @given(packets, st.booleans())
    def test_ws_frame(self, packet: Packet, binary: bool) -> None:
        self.assertEqual(decode_ws_frame(*encode_ws_frame(packet, binary)), packet)

    @given(text)
    def test_jsonp_escaping(self, payload: str) -> None:
        script = jsonp_script("0", payload)
        self.assertTrue(script.startswith("___eio[0](") and script.endswith(");"))
        self.assertEqual(json.loads(script[len("___eio[0](") : -2]), payload)


class RejectTests(SynchronousTestCase):
    def test_bad_text_payloads(self) -> None:
        for bad in ["", "4", "x:4a", "2:4", "3:4a", "1:9", "1:b", "3:b1x", "4:b4!!", ":4", "2:4a3", "0x2:4a"]:
            with self.subTest(bad=bad):
                self.assertRaises(DecodeError, list, iter_payload(bad))

    def test_bad_binary_payloads(self) -> None:
        for bad in [b"", b"\x02\x01\xff4", b"\x00\xff", b"\x00\x0a\xff4", b"\x00\x05\xff4a", b"\x01\x02\xff\x02x",
                    b"\x00\x02\xff\x34\xff", b"\x00" + b"\x01" * 40]:
            with self.subTest(bad=bad):
                self.assertRaises(DecodeError, list, iter_binary_payload(bad))

    def test_bad_ws_frames(self) -> None:
        for bad, binary in [(b"", True), (b"\x02ping", True), (b"", False), (b"b2AA==", False), (b"b4!", False),
                            (b"9", False), (b"b\xff", False)]:
            with self.subTest(bad=bad):
                self.assertRaises(DecodeError, decode_ws_frame, bad, binary)

    def test_packets_before_the_bad_one_come_out(self) -> None:
        packets = iter_payload("2:4a2:4b1:x")
        self.assertEqual([next(packets), next(packets)], [Packet(M, "a"), Packet(M, "b")])
        self.assertRaises(DecodeError, next, packets)


def by_units(payload: str) -> list[Packet] | None:
    """A plain reference decoder working on UTF-16 code units throughout; ``None`` where it rejects."""
    units = payload.encode("utf-16-le", "surrogatepass")
    out, pos = [], 0
    while pos < len(units):
        colon = units.find(b":\x00", pos)
        while colon >= 0 and (colon - pos) % 2:
            colon = units.find(b":\x00", colon + 1)
        digits = units[pos:colon].decode("utf-16-le", "surrogatepass") if colon >= 0 else ""
        if not digits.isascii() or not digits.isdigit() or len(digits) > 16:
            return None
        start, length = colon + 2, 2 * int(digits)
        if start + length > len(units):
            return None
        item = units[start : start + length].decode("utf-16-le", "surrogatepass")
        if item:
            try:
                out.append(_decode_text(item))
            except DecodeError:
                return None
        pos = start + length
    return out


astral_items = st.text(st.sampled_from("4a:é𝄞😀b2"), min_size=1, max_size=6)


class AstralTests(SynchronousTestCase):
    @given(st.lists(st.tuples(astral_items, st.integers(-2, 2)), min_size=1, max_size=4))
    def test_lengths_count_as_javascript(self, items: list[tuple[str, int]]) -> None:
        # Lengths right, or off by a little, so that some end inside a surrogate pair.
        payload = "".join(f"{max(len(i.encode('utf-16-le')) // 2 + off, 0)}:{i}" for i, off in items)
        expected = by_units(payload)
        try:
            decoded: list[Packet] | None = list(iter_payload(payload))
        except DecodeError:
            decoded = None
        self.assertEqual(decoded, expected)


class FuzzTests(SynchronousTestCase):
    """Any input either decodes or raises DecodeError: nothing else escapes the codec."""

    @given(st.text(max_size=80))
    def test_text_payload(self, payload: str) -> None:
        try:
            list(iter_payload(payload))
        except DecodeError:
            pass

    @given(st.binary(max_size=80))
    def test_binary_payload(self, payload: bytes) -> None:
        try:
            list(iter_binary_payload(payload))
        except DecodeError:
            pass

    @given(st.binary(max_size=40), st.booleans())
    def test_ws_frame(self, payload: bytes, binary: bool) -> None:
        try:
            decode_ws_frame(payload, binary)
        except DecodeError:
            pass

    @given(st.text(max_size=80))
    def test_jsonp_body(self, body: str) -> None:
        data = jsonp_data(body)
        self.assertTrue(data is None or isinstance(data, str))
