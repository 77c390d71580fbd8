"""Engine.IO v3 sessions (``allow_eio3``): whole conversations over in-memory HTTP and WebSocket on a
``task.Clock``, exact bytes on the wire."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes import PollingTestCase
from tests.memhttp import MemoryWebSocket, Response
from txrealtime.engineio import CloseReason, EngineIOOptions, MessageReceived, SessionClosed, SessionError

V3 = "/engine.io/?EIO=3&transport=polling"
V3_WS = "/engine.io/?EIO=3&transport=websocket"
BINARY = {"Content-Type": "application/octet-stream"}
OPTIONS = EngineIOOptions(max_payload=1000, ping_interval=25, ping_timeout=20, allow_eio3=True)


def open_packet(body: bytes) -> dict[str, Any]:
    """The handshake of a v3 text payload ``<length>:0{...}``."""
    length, _, item = body.decode().partition(":")
    assert int(length) == len(item) and item[0] == "0", body
    data: dict[str, Any] = json.loads(item[1:])
    return data


class Eio3TestCase(PollingTestCase):
    options = OPTIONS

    def open(self, query: str = "") -> str:
        response = self.http.request("GET", V3 + query).result()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers["content-type"], "text/plain; charset=UTF-8")
        sid: str = open_packet(response.body)["sid"]
        return sid

    def get(self, sid: str, query: str = "") -> Response:
        return self.http.request("GET", f"{V3}&sid={sid}{query}").result()

    def send(self, sid: str, body: bytes, headers: dict[str, str] | None = None, query: str = "") -> Response:
        return self.http.request("POST", f"{V3}&sid={sid}{query}", body, headers).result()

    def received(self) -> list[str | bytes]:
        return [e.data for e in self.events if isinstance(e, MessageReceived)]


class RefusedTests(PollingTestCase):
    """Without ``allow_eio3``: Node's answer, on both transports."""

    def test_v3_handshake_refused(self) -> None:
        for path in (V3, "/engine.io/?transport=polling", V3_WS):
            with self.subTest(path=path):
                self.assertError(self.http.request("GET", path).result(), 5, "Unsupported protocol version")
        self.assertEqual(len(self.manager), 0)

    def test_protocol_mismatch_on_an_existing_session(self) -> None:
        sid = self.handshake()  # a v4 session
        self.assertError(self.http.request("GET", f"{V3}&sid={sid}").result(), 3, "Bad request")
        ws = MemoryWebSocket(self.http, f"{V3_WS}&sid={sid}")
        self.assertEqual(ws.status, 400)
        self.assertIsNotNone(self.manager.get(sid))


    def test_no_jsonp_without_the_option(self) -> None:
        response = self.http.request("GET", "/engine.io/?EIO=4&transport=polling&j=0").result()
        self.assertTrue(response.body.startswith(b"0{"), response.body)


class HandshakeTests(Eio3TestCase):
    def test_open_packet(self) -> None:
        response = self.http.request("GET", V3).result()
        data = open_packet(response.body)
        self.assertEqual(
            data,
            {"sid": data["sid"], "upgrades": ["websocket"], "pingInterval": 25000, "pingTimeout": 20000,
             "maxPayload": 1000},
        )
        self.assertEqual(self.manager.sessions[data["sid"]].protocol, 3)

    def test_v4_still_served(self) -> None:
        sid = self.handshake()
        self.assertEqual(self.manager.sessions[sid].protocol, 4)


class HeartbeatTests(Eio3TestCase):
    def test_client_pings_server_answers(self) -> None:
        sid = self.open()
        for _ in range(3):
            self.clock.advance(44)  # just under ping_interval + ping_timeout
            self.assertEqual(self.send(sid, b"1:2").body, b"ok")
            self.assertEqual(self.get(sid).body, b"1:3")
        self.assertIsNotNone(self.manager.get(sid))

    def test_no_ping_closes_after_interval_plus_timeout(self) -> None:
        sid = self.open()
        poll = self.http.request("GET", f"{V3}&sid={sid}")
        self.clock.advance(44.9)
        self.assertFalse(poll.done)  # the server never pings a v3 client
        self.clock.advance(0.1)
        self.assertEqual(self.events[-1], SessionClosed(sid, CloseReason.PING_TIMEOUT, "no ping"))

    def test_pong_from_client_is_an_error(self) -> None:
        sid = self.open()
        self.send(sid, b"1:3")
        self.assertEqual(self.closed(sid), CloseReason.TRANSPORT_ERROR)
        self.assertEqual(self.get(sid).body, b"1:1")


class PayloadTests(Eio3TestCase):
    def test_text_messages_counted_in_utf16_units(self) -> None:
        sid = self.open()
        self.assertEqual(self.send(sid, "2:4a9:4héllo 𝄞".encode()).body, b"ok")
        self.assertEqual(self.received(), ["a", "héllo 𝄞"])
        self.manager.sessions[sid].send_many(["é𝄞", "x"])
        self.assertEqual(self.get(sid).body, "4:4é𝄞2:4x".encode())

    def test_binary_goes_as_xhr2_payload(self) -> None:
        sid = self.open()
        self.manager.sessions[sid].send_many(["hi", b"\x01\x02"])
        response = self.get(sid)
        self.assertEqual(response.headers["content-type"], "application/octet-stream")
        self.assertEqual(response.body, b"\x00\x03\xff4hi\x01\x03\xff\x04\x01\x02")

    def test_binary_as_base64_when_asked(self) -> None:
        sid = self.open("&b64=1")
        self.manager.sessions[sid].send_many(["hi", b"\x01\x02"])
        response = self.get(sid)
        self.assertEqual(response.headers["content-type"], "text/plain; charset=UTF-8")
        self.assertEqual(response.body, b"3:4hi6:b4AQI=")

    def test_binary_post(self) -> None:
        sid = self.open()
        body = b"\x00\x03\xff4hi\x01\x03\xff\x04\x09\x08"
        self.assertEqual(self.send(sid, body, BINARY).body, b"ok")
        self.assertEqual(self.send(sid, b"6:b4CQg=").body, b"ok")
        self.assertEqual(self.received(), ["hi", b"\x09\x08", b"\x09\x08"])

    def test_bad_payload_closes_only_its_session(self) -> None:
        bystander, sid = self.open(), self.open()
        for body, headers in [(b"3:4a", None), (b"\x00\x09\xff4", BINARY), (b"1:\xff", None)]:
            with self.subTest(body=body):
                sid = self.open()
                response = self.send(sid, body, headers)
                self.assertError(response, 3, "Bad request")
                self.assertEqual(self.closed(sid), CloseReason.PARSE_ERROR)
        self.send(bystander, b"2:4b")
        self.assertEqual(self.received(), ["b"])
        self.assertIsNotNone(self.manager.get(bystander))


class JsonpTests(Eio3TestCase):
    def test_conversation(self) -> None:
        response = self.http.request("GET", V3 + "&j=2&b64=1").result()
        self.assertEqual(response.headers["content-type"], "text/plain; charset=UTF-8")
        body = response.body.decode()
        self.assertTrue(body.startswith('___eio[2]("') and body.endswith('");'), body)
        sid = open_packet(json.loads(body[len("___eio[2](") : -2]).encode())["sid"]
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        self.assertEqual(self.send(sid, b"d=9%3A4line%5Cnone", form, "&j=2").body, b"ok")
        self.assertEqual(self.received(), ["line\none"])
        self.manager.sessions[sid].send_many(['"\u2028', b"\x01"])
        self.assertEqual(self.get(sid, "&j=2").body, b'___eio[2]("3:4\\"\\u20286:b4AQ==");')

    def test_jsonp_for_v4_clients_too(self) -> None:
        response = self.http.request("GET", "/engine.io/?EIO=4&transport=polling&j=0").result()
        self.assertTrue(response.body.startswith(b'___eio[0]("0{'), response.body)


class WebSocketTests(Eio3TestCase):
    def connect(self, query: str = "") -> tuple[MemoryWebSocket, str]:
        ws = MemoryWebSocket(self.http, V3_WS + query)
        self.assertEqual(ws.status, 101)
        [(opcode, opened)] = ws.frames()
        self.assertEqual(opcode, 1)
        self.assertTrue(opened.startswith(b"0{"))
        sid: str = json.loads(opened[1:])["sid"]
        return ws, sid

    def test_frames(self) -> None:
        ws, sid = self.connect()
        ws.send_binary(b"\x04\x09\x08")
        ws.send_text("4hi")
        ws.send_text("2")
        self.manager.sessions[sid].send_many([b"\x01\x02", "x"])
        self.assertEqual(ws.frames(), [(1, b"3"), (2, b"\x04\x01\x02"), (1, b"4x")])
        self.assertEqual(self.received(), [b"\x09\x08", "hi"])

    def test_base64_frames_when_asked(self) -> None:
        ws, sid = self.connect("&b64=1")
        ws.send_text("b4CQg=")
        self.manager.sessions[sid].send(b"\x01\x02")
        self.assertEqual(ws.frames(), [(1, b"b4AQI=")])
        self.assertEqual(self.received(), [b"\x09\x08"])

    def test_binary_frame_of_another_type_closes(self) -> None:
        ws, sid = self.connect()
        ws.send_binary(b"\x02")
        self.assertEqual(self.closed(sid), CloseReason.PARSE_ERROR)

    def test_one_broadcast_framed_per_revision(self) -> None:
        v3, sid3 = self.connect()
        b64, sid_b64 = self.connect("&b64=1")
        v4 = MemoryWebSocket(self.http, "/engine.io/?EIO=4&transport=websocket")
        [(_, opened)] = v4.frames()
        sid4 = json.loads(opened[1:])["sid"]
        data = b"\x07"  # one object handed to every session, as a broadcast does
        for sid in (sid3, sid4, sid_b64, sid3):
            self.manager.sessions[sid].send(data)
        self.assertEqual(v3.frames(), [(2, b"\x04\x07"), (2, b"\x04\x07")])
        self.assertEqual(v4.frames(), [(2, b"\x07")])
        self.assertEqual(b64.frames(), [(1, b"b4Bw==")])

    def test_upgrade(self) -> None:
        sid = self.open()
        poll = self.http.request("GET", f"{V3}&sid={sid}")
        ws = MemoryWebSocket(self.http, f"{V3_WS}&sid={sid}")
        self.assertEqual(ws.status, 101)
        ws.send_text("2probe")
        self.assertEqual(ws.frames(), [(1, b"3probe")])
        self.assertEqual(poll.result().body, b"1:6")
        ws.send_text("5")
        self.assertEqual(self.manager.sessions[sid].transport.name, "websocket")
        ws.send_text("2")
        self.assertEqual(ws.frames(), [(1, b"3")])
        # The v3 heartbeat carries on across the upgrade (Node's engine.io loses it there).
        self.clock.advance(45)
        self.assertEqual(self.closed(sid), CloseReason.PING_TIMEOUT)

    def test_v4_upgrade_of_a_v3_session_refused(self) -> None:
        sid = self.open()
        ws = MemoryWebSocket(self.http, f"/engine.io/?EIO=4&transport=websocket&sid={sid}")
        self.assertEqual(ws.status, 400)
        refused = [e for e in self.events if not isinstance(e, (MessageReceived, SessionClosed))][-1]
        self.assertEqual(getattr(refused, "context", None),
                         {"name": "PROTOCOL_MISMATCH", "protocol": "4", "previousProtocol": "3"})
        self.assertEqual(getattr(refused, "code", None), SessionError.BAD_REQUEST)
