"""The client's logic over the in-memory pairing, on a fake clock: acks, buffering, reconnection backoff."""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txrealtime.client import (
    AckTimeout,
    ClientEvent,
    Connected,
    ConnectError,
    Disconnected,
    Manager,
    NotConnected,
    ReconnectAttempt,
    Reconnected,
    ReconnectFailed,
)
from txrealtime.client.engineio import EngineListener
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionManager
from txrealtime.protocol.acks import NO_ACK
from txrealtime.socketio import ConnectionRefused, Server, Socket
from txrealtime.socketio.recovery import StateRecovery
from txrealtime.testing import MemoryEngine, connect_in_memory


class MemoryTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.server = Server(SessionManager(EngineIOOptions(ping_interval=10, ping_timeout=5), reactor=self.clock))
        self.sockets: list[Socket] = []

        @self.server.on("connection")
        def on_connection(socket: Socket) -> None:
            self.sockets.append(socket)
            socket.on("ack", lambda *args: ("got", *args))
            socket.on("echo", lambda *args: socket.emit("echo", *args))


class PairingTests(MemoryTestCase):
    def test_whole_conversation_runs_synchronously(self) -> None:
        client = self.successResultOf(connect_in_memory(self.server))
        self.assertTrue(client.connected)
        self.assertEqual(client.id, self.sockets[0].id)
        echoed: list[Any] = []
        client.on("echo", lambda *a: echoed.append(a))
        client.emit("echo", "hi", b"\x00")
        self.assertEqual(echoed, [("hi", b"\x00")])
        self.assertEqual(self.successResultOf(client.emit_with_ack("ack", 1)), ("got", 1))

    def test_server_asks_client(self) -> None:
        client = self.successResultOf(connect_in_memory(self.server))
        client.on("question", lambda n: n * 2)
        self.assertEqual(self.successResultOf(self.sockets[0].emit_with_ack("question", 21)), 42)

    def test_client_handler_answers_through_its_ack_parameter(self) -> None:
        client = self.successResultOf(connect_in_memory(self.server))
        pending: list[Any] = []
        client.on("question", lambda n, *, ack: pending.append((n, ack)))
        d = self.sockets[0].timeout(5).emit_with_ack("question", 21)
        self.assertNoResult(d)
        [(n, ack)] = pending
        ack(n * 2)
        self.assertEqual(self.successResultOf(d), 42)

    def test_heartbeats_keep_the_pair_alive(self) -> None:
        client = self.successResultOf(connect_in_memory(self.server))
        self.clock.pump([10] * 6)
        self.assertTrue(client.connected)

    def test_connect_error_is_typed(self) -> None:
        def refuse(socket: Socket) -> None:
            raise ConnectionRefused("go away", {"why": "test"})

        self.server.of("/private").use(refuse)
        failure = self.failureResultOf(connect_in_memory(self.server, "/private"), ConnectError)
        self.assertEqual((failure.value.message, failure.value.data), ("go away", {"why": "test"}))

    def test_server_disconnect_and_reason(self) -> None:
        client = self.successResultOf(connect_in_memory(self.server))
        reasons: list[str] = []
        client.on("disconnect", reasons.append)
        self.sockets[0].disconnect()
        self.assertEqual(reasons, ["io server disconnect"])
        self.assertFalse(client.active)

    def test_client_disconnect_reason_on_the_server(self) -> None:
        client = self.successResultOf(connect_in_memory(self.server))
        reasons: list[str] = []
        self.sockets[0].on("disconnect", reasons.append)
        client.disconnect()
        self.assertEqual(reasons, ["client namespace disconnect"])
        self.assertEqual(len(self.server.manager), 0)  # last namespace gone: connection closed

    def test_ack_timeout_and_disconnect_fail_pending_acks(self) -> None:
        client = self.successResultOf(connect_in_memory(self.server))
        self.sockets[0].on("slow", lambda: Deferred())
        timed = client.emit_with_ack("slow", timeout=3)
        pending = client.emit_with_ack("slow")
        self.clock.advance(3)
        self.failureResultOf(timed, AckTimeout)
        self.assertNoResult(pending)
        client.disconnect()
        self.failureResultOf(pending, NotConnected)

    def test_catch_all_listeners(self) -> None:
        client = self.successResultOf(connect_in_memory(self.server))
        incoming: list[Any] = []
        outgoing: list[Any] = []
        client.on_any(lambda *a: incoming.append(a))
        client.on_any_outgoing(lambda *a: outgoing.append(a))
        client.emit("echo", 1)
        self.assertEqual((incoming, outgoing), ([("echo", 1)], [("echo", 1)]))


class Flaky:
    """An engine factory whose connections the test can refuse or cut."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.refuse = False
        self.engines: list[MemoryEngine] = []

    def __call__(self, listener: EngineListener) -> Any:
        if self.refuse:
            return Refusing()
        engine = MemoryEngine(self.server.manager, listener)
        self.engines.append(engine)
        return engine

    def sid(self, index: int = 0) -> str:
        """The server's session id for connection ``index``."""
        session = self.engines[index].session
        assert session is not None
        return session.sid


class Refusing:
    transport_name = None
    buffered_bytes = 0
    needs_drain = False

    def open(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        d.errback(ConnectionRefusedError("refused"))
        return d

    def send(self, messages: list[str | bytes]) -> None:
        raise AssertionError("never open")

    def close(self) -> None:
        pass

    def when_closed(self) -> Deferred[None]:
        return succeed(None)


class ReconnectionTests(MemoryTestCase):
    def manager(self, **options: Any) -> tuple[Manager, Flaky, list[ClientEvent]]:
        flaky = Flaky(self.server)
        options.setdefault("rng", random.Random(7))
        manager = Manager("memory://", engine_factory=flaky, reactor=self.clock, **options)
        seen: list[ClientEvent] = []
        manager.subscribe(seen.append)
        return manager, flaky, seen

    def test_backoff_doubles_with_jitter_and_caps(self) -> None:
        manager, _, _ = self.manager(reconnection_delay=1, reconnection_delay_max=5, randomization_factor=0.5)
        delays = [manager._backoff(n) for n in range(6)]
        for n, delay in enumerate(delays):
            nominal = min(2**n, 5)
            self.assertTrue(nominal * 0.5 <= delay <= min(nominal * 1.5, 5), (n, delay))
        self.assertEqual(delays[-1], 5)
        exact, _, _ = self.manager(reconnection_delay=1, reconnection_delay_max=10, randomization_factor=0)
        self.assertEqual([exact._backoff(n) for n in range(5)], [1, 2, 4, 8, 10])

    def test_reconnects_rejoins_and_flushes_buffer(self) -> None:
        manager, flaky, seen = self.manager(randomization_factor=0, reconnection_delay=1)
        socket = manager.socket("/")
        self.successResultOf(socket.connect())
        echoed: list[Any] = []
        socket.on("echo", lambda *a: echoed.append(a))
        flaky.refuse = True
        self.server.manager.close(flaky.sid(), CloseReason.TRANSPORT_CLOSE)
        self.assertFalse(socket.connected)
        socket.emit("echo", "buffered")
        self.clock.advance(1)  # attempt 1 is refused
        flaky.refuse = False
        self.clock.advance(2)  # attempt 2 succeeds
        self.assertTrue(socket.connected)
        self.assertEqual(echoed, [("buffered",)])
        kinds = [type(e) for e in seen]
        self.assertEqual(
            kinds,
            [Connected, Disconnected, ReconnectAttempt, ReconnectAttempt, Reconnected, Connected],
        )
        self.assertEqual([e.delay for e in seen if isinstance(e, ReconnectAttempt)], [1, 2])
        self.assertEqual(seen[1], Disconnected("/", "transport close"))

    def test_gives_up_after_attempts(self) -> None:
        manager, flaky, seen = self.manager(reconnection_attempts=2, randomization_factor=0, reconnection_delay=1)
        flaky.refuse = True
        d = manager.socket("/").connect(retry=True)
        self.clock.advance(1)
        self.clock.advance(2)
        self.failureResultOf(d, NotConnected)
        self.assertEqual(seen[-1], ReconnectFailed(2))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_no_reconnection_after_server_disconnect(self) -> None:
        manager, flaky, seen = self.manager()
        socket = manager.socket("/")
        self.successResultOf(socket.connect())
        self.sockets[0].disconnect(close=True)
        self.assertFalse(socket.active)
        self.assertFalse(any(isinstance(e, ReconnectAttempt) for e in seen))

    def test_connect_timeout(self) -> None:
        class Silent(Refusing):
            def open(self) -> Deferred[None]:
                return Deferred()

        manager = Manager("memory://", engine_factory=lambda listener: Silent(), reactor=self.clock, reconnection=False)
        d = manager.socket("/").connect()
        self.clock.advance(20)
        self.failureResultOf(d, NotConnected)


class ConnectingTests(MemoryTestCase):
    """``connect()`` never waits forever: it fails on the first failed attempt unless asked to retry."""

    def test_first_failed_attempt_fails_connect(self) -> None:
        flaky = Flaky(self.server)
        flaky.refuse = True
        manager = Manager("memory://", engine_factory=flaky, reactor=self.clock)  # reconnection on, as by default
        socket = manager.socket("/")
        failure = self.failureResultOf(socket.connect(), ConnectError)
        self.assertIsInstance(failure.value, NotConnected)
        self.assertIn("cannot connect to memory://", str(failure.value))
        self.assertFalse(socket.active)
        self.assertEqual(self.clock.getDelayedCalls(), [])  # no reconnection left running

    def test_attempt_longer_than_timeout_fails_connect(self) -> None:
        class Silent(Refusing):
            def open(self) -> Deferred[None]:
                return Deferred()

        manager = Manager("memory://", engine_factory=lambda listener: Silent(), reactor=self.clock)
        d = manager.socket("/").connect()
        self.clock.advance(19.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)  # the default timeout is Node's 20 s
        self.failureResultOf(d, NotConnected)

    def test_retry_keeps_trying_until_the_server_is_there(self) -> None:
        flaky = Flaky(self.server)
        flaky.refuse = True
        manager = Manager("memory://", engine_factory=flaky, reactor=self.clock, randomization_factor=0)
        d = manager.socket("/").connect(retry=True)
        self.clock.advance(1)
        self.assertNoResult(d)
        flaky.refuse = False
        self.clock.advance(2)
        self.assertTrue(self.successResultOf(d).connected)


class EmitOptionTests(MemoryTestCase):
    """Node's client options: ``retries`` and ``ack_timeout``, ``volatile``, ``timeout(s)``."""

    def test_retries_resend_until_acknowledged(self) -> None:
        seen: list[int] = []

        def flaky_ack(n: int) -> Any:
            seen.append(n)
            return NO_ACK if len(seen) < 3 else ("done", n)

        self.server.on("connection", lambda socket: socket.on("job", flaky_ack))
        flaky = Flaky(self.server)
        manager = Manager("memory://", engine_factory=flaky, reactor=self.clock)
        client = self.successResultOf(manager.socket("/", retries=3, ack_timeout=2).connect())
        answers: list[Any] = []
        client.emit("job", 7, ack=lambda *args: answers.append(args))
        self.assertEqual((seen, answers), ([7], []))
        self.clock.advance(2)
        self.clock.advance(2)
        self.assertEqual((seen, answers), ([7, 7, 7], [(None, "done", 7)]))

    def test_retries_give_up_with_the_timeout(self) -> None:
        self.server.on("connection", lambda socket: socket.on("job", lambda: NO_ACK))
        manager = Manager("memory://", engine_factory=Flaky(self.server), reactor=self.clock)
        client = self.successResultOf(manager.socket("/", retries=1, ack_timeout=1).connect())
        d = client.emit_with_ack("job")
        second = client.emit_with_ack("ack", "queued behind")
        self.clock.advance(1)
        self.assertNoResult(d)  # sent again
        self.clock.advance(1)
        self.failureResultOf(d, AckTimeout)
        self.assertEqual(self.successResultOf(second), ("got", "queued behind"))

    def test_ack_timeout_applies_to_plain_emits(self) -> None:
        self.server.on("connection", lambda socket: socket.on("slow", lambda: NO_ACK))
        manager = Manager("memory://", engine_factory=Flaky(self.server), reactor=self.clock)
        client = self.successResultOf(manager.socket("/", ack_timeout=3).connect())
        errors: list[Any] = []
        client.emit("slow", ack=lambda err, *answer: errors.append(err))
        client.emit("ack", 1, ack=lambda err, *answer: errors.append((err, answer)))
        self.clock.advance(3)
        self.assertEqual(errors[0], (None, ("got", 1)))
        self.assertIsInstance(errors[1], AckTimeout)

    def test_timeout_emitter_and_volatile(self) -> None:
        flaky = Flaky(self.server)
        manager = Manager("memory://", engine_factory=flaky, reactor=self.clock, reconnection=False)
        client = self.successResultOf(manager.socket("/").connect())
        self.sockets[0].on("slow", lambda: NO_ACK)
        d = client.timeout(2).emit_with_ack("slow")
        self.clock.advance(2)
        self.failureResultOf(d, AckTimeout)
        self.assertEqual(self.successResultOf(client.timeout(2).emit_with_ack("ack", 1)), ("got", 1))
        received: list[Any] = []
        self.sockets[0].on("note", lambda *args: received.append(args))
        client.volatile.emit("note", "now")
        client.disconnect()
        client.volatile.emit("note", "dropped")
        client.emit("note", "buffered")
        self.assertEqual(received, [("now",)])
        self.assertEqual([p.args for p in client._send_buffer], [["buffered"]])

    def test_sent_acks_fail_when_the_connection_drops(self) -> None:
        flaky = Flaky(self.server)
        manager = Manager("memory://", engine_factory=flaky, reactor=self.clock, randomization_factor=0)
        client = self.successResultOf(manager.socket("/").connect())
        self.sockets[0].on("slow", lambda: NO_ACK)
        sent = client.emit_with_ack("slow")
        self.server.manager.close(flaky.sid(), CloseReason.TRANSPORT_CLOSE)
        failure = self.failureResultOf(sent, NotConnected)
        self.assertEqual(str(failure.value), "socket has been disconnected")
        buffered = client.emit_with_ack("ack", "later")
        self.clock.advance(1)  # reconnected: what was buffered is sent and answered
        self.assertEqual(self.successResultOf(buffered), ("got", "later"))


class RecoveryTests(SynchronousTestCase):
    """Against a server with connection state recovery: handlers never see the offset, which still serves to
    recover."""

    def setUp(self) -> None:
        self.clock = Clock()
        manager = SessionManager(EngineIOOptions(ping_interval=10, ping_timeout=5), reactor=self.clock)
        self.server = Server(manager, connection_state_recovery=StateRecovery())
        self.sockets: list[Socket] = []
        self.server.on("connection", self.sockets.append)
        self.flaky = Flaky(self.server)
        self.manager = Manager("memory://", engine_factory=self.flaky, reactor=self.clock, randomization_factor=0)

    def test_handlers_get_the_arguments_sent_and_the_offset_serves_to_recover(self) -> None:
        client = self.successResultOf(self.manager.socket("/").connect())
        got: list[Any] = []
        everything: list[Any] = []

        @client.on("tick")
        def on_tick(value: Any) -> None:  # one parameter: an extra argument would make it fail
            got.append(value)

        client.on("question", lambda text: text.upper())
        client.on_any(lambda *args: everything.append(args))
        self.server.emit("tick", 1)
        self.sockets[0].emit("tick", "direct")
        self.server.volatile.emit("tick", "volatile")
        self.assertEqual(self.successResultOf(self.sockets[0].timeout(5).emit_with_ack("question", "with ack")),
                         "WITH ACK")
        self.assertEqual(got, [1, "direct", "volatile"])
        self.assertEqual(everything, [("tick", 1), ("tick", "direct"), ("tick", "volatile"), ("question", "with ack")])
        first = client.id
        self.server.manager.close(self.flaky.sid(), CloseReason.TRANSPORT_CLOSE)
        self.server.emit("tick", 2)
        self.clock.advance(1)  # reconnected, with the offset of "volatile"
        self.assertTrue(client.connected and client.recovered)
        self.assertEqual(client.id, first)
        self.assertEqual(got, [1, "direct", "volatile", 2])

    def test_without_recovery_a_trailing_string_is_an_argument(self) -> None:
        server = Server(SessionManager(reactor=self.clock))
        client = self.successResultOf(connect_in_memory(server))
        got: list[Any] = []
        client.on("pair", lambda *args: got.append(args))
        server.emit("pair", 1, "two")
        self.assertEqual(got, [(1, "two")])
        self.assertFalse(client.recovered)
