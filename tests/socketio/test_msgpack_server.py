"""The server with the msgpack parser, on in-memory sessions and a fake clock: every packet goes through it."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import Peer
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionClosed, SessionEvent, SessionManager
from txrealtime.protocol.msgpack import MSGPACK, MsgpackDecoder
from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.protocol.parser import Decoder, DecoderLimits, Encoder
from txrealtime.socketio import ConnectionRefused, Server, Socket
from txrealtime.socketio.recovery import StateRecovery

T = PacketType


class CountingParser:
    """A custom parser (the msgpack one underneath) that counts what it encodes and the decoders it makes."""

    def __init__(self) -> None:
        self.encoded: list[Packet] = []
        self.limits: list[DecoderLimits] = []

    def encoder(self) -> Encoder:
        inner = MSGPACK.encoder()
        encoded = self.encoded

        class Counting:
            def encode(self, packet: Packet) -> list[str | bytes]:
                encoded.append(packet)
                return inner.encode(packet)

        return Counting()

    def decoder(self, limits: DecoderLimits) -> Decoder:
        self.limits.append(limits)
        return MSGPACK.decoder(limits)


class MsgpackServerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.manager = SessionManager(EngineIOOptions(ping_interval=1000, ping_timeout=1000, max_payload=500),
                                      reactor=self.clock)
        self.parser = CountingParser()
        self.server = Server(self.manager, parser=self.parser,
                             connection_state_recovery=StateRecovery(max_disconnection_duration=60))
        self.sockets: list[Socket] = []
        self.events: list[SessionEvent] = []
        self.manager.subscribe(self.events.append)

        @self.server.on("connection")
        def on_connection(socket: Socket) -> None:
            self.sockets.append(socket)
            socket.on("ack", lambda *args: ("got", *args))

        @self.server.of("/admin").use
        def refuse(socket: Socket) -> None:
            raise ConnectionRefused("not authorized", {"code": 401})

    def peer(self) -> Peer:
        return Peer(self.manager, parser=MSGPACK)

    def test_a_custom_parser_is_used_for_everything(self) -> None:
        peer = self.peer()
        sid = peer.connect()
        self.assertEqual(self.parser.limits, [DecoderLimits(100, max_bytes=500)])
        # Only binary messages went out: one MessagePack map per packet.
        self.assertTrue(all(isinstance(p.data, bytes) for p in peer.transport.sent[1:]))
        peer.send_packet(Packet(T.EVENT, "/", ["ack", b"\x01"], 7))
        self.assertEqual(peer.packets(), [Packet(T.ACK, "/", ["got", b"\x01"], 7)])
        self.assertEqual([p.type for p in self.parser.encoded], [T.CONNECT, T.ACK])
        self.assertEqual(self.sockets[0].id, sid)

    def test_connect_errors_carry_their_data(self) -> None:
        peer = self.peer()
        peer.send_packet(Packet(T.CONNECT, "/admin"))
        peer.send_packet(Packet(T.CONNECT, "/nope"))
        self.assertEqual(peer.packets(), [
            Packet(T.CONNECT_ERROR, "/admin", {"message": "not authorized", "data": {"code": 401}}),
            Packet(T.CONNECT_ERROR, "/nope", {"message": "Invalid namespace"}),
        ])

    def test_a_broadcast_is_encoded_once(self) -> None:
        peers = [self.peer() for _ in range(3)]
        for peer in peers:
            peer.connect()
        before = len(self.parser.encoded)
        self.server.volatile.emit("news", b"\x00\x01")
        self.assertEqual(len(self.parser.encoded), before + 1)
        sent = [peer.transport.sent[-1].data for peer in peers]
        self.assertTrue(sent[0] is sent[1] is sent[2])
        # Not kept (volatile), it carries the offset of the last packet kept (none yet: position 0).
        log = self.server.sockets.adapter.recovery
        assert log is not None
        offset = log.latest_offset
        self.assertTrue(offset.endswith("-0"))
        expected = [Packet(T.EVENT, "/", ["news", b"\x00\x01", offset])]
        self.assertEqual([peer.packets() for peer in peers], [expected] * 3)

    def test_recovery_replays_missed_packets_with_their_offsets(self) -> None:
        peer = self.peer()
        peer.send_packet(Packet(T.CONNECT, "/"))
        [reply] = peer.packets()
        self.server.emit("before", 0)
        [before] = peer.packets()
        offset = before.args[-1]
        self.assertIsInstance(offset, str)
        peer.session.close(CloseReason.TRANSPORT_CLOSE)
        self.server.emit("missed", b"\x02")
        self.clock.advance(10)
        back = self.peer()
        back.send_packet(Packet(T.CONNECT, "/", {"pid": reply.data["pid"], "offset": offset}))
        again, missed = back.packets()
        self.assertEqual(again.data, reply.data)
        self.assertEqual((missed.event, missed.args[0]), ("missed", b"\x02"))
        self.assertTrue(self.sockets[-1].recovered)

    def closes(self, peer: Peer) -> list[tuple[CloseReason, str]]:
        return [(e.reason, e.description) for e in self.events
                if isinstance(e, SessionClosed) and e.sid == peer.session.sid]

    def test_bad_input_closes_only_that_session(self) -> None:
        bystander = self.peer()
        bystander.connect()
        cases: list[tuple[Any, str]] = [
            ('2["ack"]', "a text message on a MessagePack connection"),
            (b"\x92\x01\x02", "the packet is not a map"),
            (b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\xa1x", "invalid payload for a EVENT packet"),
            (b"\x82\xa4type\x02\xa3nsp\xa1/" + b"\x00" * 600, "packet over 500 bytes"),
        ]
        for message, why in cases:
            offender = self.peer()
            offender.connect()
            offender.send(message)
            self.assertEqual(self.closes(offender), [(CloseReason.PARSE_ERROR, why)])
        bystander.send_packet(Packet(T.EVENT, "/", ["ack", "still here"], 1))
        self.assertEqual(bystander.packets(), [Packet(T.ACK, "/", ["got", "still here"], 1)])
        self.assertEqual(self.closes(bystander), [])

    def test_the_json_client_of_a_msgpack_server_is_closed(self) -> None:
        offender = Peer(self.manager)  # the JSON parser's text CONNECT
        offender.send_packet(Packet(T.CONNECT, "/"))
        self.assertEqual(self.closes(offender),
                         [(CloseReason.PARSE_ERROR, "a text message on a MessagePack connection")])
        self.assertIsInstance(MSGPACK.decoder(DecoderLimits()), MsgpackDecoder)
