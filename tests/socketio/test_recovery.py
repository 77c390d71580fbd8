"""Connection state recovery over in-memory sessions on a fake clock: offsets, kept sessions, replay, expiry."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import Peer
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionManager
from txrealtime.socketio import ConnectionRefused, Server, Socket
from txrealtime.socketio.packets import Packet, PacketType
from txrealtime.socketio.recovery import StateRecovery

T = PacketType


class RecoveryTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.manager = SessionManager(EngineIOOptions(ping_interval=1000, ping_timeout=1000), reactor=self.clock)
        self.server = Server(self.manager, connection_state_recovery=StateRecovery(max_disconnection_duration=60))
        self.sockets: list[Socket] = []
        self.middleware_runs = 0
        self.after_connect: list[Packet] = []

        @self.server.use
        def count(socket: Socket) -> None:
            self.middleware_runs += 1
            if socket.handshake.auth.get("refuse"):
                raise ConnectionRefused("no")

        @self.server.on("connection")
        def on_connection(socket: Socket) -> None:
            self.sockets.append(socket)
            socket.on("join", lambda room: socket.join(room))
            socket.on("ack", lambda *args: ("got", *args))

    def connect(self, auth: Any = None) -> tuple[Peer, dict[str, Any]]:
        peer = Peer(self.manager)
        peer.send_packet(Packet(T.CONNECT, "/", auth))
        [reply, *self.after_connect] = peer.packets()
        self.assertEqual(reply.type, T.CONNECT)
        return peer, reply.data

    def offsets(self, packets: list[Packet]) -> list[str]:
        return [p.args[-1] for p in packets if p.type is T.EVENT]


class OffsetTests(RecoveryTestCase):
    def test_connect_answer_carries_a_pid(self) -> None:
        _, reply = self.connect()
        self.assertEqual(set(reply), {"sid", "pid"})
        self.assertNotEqual(reply["sid"], reply["pid"])

    def test_events_without_ack_get_an_offset_others_do_not(self) -> None:
        peer, _ = self.connect()
        socket = self.sockets[0]
        self.server.emit("broadcast", 1)
        socket.emit("direct", 2)
        socket.volatile.emit("volatile", 3)
        socket.emit("with ack", 4, ack=lambda *a: None)
        self.server.volatile.emit("volatile broadcast", 5)
        packets = peer.packets()
        self.assertEqual([p.event for p in packets], ["broadcast", "direct", "volatile", "with ack",
                                                      "volatile broadcast"])
        self.assertEqual([len(p.args) for p in packets], [2, 2, 2, 1, 2])
        first, second, volatile, volatile_broadcast = self.offsets([p for p in packets if p.id is None])
        self.assertIsInstance(first, str)
        self.assertNotEqual(first, second)
        # Volatile events are not kept: they carry the offset of the last event kept before them.
        self.assertEqual((volatile, volatile_broadcast), (second, second))
        self.assertEqual(packets[3].id, 0)

    def test_acks_from_the_client_are_unchanged(self) -> None:
        peer, _ = self.connect()
        peer.send('21["ack","x"]')
        self.assertEqual(peer.packets(), [Packet(T.ACK, "/", ["got", "x"], 1)])


class RecoverTests(RecoveryTestCase):
    def drop(self, peer: Peer) -> None:
        peer.session.close(CloseReason.TRANSPORT_CLOSE)

    def test_client_back_within_the_window_gets_its_socket_and_what_it_missed(self) -> None:
        peer, reply = self.connect()
        first = self.sockets[0]
        peer.send('2["join","room"]')
        first.data["user"] = "ann"
        self.server.emit("before", 0)
        [before] = peer.packets()
        offset = before.args[-1]
        self.drop(peer)
        self.assertFalse(first.connected)
        self.server.to("room").emit("to room", 1)
        self.server.except_("room").emit("not for it", 2)
        self.server.to(first.id).emit("to its id", 3)
        self.server.emit("to all", 4)
        self.clock.advance(30)
        back, again = self.connect({"pid": reply["pid"], "offset": offset, "token": "t"})
        self.assertEqual(again, reply)
        missed = self.after_connect
        self.assertEqual([(p.event, p.args[:-1]) for p in missed], [("to room", [1]), ("to its id", [3]),
                                                                     ("to all", [4])])
        second = self.sockets[1]
        self.assertTrue(second.recovered)
        self.assertEqual(second.id, first.id)
        self.assertEqual(second.rooms, {second.id, "room"})
        self.assertEqual(second.data, {"user": "ann"})
        self.assertEqual(self.middleware_runs, 1)  # skipped for the recovered socket
        self.server.to("room").emit("later", 5)
        [later] = back.packets()
        self.assertEqual(later.event, "later")

    def test_too_late_unknown_or_lost_offsets_give_a_fresh_socket(self) -> None:
        peer, reply = self.connect()
        self.server.emit("x")
        offset = peer.packets()[0].args[-1]
        self.drop(peer)
        self.clock.advance(61)
        _, fresh = self.connect({"pid": reply["pid"], "offset": offset})
        self.assertNotEqual(fresh["sid"], reply["sid"])
        self.assertFalse(self.sockets[-1].recovered)
        self.assertEqual(self.middleware_runs, 2)
        # Unknown pid, and a known pid with an offset not in the log.
        peer, reply = self.connect()
        self.drop(peer)
        _, fresh = self.connect({"pid": "nobody", "offset": offset})
        self.assertNotEqual(fresh["sid"], reply["sid"])
        _, fresh = self.connect({"pid": reply["pid"], "offset": "not-an-offset"})
        self.assertNotEqual(fresh["sid"], reply["sid"])

    def test_leaving_on_purpose_keeps_nothing(self) -> None:
        peer, reply = self.connect()
        self.server.emit("x")
        offset = peer.packets()[0].args[-1]
        peer.send("1")  # client namespace disconnect
        _, fresh = self.connect({"pid": reply["pid"], "offset": offset})
        self.assertNotEqual(fresh["sid"], reply["sid"])

    def test_middleware_runs_when_asked_to(self) -> None:
        manager = SessionManager(reactor=self.clock)
        server = Server(manager, connection_state_recovery=StateRecovery(skip_middlewares=False))
        runs: list[str] = []
        server.use(lambda socket: runs.append(socket.id))
        peer = Peer(manager)
        peer.send_packet(Packet(T.CONNECT, "/"))
        reply = peer.packets()[0].data
        server.emit("x")
        offset = peer.packets()[0].args[-1]
        peer.session.close(CloseReason.PING_TIMEOUT)
        back = Peer(manager)
        back.send_packet(Packet(T.CONNECT, "/", {"pid": reply["pid"], "offset": offset}))
        self.assertEqual(back.packets()[0].data, reply)
        self.assertEqual(runs, [reply["sid"], reply["sid"]])
