"""Hostile input, round three: WebSocket floods (issue 23, item 9).

- One read of many WebSocket frames is handed to the session
  :data:`PACKETS_PER_TURN` messages per reactor turn, reading from that
  connection paused meanwhile, other connections served between the
  slices; nothing is lost and the order holds, through the fast path and
  Autobahn's parser alike (on a ``task.Clock``, then over loopback with
  reactor turns counted).
- A connection joins at most ``max_namespaces`` namespaces: past that, a
  CONNECT is refused with a CONNECT_ERROR, as the official Node client sees.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from typing import Any

import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.base import DelayedCall

from tests.fakes import BASE, NO_BOUNDED_INFLATE, PollingTestCase
from tests.memhttp import MemoryWebSocket, ws_frame
from tests.peers import until, websocket_handshake
from tests.servers import serve
from tests.socketio.app import install
from txrealtime.engineio import EngineIOOptions, MessageReceived, SessionClosed
from txrealtime.engineio.manager import PACKETS_PER_TURN
from txrealtime.pytest_plugin import Realtime

WS = "/engine.io/?EIO=4&transport=websocket"
TEXT, PONG = 1, 10


def frames(start: int, stop: int) -> bytes:
    """Masked text frames of Engine.IO messages ``m<start>`` .. ``m<stop - 1>``, in one string."""
    return b"".join(ws_frame(b"4m%d" % i) for i in range(start, stop))


def numbered(start: int, stop: int) -> list[str]:
    return [f"m{i}" for i in range(start, stop)]


class SlicedReadTests(PollingTestCase):
    """Whole conversations on a ``task.Clock``: each reactor turn run by hand."""

    options = EngineIOOptions(max_payload=1_000_000, ping_interval=60, ping_timeout=60)

    def connect(self) -> tuple[MemoryWebSocket, str]:
        ws = MemoryWebSocket(self.http, WS)
        self.assertEqual(ws.status, 101)
        [(opcode, payload)] = ws.frames()
        self.assertEqual(opcode, TEXT)
        return ws, json.loads(payload[1:])["sid"]

    def messages(self, sid: str | None = None) -> list[str | bytes]:
        return [e.data for e in self.events if isinstance(e, MessageReceived) and sid in (None, e.sid)]

    def due(self) -> list[DelayedCall]:
        return [c for c in self.clock.calls if c.getTime() <= self.clock.seconds()]

    def step(self) -> None:
        """Run the one slice due now (``Clock.advance(0)`` would also run the slices it schedules)."""
        [call] = self.due()
        self.clock.calls.remove(call)
        call.called = 1
        call.func(*call.args, **call.kw)

    def reading(self, ws: MemoryWebSocket) -> str:
        return str(ws.exchange.transport.producerState)

    def test_one_read_is_handed_on_in_slices(self) -> None:
        flooder, flooder_sid = self.connect()
        bystander, bystander_sid = self.connect()
        count = 2 * PACKETS_PER_TURN + 50
        flooder.send_raw(frames(0, count))  # one read holding every frame
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN))
        self.assertEqual(self.reading(flooder), "paused")
        self.assertEqual(self.reading(bystander), "producing")

        # Another connection's message, read before the next turn, is handled at once.
        bystander.send_text("4calm")
        self.assertEqual(self.messages(bystander_sid), ["calm"])
        self.step()
        self.assertEqual(self.messages(flooder_sid), numbered(0, 2 * PACKETS_PER_TURN))
        self.assertEqual(self.reading(flooder), "paused")
        self.step()
        self.assertEqual(self.messages(flooder_sid), numbered(0, count))
        # Reading resumes one turn later, so that no turn hands on a slice and a new read.
        self.assertEqual(self.reading(flooder), "paused")
        self.step()
        self.assertEqual(self.reading(flooder), "producing")
        self.assertEqual(self.due(), [])
        self.assertEqual(
            self.messages(), [*numbered(0, PACKETS_PER_TURN), "calm", *numbered(PACKETS_PER_TURN, count)]
        )

    def slow_messages(self, seconds: float) -> None:
        """Make every message take ``seconds`` of the reactor's (fake) time."""

        def slow(event: object) -> None:
            if isinstance(event, MessageReceived):
                self.clock.rightNow += seconds

        self.manager.subscribe(slow)

    def test_a_turn_ends_after_a_millisecond_of_work(self) -> None:
        """Costly messages (namespace joins, say) end the turn before the count does: at 0.4 ms each,
        four a turn (the time is counted from the end of the turn's first message)."""
        self.slow_messages(0.0004)
        ws, sid = self.connect()
        ws.send_raw(frames(0, 10))
        self.assertEqual(self.messages(), numbered(0, 4))
        self.assertEqual(self.reading(ws), "paused")
        self.step()
        self.assertEqual(self.messages(), numbered(0, 8))
        self.step()
        self.assertEqual(self.messages(), numbered(0, 10))
        self.step()
        self.assertEqual(self.due(), [])
        self.assertEqual(self.reading(ws), "producing")

    def test_a_polling_body_slice_ends_after_a_millisecond_of_work_too(self) -> None:
        self.slow_messages(0.0004)
        sid = self.handshake()
        exchange = self.http.request("POST", f"{BASE}&sid={sid}", b"\x1e".join(
            b"4m%d" % i for i in range(5)
        ))
        self.assertEqual(self.messages(), numbered(0, 3))
        self.step()
        self.assertEqual(self.messages(), numbered(0, 5))
        self.assertEqual(exchange.result().body, b"ok")
        self.assertEqual(self.due(), [])

    def test_a_read_of_exactly_one_slice_needs_no_other_turn(self) -> None:
        ws, _ = self.connect()
        ws.send_raw(frames(0, PACKETS_PER_TURN))
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN))
        self.assertEqual(self.due(), [])
        self.assertEqual(self.reading(ws), "producing")
        ws.send_raw(frames(PACKETS_PER_TURN, PACKETS_PER_TURN + 3))  # a new read, a new budget
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN + 3))

    def test_data_read_while_a_slice_is_due_waits_its_turn(self) -> None:
        """As TLS may hand over several records from one socket read: they queue behind the backlog."""
        ws, _ = self.connect()
        ws.send_raw(frames(0, PACKETS_PER_TURN + 10))
        whole = frames(PACKETS_PER_TURN + 10, PACKETS_PER_TURN + 20)
        ws.send_raw(whole[:7])  # a frame split across reads
        ws.send_raw(whole[7:])
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN))
        self.step()
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN + 20))
        self.step()
        self.assertEqual(self.due(), [])
        self.assertEqual(self.reading(ws), "producing")

    def test_frames_through_autobahns_parser_are_sliced_too(self) -> None:
        """A ping first, a fragmented message in the middle: the rest goes through Autobahn's own parser."""
        ws, sid = self.connect()
        count = 2 * PACKETS_PER_TURN + 20
        # A text frame without FIN, then its continuation (a zero mask leaves the payloads as they are).
        fragmented = bytes([0x01, 0x83]) + bytes(4) + b"4fr" + bytes([0x80, 0x83]) + bytes(4) + b"ag!"
        data = ws_frame(b"hi", opcode=9) + frames(0, 150) + fragmented + frames(150, count)
        ws.send_raw(data)
        # The ping counts: 99 messages in the first turn.
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN - 1))
        self.assertEqual(ws.frames(), [(PONG, b"hi")])
        self.step()
        self.assertEqual(self.messages(), [*numbered(0, 150), "frag!", *numbered(150, 2 * PACKETS_PER_TURN - 2)])
        self.step()
        self.assertEqual(self.messages(sid), [*numbered(0, 150), "frag!", *numbered(150, count)])
        self.step()
        self.assertEqual(self.due(), [])
        self.assertEqual(self.reading(ws), "producing")

    def test_the_write_side_pause_holds_reading_after_the_backlog(self) -> None:
        ws, _ = self.connect()
        ws.send_raw(frames(0, PACKETS_PER_TURN + 10))
        protocol: Any = ws.protocol
        protocol.pauseProducing()  # the client stopped reading what we write
        protocol.resumeProducing()  # and caught up: reading waits for the backlog still
        self.assertEqual(self.reading(ws), "paused")
        protocol.pauseProducing()
        self.step()
        self.step()
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN + 10))
        self.assertEqual(self.due(), [])
        self.assertEqual(self.reading(ws), "paused")  # the client still does not read
        protocol.resumeProducing()
        self.assertEqual(self.reading(ws), "producing")

    def test_a_session_closed_mid_backlog_leaves_no_call_behind(self) -> None:
        ws, sid = self.connect()
        ws.send_raw(frames(0, PACKETS_PER_TURN) + ws_frame(b"9") + frames(PACKETS_PER_TURN, 3 * PACKETS_PER_TURN))
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN))
        self.step()  # the bad packet closes the session: nothing after it is handed on
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN))
        self.assertTrue(self.closed(sid))
        self.clock.advance(0)
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN))
        ws.lose()
        self.assertEqual(self.due(), [])

    def test_a_connection_lost_mid_backlog_leaves_no_call_behind(self) -> None:
        ws, sid = self.connect()
        ws.send_raw(frames(0, 3 * PACKETS_PER_TURN))
        ws.lose()
        self.assertEqual(self.due(), [])
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN))
        self.assertTrue(self.closed(sid))


class CompressedSlicedReadTests(SlicedReadTests):
    """The same with permessage-deflate: every compressed message goes through Autobahn's parser."""

    options = EngineIOOptions(max_payload=1_000_000, ping_interval=60, ping_timeout=60, per_message_deflate=True)
    skip = NO_BOUNDED_INFLATE

    def connect(self) -> tuple[MemoryWebSocket, str]:
        ws = MemoryWebSocket(
            self.http, WS, {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
        )
        self.assertEqual(ws.status, 101)
        self.assertIn("permessage-deflate", ws.headers["sec-websocket-extensions"])
        [(opcode, payload)] = ws.frames()
        self.assertEqual(opcode, TEXT)
        return ws, json.loads(payload[1:])["sid"]

    def test_compressed_messages_are_sliced(self) -> None:
        ws, sid = self.connect()
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)  # the client keeps its context, as browsers do

        def compressed(i: int) -> bytes:
            body = compressor.compress(b"4m%d" % i) + compressor.flush(zlib.Z_SYNC_FLUSH)
            return ws_frame(body[:-4], opcode=0x41)  # RSV1: compressed; the sync flush's tail dropped

        count = PACKETS_PER_TURN + 30
        ws.send_raw(b"".join(compressed(i) if i % 2 else ws_frame(b"4m%d" % i) for i in range(count)))
        self.assertEqual(self.messages(), numbered(0, PACKETS_PER_TURN))
        self.assertEqual(self.reading(ws), "paused")
        self.step()
        self.assertEqual(self.messages(sid), numbered(0, count))
        self.step()
        self.assertEqual(self.due(), [])
        self.assertEqual(self.reading(ws), "producing")


def masked(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    size = len(payload)
    head = bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0x80 | 126]) + size.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


TURN = object()
"""Marks the start of a reactor turn in the list of session events."""


@pytest_twisted.ensureDeferred
async def test_a_websocket_flood_yields_every_turn_over_loopback(realtime: Realtime) -> None:
    """20,000 tiny events in one write: no turn hands on more than a slice of them; a bystander
    connection's event is handled in between; every event arrives, in order."""
    running, events = await serve(realtime, ping_interval=60, ping_timeout=60)
    order: list[object] = []
    running.server.manager.subscribe(order.append)
    url = f"{running.url}/socket.io/?EIO=4&transport=websocket"
    flooder = await websocket_handshake(url)
    bystander = await websocket_handshake(url)
    for ws in (flooder, bystander):
        await threads.deferToThread(ws.recv)  # the OPEN packet
        await threads.deferToThread(ws.send, "40")
        assert (await threads.deferToThread(ws.recv)).startswith("40{")
    [flooder_sid, bystander_sid] = [s.sid for s in running.server.manager]
    count = 20_000
    flood = b"".join(masked(f'42["n",{k}]') for k in range(count))

    ticking = [True]
    clock: Any = reactor

    def tick() -> None:
        order.append(TURN)
        if ticking[0]:
            clock.callLater(0, tick)

    clock.callLater(0, tick)

    def send() -> None:
        flooder.sock.sendall(flood)
        bystander.send('42["n","calm"]')

    del events[:], order[:]  # the namespace joins
    try:
        await threads.deferToThread(send)
        await until(lambda: len([e for e in events if isinstance(e, MessageReceived)]) >= count + 1, "every event")
    finally:
        ticking[0] = False
    flooded = [e.data for e in events if isinstance(e, MessageReceived) and e.sid == flooder_sid]
    assert flooded == [f'2["n",{k}]' for k in range(count)]
    runs, run = [], 0
    for item in order:
        if item is TURN:
            runs.append(run)
            run = 0
        elif isinstance(item, MessageReceived) and item.sid == flooder_sid:
            run += 1
    runs.append(run)
    assert max(runs) <= PACKETS_PER_TURN, f"{max(runs)} messages of one connection in one turn"
    messages = [e for e in order if isinstance(e, MessageReceived)]
    [calm] = [i for i, e in enumerate(messages) if e.sid == bystander_sid]
    assert 0 < calm < count, "the bystander was not served while the flood was"
    assert not [e for e in events if isinstance(e, SessionClosed)]
    for ws in (flooder, bystander):
        await threads.deferToThread(ws.close)


@pytest_twisted.ensureDeferred
async def test_a_namespace_flood_is_sliced_and_bounded_over_loopback(realtime: Realtime) -> None:
    """One write joining and leaving 1,000 new dynamic namespaces, then joining 150 more: handed on
    in slices, a bystander served in between; the joins past ``max_namespaces_per_client`` (100,
    the default namespace included) are answered with CONNECT_ERROR and the connection stays."""

    def setup(server: Any) -> None:
        install(server)
        server.of(re.compile(r"^/dyn-\d+$"))

    running = await realtime.start_server(setup, options=EngineIOOptions(ping_interval=60, ping_timeout=60))
    order: list[object] = []
    running.server.manager.subscribe(order.append)
    url = f"{running.url}/socket.io/?EIO=4&transport=websocket"
    flooder = await websocket_handshake(url)
    bystander = await websocket_handshake(url)
    for ws in (flooder, bystander):
        await threads.deferToThread(ws.recv)  # the OPEN packet
        await threads.deferToThread(ws.send, "40")
        assert (await threads.deferToThread(ws.recv)).startswith("40{")
    [flooder_sid, bystander_sid] = [s.sid for s in running.server.manager]
    cycles, kept = 1000, 150
    flood = b"".join(masked(f"40/dyn-{k},") + masked(f"41/dyn-{k},") for k in range(cycles))
    flood += b"".join(masked(f"40/dyn-{k},") for k in range(cycles, cycles + kept))
    del order[:]
    clock: Any = reactor
    ticking = [True]

    def tick() -> None:
        order.append(TURN)
        if ticking[0]:
            clock.callLater(0, tick)

    clock.callLater(0, tick)

    def send_and_read() -> list[str]:
        flooder.sock.sendall(flood)
        bystander.send('421["ack","calm"]')
        answers: list[str] = []
        while len(answers) < cycles + kept:
            answers.append(flooder.recv())
        return answers

    try:
        answers = await threads.deferToThread(send_and_read)
        assert await threads.deferToThread(bystander.recv) == '431["got","calm"]'
    finally:
        ticking[0] = False
    joined = [a for a in answers if not a.startswith("44")]
    refused = [a for a in answers if a.startswith("44")]
    assert [a.split(",", 1)[0] for a in joined] == [f"40/dyn-{k}" for k in range(cycles + 99)]
    assert refused == [
        f'44/dyn-{k},{{"message":"Too many namespaces (limit 100)"}}' for k in range(cycles + 99, cycles + kept)
    ]
    runs, run = [], 0
    for item in order:
        if item is TURN:
            runs.append(run)
            run = 0
        elif isinstance(item, MessageReceived) and item.sid == flooder_sid:
            run += 1
    runs.append(run)
    assert sum(runs) == 2 * cycles + kept
    assert max(runs) <= PACKETS_PER_TURN, f"{max(runs)} packets of one connection in one turn"
    messages = [e for e in order if isinstance(e, MessageReceived)]
    [calm] = [i for i, e in enumerate(messages) if e.sid == bystander_sid]
    assert 0 < calm < len(messages) - 1, "the bystander was not served while the flood was"
    assert running.server.manager.get(flooder_sid) is not None
    await threads.deferToThread(flooder.send, '421["ack","still"]')
    assert await threads.deferToThread(flooder.recv) == '431["got","still"]'
    for ws in (flooder, bystander):
        await threads.deferToThread(ws.close)
