"""WebSocket transport through a real twisted.web Site and Autobahn, on in-memory connections."""

from __future__ import annotations

import gc
import json
import weakref
from typing import Any, cast
from unittest import SkipTest

from twisted.web.http import Request

from tests.fakes import BASE, PollingTestCase
from tests.memhttp import MemoryWebSocket, ws_frame
from txrealtime import _compat
from txrealtime.engineio import CloseReason, MessageReceived, SessionUpgraded

WS = "/engine.io/?EIO=4&transport=websocket"
TEXT, BINARY, CLOSE, PONG = 1, 2, 8, 10


class WebSocketTests(PollingTestCase):
    def connect(self) -> tuple[MemoryWebSocket, str]:
        ws = MemoryWebSocket(self.http, WS)
        self.assertEqual(ws.status, 101)
        [(opcode, payload)] = ws.frames()
        self.assertEqual(opcode, TEXT)
        self.assertTrue(payload.startswith(b"0{"))
        data = json.loads(payload[1:])
        self.assertEqual(data["upgrades"], [])
        return ws, data["sid"]

    def test_direct_session(self) -> None:
        ws, sid = self.connect()
        ws.send_text("4hello")
        ws.send_binary(b"\x00\x01")
        self.assertEqual([e.data for e in self.events if isinstance(e, MessageReceived)], ["hello", b"\x00\x01"])
        self.manager.send(sid, "out")
        self.manager.send(sid, b"\x02")
        self.assertEqual(ws.frames(), [(TEXT, b"4out"), (BINARY, b"\x02")])

    def test_the_upgrade_request_is_freed_without_the_garbage_collector(self) -> None:
        if not _compat.fast.release_upgraded:
            raise SkipTest("the release_upgraded fast path is off")
        requests: list[weakref.ref[Request]] = []
        factory: Any = self.http.site.requestFactory

        def recorded(*args: Any) -> Request:
            request = factory(*args)
            requests.append(weakref.ref(request))
            return cast(Request, request)

        cast(Any, self.http.site).requestFactory = recorded
        gc.disable()
        try:
            ws, _ = self.connect()
            # twisted.web's channel no longer holds the request Autobahn took over: no cycle is left.
            self.assertIsNone(requests[0]())
        finally:
            gc.enable()
        ws.send_text("4still here")
        self.assertEqual([e.data for e in self.events if isinstance(e, MessageReceived)], ["still here"])

    def test_a_closed_connection_is_freed_without_the_garbage_collector(self) -> None:
        if not _compat.fast.ws_release:
            raise SkipTest("the ws_release fast path is off")
        ws, sid = self.connect()
        protocol = weakref.ref(ws.protocol)
        try:
            session: weakref.ref[Any] | None = weakref.ref(self.manager.get(sid))
        except TypeError:
            session = None  # mypyc's compiled Session takes no weak references; the protocol's tells enough
        gc.disable()
        try:
            ws.lose()
            transport: Any = ws.exchange.transport
            transport.protocol = transport.producer = None  # what a TCP transport drops when its connection is lost
            del ws
            self.assertIsNone(protocol())  # also gone if the session still held it
            if session is not None:
                self.assertIsNone(session())
        finally:
            gc.enable()

    def test_frames_split_and_batched_any_way(self) -> None:
        """Whole frames, several per read, a split frame, a fragmented message and a ping all arrive intact."""
        ws, sid = self.connect()
        big = "4" + "x" * 300  # a 16-bit length
        stream = (
            ws_frame(b"4one")
            + ws_frame(big.encode())
            + ws_frame(b"\x00\xff", opcode=2)
            + ws_frame(b"hi", opcode=9)  # ping: answered by Autobahn
            + ws_frame(b"4two")
        )
        def masked(data: bytes) -> bytes:
            return bytes(b ^ (i % 4 + 1) for i, b in enumerate(data))  # the mask 01 02 03 04

        fragmented = bytes([0x01, 0x82, 1, 2, 3, 4]) + masked(b"4f")  # text, not final
        fragmented += bytes([0x80, 0x83, 1, 2, 3, 4]) + masked(b"rag")  # continuation, final
        stream += fragmented + ws_frame(b"4last")
        for cut in (1, 7, 50):  # the same bytes, cut into reads of several sizes
            for i in range(0, len(stream), cut):
                ws.send_raw(stream[i : i + cut])
        got = [e.data for e in self.events if isinstance(e, MessageReceived)]
        self.assertEqual(got, ["one", big[1:], b"\x00\xff", "two", "frag", "last"] * 3)
        self.assertEqual([f for f in ws.frames() if f[0] == PONG], [(PONG, b"hi")] * 3)
        self.assertIsNotNone(self.manager.get(sid))

    def test_heartbeat(self) -> None:
        ws, sid = self.connect()
        self.clock.advance(25)
        self.assertEqual(ws.frames(), [(TEXT, b"2")])
        ws.send_text("3")
        self.clock.advance(25)
        self.assertEqual(ws.frames(), [(TEXT, b"2")])
        self.clock.advance(19.5)
        self.assertIsNotNone(self.manager.get(sid))
        self.clock.advance(0.5)
        self.assertEqual(self.closed(sid), CloseReason.PING_TIMEOUT)
        self.assertEqual(ws.frames(), [(CLOSE, b"\x03\xe8")])

    def test_upgrade_from_polling(self) -> None:
        sid = self.handshake()
        self.post(sid, b"4before")
        poll = self.http.request("GET", f"{BASE}&sid={sid}")
        ws = MemoryWebSocket(self.http, f"{WS}&sid={sid}")
        self.assertEqual(ws.status, 101)
        ws.send_text("2probe")
        self.assertEqual(ws.frames(), [(TEXT, b"3probe")])
        self.assertEqual(poll.result().body, b"6")
        ws.send_text("5")
        self.assertEqual(self.events[-1], SessionUpgraded(sid, "polling", "websocket"))
        self.manager.send(sid, "after")
        self.assertEqual(ws.frames(), [(TEXT, b"4after")])
        ws.send_text("4via ws")
        self.assertEqual([e.data for e in self.events if isinstance(e, MessageReceived)], ["before", "via ws"])
        self.assertError(self.http.request("GET", f"{BASE}&sid={sid}").result(), 3, "Bad request")

    def test_upgrade_unknown_sid(self) -> None:
        self.assertError(
            self.http.request("GET", f"{WS}&sid=nope", headers={"Upgrade": "websocket"}).result(),
            1,
            "Session ID unknown",
        )

    def test_client_closes(self) -> None:
        ws, sid = self.connect()
        ws.send_raw(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
        self.assertEqual(ws.frames(), [(CLOSE, b"\x03\xe8")])
        self.assertTrue(ws.exchange.transport.disconnecting)
        ws.lose()
        self.assertEqual(self.closed(sid), CloseReason.TRANSPORT_CLOSE)

    def test_connection_lost(self) -> None:
        ws, sid = self.connect()
        ws.lose()
        self.assertEqual(self.closed(sid), CloseReason.TRANSPORT_CLOSE)


class WebSocketBadInputTests(PollingTestCase):
    def assertBystanderWorks(self, bystander: MemoryWebSocket, sid: str) -> None:
        bystander.send_text("4still here")
        self.assertEqual(self.events[-1], MessageReceived(sid, "still here"))
        self.manager.send(sid, "yes")
        self.assertEqual(bystander.frames()[-1], (TEXT, b"4yes"))
        self.assertIsNone(self.closed(sid))

    def connect(self) -> tuple[MemoryWebSocket, str]:
        ws = MemoryWebSocket(self.http, WS)
        sid = json.loads(ws.frames()[0][1][1:])["sid"]
        return ws, sid

    def test_malformed_packets(self) -> None:
        bystander, bystander_sid = self.connect()
        for bad in ["", "9", "0{}"]:
            with self.subTest(packet=bad):
                ws, sid = self.connect()
                ws.send_text(bad)
                self.assertEqual(self.closed(sid), CloseReason.PARSE_ERROR)
                self.assertEqual(ws.frames()[0], (TEXT, b"1"))
        self.assertBystanderWorks(bystander, bystander_sid)

    def test_invalid_utf8(self) -> None:
        bystander, bystander_sid = self.connect()
        ws, sid = self.connect()
        ws.send_raw(b"\x81\x83\x00\x00\x00\x00" + b"4\xff\xfe")
        # The codec rejects it: the client gets the CLOSE packet, then a normal close frame.
        [(opcode, payload), (close, reason)] = ws.frames()
        self.assertEqual((opcode, payload), (TEXT, b"1"))
        self.assertEqual((close, int.from_bytes(reason[:2], "big")), (CLOSE, 1000))
        self.assertEqual(self.closed(sid), CloseReason.PARSE_ERROR)
        ws.lose()
        self.assertBystanderWorks(bystander, bystander_sid)

    def test_message_over_max_payload(self) -> None:
        bystander, bystander_sid = self.connect()
        ws, sid = self.connect()
        ws.send_text("4" + "x" * 1000)
        [(opcode, payload)] = ws.frames()
        self.assertEqual((opcode, payload), (CLOSE, (1009).to_bytes(2, "big")))  # no reason, as Node's ws
        ws.lose()
        self.assertEqual(self.closed(sid), CloseReason.TRANSPORT_ERROR)
        self.assertBystanderWorks(bystander, bystander_sid)
