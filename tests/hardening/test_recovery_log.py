"""Connection state recovery under attack (issue 23 item 4), whole conversations on a fake clock.

- the log's byte cap bounds the memory it really holds, whatever the packets decode to: tiny packets,
  arrays of empty JSON objects, arrays of empty msgpack maps (memory traced with ``tracemalloc``);
- kept packets and sessions are released after the window when nothing else happens;
- a socket recovering with an offset from before it joined a room does not get that room's earlier packets;
- an offset that is not the log's leaves the kept session in place.

Only what existed before the fix is used here (``Server``, ``StateRecovery``, the in-memory peer), so that
each test also runs, and fails, on the old code.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import Peer
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionManager
from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.protocol.parser import resolve
from txrealtime.socketio import Server, Socket
from txrealtime.socketio.recovery import StateRecovery

T = PacketType


def rebroadcasting(clock: Clock, recovery: StateRecovery, parser: str = "json") -> Server:
    """A server whose clients' ``say`` events go to every other socket (as a chat's do), each kept for recovery."""
    manager = SessionManager(EngineIOOptions(ping_interval=1000, ping_timeout=1000), reactor=clock)
    server = Server(manager, connection_state_recovery=recovery, parser=parser)

    @server.on("connection")
    def on_connection(socket: Socket) -> None:
        socket.on("say", lambda *args: socket.broadcast.emit("msg", *args))
        socket.on("join", lambda room: socket.join(room))

    return server


@contextmanager
def traced() -> Iterator[list[int]]:
    """Bytes allocated (and still held) inside the block, after a full collection, as ``[growth]``."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = [0]
        yield result
        gc.collect()
        result[0] = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


class ByteCapTests(SynchronousTestCase):
    """With a 200 KB cap, what the log keeps takes at most about 200 KB of memory; the cap used to count wire
    bytes only (the old code held 2.7 MB after the tiny packets, 4.3 MB after the JSON arrays, 11.6 MB after the
    msgpack ones: each empty object or map decoded costs 64 bytes). What the log counts is what it holds."""

    cap = 200_000

    def flood(self, parser: str, messages: list[str | bytes]) -> None:
        """Send ``messages`` from one client; check the memory that stays against the cap and the log's count."""
        clock = Clock()
        server = rebroadcasting(clock, StateRecovery(max_log_bytes=self.cap), parser)
        sender = Peer(server.manager, parser=resolve(parser))
        sender.connect()
        # The first one outside: msgpack's packer keeps a buffer as large as the largest packet it packed.
        sender.send(messages[0])
        with traced() as growth:
            for message in messages:
                sender.send(message)
        self.assertFalse(sender.closed)
        log = server.sockets.adapter.recovery
        assert log is not None
        self.assertGreater(len(log), 0)
        self.assertLess(growth[0], self.cap * 1.1)
        # What it counts covers what it holds (the last packets of the flood are the ones kept).
        self.assertLessEqual(log.bytes, self.cap)
        self.assertLess(growth[0], log.bytes * 1.05 + 4096)

    def test_tiny_packets(self) -> None:
        self.flood("json", [f'2["say",{n}]' for n in range(5_000)])

    def test_arrays_of_empty_json_objects(self) -> None:
        message = '2["say",[' + ",".join(["{}"] * 30_000) + "]]"  # 90 KB, 30,000 objects
        self.flood("json", [message] * 4)

    def test_arrays_of_empty_msgpack_maps(self) -> None:
        message = msgpack.packb({"type": 2, "nsp": "/", "data": ["say", [{}] * 80_000]})  # 80 KB
        self.flood("msgpack", [message] * 4)


class SilenceTests(SynchronousTestCase):
    def test_packets_and_sessions_go_after_the_window_without_anything_new(self) -> None:
        clock = Clock()
        server = rebroadcasting(clock, StateRecovery(max_disconnection_duration=15, max_log_bytes=10**9))
        peers = [Peer(server.manager) for _ in range(50)]
        for peer in peers:
            peer.connect()
        for peer in peers:
            peer.session.close(CloseReason.TRANSPORT_CLOSE)
        for n in range(100_000):
            server.emit("tick", n)
        log = server.sockets.adapter.recovery
        assert log is not None
        self.assertEqual((len(log), log.sessions), (100_000, 50))
        clock.advance(17)  # the window and a second: nothing is logged or kept meanwhile
        self.assertEqual((len(log), log.sessions), (0, 0))


class RecoveryInputTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.server = rebroadcasting(self.clock, StateRecovery(max_disconnection_duration=60))

    def connect(self, auth: Any = None) -> tuple[Peer, dict[str, Any], list[Packet]]:
        peer = Peer(self.server.manager)
        peer.send_packet(Packet(T.CONNECT, "/", auth))
        reply, *after = peer.packets()
        self.assertEqual(reply.type, T.CONNECT)
        return peer, reply.data, after

    def test_a_room_joined_late_is_not_replayed_from_before_the_join(self) -> None:
        peer, reply, _ = self.connect()
        self.server.emit("hello")
        offset = peer.packets()[0].args[-1]
        self.server.to("late").emit("sent before it joined", 1)
        peer.send(f"2{json.dumps(['join', 'late'])}")
        self.server.to("late").emit("sent after it joined", 2)
        peer.session.close(CloseReason.TRANSPORT_CLOSE)
        _, again, missed = self.connect({"pid": reply["pid"], "offset": offset})
        self.assertEqual(again, reply)
        self.assertEqual([p.event for p in missed], ["sent after it joined"])

    def test_a_bad_offset_does_not_consume_the_kept_session(self) -> None:
        peer, reply, _ = self.connect()
        self.server.emit("hello")
        offset = peer.packets()[0].args[-1]
        peer.session.close(CloseReason.TRANSPORT_CLOSE)
        self.server.emit("missed")
        _, fresh, _ = self.connect({"pid": reply["pid"], "offset": "not an offset"})
        self.assertNotEqual(fresh["sid"], reply["sid"])
        _, again, missed = self.connect({"pid": reply["pid"], "offset": offset})
        self.assertEqual(again, reply)
        self.assertEqual([p.event for p in missed], ["missed"])
