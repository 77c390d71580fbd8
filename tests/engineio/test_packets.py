"""Engine.IO v4 codec: known encodings, round trips and rejected input."""

import base64

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txrealtime.engineio.packets import (
    DecodeError,
    Packet,
    PacketType,
    decode_payload,
    decode_ws_frame,
    encode_payload,
    encode_ws_frame,
)

text_packets = st.builds(Packet, st.sampled_from(list(PacketType)), st.text())
binary_packets = st.builds(Packet, st.just(PacketType.MESSAGE), st.binary())
packets = st.one_of(text_packets, binary_packets)
# Polling payloads are split on the record separator, so text data may not contain it.
polling_packets = st.one_of(
    st.builds(Packet, st.sampled_from(list(PacketType)), st.text().filter(lambda s: "\x1e" not in s)),
    binary_packets,
)


class KnownEncodingsTests(SynchronousTestCase):
    def test_ws_text(self) -> None:
        self.assertEqual(encode_ws_frame(Packet(PacketType.MESSAGE, "héllo")), ("4héllo".encode(), False))
        self.assertEqual(encode_ws_frame(Packet(PacketType.PING, "probe")), (b"2probe", False))

    def test_ws_binary(self) -> None:
        self.assertEqual(encode_ws_frame(Packet(PacketType.MESSAGE, b"\x01\x02")), (b"\x01\x02", True))
        self.assertEqual(decode_ws_frame(b"\x01\x02", True), Packet(PacketType.MESSAGE, b"\x01\x02"))

    def test_payload(self) -> None:
        payload = encode_payload(
            [
                Packet(PacketType.MESSAGE, "hello"),
                Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04"),
                Packet(PacketType.PING),
            ]
        )
        self.assertEqual(payload, "4hello\x1ebAQIDBA==\x1e2")
        self.assertEqual(
            decode_payload("4hello\x1ebAQIDBA==\x1e3"),
            [
                Packet(PacketType.MESSAGE, "hello"),
                Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04"),
                Packet(PacketType.PONG),
            ],
        )

    def test_only_messages_are_binary(self) -> None:
        self.assertRaises(ValueError, Packet, PacketType.PING, b"x")


class RejectTests(SynchronousTestCase):
    def test_bad_payloads(self) -> None:
        for bad in ["", "9", "4a\x1e", "x", "b!!!", "bAQI"]:
            with self.subTest(payload=bad):
                self.assertRaises(DecodeError, decode_payload, bad)

    def test_bad_frames(self) -> None:
        for bad in [b"", b"7x", b"4\xff\xfe", b"b!!!", b"bAQI"]:
            with self.subTest(frame=bad):
                self.assertRaises(DecodeError, decode_ws_frame, bad, False)

    def test_base64_text_frame(self) -> None:
        """A client with ``forceBase64`` sends binary over WebSocket as text ``b<base64>``: Node's parser takes it."""
        self.assertEqual(decode_ws_frame(b"bAQID", False), Packet(PacketType.MESSAGE, b"\x01\x02\x03"))
        self.assertEqual(decode_ws_frame(b"b", False), Packet(PacketType.MESSAGE, b""))


class RoundTripTests(SynchronousTestCase):
    @given(packets)
    def test_ws_round_trip(self, packet: Packet) -> None:
        self.assertEqual(decode_ws_frame(*encode_ws_frame(packet)), packet)

    @given(st.binary())
    def test_ws_base64_round_trip(self, data: bytes) -> None:
        frame = "b" + base64.b64encode(data).decode("ascii")
        self.assertEqual(decode_ws_frame(frame.encode(), False), Packet(PacketType.MESSAGE, data))

    @given(st.binary())
    def test_ws_text_decoding_never_crashes(self, frame: bytes) -> None:
        try:
            packet = decode_ws_frame(frame, False)
        except DecodeError:
            return
        self.assertIsInstance(packet, Packet)

    @given(st.lists(polling_packets, min_size=1))
    def test_payload_round_trip(self, batch: list[Packet]) -> None:
        self.assertEqual(decode_payload(encode_payload(batch)), batch)

    @given(st.text())
    def test_decoding_never_crashes(self, text: str) -> None:
        try:
            result = decode_payload(text)
        except DecodeError:
            return
        self.assertEqual(len(result), text.count("\x1e") + 1)
        self.assertTrue(all(isinstance(p, Packet) for p in result))
