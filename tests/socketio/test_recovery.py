"""Connection state recovery over in-memory sessions on a fake clock: offsets, kept sessions, replay, expiry."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import Peer
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionClosed, SessionEvent, SessionManager
from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.socketio import ConnectionRefused, Server, Socket
from txrealtime.socketio.adapter import Adapter, AdapterNamespace, RestoredSession
from txrealtime.socketio.errors import RecoveryUnavailable
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

    def drop(self, peer: Peer) -> None:
        """The client's connection is lost: its socket is kept for a recovery."""
        peer.session.close(CloseReason.TRANSPORT_CLOSE)

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


class RoomsJoinedLateTests(RecoveryTestCase):
    """Replay only what was sent to a room after the socket joined it (Node replays it all)."""

    def test_a_room_joined_after_the_offset_replays_only_what_followed_the_join(self) -> None:
        peer, reply = self.connect()
        self.server.emit("hello", 0)
        [hello] = peer.packets()
        offset = hello.args[-1]
        self.server.to("late").emit("before the join", 1)
        self.server.except_("late").emit("to those outside", 2)
        self.assertEqual([p.event for p in peer.packets()], ["to those outside"])
        peer.send('2["join","late"]')
        self.server.to("late").emit("after the join", 3)
        self.server.except_("late").emit("now excluded", 4)
        self.assertEqual([p.event for p in peer.packets()], ["after the join"])
        # The client lost its connection before it read anything after "hello".
        self.drop(peer)
        self.server.to("late").emit("while away", 5)
        self.connect({"pid": reply["pid"], "offset": offset})
        self.assertTrue(self.sockets[-1].recovered)
        self.assertEqual([p.event for p in self.after_connect], ["to those outside", "after the join", "while away"])

    def test_join_positions_survive_a_recovery(self) -> None:
        peer, reply = self.connect()
        peer.send('2["join","r"]')
        self.server.to("r").emit("one", 1)
        [one] = peer.packets()
        self.drop(peer)
        self.server.to("r").emit("two", 2)
        back, _ = self.connect({"pid": reply["pid"], "offset": one.args[-1]})
        [two] = self.after_connect
        self.server.to("r").emit("three", 3)
        back.packets()
        # Gone again before it read "two": the second recovery replays from there, its room still joined early.
        self.drop(back)
        self.connect({"pid": reply["pid"], "offset": one.args[-1]})
        self.assertEqual([p.event for p in self.after_connect], ["two", "three"])
        self.assertEqual(self.after_connect[0], two)


class KeptSessionTests(RecoveryTestCase):
    def test_a_bad_offset_leaves_the_session_kept(self) -> None:
        peer, reply = self.connect()
        self.server.emit("x", 1)
        [x] = peer.packets()
        good = x.args[-1]
        self.drop(peer)
        self.server.emit("missed", 2)
        prefix, _, position = good.rpartition("-")
        for bad in ["garbage", "", good + "0", f"{prefix}-0{position}", f"{prefix}-+{position}",
                    f"{prefix}-{position.upper()}x", f"{prefix}-ff", "00000000-1", good * 10_000]:
            _, fresh = self.connect({"pid": reply["pid"], "offset": bad})
            self.assertNotEqual(fresh["sid"], reply["sid"], bad[:40])
        _, again = self.connect({"pid": reply["pid"], "offset": good})
        self.assertEqual(again, reply)
        self.assertEqual([p.event for p in self.after_connect], ["missed"])

    def test_a_client_that_got_nothing_recovers_without_an_offset(self) -> None:
        # Node's client sends {pid} alone until some event gave it an offset; Node gives it a fresh socket.
        peer, reply = self.connect()
        peer.send('2["join","r"]')
        self.drop(peer)
        self.server.to("r").emit("missed", 1)
        _, again = self.connect({"pid": reply["pid"]})
        self.assertEqual(again, reply)
        self.assertEqual([p.event for p in self.after_connect], ["missed"])

    def test_volatile_events_leave_a_usable_offset(self) -> None:
        peer, reply = self.connect()
        self.server.emit("kept", 1)
        self.server.volatile.emit("status", "connected")  # a string last argument: Node's client takes it
        [_, status] = peer.packets()
        self.assertEqual(status.args[0], "connected")
        self.drop(peer)
        self.server.emit("missed", 2)
        _, again = self.connect({"pid": reply["pid"], "offset": status.args[-1]})
        self.assertEqual(again, reply)
        self.assertEqual([p.event for p in self.after_connect], ["missed"])

    def test_a_session_is_handed_out_once(self) -> None:
        peer, reply = self.connect()
        self.server.emit("x")
        offset = peer.packets()[0].args[-1]
        self.drop(peer)
        _, first = self.connect({"pid": reply["pid"], "offset": offset})
        _, second = self.connect({"pid": reply["pid"], "offset": offset})
        self.assertEqual(first, reply)
        self.assertNotEqual(second["sid"], reply["sid"])

    def test_refused_by_middleware_the_session_is_kept_again(self) -> None:
        manager = SessionManager(reactor=self.clock)
        server = Server(manager, connection_state_recovery=StateRecovery(skip_middlewares=False))
        refuse = [False]

        @server.use
        def check(socket: Socket) -> None:
            if refuse[0]:
                raise ConnectionRefused("not now")

        peer = Peer(manager)
        peer.send_packet(Packet(T.CONNECT, "/"))
        reply = peer.packets()[0].data
        peer.send('2["x"]')
        server.emit("before")
        offset = peer.packets()[0].args[-1]
        peer.session.close(CloseReason.TRANSPORT_CLOSE)
        server.emit("missed")
        refuse[0] = True
        back = Peer(manager)
        back.send_packet(Packet(T.CONNECT, "/", {"pid": reply["pid"], "offset": offset}))
        self.assertEqual([p.type for p in back.packets()], [T.CONNECT_ERROR])
        self.assertEqual(server.sockets.adapter.socket_rooms(reply["sid"]), None)  # out of its rooms again
        refuse[0] = False
        back.send_packet(Packet(T.CONNECT, "/", {"pid": reply["pid"], "offset": offset}))
        [connect, missed] = back.packets()
        self.assertEqual((connect.data, missed.event), (reply, "missed"))

    def test_a_failing_restore_gives_a_fresh_socket(self) -> None:
        adapter = self.server.sockets.adapter

        def broken(pid: str, offset: str | None) -> Deferred[RestoredSession | None]:
            raise ConnectionError("the session store is down")

        adapter.restore_session = broken  # type: ignore[method-assign]
        _, reply = self.connect({"pid": "p", "offset": "o"})
        self.assertFalse(self.sockets[-1].recovered)
        self.assertEqual(set(reply), {"sid", "pid"})


class SlowAdapter(Adapter):
    """The in-memory adapter, its restores answered when the test says (as a Redis-backed one would be)."""

    def __init__(self, namespace: AdapterNamespace) -> None:
        super().__init__(namespace)
        self.waiting: list[tuple[Deferred[RestoredSession | None], str, str | None]] = []

    def restore_session(self, pid: str, offset: str | None) -> Deferred[RestoredSession | None]:
        d: Deferred[RestoredSession | None] = Deferred()
        self.waiting.append((d, pid, offset))
        return d

    def answer(self) -> None:
        for d, pid, offset in self.waiting:
            super().restore_session(pid, offset).chainDeferred(d)
        self.waiting.clear()


class AsynchronousRestoreTests(SynchronousTestCase):
    """The CONNECT waits for the adapter (and for middleware); the client gets the CONNECT answer, what it missed,
    then what was sent meanwhile, in order, nothing lost or doubled."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.manager = SessionManager(reactor=self.clock)
        self.pending: list[Deferred[None]] = []
        self.server = Server(self.manager, adapter=SlowAdapter,
                             connection_state_recovery=StateRecovery(skip_middlewares=False))
        self.adapter = self.install(self.server)

    def install(self, server: Server) -> SlowAdapter:
        """Middleware that waits for the test on recovered sockets; every socket joins "r"."""

        @server.use
        def slow(socket: Socket) -> Deferred[None] | None:
            if not socket.recovered:
                return None
            d: Deferred[None] = Deferred()
            self.pending.append(d)
            return d

        server.on("connection", lambda socket: socket.join("r"))
        adapter = server.sockets.adapter
        assert isinstance(adapter, SlowAdapter)
        return adapter

    def away(self) -> tuple[dict[str, str], str]:
        peer = Peer(self.manager)
        peer.send_packet(Packet(T.CONNECT, "/"))
        reply = peer.packets()[0].data
        self.server.to("r").emit("seen", 0)
        offset = peer.packets()[0].args[-1]
        peer.session.close(CloseReason.PING_TIMEOUT)
        self.server.to("r").emit("missed", 1)
        return reply, offset

    def test_what_is_sent_while_restoring_and_in_middleware_follows_what_was_missed(self) -> None:
        reply, offset = self.away()
        back = Peer(self.manager)
        back.send_packet(Packet(T.CONNECT, "/", {"pid": reply["pid"], "offset": offset}))
        self.server.to("r").emit("while restoring", 2)  # in the log: what the restore answers includes it
        self.assertEqual(back.packets(), [])
        self.adapter.answer()
        self.server.to("r").emit("during middleware", 3)  # held: the socket is back in "r", not yet connected
        self.server.volatile.to("r").emit("volatile", 4)  # not held
        self.server.emit("to everyone", 5)
        self.assertEqual(back.packets(), [])
        self.pending.pop().callback(None)
        packets = back.packets()
        self.assertEqual(packets[0], Packet(T.CONNECT, "/", reply))
        self.assertEqual([p.event for p in packets[1:]], ["missed", "while restoring", "during middleware",
                                                         "to everyone"])
        offsets = [p.args[-1] for p in packets[1:]]
        self.assertEqual(len(set(offsets)), 4)
        self.server.to("r").emit("live", 6)
        self.assertEqual([p.event for p in back.packets()], ["live"])

    def test_a_client_gone_while_restoring_keeps_its_session(self) -> None:
        reply, offset = self.away()
        back = Peer(self.manager)
        back.send_packet(Packet(T.CONNECT, "/", {"pid": reply["pid"], "offset": offset}))
        back.session.close(CloseReason.TRANSPORT_CLOSE)
        self.adapter.answer()
        self.pending.pop().callback(None)
        self.assertEqual(self.server.sockets.sockets, {})
        again = Peer(self.manager)
        again.send_packet(Packet(T.CONNECT, "/", {"pid": reply["pid"], "offset": offset}))
        self.adapter.answer()
        self.pending.pop().callback(None)
        packets = again.packets()
        self.assertEqual([p.type for p in packets], [T.CONNECT, T.EVENT])
        self.assertEqual(packets[0].data, reply)

    def test_a_restore_that_cannot_be_told_now_closes_the_connection_and_keeps_the_session(self) -> None:
        reply, offset = self.away()
        closed: list[SessionEvent] = []
        self.manager.subscribe(closed.append)
        back = Peer(self.manager)
        back.send_packet(Packet(T.CONNECT, "/", {"pid": reply["pid"], "offset": offset}))
        [(d, _, _)] = self.adapter.waiting
        self.adapter.waiting.clear()
        d.errback(RecoveryUnavailable("this server is shutting down"))
        self.assertTrue(back.closed)
        self.assertEqual([(e.sid, e.reason) for e in closed if isinstance(e, SessionClosed)],
                         [(back.session.sid, CloseReason.TRANSPORT_ERROR)])
        self.assertEqual(back.packets(), [])  # no CONNECT answer, no new session
        self.assertEqual(self.server.sockets.sockets, {})
        self.assertEqual(self.pending, [])  # middleware never ran
        again = Peer(self.manager)
        again.send_packet(Packet(T.CONNECT, "/", {"pid": reply["pid"], "offset": offset}))
        self.adapter.answer()
        self.pending.pop().callback(None)
        packets = again.packets()
        self.assertEqual([p.type for p in packets], [T.CONNECT, T.EVENT])
        self.assertEqual((packets[0].data, packets[1].event), (reply, "missed"))

    def test_more_held_than_the_log_may_keep_closes_the_connection_and_keeps_the_session(self) -> None:
        server = Server(SessionManager(reactor=self.clock), adapter=SlowAdapter,
                        connection_state_recovery=StateRecovery(skip_middlewares=False, max_log_bytes=20_000))
        self.server, self.manager = server, server.manager
        adapter = self.install(server)
        reply, offset = self.away()
        back = Peer(self.manager)
        back.send_packet(Packet(T.CONNECT, "/", {"pid": reply["pid"], "offset": offset}))
        adapter.answer()
        for n in range(30):
            server.to("r").emit("flood", "x" * 1000, n)
        self.pending.pop().callback(None)
        self.assertTrue(back.closed)
        self.assertEqual(back.packets(), [])
        self.assertEqual(server.sockets.adapter.recovery and server.sockets.adapter.recovery.sessions, 1)


class ExpiryTests(RecoveryTestCase):
    def expiry_timers(self) -> list[object]:
        log = self.server.sockets.adapter.recovery
        return [call for call in self.clock.getDelayedCalls() if getattr(call.func, "__self__", None) is log]

    def test_one_timer_releases_packets_and_sessions_after_the_window(self) -> None:
        peer, reply = self.connect()
        self.server.emit("x", 1)
        self.clock.advance(30)
        self.drop(peer)
        self.server.emit("y", 2)
        log = self.server.sockets.adapter.recovery
        assert log is not None
        self.assertEqual(len(self.expiry_timers()), 1)
        self.clock.advance(30.9)  # "x" is 60.9 s old: within a second after the window
        self.assertEqual((len(log), log.sessions), (2, 1))
        self.clock.advance(0.2)
        self.assertEqual((len(log), log.sessions), (1, 1))
        self.clock.advance(30)
        self.assertEqual((len(log), log.sessions, log.bytes), (0, 0, 0))
        self.assertEqual(self.expiry_timers(), [])  # nothing left to expire, nothing scheduled

    def test_closing_the_server_releases_everything(self) -> None:
        peer, _ = self.connect()
        self.server.emit("x", 1)
        self.drop(peer)
        log = self.server.sockets.adapter.recovery
        assert log is not None
        self.server.close()
        self.assertEqual((len(log), log.sessions), (0, 0))
        self.assertEqual(self.expiry_timers(), [])
