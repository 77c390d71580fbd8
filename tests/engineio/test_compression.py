"""Compression on the wire, in memory on a ``task.Clock``: permessage-deflate frames (RSV1, inflating to the
exact packet), the decompression bomb bound, and gzip/deflate polling responses."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import BASE, NO_BOUNDED_INFLATE, PollingTestCase
from tests.memhttp import MemoryWebSocket, Response, ws_frame
from txrealtime import _compat
from txrealtime.engineio import (
    CloseReason,
    EngineIOOptions,
    HttpCompression,
    MessageReceived,
    PerMessageDeflate,
    SessionManager,
)
from txrealtime.engineio import deflate as deflate_module
from txrealtime.engineio import websocket as websocket_module
from txrealtime.engineio.deflate import Deflater
from txrealtime.engineio.packets import encode_ws_frame
from txrealtime.engineio.polling import accepted_encoding
from txrealtime.engineio.websocket import EngineIOWebSocketFactory

WS = "/engine.io/?EIO=4&transport=websocket"
OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
"""What Node's ``ws`` client (and browsers) offer."""
TEXT, BINARY, CLOSE = 0x81, 0x82, 0x88
DEFLATED_TEXT, DEFLATED_BINARY = 0xC1, 0xC2
"""First bytes of final frames: FIN, RSV1 for a compressed message, the opcode."""
BIG = "x" * 2000
VARIED = json.dumps([[i, i * 7919 % 1000, f"user-{i}"] for i in range(150)])
"""About 3 KB that compress to about a third: a second copy compresses to far less than the first."""


def count_deflates(case: SynchronousTestCase) -> list[bytes]:
    """Record each message zlib compresses for the WebSocket transport (the real compression still runs)."""
    calls: list[bytes] = []
    real = deflate_module._compress

    def counting(compressor: Any, payload: bytes) -> bytes:
        calls.append(payload)
        return real(compressor, payload)

    case.patch(deflate_module, "_compress", counting)
    return calls


def inflate(payload: bytes, inflater: Any = None) -> bytes:
    """A permessage-deflate message's payload, inflated (RFC 7692 section 7.2.2)."""
    inflater = inflater or zlib.decompressobj(-15)
    out: bytes = inflater.decompress(payload + b"\x00\x00\xff\xff")
    return out


def deflated(data: bytes, compressor: Any = None) -> bytes:
    """``data`` compressed as a client sends it: a sync flush without its final 4 bytes."""
    compressor = compressor or zlib.compressobj(6, zlib.DEFLATED, -15)
    body: bytes = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return body[:-4]


class DeflateTestCase(PollingTestCase):
    options = EngineIOOptions(max_payload=100_000, per_message_deflate=True)
    skip = NO_BOUNDED_INFLATE

    def connect(self, headers: dict[str, str] | None = OFFER) -> tuple[MemoryWebSocket, str]:
        ws = MemoryWebSocket(self.http, WS, headers)
        self.assertEqual(ws.status, 101)
        [(first, payload)] = ws.frames(first_byte=True)
        self.assertEqual(first, TEXT)  # the OPEN packet is small: plain
        return ws, json.loads(payload[1:])["sid"]

    def received(self) -> list[str | bytes]:
        return [e.data for e in self.events if isinstance(e, MessageReceived)]


class PerMessageDeflateTests(DeflateTestCase):
    def test_negotiated_as_ws_answers(self) -> None:
        ws, _ = self.connect()
        self.assertEqual(ws.headers["sec-websocket-extensions"], "permessage-deflate")

    def test_messages_from_the_threshold_on_are_compressed(self) -> None:
        ws, sid = self.connect()
        self.manager.send(sid, "a" * 1023)  # with the type digit: 1024 bytes, the threshold
        self.manager.send(sid, "b" * 1022)  # 1023 bytes: plain
        self.manager.send(sid, b"\x07" * 1024)
        self.manager.send(sid, "small")
        [(first, payload), plain, (binary_first, binary), small] = ws.frames(first_byte=True)
        self.assertEqual(first, DEFLATED_TEXT)
        self.assertLess(len(payload), 100)
        inflater = zlib.decompressobj(-15)  # the client's: context taken over from message to message
        self.assertEqual(inflate(payload, inflater), b"4" + b"a" * 1023)
        self.assertEqual(plain, (TEXT, b"4" + b"b" * 1022))
        self.assertEqual(binary_first, DEFLATED_BINARY)
        self.assertEqual(inflate(binary, inflater), b"\x07" * 1024)
        self.assertEqual(small, (TEXT, b"4small"))

    def test_compress_false_sends_plain(self) -> None:
        ws, sid = self.connect()
        self.manager.send(sid, BIG, compress=False)
        self.assertEqual(ws.frames(first_byte=True), [(TEXT, b"4" + BIG.encode())])
        session = self.manager.get(sid)
        assert session is not None
        session.send_many([BIG, "y" * 2000], compress=True)
        frames = ws.frames(first_byte=True)
        self.assertEqual([first for first, _ in frames], [DEFLATED_TEXT, DEFLATED_TEXT])

    def test_context_taken_over_between_messages(self) -> None:
        ws, sid = self.connect()
        self.manager.send(sid, VARIED + "1")
        self.manager.send(sid, VARIED + "2")
        [(_, first), (_, second)] = ws.frames(first_byte=True)
        inflater = zlib.decompressobj(-15)
        self.assertEqual(inflate(first, inflater), b"4" + VARIED.encode() + b"1")
        self.assertEqual(inflate(second, inflater), b"4" + VARIED.encode() + b"2")
        self.assertLess(len(second), len(first) / 10)  # the second refers back to the first
        with self.assertRaises(zlib.error):
            inflate(second)  # so it cannot be inflated on its own

    def test_connections_with_one_history_share_each_compression(self) -> None:
        calls = count_deflates(self)
        peers = [self.connect() for _ in range(3)]
        inflaters = [zlib.decompressobj(-15) for _ in peers]
        for n in range(3):
            message = VARIED + str(n)  # one object for every session, as a Socket.IO broadcast
            for _, sid in peers:
                self.manager.send(sid, message)
            self.assertEqual(len(calls), n + 1)
            frames = [ws.frames(first_byte=True) for ws, _ in peers]
            self.assertEqual(frames[0], frames[1])
            self.assertEqual(frames[0], frames[2])
            for inflater, [(first, payload)] in zip(inflaters, frames, strict=True):
                self.assertEqual((first, inflate(payload, inflater)), (DEFLATED_TEXT, b"4" + message.encode()))

    def test_histories_part_and_each_stays_right(self) -> None:
        calls = count_deflates(self)
        (a, sid_a), (b, sid_b) = self.connect(), self.connect()
        inflate_a, inflate_b = zlib.decompressobj(-15), zlib.decompressobj(-15)
        self.manager.send(sid_a, VARIED + "private")  # a's history is its own from now on
        shared = VARIED + "shared"
        self.manager.send(sid_a, shared)
        self.manager.send(sid_b, shared)
        self.assertEqual(len(calls), 3)
        [(_, private), (_, a_shared)] = a.frames(first_byte=True)
        [(_, b_shared)] = b.frames(first_byte=True)
        self.assertEqual(inflate(private, inflate_a), b"4" + VARIED.encode() + b"private")
        self.assertEqual(inflate(a_shared, inflate_a), b"4" + shared.encode())
        self.assertEqual(inflate(b_shared, inflate_b), b"4" + shared.encode())
        # A newcomer starts from the empty history: the first message b compressed is reused for it.
        c, sid_c = self.connect()
        first = VARIED + "private"
        self.manager.send(sid_b, first)
        self.manager.send(sid_c, first)
        self.assertEqual(inflate(c.frames(first_byte=True)[0][1]), b"4" + first.encode())
        self.assertEqual(inflate(b.frames(first_byte=True)[0][1], inflate_b), b"4" + first.encode())

    def test_not_offered_not_compressed(self) -> None:
        ws, sid = self.connect(headers=None)
        self.assertNotIn("sec-websocket-extensions", ws.headers)
        self.manager.send(sid, BIG)
        self.assertEqual(ws.frames(first_byte=True), [(TEXT, b"4" + BIG.encode())])

    def test_compressed_messages_from_the_client(self) -> None:
        ws, sid = self.connect()
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)  # the client keeps its context too
        first, second = b"4" + BIG.encode(), b"4" + BIG.encode() + b"!"
        stream = ws_frame(deflated(first, compressor), opcode=0x41) + ws_frame(b"4plain")
        stream += ws_frame(deflated(second, compressor), opcode=0x41)
        stream += ws_frame(deflated(b"\x00\x01" * 800, compressor), opcode=0x42)
        ws.send_raw(stream)
        # A compressed message in two fragments: RSV1 on the first frame only, FIN on the last.
        body = deflated(b"4fragmented " + BIG.encode(), compressor)
        ws.send_raw(bytes([0x41]) + ws_frame(body[:10])[1:])
        ws.send_raw(ws_frame(body[10:], opcode=0))
        self.assertEqual(
            self.received(), [BIG, "plain", BIG + "!", b"\x00\x01" * 800, "fragmented " + BIG]
        )
        self.assertIsNotNone(self.manager.get(sid))


class SharedContextFreeFrameTests(DeflateTestCase):
    options = EngineIOOptions(
        max_payload=100_000, per_message_deflate=PerMessageDeflate(server_no_context_takeover=True)
    )

    def test_announced(self) -> None:
        ws, _ = self.connect()
        self.assertEqual(ws.headers["sec-websocket-extensions"], "permessage-deflate; server_no_context_takeover")

    def test_a_broadcast_compresses_its_frame_once(self) -> None:
        calls = count_deflates(self)
        peers = [self.connect() for _ in range(3)]
        message = "broadcast " * 300
        for _, sid in peers:
            self.manager.send(sid, message)  # the same object, as a Socket.IO broadcast hands every session
        self.assertEqual(len(calls), 1)
        frames = [ws.frames(first_byte=True) for ws, _ in peers]
        self.assertEqual(frames[0], frames[1])
        self.assertEqual(frames[0], frames[2])
        [(first, payload)] = frames[0]
        self.assertEqual((first, inflate(payload)), (DEFLATED_TEXT, b"4" + message.encode()))
        # Every message stands alone: the next one inflates with a fresh inflater too.
        self.manager.send(peers[0][1], message + "again")
        [(_, again)] = peers[0][0].frames(first_byte=True)
        self.assertEqual(inflate(again), b"4" + message.encode() + b"again")

    def test_a_broadcast_is_encoded_and_framed_once(self) -> None:
        """Connections at one history take the compressed frame the first one built: the Engine.IO packet is
        not encoded again for each (it was, per connection, before the compressed body was looked up)."""
        encoded: list[Any] = []
        real = encode_ws_frame

        def counting(packet: Any) -> tuple[bytes, bool]:
            encoded.append(packet)
            return real(packet)

        self.patch(websocket_module, "encode_ws_frame", counting)
        calls = count_deflates(self)
        peers = [self.connect() for _ in range(3)]
        inflaters = [zlib.decompressobj(-15) for _ in peers]
        for n in range(3):
            message = VARIED + str(n)
            del encoded[:]
            for _, sid in peers:
                self.manager.send(sid, message)
            # The first broadcast starts each connection's history (encoded by each); later ones once in all.
            self.assertEqual(len(encoded), 3 if n == 0 else 1)
            self.assertEqual(len(calls), n + 1)
            for inflater, (ws, _) in zip(inflaters, peers, strict=True):
                [(first, payload)] = ws.frames(first_byte=True)
                self.assertEqual((first, inflate(payload, inflater)), (DEFLATED_TEXT, b"4" + message.encode()))

    def test_a_plain_frame_is_not_reused_for_a_compressed_send(self) -> None:
        (a, sid_a), (b, sid_b) = self.connect(), self.connect()
        message = "z" * 2000
        self.manager.send(sid_a, message, compress=False)
        self.manager.send(sid_b, message)
        self.assertEqual(a.frames(first_byte=True), [(TEXT, b"4" + message.encode())])
        [(first, payload)] = b.frames(first_byte=True)
        self.assertEqual((first, inflate(payload)), (DEFLATED_TEXT, b"4" + message.encode()))


class NegotiatedParametersTests(DeflateTestCase):
    options = EngineIOOptions(
        max_payload=100_000,
        per_message_deflate=PerMessageDeflate(client_no_context_takeover=True, server_max_window_bits=10, mem_level=4),
    )

    def test_announced_and_kept(self) -> None:
        ws, sid = self.connect()
        self.assertEqual(
            ws.headers["sec-websocket-extensions"],
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10",
        )
        self.manager.send(sid, VARIED)
        [(first, payload)] = ws.frames(first_byte=True)
        self.assertEqual((first, inflate(payload, zlib.decompressobj(-10))), (DEFLATED_TEXT, b"4" + VARIED.encode()))
        # The client compresses each message on its own; the server keeps no inflater between them.
        for text in ("4" + VARIED, "4" + VARIED + "!"):
            ws.send_raw(ws_frame(deflated(text.encode()), opcode=0x41))
            if _compat.fast.ws_release:  # else Autobahn keeps it until the next message
                self.assertIsNone(ws.protocol._perMessageCompress._decompressor)  # type: ignore[attr-defined]
        self.assertEqual(self.received(), [VARIED, VARIED + "!"])

    def test_a_client_asking_for_a_smaller_window_gets_it(self) -> None:
        ws, sid = self.connect({"Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits=9"})
        self.assertEqual(
            ws.headers["sec-websocket-extensions"],
            "permessage-deflate; server_max_window_bits=9; client_no_context_takeover",
        )
        self.manager.send(sid, VARIED)
        [(_, payload)] = ws.frames(first_byte=True)
        self.assertEqual(inflate(payload, zlib.decompressobj(-9)), b"4" + VARIED.encode())


class DecompressionBombTests(DeflateTestCase):
    options = EngineIOOptions(max_payload=100_000, per_message_deflate=True)

    def assertClosedTooBig(self, ws: MemoryWebSocket, sid: str) -> None:
        [(first, payload)] = ws.frames(first_byte=True)
        self.assertEqual((first, int.from_bytes(payload[:2], "big")), (CLOSE, 1009))
        ws.lose()
        self.assertEqual(self.closed(sid), CloseReason.TRANSPORT_ERROR)
        self.assertEqual(self.received(), ["still here"])

    def bystander(self) -> tuple[MemoryWebSocket, str]:
        ws, sid = self.connect()
        ws.send_text("4still here")
        return ws, sid

    def assertBystanderWorks(self, ws: MemoryWebSocket, sid: str) -> None:
        self.assertIsNone(self.closed(sid))
        self.manager.send(sid, BIG)
        [(first, payload)] = ws.frames(first_byte=True)
        self.assertEqual((first, inflate(payload)), (DEFLATED_TEXT, b"4" + BIG.encode()))

    def test_one_frame_inflating_past_max_payload(self) -> None:
        bystander, bystander_sid = self.bystander()
        ws, sid = self.connect()
        bomb = deflated(b"4" + b"0" * 20_000_000)  # 20 MB of zeros in about 20 KB
        self.assertLess(len(bomb), 100_000)
        ws.send_raw(ws_frame(bomb, opcode=0x41))
        self.assertClosedTooBig(ws, sid)
        self.assertBystanderWorks(bystander, bystander_sid)

    def test_fragments_inflating_past_max_payload_together(self) -> None:
        bystander, bystander_sid = self.bystander()
        ws, sid = self.connect()
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        part = compressor.compress(b"4" + b"0" * 60_000) + compressor.flush(zlib.Z_SYNC_FLUSH)
        more = compressor.compress(b"0" * 60_000) + compressor.flush(zlib.Z_SYNC_FLUSH)
        first = bytes([0x41]) + ws_frame(part)[1:]  # RSV1, text, not final
        ws.send_raw(first)
        self.assertEqual(ws.frames(), [])  # 60 KB so far: under the limit
        ws.send_raw(bytes([0x80]) + ws_frame(more[:-4])[1:])  # continuation, final: 120 KB in all
        self.assertClosedTooBig(ws, sid)
        self.assertBystanderWorks(bystander, bystander_sid)

    def test_corrupt_deflate_data(self) -> None:
        bystander, bystander_sid = self.bystander()
        ws, sid = self.connect()
        ws.send_raw(ws_frame(b"\xff\xff\xff\xff not deflate", opcode=0x41))
        [(first, payload)] = ws.frames(first_byte=True)
        self.assertEqual((first, int.from_bytes(payload[:2], "big")), (CLOSE, 1007))
        ws.lose()
        self.assertEqual(self.closed(sid), CloseReason.PARSE_ERROR)
        self.assertBystanderWorks(bystander, bystander_sid)


class OptionsTests(PollingTestCase):
    def test_defaults_as_node(self) -> None:
        options = EngineIOOptions()
        self.assertIsNone(options.websocket_compression)
        self.assertEqual(options.polling_compression, HttpCompression(threshold=1024))
        self.assertEqual(EngineIOOptions(per_message_deflate=True).websocket_compression, PerMessageDeflate(1024))
        self.assertIsNone(EngineIOOptions(http_compression=False).polling_compression)

    def test_checked(self) -> None:
        bad_ones: list[Callable[[], object]] = [
            lambda: PerMessageDeflate(threshold=-1),
            lambda: PerMessageDeflate(server_max_window_bits=8),
            lambda: PerMessageDeflate(client_max_window_bits=16),
            lambda: PerMessageDeflate(mem_level=0),
            lambda: HttpCompression(level=10),
            lambda: HttpCompression(threshold=-1),
        ]
        for bad in bad_ones:
            self.assertRaises(ValueError, bad)
        self.assertRaises(TypeError, EngineIOOptions, per_message_deflate="yes")
        self.assertRaises(TypeError, EngineIOOptions, http_compression={"threshold": 10})


class HttpCompressionTests(PollingTestCase):
    options = EngineIOOptions(max_payload=100_000)

    def poll(self, sid: str, accept: str | None) -> Response:
        headers = {"Accept-Encoding": accept} if accept is not None else None
        return self.http.request("GET", f"{BASE}&sid={sid}", headers=headers).result()

    def test_gzip_and_deflate_as_accepted(self) -> None:
        sid = self.handshake()
        expected = b"4" + BIG.encode() + b"\x1e4second"
        cases: list[tuple[str, str, Callable[[bytes], bytes]]] = [
            ("gzip, deflate", "gzip", gzip.decompress),
            ("deflate, gzip;q=0.5", "deflate", zlib.decompress),
            ("br, deflate", "deflate", zlib.decompress),
        ]
        for accept, encoding, decode in cases:
            with self.subTest(accept=accept):
                self.manager.send(sid, BIG)
                self.manager.send(sid, "second")
                response = self.poll(sid, accept)
                self.assertEqual(response.headers["content-encoding"], encoding)
                self.assertEqual(response.headers["content-type"], "text/plain; charset=UTF-8")
                self.assertEqual(int(response.headers["content-length"]), len(response.body))
                self.assertNotIn("vary", response.headers)  # as Node's engine.io
                self.assertEqual(decode(response.body), expected)
        self.manager.send(sid, BIG)
        gzipped = self.poll(sid, "gzip").body
        self.assertEqual(gzipped[:10], b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")  # Node's gzip header

    def test_plain_when_small_refused_or_not_asked(self) -> None:
        sid = self.handshake()
        for accept in [None, "", "identity", "br", "gzip;q=0, deflate;q=0"]:
            with self.subTest(accept=accept):
                self.manager.send(sid, BIG)
                response = self.poll(sid, accept)
                self.assertNotIn("content-encoding", response.headers)
                self.assertEqual(response.body, b"4" + BIG.encode())
        self.manager.send(sid, "a" * 1022)  # 1023 bytes of payload: under the threshold
        self.assertEqual(self.poll(sid, "gzip").body, b"4" + b"a" * 1022)
        self.manager.send(sid, "a" * 1023)
        self.assertEqual(gzip.decompress(self.poll(sid, "gzip").body), b"4" + b"a" * 1023)

    def test_compress_false_packets(self) -> None:
        sid = self.handshake()
        self.manager.send(sid, BIG, compress=False)
        response = self.poll(sid, "gzip")
        self.assertNotIn("content-encoding", response.headers)
        self.assertEqual(response.body, b"4" + BIG.encode())
        # As Node: the payload is compressed if any of its packets may be.
        self.manager.send(sid, BIG, compress=False)
        self.manager.send(sid, "ok")
        self.assertEqual(gzip.decompress(self.poll(sid, "gzip").body), b"4" + BIG.encode() + b"\x1e4ok")

    def test_post_bodies_are_never_inflated(self) -> None:
        sid = self.handshake()
        # As Node's engine.io: Content-Encoding on a POST is ignored, the body read as it is.
        response = self.post(sid, b"4plain", {"Content-Encoding": "gzip"})
        self.assertEqual((response.status, response.body), (200, b"ok"))
        self.assertEqual([e.data for e in self.events if isinstance(e, MessageReceived)], ["plain"])
        # So a gzipped body is not a payload: the session ends (Node answers 200 "ok", txrealtime 400).
        self.assertError(self.post(sid, gzip.compress(b"4hello"), {"Content-Encoding": "gzip"}), 3, "Bad request")
        self.assertEqual(self.closed(sid), CloseReason.PARSE_ERROR)


class HttpCompressionOffTests(PollingTestCase):
    options = EngineIOOptions(http_compression=False)

    def test_off(self) -> None:
        sid = self.handshake()
        self.manager.send(sid, BIG)
        response = self.http.request("GET", f"{BASE}&sid={sid}", headers={"Accept-Encoding": "gzip"}).result()
        self.assertNotIn("content-encoding", response.headers)
        self.assertEqual(response.body, b"4" + BIG.encode())


class ThresholdTests(PollingTestCase):
    options = EngineIOOptions(http_compression=HttpCompression(threshold=10, level=9))

    def test_own_threshold(self) -> None:
        sid = self.handshake()
        self.manager.send(sid, "123456789")
        response = self.http.request("GET", f"{BASE}&sid={sid}", headers={"Accept-Encoding": "deflate"}).result()
        self.assertEqual(response.headers["content-encoding"], "deflate")
        self.assertEqual(zlib.decompress(response.body), b"4123456789")


class DeflaterTests(SynchronousTestCase):
    """Connections sharing compression histories, driven in any order: every connection's messages
    always inflate, in order, with that connection's own inflater (as its client's)."""

    @settings(max_examples=200, deadline=None, database=None)
    @given(
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.booleans()), min_size=1, max_size=40),
        st.booleans(),
    )
    def test_any_interleaving(self, steps: list[tuple[int, int, bool]], fresh: bool) -> None:
        deflater = Deflater()
        messages = [(VARIED + str(i)).encode() for i in range(5)]
        states = [deflater.start(15, 8, fresh) for _ in range(4)]
        inflaters = [zlib.decompressobj(-15) for _ in range(4)]
        for who, which, reconnect in steps:
            if reconnect:  # the connection goes; a new one takes its place, with a new client
                Deflater.leave(states[who])
                states[who], inflaters[who] = deflater.start(15, 8, fresh), zlib.decompressobj(-15)
            body, states[who] = deflater.compress(states[who], messages[which], messages[which])
            self.assertEqual(inflate(body, inflaters[who]), messages[which])
            self.assertTrue(states[who].alive)
            if fresh:
                self.assertEqual(inflate(body), messages[which])  # stands alone


valid_message = st.text(max_size=300).map(lambda text: (True, "4" + text))
garbage = st.binary(max_size=200).map(lambda data: (False, data))


class FuzzTests(DeflateTestCase):
    """Any compressed frames a client makes up: the server never fails, valid ones arrive, others end only
    their own session, and a bystander sharing the compression state is not disturbed."""

    @settings(max_examples=150, deadline=None, database=None)
    @given(st.lists(st.one_of(valid_message, garbage), min_size=1, max_size=4), st.integers(1, 64))
    def test_compressed_frames(self, bodies: list[tuple[bool, Any]], cut: int) -> None:
        self.events.clear()
        bystander, bystander_sid = self.connect()
        ws, sid = self.connect()
        stream = b"".join(
            ws_frame(deflated(body.encode()) if valid else body, opcode=0x41)
            for valid, body in bodies
        )
        for i in range(0, len(stream), cut):
            if ws.exchange.transport.disconnecting:
                break
            ws.send_raw(stream[i : i + cut])
        texts = [body[1:] for valid, body in bodies if valid]
        if all(valid for valid, _ in bodies):
            self.assertEqual(self.received(), texts)
            self.assertIsNone(self.closed(sid))
        ws.lose()
        self.manager.send(bystander_sid, VARIED)
        [(first, payload)] = bystander.frames(first_byte=True)
        self.assertEqual((first, inflate(payload)), (DEFLATED_TEXT, b"4" + VARIED.encode()))
        bystander.lose()

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.binary(max_size=120))
    def test_any_accept_encoding(self, header: bytes) -> None:
        self.assertIn(accepted_encoding(header), (None, b"gzip", b"deflate"))


class RefusedWithoutBoundedInflateTests(SynchronousTestCase):
    """On an Autobahn that cannot bound inflation (before 26.7), turning compression on is refused."""

    skip = None if NO_BOUNDED_INFLATE else "this Autobahn bounds inflation: compression is allowed"

    def test_refused(self) -> None:
        manager = SessionManager(EngineIOOptions(per_message_deflate=True), reactor=Clock())
        with self.assertRaises(RuntimeError) as caught:
            EngineIOWebSocketFactory(manager)
        self.assertIn("GHSA-hxp9-w8x3-p566", str(caught.exception))
