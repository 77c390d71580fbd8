"""The Socket.IO server over in-memory Engine.IO sessions and a fake clock."""

from __future__ import annotations

import json
import re
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import Peer
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionManager
from txrealtime.engineio.packets import PacketType as EIOType
from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.socketio import AckTimeout, ConnectionRefused, Disconnected, Server, Socket

T = PacketType


class ServerTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.manager = SessionManager(EngineIOOptions(ping_interval=25, ping_timeout=20), reactor=self.clock)
        self.server = Server(self.manager, connect_timeout=5)
        self.sockets: list[Socket] = []
        self.reasons: list[tuple[str, str]] = []

        def on_connection(socket: Socket) -> None:
            self.sockets.append(socket)
            socket.on("disconnect", lambda reason: self.reasons.append((socket.id, str(reason))))
            socket.on("ack", lambda *args: ("got", *args))

        self.server.on("connection", on_connection)

    def peer(self, name: str = "websocket") -> Peer:
        return Peer(self.manager, name)


class ConnectTests(ServerTestCase):
    def test_connect_default_namespace(self) -> None:
        peer = self.peer()
        sid = peer.connect(auth={"token": "t"})
        [socket] = self.sockets
        self.assertEqual(socket.id, sid)
        self.assertNotEqual(sid, peer.session.sid)
        self.assertEqual(socket.handshake.auth, {"token": "t"})
        self.assertEqual(socket.handshake.address, "127.0.0.1")
        self.assertEqual(socket.rooms, {sid})
        self.assertIs(self.server.sockets.sockets[sid], socket)

    def test_unknown_namespace(self) -> None:
        peer = self.peer()
        peer.send('0/nope,')
        self.assertEqual(peer.packets(), [Packet(T.CONNECT_ERROR, "/nope", {"message": "Invalid namespace"})])
        self.assertFalse(peer.closed)

    def test_connect_twice_is_a_protocol_error(self) -> None:
        peer = self.peer()
        peer.connect()
        peer.send("0")
        self.assertTrue(peer.closed)
        self.assertEqual(self.reasons, [(self.sockets[0].id, "parse error")])

    def test_connect_timeout(self) -> None:
        idle, busy = self.peer(), self.peer()
        busy.connect()
        self.clock.advance(5)
        self.assertTrue(idle.closed)
        self.assertEqual(idle.transport.types()[-1], EIOType.CLOSE)
        self.assertFalse(busy.closed)
        self.assertEqual(self.clock.getDelayedCalls().__len__(), 1)  # busy's ping timer only

    def test_dynamic_namespace_by_regex_and_predicate(self) -> None:
        seen: list[str] = []
        parent = self.server.of(re.compile(r"/room-\d+"))
        parent.on("connection", lambda s: seen.append(s.nsp.name))
        pending: Deferred[bool] = Deferred()
        self.server.of(lambda name, auth: pending if name == "/slow" else False).on(
            "connection", lambda s: seen.append(s.nsp.name)
        )
        created: list[str] = []
        self.server.on("new_namespace", lambda ns: created.append(ns.name))
        peer = self.peer()
        peer.connect("/room-7")
        peer.send("0/room-x,")
        self.assertEqual(peer.packets()[0].data, {"message": "Invalid namespace"})
        peer.send("0/slow,")
        self.assertEqual(peer.packets(), [])
        pending.callback(True)
        self.assertEqual(peer.packets()[0].type, T.CONNECT)
        self.assertEqual(seen, ["/room-7", "/slow"])
        self.assertEqual(created, ["/room-7", "/slow"])
        # Emitting on the parent reaches its children.
        parent.emit("hello", 1)
        self.assertEqual(peer.packets(), [Packet(T.EVENT, "/room-7", ["hello", 1])])


class MiddlewareTests(ServerTestCase):
    def test_refusal_with_data(self) -> None:
        admin = self.server.of("/admin")

        @admin.use
        def check(socket: Socket) -> None:
            if socket.handshake.auth.get("token") != "ok":
                raise ConnectionRefused("not authorized", {"code": 401})

        peer = self.peer()
        peer.send_packet(Packet(T.CONNECT, "/admin", {"token": "bad"}))
        self.assertEqual(
            peer.packets(),
            [Packet(T.CONNECT_ERROR, "/admin", {"message": "not authorized", "data": {"code": 401}})],
        )
        self.assertEqual(admin.sockets, {})
        peer.connect("/admin", {"token": "ok"})
        self.assertEqual(len(admin.sockets), 1)

    def test_async_middleware_in_order(self) -> None:
        order: list[str] = []
        gate: Deferred[None] = Deferred()

        async def first(socket: Socket) -> None:
            order.append("first")
            await gate
            socket.data["user"] = "alice"

        def second(socket: Socket) -> None:
            order.append("second:" + socket.data["user"])

        self.server.use(first)
        self.server.use(second)
        peer = self.peer()
        peer.send("0")
        self.assertEqual((order, peer.packets()), (["first"], []))
        gate.callback(None)
        self.assertEqual(order, ["first", "second:alice"])
        self.assertEqual(peer.packets()[0].type, T.CONNECT)

    def test_failing_middleware_is_an_internal_error(self) -> None:
        self.server.use(lambda socket: 1 / 0)
        peer = self.peer()
        peer.send("0")
        self.assertEqual(peer.packets(), [Packet(T.CONNECT_ERROR, "/", {"message": "Internal server error"})])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_client_gone_during_middleware(self) -> None:
        gate: Deferred[None] = Deferred()
        self.server.use(lambda socket: gate)
        peer = self.peer()
        peer.send("0")
        peer.session.close(CloseReason.TRANSPORT_CLOSE)
        gate.callback(None)
        self.assertEqual(self.sockets, [])
        self.assertEqual(self.server.sockets.sockets, {})


class EventTests(ServerTestCase):
    def test_handler_return_value_answers_the_ack(self) -> None:
        peer = self.peer()
        peer.connect()
        peer.send('21["ack",1,"x"]')
        self.assertEqual(peer.packets(), [Packet(T.ACK, "/", ["got", 1, "x"], 1)])

    def test_async_and_deferred_handlers(self) -> None:
        later: Deferred[str] = Deferred()
        gate: Deferred[str] = Deferred()
        peer = self.peer()
        peer.connect()
        socket = self.sockets[0]
        socket.on("deferred", lambda: later)

        @socket.on("coroutine")
        async def coroutine(x: int) -> list[object]:
            return [x, await gate]

        peer.send('25["deferred"]', '26["coroutine",4]')
        self.assertEqual(peer.packets(), [])
        later.callback("done")
        gate.callback("done")
        self.assertEqual(
            peer.packets(), [Packet(T.ACK, "/", ["done"], 5), Packet(T.ACK, "/", [[4, "done"]], 6)]
        )

    def test_handler_exception_is_logged_and_connection_survives(self) -> None:
        peer = self.peer()
        peer.connect()
        self.sockets[0].on("boom", lambda: 1 / 0)
        peer.send('27["boom"]', '28["ack"]')
        self.assertEqual(peer.packets(), [Packet(T.ACK, "/", ["got"], 8)])
        self.assertFalse(peer.closed)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_binary_both_ways(self) -> None:
        peer = self.peer()
        peer.connect()
        peer.send('51-3["ack",{"_placeholder":true,"num":0}]', b"\x00\xff")
        [ack] = peer.packets()
        self.assertEqual(ack, Packet(T.ACK, "/", ["got", b"\x00\xff"], 3))
        # The ACK left as a BINARY_ACK with one attachment.
        binary = [p.data for p in peer.transport.sent if p.type is EIOType.MESSAGE][-2:]
        self.assertEqual(binary, ['61-3["got",{"_placeholder":true,"num":0}]', b"\x00\xff"])

    def test_catch_all_listeners(self) -> None:
        incoming: list[list[Any]] = []
        outgoing: list[list[Any]] = []
        peer = self.peer()
        peer.connect()
        socket = self.sockets[0]
        socket.on_any(lambda *a: incoming.append(list(a)))
        socket.on_any_outgoing(lambda *a: outgoing.append(list(a)))
        peer.send('2["anything",1]')
        socket.emit("out", 2)
        self.server.emit("all", 3)
        self.assertEqual(incoming, [["anything", 1]])
        self.assertEqual(outgoing, [["out", 2], ["all", 3]])

    def test_socket_middleware_rewrites_or_refuses_events(self) -> None:
        errors: list[Exception] = []
        peer = self.peer()
        peer.connect()
        socket = self.sockets[0]

        @socket.use
        def guard(event: str, args: list[Any]) -> None:
            if event == "forbidden":
                raise PermissionError("not for you")
            args.append("checked")

        socket.on("error", errors.append)
        socket.on("forbidden", lambda *a: self.fail("refused events reach no handler"))
        peer.send('21["ack",1]', '22["forbidden"]')
        self.assertEqual(peer.packets(), [Packet(T.ACK, "/", ["got", 1, "checked"], 1)])
        self.assertEqual([str(e) for e in errors], ["not for you"])
        self.assertFalse(peer.closed)

    def test_reserved_events_cannot_be_emitted(self) -> None:
        peer = self.peer()
        peer.connect()
        for name in ("connect", "disconnect", "connect_error", "disconnecting"):
            self.assertRaises(ValueError, self.sockets[0].emit, name)
            self.assertRaises(ValueError, self.server.emit, name)
        for name in ("connection", "new_namespace", "disconnect"):
            self.assertRaises(ValueError, self.server.server_side_emit, name)
        # A server-side emit naming a namespace event never reaches connection handlers.
        self.server.sockets.on_server_side_emit(["connection", "not a socket"])
        self.assertEqual(len(self.sockets), 1)
        # Alone, a server has no one else to tell.
        self.assertTrue(self.server.server_side_emit("hello"))
        self.assertEqual(self.successResultOf(self.server.server_side_emit_with_ack("hello")), [])

    def test_unknown_ack_ids_and_packets_for_other_namespaces_are_ignored(self) -> None:
        peer = self.peer()
        peer.connect()
        peer.send('399["late"]', '2/elsewhere,["x"]')
        self.assertFalse(peer.closed)


class AckTests(ServerTestCase):
    def test_emit_with_ack(self) -> None:
        peer = self.peer()
        peer.connect()
        d = self.sockets[0].emit_with_ack("question", 1)
        [question] = peer.packets()
        self.assertEqual(question, Packet(T.EVENT, "/", ["question", 1], 0))
        peer.send('30[42,"x"]')
        self.assertEqual(self.successResultOf(d), (42, "x"))

    def test_ack_callback(self) -> None:
        got: list[Any] = []
        peer = self.peer()
        peer.connect()
        self.sockets[0].emit("q", ack=lambda *a: got.append(a))
        peer.send("30[7]")
        self.assertEqual(got, [(7,)])

    def test_handler_with_an_ack_parameter_answers_when_it_calls_it(self) -> None:
        kept: list[Any] = []

        def later(value: int, *, ack: Any) -> None:
            kept.append(ack)

        self.server.on("connection", lambda socket: socket.on("later", later))
        peer = self.peer()
        peer.connect()
        peer.send('25["later",1]', '26["later",2]')
        self.assertEqual(peer.packets(), [])  # not answered by returning
        kept[1]("two", 2)
        kept[1]("ignored")  # only the first call answers
        kept[0]()
        self.assertEqual(peer.packets(), [Packet(T.ACK, "/", ["two", 2], 6), Packet(T.ACK, "/", [], 5)])
        peer.send('2["later",3]')
        self.assertEqual(kept[2], None)  # no ack asked for

    def test_no_ack_sends_nothing(self) -> None:
        from txrealtime.protocol.acks import NO_ACK

        self.server.on("connection", lambda socket: socket.on("quiet", lambda: NO_ACK))
        peer = self.peer()
        peer.connect()
        peer.send('27["quiet"]', '28["ack",1]')
        self.assertEqual(peer.packets(), [Packet(T.ACK, "/", ["got", 1], 8)])

    def test_datetimes_go_out_as_date_to_json_writes_them(self) -> None:
        import datetime

        peer = self.peer()
        peer.connect()
        moment = datetime.datetime(2026, 11, 29, 4, 5, 6, 789000, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
        self.sockets[0].emit("when", moment, datetime.date(2026, 11, 29))
        self.assertEqual(peer.transport.sent[-1].data, '2["when","2026-11-29T03:05:06.789Z","2026-11-29"]')

    def test_timeout(self) -> None:
        peer = self.peer()
        peer.connect()
        d = self.sockets[0].timeout(3).emit_with_ack("question")
        errors: list[Any] = []
        self.sockets[0].timeout(3).emit("q", ack=lambda err, *a: errors.append(err))
        self.clock.advance(3)
        self.failureResultOf(d, AckTimeout)
        self.assertIsInstance(errors[0], AckTimeout)
        peer.send("30[1]")  # too late: ignored
        self.assertEqual(len(self.sockets[0]._core.acks), 0)

    def test_disconnect_fails_pending_acks(self) -> None:
        peer = self.peer()
        peer.connect()
        d = self.sockets[0].emit_with_ack("question")
        peer.session.close(CloseReason.TRANSPORT_CLOSE)
        self.assertEqual(self.failureResultOf(d, Disconnected).value.reason, "transport close")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_broadcast_collects_acks(self) -> None:
        peers = [self.peer() for _ in range(3)]
        for p in peers:
            p.connect()
        d = self.server.timeout(5).emit_with_ack("poll")
        for index, p in enumerate(peers):
            [packet] = p.packets()
            self.assertEqual(packet.event, "poll")
            p.send(f"3{packet.id}[{index}]")
        answers = self.successResultOf(d)
        self.assertEqual(sorted(answers), [0, 1, 2])

    def test_broadcast_ack_timeout_reports_partial_answers(self) -> None:
        a, b = self.peer(), self.peer()
        a.connect()
        b.connect()
        d = self.server.timeout(5).emit_with_ack("poll")
        [packet] = a.packets()
        a.send(f"3{packet.id}[\"a\"]")
        self.clock.advance(5)
        self.assertEqual(self.failureResultOf(d, AckTimeout).value.responses, ["a"])

    def test_broadcast_ack_needs_timeout(self) -> None:
        self.assertRaises(ValueError, self.server.emit_with_ack, "poll")

    def test_broadcast_ack_with_no_clients(self) -> None:
        self.assertEqual(self.successResultOf(self.server.timeout(1).emit_with_ack("poll")), [])


class RoomTests(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.peers = [self.peer() for _ in range(3)]
        for p in self.peers:
            p.connect()
        self.a, self.b, self.c = self.sockets

    def events(self) -> list[list[str]]:
        return [[p.event for p in peer.packets()] for peer in self.peers]

    def test_to_except_and_broadcast(self) -> None:
        self.a.join("red")
        self.b.join(["red", "blue"])
        self.c.join("blue")
        self.server.to("red").emit("r")
        self.server.to("red").to("blue").except_("blue").emit("r-not-b")
        self.a.broadcast.emit("from-a")
        self.a.to("blue").emit("a-to-blue")
        self.b.to("red").emit("b-to-red")
        self.assertEqual(
            self.events(),
            [["r", "r-not-b", "b-to-red"], ["r", "from-a", "a-to-blue"], ["from-a", "a-to-blue"]],
        )
        self.assertEqual(self.b.rooms, {self.b.id, "red", "blue"})

    def test_broadcast_is_encoded_once(self) -> None:
        self.server.emit("shared", "x")
        sent = [p.transport.sent[-1].data for p in self.peers]
        self.assertTrue(all(s is sent[0] for s in sent))

    def test_leave_and_empty_rooms_vanish(self) -> None:
        adapter = self.server.sockets.adapter
        self.a.join("x")
        self.a.leave("x")
        self.assertNotIn("x", adapter.rooms)
        self.peers[0].session.close(CloseReason.TRANSPORT_CLOSE)
        self.assertNotIn(self.a.id, adapter.rooms)
        self.assertNotIn(self.a.id, adapter.sids)

    def test_fetch_join_leave_disconnect_sockets(self) -> None:
        self.a.join("red")
        self.b.join("red")
        found = self.successResultOf(self.server.in_("red").fetch_sockets())
        self.assertEqual({s.id for s in found}, {self.a.id, self.b.id})
        self.server.in_("red").sockets_join("green")
        self.assertEqual(self.server.sockets.adapter.sockets(["green"]), {self.a.id, self.b.id})
        self.server.except_("red").sockets_join("green")
        self.server.sockets_leave("red")
        self.assertNotIn("red", self.server.sockets.adapter.rooms)
        self.server.in_("green").except_(self.c.id).disconnect_sockets()
        self.assertEqual([p.packets()[-1].type for p in self.peers[:2]], [T.DISCONNECT, T.DISCONNECT])
        self.assertEqual(list(self.server.sockets.sockets), [self.c.id])
        self.assertFalse(self.peers[0].closed)

    def test_volatile_drops_for_clients_not_ready(self) -> None:
        polling = self.peer("polling")
        polling.connect()
        polling.transport.writable = False
        self.server.volatile.emit("v")
        self.server.emit("kept")
        polling.transport.writable = True
        polling.session.flush()
        self.assertEqual([p.event for p in polling.packets()], ["kept"])
        self.assertEqual(self.events(), [["v", "kept"]] * 3)


class DisconnectTests(ServerTestCase):
    def test_client_namespace_disconnect(self) -> None:
        peer = self.peer()
        peer.connect()
        peer.send("1")
        self.assertEqual(self.reasons, [(self.sockets[0].id, "client namespace disconnect")])
        self.assertFalse(peer.closed)
        self.assertEqual(self.server.sockets.sockets, {})

    def test_server_namespace_disconnect(self) -> None:
        peer = self.peer()
        peer.connect()
        rooms_while_leaving: list[set[str]] = []
        self.sockets[0].on("disconnecting", lambda reason: rooms_while_leaving.append(self.sockets[0].rooms))
        self.sockets[0].disconnect()
        self.assertEqual(peer.packets(), [Packet(T.DISCONNECT, "/")])
        self.assertEqual(rooms_while_leaving, [{self.sockets[0].id}])
        self.assertEqual(self.reasons, [(self.sockets[0].id, "server namespace disconnect")])
        self.assertFalse(peer.closed)

    def test_disconnect_close_ends_every_namespace(self) -> None:
        other = self.server.of("/other")
        other.on("connection", lambda s: s.on("disconnect", lambda r: self.reasons.append(("other", str(r)))))
        peer = self.peer()
        peer.connect()
        peer.connect("/other")
        self.sockets[0].disconnect(close=True)
        self.assertTrue(peer.closed)
        self.assertEqual(
            sorted(r for _, r in self.reasons), ["server namespace disconnect", "server namespace disconnect"]
        )

    def test_engine_reasons_reach_sockets(self) -> None:
        for reason in (CloseReason.PING_TIMEOUT, CloseReason.TRANSPORT_ERROR, CloseReason.TRANSPORT_CLOSE):
            peer = self.peer()
            peer.connect()
            peer.session.close(reason)
        self.assertEqual([r for _, r in self.reasons], ["ping timeout", "transport error", "transport close"])

    def test_server_close(self) -> None:
        peers = [self.peer(), self.peer()]
        for p in peers:
            p.connect()
        self.server.close()
        self.assertEqual([r for _, r in self.reasons], ["server shutting down"] * 2)
        self.assertTrue(all(p.closed for p in peers))


class BadInputTests(ServerTestCase):
    """A client breaking the protocol is closed with "parse error"; its neighbours carry on."""

    def check(self, *messages: str | bytes) -> None:
        bad, good = self.peer(), self.peer()
        bad.connect()
        good.connect()
        bad.send(*messages)
        self.assertTrue(bad.closed)
        self.assertEqual(bad.transport.types()[-1], EIOType.CLOSE)
        self.assertEqual(self.reasons, [(self.sockets[0].id, "parse error")])
        self.server.emit("still", "here")
        self.assertEqual(good.packets(), [Packet(T.EVENT, "/", ["still", "here"])])
        good.send('21["ack"]')
        self.assertEqual(good.packets(), [Packet(T.ACK, "/", ["got"], 1)])

    def test_bad_json(self) -> None:
        self.check('2["x",')

    def test_unknown_type(self) -> None:
        self.check("9")

    def test_event_without_name(self) -> None:
        self.check("2[]")

    def test_bad_ack_id(self) -> None:
        self.check('2' + "1" * 20 + '["x"]')

    def test_too_many_attachments(self) -> None:
        self.check('5101-["x"]')

    def test_text_while_waiting_for_attachments(self) -> None:
        self.check('51-["x",{"_placeholder":true,"num":0}]', '2["y"]')

    def test_unexpected_binary(self) -> None:
        self.check(b"\x01\x02")

    def test_client_sends_connect_error(self) -> None:
        self.check('4{"message":"x"}')


def test_json_wire_of_connect_reply() -> None:
    manager = SessionManager(reactor=Clock())
    Server(manager)
    peer = Peer(manager)
    peer.send("0")
    reply = peer.transport.sent[-1].data
    assert isinstance(reply, str) and reply.startswith('0{"sid":')
    assert len(json.loads(reply[1:])["sid"]) == 20


class EmitterTests(SynchronousTestCase):
    def test_once_is_per_event(self) -> None:
        from txrealtime.protocol.handlers import EventEmitter

        emitter = EventEmitter()
        calls: list[str] = []

        def handler(*args: Any) -> None:
            calls.append("called")

        emitter.on("a", handler)
        emitter.once("b", handler)
        self.assertEqual(emitter.take_handlers("a"), [handler])
        self.assertEqual(emitter.listeners("a"), [handler])  # once() for "b" leaves "a" alone
        self.assertEqual(emitter.take_handlers("b"), [handler])
        self.assertEqual(emitter.listeners("b"), [])
        self.assertEqual(emitter.take_handlers("a"), [handler])

    def test_once_and_on_for_the_same_handler_and_event(self) -> None:
        from txrealtime.protocol.handlers import EventEmitter

        emitter = EventEmitter()

        def handler() -> None:
            pass

        emitter.on("a", handler)
        emitter.once("a", handler)
        self.assertEqual(emitter.take_handlers("a"), [handler, handler])
        self.assertEqual(emitter.listeners("a"), [handler])
        emitter.once("a", handler)
        emitter.off("a", handler)
        emitter.off("a", handler)
        self.assertEqual(emitter.take_handlers("a"), [])
