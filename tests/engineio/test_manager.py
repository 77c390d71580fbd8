"""Session manager: lifecycle, heartbeats, upgrades and events, with fake transports and a fake clock."""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import HANDSHAKE, FakeTransport
from txrealtime.engineio import (
    CloseReason,
    EngineIOOptions,
    MessageReceived,
    Session,
    SessionClosed,
    SessionError,
    SessionEvent,
    SessionManager,
    SessionOpened,
    SessionUpgraded,
)
from txrealtime.engineio.packets import Packet, PacketType


class ManagerTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.options = EngineIOOptions(ping_interval=25, ping_timeout=20, upgrade_timeout=10)
        self.manager = SessionManager(self.options, reactor=self.clock)
        self.events: list[SessionEvent] = []
        self.manager.subscribe(self.events.append)

    def open(self, name: str = "polling") -> tuple[FakeTransport, str]:
        transport = FakeTransport(name)
        session = self.manager.open_session(transport, HANDSHAKE)
        return transport, session.sid

    def session(self, sid: str) -> Session:
        """The open session ``sid`` (the test fails if there is none)."""
        session = self.manager.get(sid)
        assert session is not None
        return session

    def last_close(self) -> SessionClosed:
        """The last event, which must be a close."""
        event = self.events[-1]
        assert isinstance(event, SessionClosed), event
        return event


class OpenTests(ManagerTestCase):
    def test_open_packet(self) -> None:
        transport, sid = self.open()
        self.assertEqual(transport.types(), [PacketType.OPEN])
        data = json.loads(transport.sent[0].data)
        self.assertEqual(
            data,
            {"sid": sid, "upgrades": ["websocket"], "pingInterval": 25000, "pingTimeout": 20000, "maxPayload": 1000000},
        )
        self.assertEqual(self.events, [SessionOpened(sid, "polling", HANDSHAKE)])
        self.assertIs(self.session(sid).transport, transport)

    def test_websocket_sessions_offer_no_upgrade(self) -> None:
        transport, _ = self.open("websocket")
        self.assertEqual(json.loads(transport.sent[0].data)["upgrades"], [])

    def test_sids_are_unique_and_unguessable(self) -> None:
        sids = {self.open()[1] for _ in range(200)}
        self.assertEqual(len(sids), 200)
        self.assertTrue(all(len(s) == 20 for s in sids))


class MessageTests(ManagerTestCase):
    def test_receive_emits_event(self) -> None:
        transport, sid = self.open()
        session = self.manager.get(sid)
        assert session is not None
        session.receive(Packet(PacketType.MESSAGE, "hi"), transport)
        session.receive(Packet(PacketType.MESSAGE, b"\x00"), transport)
        self.assertEqual(self.events[1:], [MessageReceived(sid, "hi"), MessageReceived(sid, b"\x00")])

    def test_receiver_gets_messages_first_and_events_only_when_wanted(self) -> None:
        transport, sid = self.open()
        session = self.session(sid)
        order: list[object] = []
        session.receiver = lambda data: order.append(("receiver", data))
        self.manager.subscribe(lambda event: order.append(event), messages=False)
        session.receive(Packet(PacketType.MESSAGE, "hi"), transport)
        self.assertEqual(order, [("receiver", "hi"), MessageReceived(sid, "hi")])  # setUp's subscriber wants them
        self.assertEqual(self.events[1:], [MessageReceived(sid, "hi")])

    def test_no_message_event_when_no_subscriber_wants_one(self) -> None:
        manager = SessionManager(self.options, reactor=self.clock)
        seen: list[SessionEvent] = []
        manager.subscribe(seen.append, messages=False)
        undo = manager.subscribe(lambda event: None)
        undo()
        undo()  # a second call changes nothing
        transport = FakeTransport()
        session = manager.open_session(transport, HANDSHAKE)
        received: list[str | bytes] = []
        session.receiver = received.append
        session.receive(Packet(PacketType.MESSAGE, "hi"), transport)
        self.assertEqual(received, ["hi"])
        self.assertEqual(seen, [SessionOpened(session.sid, transport.name, HANDSHAKE)])

    def test_failing_receiver_is_logged(self) -> None:
        transport, sid = self.open()
        session = self.session(sid)

        def boom(data: str | bytes) -> None:
            raise RuntimeError("boom")

        session.receiver = boom
        session.receive(Packet(PacketType.MESSAGE, "hi"), transport)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.events[-1], MessageReceived(sid, "hi"))

    def test_send_buffers_until_writable(self) -> None:
        transport, sid = self.open()
        transport.writable = False
        self.assertTrue(self.manager.send(sid, "a"))
        self.assertTrue(self.manager.send(sid, b"b"))
        self.assertEqual(transport.types(), [PacketType.OPEN])
        transport.writable = True
        self.session(sid).flush()
        self.assertEqual(transport.sent[1:], [Packet(PacketType.MESSAGE, "a"), Packet(PacketType.MESSAGE, b"b")])

    def test_send_to_unknown_session(self) -> None:
        self.assertFalse(self.manager.send("nope", "a"))

    def test_packets_from_foreign_transport_ignored(self) -> None:
        _, sid = self.open()
        self.session(sid).receive(Packet(PacketType.MESSAGE, "x"), FakeTransport())
        self.assertEqual(len(self.events), 1)


class HeartbeatTests(ManagerTestCase):
    def test_ping_pong_keeps_session(self) -> None:
        transport, sid = self.open()
        session = self.manager.get(sid)
        assert session is not None
        for _ in range(3):
            self.clock.advance(25)
            self.assertEqual(transport.sent[-1], Packet(PacketType.PING))
            self.clock.advance(19)
            session.receive(Packet(PacketType.PONG), transport)
        self.assertFalse(session.closed)
        self.assertEqual(transport.types().count(PacketType.PING), 3)

    def test_ping_timeout_closes(self) -> None:
        transport, sid = self.open()
        self.clock.advance(25)
        self.clock.advance(20)
        self.assertIsNone(self.manager.get(sid))
        self.assertEqual(self.events[-1], SessionClosed(sid, CloseReason.PING_TIMEOUT, "no pong"))
        self.assertTrue(transport.closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_client_ping_is_an_error(self) -> None:
        transport, sid = self.open()
        self.session(sid).receive(Packet(PacketType.PING), transport)
        self.assertEqual(self.last_close().reason, CloseReason.TRANSPORT_ERROR)
        self.assertEqual(transport.sent[-1], Packet(PacketType.CLOSE))


class CloseTests(ManagerTestCase):
    def test_client_close(self) -> None:
        transport, sid = self.open()
        self.session(sid).receive(Packet(PacketType.CLOSE), transport)
        self.assertEqual(self.events[-1], SessionClosed(sid, CloseReason.TRANSPORT_CLOSE, "client sent close"))
        self.assertEqual(len(self.manager), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_server_close_sends_close_packet(self) -> None:
        transport, sid = self.open("websocket")
        self.manager.close(sid)
        self.assertEqual(transport.sent[-1], Packet(PacketType.CLOSE))
        self.assertTrue(transport.closed)
        self.assertEqual(self.last_close().reason, CloseReason.FORCED_CLOSE)

    def test_close_packet_waits_for_next_poll(self) -> None:
        transport, sid = self.open()
        transport.writable = False
        self.manager.close(sid)
        self.assertIsNone(self.manager.get(sid))
        session = self.manager.for_poll(sid)
        assert session is not None
        transport.writable = True
        session.flush()
        self.assertEqual(transport.sent[-1], Packet(PacketType.CLOSE))
        self.assertIsNone(self.manager.for_poll(sid))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_undelivered_close_packet_is_dropped_later(self) -> None:
        transport, sid = self.open()
        transport.writable = False
        self.manager.close(sid)
        self.clock.advance(20)
        self.assertIsNone(self.manager.for_poll(sid))
        self.assertTrue(transport.closed)

    def test_shutdown(self) -> None:
        a, sid_a = self.open()
        b, sid_b = self.open("websocket")
        a.writable = False  # the polling client is between polls: its CLOSE waits for it
        self.manager.shutdown()
        self.assertEqual(len(self.manager), 0)
        self.assertFalse(self.manager.drained)
        self.assertIsNotNone(self.manager.for_poll(sid_a))
        self.manager.shutdown(drop_lingering=True)
        self.assertTrue(self.manager.drained)
        self.assertFalse(self.manager.accepting)
        closed = {e.sid: e.reason for e in self.events if isinstance(e, SessionClosed)}
        self.assertEqual(closed, {sid_a: CloseReason.SERVER_SHUTDOWN, sid_b: CloseReason.SERVER_SHUTDOWN})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failing_subscriber_does_not_stop_others(self) -> None:
        def boom(event: SessionEvent) -> None:
            raise RuntimeError("boom")

        self.manager._subscribers._callbacks.insert(0, boom)
        transport, sid = self.open()
        self.assertEqual(self.events, [SessionOpened(sid, "polling", HANDSHAKE)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_unsubscribe(self) -> None:
        seen: list[SessionEvent] = []
        unsubscribe = self.manager.subscribe(seen.append)
        self.open()
        unsubscribe()
        self.open()
        self.assertEqual(len(seen), 1)


class UpgradeTests(ManagerTestCase):
    def test_upgrade(self) -> None:
        polling, sid = self.open()
        polling.writable = False
        ws = FakeTransport("websocket")
        session = self.manager.probe(sid, ws)
        self.assertTrue(session.upgrading)
        session.receive(Packet(PacketType.PING, "probe"), ws)
        self.assertEqual(ws.sent, [Packet(PacketType.PONG, "probe")])
        polling.writable = True  # a poll arrives: released with a NOOP at the next tick
        self.clock.advance(0.1)
        self.assertEqual(polling.sent[-1], Packet(PacketType.NOOP))
        session.send("during upgrade")
        self.assertEqual(polling.sent[-1], Packet(PacketType.MESSAGE, "during upgrade"))
        polling.writable = False
        session.send("after")
        session.receive(Packet(PacketType.UPGRADE), ws)
        self.assertIs(session.transport, ws)
        self.assertTrue(polling.closed)
        self.assertEqual(ws.sent[-1], Packet(PacketType.MESSAGE, "after"))
        self.assertEqual(self.events[-1], SessionUpgraded(sid, "polling", "websocket"))
        session.receive(Packet(PacketType.MESSAGE, "via ws"), ws)
        self.assertEqual(self.events[-1], MessageReceived(sid, "via ws"))

    def test_every_poll_parked_during_the_upgrade_is_released(self) -> None:
        # The client may send a new poll before it sees the probe's answer; that one must return too.
        polling, sid = self.open()
        ws = FakeTransport("websocket")
        session = self.manager.probe(sid, ws)
        session.receive(Packet(PacketType.PING, "probe"), ws)
        for _ in range(3):
            before = len(polling.sent)
            self.clock.advance(0.1)
            self.assertEqual(polling.sent[before:], [Packet(PacketType.NOOP)])
        session.receive(Packet(PacketType.UPGRADE), ws)
        before = len(polling.sent)
        self.clock.advance(1)
        self.assertEqual(len(polling.sent), before)  # no more NOOPs once upgraded
        self.assertEqual([c for c in self.clock.getDelayedCalls() if c.func.__name__ == "_release_poll"], [])

    def test_upgrade_releases_pending_poll(self) -> None:
        polling, sid = self.open()
        ws = FakeTransport("websocket")
        session = self.manager.probe(sid, ws)
        session.receive(Packet(PacketType.UPGRADE), ws)
        self.assertEqual(polling.sent[-1], Packet(PacketType.NOOP))

    def test_upgrade_timeout(self) -> None:
        polling, sid = self.open()
        ws = FakeTransport("websocket")
        session = self.manager.probe(sid, ws)
        self.clock.advance(10)
        self.assertTrue(ws.closed)
        self.assertFalse(session.upgrading)
        self.assertIs(session.transport, polling)
        session.receive(Packet(PacketType.UPGRADE), ws)
        self.assertIs(session.transport, polling)

    def test_bad_probe_packet_aborts_upgrade_only(self) -> None:
        polling, sid = self.open()
        ws = FakeTransport("websocket")
        session = self.manager.probe(sid, ws)
        session.receive(Packet(PacketType.MESSAGE, "too early"), ws)
        self.assertTrue(ws.closed)
        self.assertFalse(session.closed)

    def test_probe_closed(self) -> None:
        polling, sid = self.open()
        ws = FakeTransport("websocket")
        session = self.manager.probe(sid, ws)
        session.transport_closed(ws, CloseReason.TRANSPORT_CLOSE)
        self.assertFalse(session.upgrading)
        self.assertFalse(session.closed)

    def test_probe_errors(self) -> None:
        _, sid = self.open()
        _, ws_sid = self.open("websocket")
        with self.assertRaises(SessionError) as e:
            self.manager.probe("unknown", FakeTransport("websocket"))
        self.assertEqual(e.exception.code, SessionError.UNKNOWN_SID)
        self.manager.probe(sid, FakeTransport("websocket"))
        for target in (sid, ws_sid):
            with self.assertRaises(SessionError) as e:
                self.manager.probe(target, FakeTransport("websocket"))
            self.assertEqual(e.exception.code, SessionError.BAD_REQUEST)

    def test_upgrades_disabled(self) -> None:
        manager = SessionManager(EngineIOOptions(allow_upgrades=False), reactor=self.clock)
        session = manager.open_session(FakeTransport(), HANDSHAKE)
        self.assertRaises(SessionError, manager.probe, session.sid, FakeTransport("websocket"))
