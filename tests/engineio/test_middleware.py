"""Engine middleware (Node's ``engine.use``), the CORS origin function, ``initial_packet`` and
``add_trailing_slash``, over in-memory connections on ``task.Clock``: exact wire, whole exchanges."""

from __future__ import annotations

import json
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http import Request
from twisted.web.resource import IResource, Resource

from tests.memhttp import MemoryHTTP, MemoryWebSocket
from txrealtime.engineio import EngineIOOptions, EngineIOResource, RequestRefused, SessionEvent, SessionManager

BASE = "/engine.io/?EIO=4&transport=polling"


class EndpointTestCase(SynchronousTestCase):
    def serve(self, **options: Any) -> None:
        self.clock = Clock()
        self.manager = SessionManager(EngineIOOptions(**options), reactor=self.clock)
        self.events: list[SessionEvent] = []
        self.manager.subscribe(self.events.append)
        root = Resource()
        root.putChild(b"engine.io", cast(IResource, EngineIOResource(self.manager)))
        self.http = MemoryHTTP(cast(IResource, root))

    def open_body(self, body: bytes) -> dict[str, Any]:
        self.assertTrue(body.startswith(b"0{"), body)
        return cast(dict[str, Any], json.loads(body[1:].split(b"\x1e")[0]))


class MiddlewareTests(EndpointTestCase):
    def test_runs_in_order_on_every_request_and_decorates(self) -> None:
        seen: list[tuple[str, bytes]] = []

        def first(request: Request) -> None:
            seen.append(("first", request.method))
            request.setHeader(b"x-first", b"1")

        def second(request: Request) -> None:
            seen.append(("second", request.method))

        self.serve(middleware=[first, second])
        opened = self.http.request("GET", BASE).result()
        self.assertEqual((opened.status, opened.headers["x-first"]), (200, "1"))
        sid = self.open_body(opened.body)["sid"]
        posted = self.http.request("POST", f"{BASE}&sid={sid}", b"4hi").result()
        self.assertEqual((posted.status, posted.body, posted.headers["x-first"]), (200, b"ok", "1"))
        self.assertEqual(seen, [("first", b"GET"), ("second", b"GET"), ("first", b"POST"), ("second", b"POST")])

    def test_answering_ends_the_request_there(self) -> None:
        later: list[Request] = []

        def refuse(request: Request) -> None:
            request.setResponseCode(401)
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"content-length", b"23")
            request.write(b'{"error":"who are you"}')
            request.finish()

        self.serve(middleware=[refuse, later.append])
        answer = self.http.request("GET", BASE).result()
        self.assertEqual((answer.status, answer.body), (401, b'{"error":"who are you"}'))
        self.assertEqual((later, len(self.manager)), ([], 0))

    def test_a_deferred_holds_the_request_until_it_fires(self) -> None:
        waiting: list[Deferred[None]] = []

        def slow(request: Request) -> Deferred[None]:
            d: Deferred[None] = Deferred()
            waiting.append(d)
            return d

        self.serve(middleware=[slow])
        exchange = self.http.request("GET", BASE)
        self.assertFalse(exchange.done)
        self.assertEqual(len(self.manager), 0)
        waiting.pop().callback(None)
        self.assertEqual(self.open_body(exchange.result().body)["upgrades"], ["websocket"])
        self.assertEqual(len(self.manager), 1)

    def test_a_coroutine_is_awaited(self) -> None:
        gate: Deferred[None] = Deferred()

        async def check(request: Request) -> None:
            await gate
            request.setHeader(b"x-checked", b"later")

        self.serve(middleware=[check])
        exchange = self.http.request("GET", BASE)
        self.assertFalse(exchange.done)
        gate.callback(None)
        self.assertEqual(exchange.result().headers["x-checked"], "later")

    def test_failure_answers_400_middleware_failure(self) -> None:
        def broken(request: Request) -> None:
            raise RuntimeError("boom")

        late: Deferred[None] = Deferred()
        for step in (broken, lambda request: late):
            with self.subTest(step=step):
                self.serve(middleware=[step])
                exchange = self.http.request("GET", BASE)
                if step is not broken:
                    late.errback(RuntimeError("later boom"))
                answer = exchange.result()
                self.assertEqual((answer.status, answer.body), (400, b'{"code":3,"message":"Bad request"}'))
                [refused] = [e for e in self.events if isinstance(e, RequestRefused)]
                self.assertEqual(refused.context, {"name": "MIDDLEWARE_FAILURE"})
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_a_client_gone_while_waiting_is_not_answered(self) -> None:
        gate: Deferred[None] = Deferred()
        self.serve(middleware=[lambda request: gate])
        exchange = self.http.request("GET", BASE)
        exchange.drop()
        gate.callback(None)
        self.assertEqual((exchange.transport.value(), len(self.manager)), (b"", 0))

    def test_upgrade_headers_go_with_the_101_and_a_refusal_stops_it(self) -> None:
        def mark(request: Request) -> None:
            request.setHeader(b"x-checked", b"yes")
            if b"deny" in request.uri:
                request.setResponseCode(403)
                request.finish()

        self.serve(middleware=[mark])
        ws = MemoryWebSocket(self.http, "/engine.io/?EIO=4&transport=websocket")
        self.assertEqual(ws.headers.get("x-checked"), "yes")
        [(_, opening)] = ws.frames()
        self.assertTrue(opening.startswith(b"0{"))
        denied = self.http.request("GET", "/engine.io/?EIO=4&transport=websocket&deny=1", headers={
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13"}).result()
        self.assertEqual(denied.status, 403)
        self.assertEqual(len(self.manager), 1)


UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
           "Sec-WebSocket-Version": "13"}


class RefusalTests(EndpointTestCase):
    """Refusals word for word as Node's engine.io writes them (tests/engineio/test_node_parity.py compares)."""

    def test_allow_request_reason_is_the_answer(self) -> None:
        self.serve(allow_request=lambda handshake: handshake.query.get("why", True))
        for why, message in [("none", b"none"), ("", b"Forbidden")]:
            with self.subTest(why=why):
                answer = self.http.request("GET", f"{BASE}&why={why}").result()
                self.assertEqual((answer.status, answer.body), (403, b'{"code":4,"message":"%s"}' % message))
                upgrade = self.http.request("GET", f"/engine.io/?EIO=4&transport=websocket&why={why}",
                                            headers=UPGRADE)
                self.assertEqual(upgrade.transport.value(), b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                                 b"Content-type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(message), message))
                self.assertTrue(upgrade.transport.disconnecting)
        self.assertEqual(len(self.manager), 0)

    def test_text_node_could_not_write_as_node_writes_it(self) -> None:
        # A reason only a Python hook can give: a lone surrogate, escaped in JSON as JSON.stringify escapes it,
        # U+FFFD in the bare message as Node's Buffer writes it; the rest as UTF-8.
        self.serve(allow_request=lambda handshake: "été \ud800")
        polling = self.http.request("GET", BASE).result()
        self.assertEqual(polling.body, '{"code":4,"message":"été \\ud800"}'.encode())
        upgrade = self.http.request("GET", "/engine.io/?EIO=4&transport=websocket", headers=UPGRADE)
        self.assertTrue(upgrade.transport.value().endswith(b"Content-Length: 9\r\n\r\n" + "été \ufffd".encode()))

    def test_refused_upgrade_before_the_websocket_is_closed_after_its_answer(self) -> None:
        self.serve()
        for query, message in [("transport=tobi", b"Transport unknown"), ("transport=websocket&sid=x",
                                                                          b"Session ID unknown")]:
            with self.subTest(query=query):
                upgrade = self.http.request("GET", f"/engine.io/?EIO=4&{query}", headers=UPGRADE)
                answer = upgrade.result()
                self.assertEqual((answer.status, answer.headers["content-type"], answer.headers["connection"],
                                  answer.body), (400, "text/html", "close", message))
                self.assertTrue(upgrade.transport.disconnecting)
        # Without the upgrade, the JSON body of a polling request.
        plain = self.http.request("GET", "/engine.io/?EIO=4&transport=websocket&sid=x").result()
        self.assertEqual((plain.status, plain.body), (400, b'{"code":1,"message":"Session ID unknown"}'))

    def test_an_empty_sid_asks_for_a_new_session(self) -> None:
        self.serve()
        self.assertEqual(self.open_body(self.http.request("GET", f"{BASE}&sid=").result().body)["upgrades"],
                         ["websocket"])
        ws = MemoryWebSocket(self.http, "/engine.io/?EIO=4&transport=websocket&sid=")
        [(_, opening)] = ws.frames()
        self.assertTrue(opening.startswith(b"0{"))
        self.assertEqual(len(self.manager), 2)


class OriginFunctionTests(EndpointTestCase):
    def test_decides_per_origin_synchronously_or_later(self) -> None:
        later: dict[str, Deferred[bool]] = {}

        def allowed(origin: str | None) -> bool | Deferred[bool]:
            if origin == "https://slow.example":
                later[origin] = Deferred()
                return later[origin]
            return origin == "https://app.example"

        self.serve(cors_allowed_origins=allowed, cors_exposed_headers=["X-A"])
        good = self.http.request("GET", BASE, headers={"Origin": "https://app.example"}).result()
        self.assertEqual(
            tuple(good.headers[name] for name in ("access-control-allow-origin", "vary",
                                                  "access-control-allow-credentials", "access-control-expose-headers")),
            ("https://app.example", "Origin", "true", "X-A"),
        )
        bad = self.http.request("GET", BASE, headers={"Origin": "https://evil.example"}).result()
        self.assertEqual(bad.status, 200)
        self.assertFalse([name for name in bad.headers if name.startswith("access-control")])
        slow = self.http.request("OPTIONS", BASE, headers={"Origin": "https://slow.example"})
        self.assertFalse(slow.done)
        later["https://slow.example"].callback(True)
        preflight = slow.result()
        self.assertEqual((preflight.status, preflight.headers["access-control-allow-origin"]),
                         (204, "https://slow.example"))

    def test_a_failing_function_allows_nothing(self) -> None:
        def broken(origin: str | None) -> bool:
            raise ValueError("oops")

        self.serve(cors_allowed_origins=broken)
        answer = self.http.request("GET", BASE, headers={"Origin": "https://app.example"}).result()
        self.assertEqual(answer.status, 200)
        self.assertNotIn("access-control-allow-origin", answer.headers)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_preflight_options(self) -> None:
        self.serve(cors_allowed_origins=["https://app.example"], cors_methods=["GET", "POST"],
                   cors_allowed_headers=["X-Token"], cors_max_age=600, cors_credentials=False)
        preflight = self.http.request("OPTIONS", BASE, headers={
            "Origin": "https://app.example", "Access-Control-Request-Headers": "x-other"}).result()
        self.assertEqual(preflight.status, 204)
        cors = {k: v for k, v in preflight.headers.items() if k.startswith("access-control") or k == "vary"}
        self.assertEqual(cors, {
            "access-control-allow-origin": "https://app.example",
            "access-control-allow-methods": "GET,POST",
            "access-control-allow-headers": "X-Token",
            "access-control-max-age": "600",
            "vary": "Origin",
        })

    def test_strings_where_lists_go_are_refused(self) -> None:
        for name in ("cors_methods", "cors_allowed_headers", "cors_exposed_headers"):
            with self.subTest(name=name):
                with self.assertRaisesRegex(TypeError, f"{name} must be a list"):
                    EngineIOOptions(**cast(dict[str, Any], {name: "GET"}))
        with self.assertRaisesRegex(ValueError, "cors_max_age must be >= 0"):
            EngineIOOptions(cors_max_age=-1)
        with self.assertRaisesRegex(TypeError, "middleware must be a list of callables"):
            EngineIOOptions(middleware=["not callable"])  # type: ignore[list-item]


class InitialPacketAndSlashTests(EndpointTestCase):
    def test_initial_packet_follows_the_open_packet_on_both_transports(self) -> None:
        self.serve(initial_packet="welcome")
        body = self.http.request("GET", BASE).result().body
        self.assertEqual(body.split(b"\x1e")[1:], [b"4welcome"])
        ws = MemoryWebSocket(self.http, "/engine.io/?EIO=4&transport=websocket")
        self.assertEqual([payload for _, payload in ws.frames()][1:], [b"4welcome"])
        self.serve(initial_packet=b"\x01\x02")
        self.assertEqual(self.http.request("GET", BASE).result().body.split(b"\x1e")[1:], [b"bAQI="])

    def test_trailing_slash(self) -> None:
        self.serve()
        self.assertEqual(self.http.request("GET", "/engine.io?EIO=4&transport=polling").result().status, 404)
        self.assertEqual(len(self.manager), 0)
        self.serve(add_trailing_slash=False)
        answer = self.http.request("GET", "/engine.io?EIO=4&transport=polling").result()
        self.assertEqual(answer.status, 200)
        self.assertEqual(self.http.request("GET", BASE).result().status, 200)
