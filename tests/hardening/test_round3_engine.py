"""Issue 23, round three, at the HTTP and Engine.IO edge: v3 ping floods, form bodies, the served bundle,
the request line. Whole conversations on a ``task.Clock`` over in-memory HTTP, exact bytes on the wire."""

from __future__ import annotations

import gc
import gzip
import json
import tracemalloc
import zlib
from pathlib import Path
from typing import cast

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import IResource, Resource

from tests.fakes import HANDSHAKE, FakeTransport, PollingTestCase
from tests.memhttp import ConnectionTransport, Exchange, MemoryHTTP
from txrealtime.cluster.router import Router
from txrealtime.engineio import CloseReason, EngineIOOptions, EngineIOResource, SessionClosed, SessionManager
from txrealtime.engineio.packets import Packet, PacketType
from txrealtime.socketio.bundle import SocketIOResource
from txrealtime.web import BoundedSite

V3 = "/engine.io/?EIO=3&transport=polling"
DIST = Path(__file__).parent.parent.parent / "txrealtime" / "socketio" / "client_dist"


class V3PingFloodTests(PollingTestCase):
    """Item 1: a v3 client that pings and never reads gets one PONG queued, counted, and is closed in time."""

    options = EngineIOOptions(max_payload=1000, ping_interval=25, ping_timeout=20, allow_eio3=True)

    def open(self) -> str:
        response = self.http.request("GET", V3).result()
        self.assertEqual(response.status, 200)
        sid: str = json.loads(response.body.partition(b":")[2][1:])["sid"]
        return sid

    def post(self, sid: str, body: bytes, headers: dict[str, str] | None = None) -> Exchange:  # type: ignore[override]
        exchange = self.http.request("POST", f"{V3}&sid={sid}", body, headers)
        for _ in range(len(body)):  # a slice of packets per reactor turn
            if exchange.done:
                break
            self.clock.advance(0)
        return exchange

    def test_pings_posted_without_reading_queue_one_pong(self) -> None:
        sid = self.open()
        posted = self.post(sid, b"1:2" * 333)  # 999 bytes: 333 pings, several slices
        self.assertEqual(posted.result().body, b"ok")
        self.assertEqual(self.manager.sessions[sid].buffered_bytes, 1)  # the PONG, counted
        self.assertEqual(self.http.request("GET", f"{V3}&sid={sid}").result().body, b"1:3")
        # Read: the next ping is answered again.
        self.assertEqual(self.post(sid, b"1:2").result().body, b"ok")
        self.assertEqual(self.http.request("GET", f"{V3}&sid={sid}").result().body, b"1:3")

    def test_a_ping_flood_that_never_reads_does_not_keep_the_session(self) -> None:
        sid = self.open()
        for _ in range(4):  # a ping every 10 s, none of the PONGs ever taken
            self.assertEqual(self.post(sid, b"1:2").result().body, b"ok")
            self.clock.advance(10)
        self.clock.advance(4.9)  # 44.9 s after the first ping, whose PONG still waits
        self.assertIsNone(self.closed(sid))
        self.clock.advance(0.1)
        self.assertEqual(self.closed(sid), CloseReason.PING_TIMEOUT)
        self.assertEqual(self.http.request("GET", f"{V3}&sid={sid}").result().status, 400)


class CountedPacketsTests(SynchronousTestCase):
    """Item 1: control packets count against ``max_buffer`` as messages do."""

    def test_a_pong_for_a_client_that_does_not_read_is_counted(self) -> None:
        clock = Clock()
        manager = SessionManager(EngineIOOptions(max_payload=10, max_buffer=10, allow_eio3=True), reactor=clock)
        transport = FakeTransport("polling", writable=False)
        session = manager.open_session(transport, HANDSHAKE, protocol=3)
        events: list[object] = []
        manager.subscribe(events.append)
        self.assertTrue(session.send("0123456789"))  # the queue is full
        session.receive(Packet(PacketType.PING), transport)
        self.assertTrue(session.closed)
        self.assertEqual(
            events[-1],
            SessionClosed(session.sid, CloseReason.TRANSPORT_ERROR,
                          "outgoing buffer over 10 bytes (client not reading)"),
        )


def engine_site(allow_eio3: bool = False) -> tuple[MemoryHTTP, SessionManager]:
    clock = Clock()
    manager = SessionManager(EngineIOOptions(allow_eio3=allow_eio3), reactor=clock)
    root = Resource()
    root.putChild(b"socket.io", cast(IResource, SocketIOResource(EngineIOResource(manager))))
    site = BoundedSite(cast(IResource, root), managers=[manager], access_log=False, header_timeout=None)
    return MemoryHTTP(cast(IResource, root), site=site), manager


class FormBodyTests(SynchronousTestCase):
    """Item 6: twisted.web does not parse form bodies sent to the endpoint before it checks the session."""

    def test_a_multipart_body_for_an_unknown_session_gets_the_engineio_answer(self) -> None:
        http, _ = engine_site()
        for ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            response = http.request("POST", "/socket.io/?EIO=4&transport=polling&sid=x", b"&" * 1000,
                                    {"Content-Type": ctype}).result()
            self.assertEqual((response.status, json.loads(response.body)),
                             (400, {"code": 1, "message": "Session ID unknown"}), ctype)

    def test_a_session_posting_as_a_form_is_served(self) -> None:
        http, manager = engine_site()
        opened = http.request("GET", "/socket.io/?EIO=4&transport=polling").result()
        sid = json.loads(opened.body[1:])["sid"]
        got: list[str | bytes] = []
        manager.sessions[sid].receiver = got.append
        posted = http.request("POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", b"4a=1",
                              {"Content-Type": "multipart/form-data"}).result()
        self.assertEqual((posted.status, posted.body, got), (200, b"ok", ["a=1"]))

    def test_jsonp_bodies_are_still_read(self) -> None:
        http, manager = engine_site(allow_eio3=True)
        opened = http.request("GET", "/socket.io/?EIO=3&transport=polling&j=0").result()
        sid = opened.body.decode().split('\\"sid\\":\\"', 1)[1].split("\\", 1)[0]
        got: list[str | bytes] = []
        manager.sessions[sid].receiver = got.append
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        posted = http.request("POST", f"/socket.io/?EIO=3&transport=polling&sid={sid}&j=0", b"d=3%3A4hi",
                              form).result()
        self.assertEqual((posted.body, got), (b"ok", ["hi"]))
        # Only the first 1,000 fields are read, as Node's querystring reads 1,000 keys.
        for body in (b"d=3%3A4hi" + b"&" * 900_000, b"&" * 1000 + b"d=3%3A4hi"):
            posted = http.request("POST", f"/socket.io/?EIO=3&transport=polling&sid={sid}&j=0", body, form).result()
            self.assertEqual((posted.body, got), (b"ok", ["hi", "hi"]))


class BundleTests(SynchronousTestCase):
    """Items 2 and 11: the served bundle caches only its own files, and honours ``q=0``."""

    def test_unknown_names_are_not_kept(self) -> None:
        http, _ = engine_site()
        http.request("GET", "/socket.io/socket.io.js").drop()  # warm what is legitimately cached
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for n in range(500):
                name = f"{n:05d}" + "x" * 8000
                exchange = http.request("GET", f"/socket.io/{name}")
                self.assertEqual(exchange.result().status, 400)
                exchange.drop()
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        self.assertLess(grown, 500_000)  # 500 names of 8 KB kept would be 4 MB

    def test_gzip_refused_with_q_zero(self) -> None:
        http, _ = engine_site()
        plain = (DIST / "socket.io.min.js").read_bytes()
        for accept in ("gzip;q=0", "gzip;q=0, identity", "GZIP; q=0.0", "*;q=0", "identity"):
            response = http.request("GET", "/socket.io/socket.io.min.js", headers={"Accept-Encoding": accept}).result()
            self.assertNotIn("content-encoding", response.headers, accept)
            self.assertEqual(response.body, plain, accept)
        zipped = http.request("GET", "/socket.io/socket.io.min.js", headers={"Accept-Encoding": "gzip"}).result()
        self.assertEqual((zipped.headers["content-encoding"], gzip.decompress(zipped.body)), ("gzip", plain))
        deflated = http.request("GET", "/socket.io/socket.io.min.js",
                                headers={"Accept-Encoding": "gzip;q=0.5, deflate"}).result()
        self.assertEqual((deflated.headers["content-encoding"], zlib.decompress(deflated.body)), ("deflate", plain))


class RequestLineTests(SynchronousTestCase):
    """Item 11: a request line over 16 KiB gets the documented 414, whole or in pieces."""

    def connect(self) -> ConnectionTransport:
        http, _ = engine_site()
        addr = IPv4Address("TCP", "127.0.0.1", 40000)
        channel = http.site.buildProtocol(addr)
        assert channel is not None
        transport = ConnectionTransport(peerAddress=addr, hostAddress=IPv4Address("TCP", "127.0.0.1", 80))
        transport.protocol = channel
        channel.makeConnection(transport)
        return transport

    def test_long_request_line_gets_414(self) -> None:
        line = b"GET /socket.io/?EIO=4&transport=polling&pad=" + b"x" * int(16.1 * 1024) + b" HTTP/1.1\r\n"
        for pieces in ([line + b"Host: a\r\n\r\n"], [line[:9000], line[9000:]], [line[:17000]]):
            transport = self.connect()
            for piece in pieces:
                transport.protocol.dataReceived(piece)
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 414 URI Too Long\r\n"), transport.value()[:80])
            self.assertIn(b"Connection: close", transport.value())
            self.assertTrue(transport.disconnecting)

    def test_long_header_line_gets_431(self) -> None:
        transport = self.connect()
        transport.protocol.dataReceived(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nX-Pad: "
                                        + b"x" * 17000 + b"\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        self.assertTrue(transport.disconnecting)


class RoutedTransport(StringTransport):
    """A ``StringTransport`` a router can stop reading from."""

    def stopReading(self) -> None:
        self.producerState = "paused"


class Dispatched:
    """Records what a router hands over."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def dispatch(self, router: Router, line: bytes, data: bytes) -> None:
        self.lines.append(line)


def test_the_workers_master_refuses_a_long_request_line_in_one_write() -> None:
    line = b"GET /socket.io/?EIO=4&transport=polling&pad=" + b"x" * int(16.1 * 1024) + b" HTTP/1.1\r\n"
    for pieces in ([line + b"Host: a\r\n\r\n"], [line[:9000], line[9000:]], [line[:17000]]):
        dispatched = Dispatched()
        router = Router(dispatched, None, Clock())
        transport = RoutedTransport()
        router.makeConnection(transport)  # type: ignore[no-untyped-call]
        for piece in pieces:
            router.dataReceived(piece)
        assert transport.value() == b"HTTP/1.1 414 URI Too Long\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        assert transport.disconnecting and dispatched.lines == []
    dispatched = Dispatched()
    router = Router(dispatched, None, Clock())
    router.makeConnection(RoutedTransport())  # type: ignore[no-untyped-call]
    router.dataReceived(b"GET /socket.io/?EIO=4&transport=polling&pad=" + b"x" * 16000 + b" HTTP/1.1\r\n")
    assert len(dispatched.lines) == 1
