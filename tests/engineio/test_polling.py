"""HTTP long-polling through a real twisted.web Site on in-memory connections."""

from __future__ import annotations

import json
from typing import cast

from twisted.web.resource import IResource, Resource

from tests.fakes import BASE, PollingTestCase
from tests.memhttp import MemoryHTTP
from txrealtime.engineio import (
    CloseReason,
    EngineIOOptions,
    EngineIOResource,
    MessageReceived,
    SessionManager,
)


class HandshakeTests(PollingTestCase):
    def test_handshake(self) -> None:
        response = self.http.request("GET", BASE + "&t=abc").result()
        self.assertEqual(response.headers["content-type"], "text/plain; charset=UTF-8")
        data = json.loads(response.body[1:])
        self.assertEqual(data["upgrades"], ["websocket"])
        self.assertEqual((data["pingInterval"], data["pingTimeout"], data["maxPayload"]), (25000, 20000, 1000))
        session = self.manager.get(data["sid"])
        assert session is not None
        self.assertEqual(session.handshake.query["t"], "abc")
        self.assertEqual(session.handshake.address, "127.0.0.1")
        self.assertEqual(session.handshake.headers["host"], "localhost")

    def test_request_errors(self) -> None:
        sid = self.handshake()
        cases = [
            ("GET", "/engine.io/?EIO=3&transport=polling", 5, "Unsupported protocol version"),
            ("GET", "/engine.io/?transport=polling", 5, "Unsupported protocol version"),
            ("GET", "/engine.io/?EIO=4&transport=carrier-pigeon", 0, "Transport unknown"),
            ("GET", "/engine.io/?EIO=4", 0, "Transport unknown"),
            ("POST", BASE, 2, "Bad handshake method"),
            ("GET", BASE + "&sid=unknown", 1, "Session ID unknown"),
            ("POST", BASE + "&sid=unknown", 1, "Session ID unknown"),
            ("PUT", f"{BASE}&sid={sid}", 3, "Bad request"),
            ("GET", "/engine.io/?EIO=4&transport=websocket", 3, "Bad request"),
        ]
        for method, path, code, message in cases:
            with self.subTest(method=method, path=path):
                self.assertError(self.http.request(method, path).result(), code, message)
        self.assertIsNotNone(self.manager.get(sid))

    def test_disabled_transport(self) -> None:
        manager = SessionManager(EngineIOOptions(transports=["websocket"]), reactor=self.clock)
        root = Resource()
        root.putChild(b"engine.io", cast(IResource, EngineIOResource(manager)))
        self.assertError(MemoryHTTP(cast(IResource, root)).request("GET", BASE).result(), 0, "Transport unknown")


class ExchangeTests(PollingTestCase):
    def test_post_delivers_messages(self) -> None:
        sid = self.handshake()
        response = self.post(sid, b"4hello\x1ebAQID\x1e4w\xc3\xb6rld")
        self.assertEqual((response.status, response.body), (200, b"ok"))
        messages = [e.data for e in self.events if isinstance(e, MessageReceived)]
        self.assertEqual(messages, ["hello", b"\x01\x02\x03", "wörld"])

    def test_get_waits_for_data(self) -> None:
        sid = self.handshake()
        poll = self.http.request("GET", f"{BASE}&sid={sid}")
        self.assertFalse(poll.done)
        self.manager.send(sid, "one")
        self.assertEqual(poll.result().body, b"4one")
        self.manager.send(sid, "two")
        self.manager.send(sid, b"\xff")
        self.assertEqual(self.http.request("GET", f"{BASE}&sid={sid}").result().body, b"4two\x1eb/w==")

    def test_get_returns_ping(self) -> None:
        sid = self.handshake()
        poll = self.http.request("GET", f"{BASE}&sid={sid}")
        self.clock.advance(25)
        self.assertEqual(poll.result().body, b"2")
        self.post(sid, b"3")
        self.clock.advance(24)
        self.assertIsNotNone(self.manager.get(sid))

    def test_client_close(self) -> None:
        sid = self.handshake()
        poll = self.http.request("GET", f"{BASE}&sid={sid}")
        self.assertEqual(self.post(sid, b"1").status, 200)
        self.assertEqual(poll.result().body, b"6")  # a NOOP, as Node's polling transport answers
        self.assertEqual(self.closed(sid), CloseReason.TRANSPORT_CLOSE)

    def test_server_close_reaches_next_poll(self) -> None:
        sid = self.handshake()
        self.manager.close(sid)
        self.assertEqual(self.http.request("GET", f"{BASE}&sid={sid}").result().body, b"1")
        self.assertError(self.http.request("GET", f"{BASE}&sid={sid}").result(), 1, "Session ID unknown")

    def test_cors(self) -> None:
        manager = SessionManager(EngineIOOptions(cors_allowed_origins=["https://app.example"]), reactor=self.clock)
        root = Resource()
        root.putChild(b"engine.io", cast(IResource, EngineIOResource(manager)))
        http = MemoryHTTP(cast(IResource, root))
        allowed = http.request("GET", BASE, headers={"Origin": "https://app.example"}).result()
        self.assertEqual(allowed.headers["access-control-allow-origin"], "https://app.example")
        self.assertEqual(allowed.headers["access-control-allow-credentials"], "true")
        other = http.request("GET", BASE, headers={"Origin": "https://evil.example"}).result()
        self.assertNotIn("access-control-allow-origin", other.headers)
        preflight = http.request(
            "OPTIONS",
            BASE,
            headers={"Origin": "https://app.example", "Access-Control-Request-Headers": "content-type"},
        ).result()
        self.assertEqual(preflight.status, 204)
        self.assertEqual(preflight.headers["access-control-allow-methods"], "GET,HEAD,PUT,PATCH,POST,DELETE")
        self.assertEqual(preflight.headers["access-control-allow-headers"], "content-type")


class BadInputTests(PollingTestCase):
    """Each offence closes only the offending session."""

    def assertOthersUnharmed(self, bystander: str) -> None:
        poll = self.http.request("GET", f"{BASE}&sid={bystander}")
        self.manager.send(bystander, "still here")
        self.assertEqual(poll.result().body, b"4still here")
        self.assertEqual(self.post(bystander, b"4pong").body, b"ok")
        self.assertIsNone(self.closed(bystander))

    def test_malformed_payload(self) -> None:
        bystander = self.handshake()
        for body in [b"9nope", b"", b"b!!", b"\xff\xfe"]:
            with self.subTest(body=body):
                sid = self.handshake()
                self.assertError(self.post(sid, body), 3, "Bad request")
                self.assertEqual(self.closed(sid), CloseReason.PARSE_ERROR)
                self.assertIsNone(self.manager.get(sid))
        self.assertOthersUnharmed(bystander)

    def test_payload_over_max_payload(self) -> None:
        bystander = self.handshake()
        sid = self.handshake()
        poll = self.http.request("GET", f"{BASE}&sid={sid}")
        response = self.post(sid, b"4" + b"x" * 1000)
        self.assertEqual((response.status, response.body), (413, b""))
        # As Node's engine.io: refused, and nothing more; the parked poll and the session carry on.
        self.assertFalse(poll.done)
        self.assertEqual(self.post(sid, b"4after").body, b"ok")
        self.manager.send(sid, "echo")
        self.assertEqual(poll.result().body, b"4echo")
        self.assertIsNone(self.closed(sid))
        self.assertEqual(self.post(bystander, b"4" + b"x" * 999).status, 200)
        self.assertOthersUnharmed(bystander)

    def test_second_concurrent_get(self) -> None:
        bystander = self.handshake()
        sid = self.handshake()
        first = self.http.request("GET", f"{BASE}&sid={sid}")
        second = self.http.request("GET", f"{BASE}&sid={sid}")
        self.assertError(second.result(), 3, "Bad request")
        self.assertEqual(first.result().body, b"1")
        self.assertEqual(self.closed(sid), CloseReason.TRANSPORT_ERROR)
        self.assertOthersUnharmed(bystander)

    def test_dropped_poll(self) -> None:
        bystander = self.handshake()
        sid = self.handshake()
        self.http.request("GET", f"{BASE}&sid={sid}").drop()
        self.assertEqual(self.closed(sid), CloseReason.TRANSPORT_ERROR)
        self.assertOthersUnharmed(bystander)

    def test_unexpected_packet_type(self) -> None:
        sid = self.handshake()
        self.assertEqual(self.post(sid, b"0{}").status, 200)
        self.assertEqual(self.closed(sid), CloseReason.PARSE_ERROR)
