"""Forwarding between in-memory nodes on one ``task.Clock``: polling, upgrades, lookups and failures."""

from __future__ import annotations

import itertools
import json
from typing import Any, cast

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import IResource, Resource

from tests.fakes import MemoryBus, MemoryLink
from tests.memhttp import Exchange, MemoryHTTP, MemoryWebSocket, Response
from txrealtime.engineio import (
    CloseReason,
    EngineIOOptions,
    EngineIOResource,
    MessageReceived,
    RequestRefused,
    SessionClosed,
    SessionEvent,
    SessionManager,
    SessionUpgraded,
)
from txrealtime.forwarding import Forwarder

BASE = "/engine.io/?EIO=4&transport=polling"
WS = "/engine.io/?EIO=4&transport=websocket"
UNKNOWN = {"code": 1, "message": "Session ID unknown"}


class Node:
    """One node: its manager, resource, forwarder and an HTTP client to it."""

    def __init__(self, bus: MemoryBus, uid: str, options: EngineIOOptions) -> None:
        self.link: MemoryLink = bus.link(uid)
        self.manager = SessionManager(options, reactor=bus.clock)
        self.events: list[SessionEvent] = []
        self.manager.subscribe(self.events.append)
        self.resource = EngineIOResource(self.manager)
        root = Resource()
        root.putChild(b"engine.io", cast(IResource, self.resource))
        self.http = MemoryHTTP(cast(IResource, root))
        self.forwarder = Forwarder(self.resource, self.link, timeout=1.0, reactor=bus.clock)
        self.forwarder.start()

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class ForwardingTests(SynchronousTestCase):
    options = EngineIOOptions(ping_interval=25, ping_timeout=20, max_payload=1000)

    def setUp(self) -> None:
        self.clock = Clock()
        self.bus = MemoryBus(self.clock)
        self.a, self.b, self.c = (Node(self.bus, uid, self.options) for uid in ("a", "b", "c"))

    def handshake(self, node: Node) -> str:
        response = node.http.request("GET", BASE).result()
        sid: str = json.loads(response.body[1:])["sid"]
        return sid

    def settle(self, exchange: Exchange) -> Response:
        self.bus.flush()
        return exchange.result()

    def assertUnknown(self, response: Response) -> None:
        self.assertEqual((response.status, json.loads(response.body)), (400, UNKNOWN))

    # -- polling -----------------------------------------------------------------------------

    def test_sids_carry_the_node_that_made_them(self) -> None:
        self.assertTrue(self.handshake(self.a).endswith("~a"))
        self.assertTrue(self.handshake(self.b).endswith("~b"))

    def test_requests_that_reach_the_owner_send_nothing_between_nodes(self) -> None:
        sid = self.handshake(self.a)
        post = self.a.http.request("POST", f"{BASE}&sid={sid}", b"4hello")
        self.assertEqual(post.result().body, b"ok")
        poll = self.a.http.request("GET", f"{BASE}&sid={sid}")
        self.a.manager.send(sid, "hi")
        self.assertEqual(poll.result().body, b"4hi")
        self.bus.flush()
        self.assertEqual([channel for channel, _ in self.bus.published], [])

    def test_a_post_on_another_node_reaches_the_session(self) -> None:
        sid = self.handshake(self.a)
        post = self.b.http.request("POST", f"{BASE}&sid={sid}", b"4hello\x1e4world")
        self.assertFalse(post.done)  # answered once the owner did
        response = self.settle(post)
        self.assertEqual((response.status, response.body), (200, b"ok"))
        self.assertEqual([e.data for e in self.a.of(MessageReceived)], ["hello", "world"])
        self.assertEqual(self.b.manager.sessions, {})

    def test_a_poll_on_another_node_gets_what_the_session_sends(self) -> None:
        sid = self.handshake(self.a)
        poll = self.c.http.request("GET", f"{BASE}&sid={sid}")
        self.bus.flush()
        self.assertFalse(poll.done)  # parked on the owner
        session = self.a.manager.get(sid)
        assert session is not None
        session.send_many(["hi", b"\x01\x02"])
        response = self.settle(poll)
        self.assertEqual((response.status, response.body), (200, b"4hi\x1ebAQI="))
        self.assertEqual(response.headers["content-type"], "text/plain; charset=UTF-8")

    def test_the_owners_headers_hooks_and_cors_answer(self) -> None:
        options = EngineIOOptions(headers=lambda request, sid: {"X-Node": "a"}, cors_allowed_origins=["https://x"])
        self.a.manager.options = options
        self.b.manager.options = EngineIOOptions(cors_allowed_origins=["https://y"])
        sid = self.handshake(self.a)
        post = self.b.http.request("POST", f"{BASE}&sid={sid}", b"4x", {"Origin": "https://x"})
        response = self.settle(post)
        self.assertEqual(response.headers["x-node"], "a")
        self.assertEqual(response.headers["access-control-allow-origin"], "https://x")

    def test_overlapping_polls_on_two_nodes_break_the_session_as_on_one(self) -> None:
        sid = self.handshake(self.a)
        first = self.b.http.request("GET", f"{BASE}&sid={sid}")
        self.bus.flush()
        second = self.c.http.request("GET", f"{BASE}&sid={sid}")
        self.assertEqual(self.settle(second).status, 400)
        self.assertEqual(self.settle(first).body, b"1")
        self.assertEqual([e.reason for e in self.a.of(SessionClosed)], [CloseReason.TRANSPORT_ERROR])

    def test_a_client_that_leaves_its_forwarded_poll_loses_it_on_the_owner(self) -> None:
        sid = self.handshake(self.a)
        poll = self.b.http.request("GET", f"{BASE}&sid={sid}")
        self.bus.flush()
        poll.drop()
        self.bus.flush()
        [closed] = self.a.of(SessionClosed)
        self.assertEqual((closed.reason, closed.description),
                         (CloseReason.TRANSPORT_ERROR, "poll connection closed prematurely"))

    def test_a_request_the_owner_does_not_know_is_never_forwarded_again(self) -> None:
        sid = self.handshake(self.a)
        self.a.manager.close(sid)
        self.a.manager.shutdown(drop_lingering=True)
        response = self.settle(self.b.http.request("GET", f"{BASE}&sid={sid}"))
        self.assertUnknown(response)
        self.assertEqual(len(self.bus.published), 2)  # the request and its answer
        self.assertEqual([e.code for e in self.a.of(RequestRefused)], [1])
        self.assertEqual(self.b.of(RequestRefused), [])

    # -- unknown sids --------------------------------------------------------------------------

    def test_a_tag_naming_no_live_node_is_unknown_at_once(self) -> None:
        for sid in ("x" * 20 + "~zz", "x" * 20 + "~b"):  # no such node; this node, which does not hold it
            response = self.b.http.request("GET", f"{BASE}&sid={sid}").result()
            self.assertUnknown(response)
        self.assertEqual(self.bus.published, [])
        self.assertEqual([e.context["sid"] for e in self.b.of(RequestRefused)], ["x" * 20 + "~zz", "x" * 20 + "~b"])

    def test_an_untagged_sid_is_looked_up_and_unknown_once_every_node_said_no(self) -> None:
        response = self.settle(self.b.http.request("GET", f"{BASE}&sid=nobody"))
        self.assertUnknown(response)
        self.assertEqual(self.clock.seconds(), 0)  # no timeout waited for

    def test_an_untagged_sid_is_found_by_its_owner(self) -> None:
        options = EngineIOOptions(generate_id=lambda request: "custom-id")
        for node in (self.a, self.b, self.c):
            node.forwarder.stop()
            node.manager.options = options
            node.forwarder.start()
        self.assertEqual(self.handshake(self.a), "custom-id")
        post = self.c.http.request("POST", f"{BASE}&sid=custom-id", b"4hello")
        self.assertEqual(self.settle(post).body, b"ok")
        self.assertEqual([e.data for e in self.a.of(MessageReceived)], ["hello"])

    def test_a_lookup_gives_up_after_the_timeout_when_a_node_does_not_answer(self) -> None:
        self.c.link.channels.clear()  # alive by its heartbeats, deaf to lookups
        poll = self.b.http.request("GET", f"{BASE}&sid=nobody")
        self.bus.flush()
        self.assertFalse(poll.done)
        self.clock.advance(1.0)
        self.assertUnknown(poll.result())

    def test_lookups_at_a_time_are_capped(self) -> None:
        self.b.forwarder.max_lookups = 1
        self.c.link.channels.clear()
        first = self.b.http.request("GET", f"{BASE}&sid=one")
        self.assertUnknown(self.b.http.request("GET", f"{BASE}&sid=two").result())  # refused at once
        self.clock.advance(1.0)
        self.assertUnknown(first.result())

    def test_while_the_link_is_down_requests_for_other_nodes_are_unknown_at_once(self) -> None:
        sid = self.handshake(self.a)
        self.b.link.up = False
        self.assertUnknown(self.b.http.request("GET", f"{BASE}&sid={sid}").result())
        self.b.link.up = True
        post = self.b.http.request("POST", f"{BASE}&sid={sid}", b"4back")
        self.assertEqual(self.settle(post).body, b"ok")

    # -- WebSocket upgrades --------------------------------------------------------------------

    def upgrade(self, via: Node, owner: Node | None = None) -> tuple[str, MemoryWebSocket]:
        sid = self.handshake(owner or self.a)
        ws = MemoryWebSocket(via.http, f"{WS}&sid={sid}")
        self.assertEqual(ws.status, 0)  # the owner decides
        self.bus.flush()
        ws = _answered(ws)
        self.assertEqual(ws.status, 101)
        ws.send_text("2probe")
        self.bus.flush()
        self.assertEqual(ws.frames(), [(1, b"3probe")])
        ws.send_text("5")
        self.bus.flush()
        return sid, ws

    def test_an_upgrade_on_another_node_is_relayed(self) -> None:
        sid, ws = self.upgrade(self.b)
        self.assertEqual(self.a.of(SessionUpgraded), [SessionUpgraded(sid, "polling", "websocket")])
        self.a.manager.send(sid, "hi")
        self.a.manager.send(sid, b"\x00\xff")
        self.bus.flush()
        self.assertEqual(ws.frames(), [(1, b"4hi"), (2, b"\x00\xff")])
        ws.send_text("4hello")
        ws.send_binary(b"\x01")
        self.bus.flush()
        self.assertEqual([e.data for e in self.a.of(MessageReceived)], ["hello", b"\x01"])
        self.clock.advance(25)  # a heartbeat crosses both ways
        self.bus.flush()
        self.assertEqual(ws.frames(), [(1, b"2")])
        ws.send_text("3")
        self.bus.flush()
        self.clock.advance(20)
        self.assertEqual(self.a.of(SessionClosed), [])
        ws.lose()
        self.bus.flush()
        [closed] = self.a.of(SessionClosed)
        self.assertEqual(closed.reason, CloseReason.TRANSPORT_CLOSE)

    def test_two_nodes_relaying_for_each_other_under_the_same_number(self) -> None:
        self.b.forwarder._ids = itertools.count(100)
        self.c.forwarder._ids = itertools.count(100)
        on_c, via_b = self.upgrade(self.b, owner=self.c)  # b relays its connection no. 100 for c
        on_b, via_c = self.upgrade(self.c, owner=self.b)  # and c its no. 100 for b
        self.c.manager.send(on_c, "for the client of c's session")
        self.b.manager.send(on_b, "for the client of b's session")
        via_b.send_text("4to c")
        via_c.send_text("4to b")
        self.bus.flush()
        self.assertEqual(via_b.frames(), [(1, b"4for the client of c's session")])
        self.assertEqual(via_c.frames(), [(1, b"4for the client of b's session")])
        self.assertEqual([e.data for e in self.c.of(MessageReceived)], ["to c"])
        self.assertEqual([e.data for e in self.b.of(MessageReceived)], ["to b"])

    def test_the_owner_closing_closes_the_relayed_connection(self) -> None:
        sid, ws = self.upgrade(self.c)
        self.a.manager.close(sid)
        self.bus.flush()
        frames = ws.frames()
        self.assertEqual(frames[0], (1, b"1"))
        self.assertEqual(frames[1][0], 8)  # a close frame
        self.assertEqual(self.c.forwarder._relays, {})

    def test_an_upgrade_of_an_unknown_sid_is_refused(self) -> None:
        ws = MemoryWebSocket(self.b.http, f"{WS}&sid={'x' * 20}~a")
        ws = _answered(self.settle_ws(ws))
        self.assertEqual(ws.status, 400)
        self.assertEqual([e.code for e in self.a.of(RequestRefused)], [1])

    def settle_ws(self, ws: MemoryWebSocket) -> MemoryWebSocket:
        self.bus.flush()
        return ws

    def test_a_second_websocket_for_an_upgraded_session_is_accepted_and_closed(self) -> None:
        sid, _ = self.upgrade(self.b)
        ws = _answered(self.settle_ws(MemoryWebSocket(self.c.http, f"{WS}&sid={sid}")))
        self.assertEqual(ws.status, 101)
        self.assertEqual(ws.frames(), [(8, b"")])

    def test_an_upgrade_answered_too_late_ends_its_probe_on_the_owner(self) -> None:
        sid = self.handshake(self.a)
        late: list[tuple[str, bytes]] = []
        mine = "socket.io-forward#a#"
        self.a.link.channels[mine] = [lambda channel, message: late.append((channel, message))]  # slow owner
        ws = MemoryWebSocket(self.b.http, f"{WS}&sid={sid}")
        self.clock.advance(1.0)  # the node holding the connection gives up, and says so
        self.bus.flush()
        self.assertEqual(_answered(ws).status, 504)
        for channel, message in late:  # the owner hears the upgrade, then the cancel
            self.a.forwarder._received(channel, message)
        self.assertEqual(self.a.forwarder._remotes, {})
        session = self.a.manager.get(sid)
        assert session is not None
        self.assertFalse(session.upgrading)

    # -- failures ---------------------------------------------------------------------------------

    def test_a_node_that_dies_closes_the_sessions_whose_connection_it_held(self) -> None:
        sid, _ = self.upgrade(self.b)
        self.b.link.die()
        self.clock.advance(1.0)
        [closed] = self.a.of(SessionClosed)
        self.assertEqual((closed.sid, closed.reason), (sid, CloseReason.TRANSPORT_ERROR))
        self.assertEqual(closed.description, "node b left")

    def test_an_owner_that_dies_closes_the_connections_relayed_for_it(self) -> None:
        _, ws = self.upgrade(self.b)
        self.a.link.die()
        self.clock.advance(1.0)
        self.assertEqual(ws.frames()[-1][0], 8)
        self.assertEqual(self.b.forwarder._relays, {})

    def test_an_owner_that_dies_fails_the_polls_forwarded_to_it(self) -> None:
        sid = self.handshake(self.a)
        poll = self.b.http.request("GET", f"{BASE}&sid={sid}")
        self.bus.flush()
        self.a.link.die()
        self.clock.advance(1.0)
        self.assertUnknown(poll.result())

    def test_an_owner_that_never_answers_fails_the_poll_after_the_heartbeat(self) -> None:
        sid = self.handshake(self.a)
        self.a.link.channels = {name: [lambda *_: None] for name in self.a.link.channels}  # alive, but deaf
        poll = self.b.http.request("POST", f"{BASE}&sid={sid}", b"4x")
        self.bus.flush()
        self.clock.advance(20)
        self.assertFalse(poll.done)
        self.clock.advance(1)
        self.assertEqual(poll.result().status, 504)


def _answered(ws: MemoryWebSocket) -> MemoryWebSocket:
    """Read the handshake answer that came after the owner decided."""
    raw = ws.exchange.transport.value()
    head, _, rest = raw.partition(b"\r\n\r\n")
    ws.status = int(head.split(b" ")[1]) if head else 0
    ws.exchange.transport.clear()
    ws._pending = rest
    return ws
