"""Back-pressure per socket: ``emit`` returns ``False`` over the high-water mark, ``drain`` follows, ``volatile``
skips; whole conversations on a ``task.Clock``, then real slow readers over WebSocket and polling."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest_twisted
from twisted.internet import defer, reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import Peer
from tests.peers import PollingPeer, open_and_stop_reading, until
from txrealtime.engineio import EngineIOOptions, SessionManager
from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio import Server, Socket


class ClockConversationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        options = EngineIOOptions(ping_interval=25, ping_timeout=20, max_payload=1000, max_buffer=1000,
                                  high_water_mark=120)
        self.manager = SessionManager(options, reactor=self.clock)
        self.server = Server(self.manager)
        self.sockets: list[Socket] = []
        self.server.on("connection", self.sockets.append)
        self.peer = Peer(self.manager)
        self.peer.connect()
        [self.socket] = self.sockets
        self.drains: list[tuple[Any, ...]] = []
        self.socket.on("drain", lambda *args: self.drains.append(args))

    def test_emit_false_over_the_mark_then_drain(self) -> None:
        transport = self.peer.transport
        transport.writable = False  # the client does not read
        self.assertTrue(self.socket.emit("tick", "a" * 40))
        self.assertEqual(self.socket.buffered, len('2["tick","' + "a" * 40 + '"]'))
        self.assertTrue(self.socket.emit("tick", "b" * 40))
        # The third goes over 120 bytes: queued all the same, but emit says stop.
        self.assertFalse(self.socket.emit("tick", "c" * 40))
        self.assertEqual(self.socket.buffered, 3 * 52)
        self.assertFalse(self.socket.emit("tick", "d"))
        self.assertEqual(self.drains, [])
        transport.writable = True
        self.peer.session.flush()
        self.assertEqual(self.drains, [()])
        self.assertEqual(self.socket.buffered, 0)
        self.assertEqual([p.args for p in self.peer.packets()], [["a" * 40], ["b" * 40], ["c" * 40], ["d"]])
        self.assertEqual(
            [p.data for p in transport.sent[-4:]],
            ['2["tick","' + "a" * 40 + '"]', '2["tick","' + "b" * 40 + '"]', '2["tick","' + "c" * 40 + '"]',
             '2["tick","d"]'],
        )
        # Under the mark again: emits say go, and no second drain comes without another crossing.
        self.assertTrue(self.socket.emit("tick", "e"))
        self.peer.session.flush()
        self.assertEqual(self.drains, [()])

    def test_volatile_skips_a_socket_over_the_mark(self) -> None:
        other_peer = Peer(self.manager)
        other_peer.connect()
        self.peer.transport.writable = False
        self.assertFalse(self.socket.emit("big", "x" * 120))
        self.assertTrue(self.peer.session.needs_drain)
        self.server.volatile.emit("v", 1)
        self.server.emit("n", 2)
        self.peer.transport.writable = True
        self.peer.session.flush()
        self.assertEqual([(p.event, p.args) for p in self.peer.packets()], [("big", ["x" * 120]), ("n", [2])])
        self.assertEqual([(p.event, p.args) for p in other_peer.packets()], [("v", [1]), ("n", [2])])
        self.assertEqual(self.drains, [()])

    def test_a_client_cannot_fire_drain(self) -> None:
        self.peer.send_packet(Packet(PacketType.EVENT, "/", ["drain"]))
        self.assertEqual(self.drains, [])

    def test_emit_with_ack_and_every_namespace_of_the_connection(self) -> None:
        chat: list[Socket] = []
        self.server.of("/chat").on("connection", chat.append)
        self.peer.connect("/chat")
        chat_drains: list[str] = []
        chat[0].on("drain", lambda: chat_drains.append("chat"))
        self.peer.transport.writable = False
        answers: list[Any] = []
        self.assertFalse(chat[0].emit("q", "y" * 120, ack=answers.append))
        self.assertEqual(self.socket.buffered, chat[0].buffered)
        self.peer.transport.writable = True
        self.peer.session.flush()
        self.assertEqual((self.drains, chat_drains), ([()], ["chat"]))
        [question] = self.peer.packets()
        self.peer.send_packet(Packet(PacketType.ACK, "/chat", ["ok"], question.id))
        self.assertEqual(answers, ["ok"])

    def test_the_mark_defaults_to_a_quarter_of_max_buffer(self) -> None:
        self.assertEqual(EngineIOOptions().drain_mark, 1_000_000)
        self.assertEqual(EngineIOOptions(max_buffer=8_000_000).drain_mark, 2_000_000)
        with self.assertRaises(ValueError):
            EngineIOOptions(high_water_mark=5_000_000)


# -- real slow readers --------------------------------------------------------------------------------------------

CHUNK = 20_000
MARK = 100_000
MORE = 100  # chunks written once the reader reads, waiting for drain whenever emit says so


class Pump:
    """Writes chunks from one socket (a server's or a client's) as a producer should: while ``emit`` says go,
    else after ``drain``."""

    def __init__(self, socket: Any, needs_drain: Callable[[], bool]) -> None:
        self.socket = socket
        self.needs_drain = needs_drain
        self.sent = self.drains = self.refusals = self.peak = 0
        self._drained: Deferred[None] | None = None
        socket.on("drain", self._on_drain)

    def _on_drain(self) -> None:
        self.drains += 1
        waiting, self._drained = self._drained, None
        if waiting is not None:
            waiting.callback(None)

    def emit(self) -> bool:
        ok: bool = self.socket.emit("chunk", self.sent, "z" * CHUNK)
        self.sent += 1
        self.peak = max(self.peak, self.socket.buffered)
        self.refusals += not ok
        return ok

    def fill(self, limit: int = 2000) -> None:
        """Write until emit says stop (nothing is read yet): kernel buffers, then the queue fill up."""
        while self.emit():
            assert self.sent < limit, "emit never said stop"

    async def more(self, count: int) -> None:
        """Write ``count`` more chunks, waiting for ``drain`` after each refusal, then ``done``."""
        for _ in range(count):
            if self.needs_drain():
                self._drained = Deferred()
                await self._drained
            self.emit()
        self.socket.emit("done")


def server_pump(socket: Socket) -> Pump:
    return Pump(socket, lambda: socket.client.session.needs_drain)


def client_pump(client: Any) -> Pump:
    return Pump(client, lambda: bool(client.io.needs_drain))


def read_until_done(sock: socket.socket) -> bytes:
    """Read the WebSocket until the ``done`` event; return the bytes read."""
    received = bytearray()
    sock.settimeout(30)
    while b'42["done"]' not in received[-64:]:
        data = sock.recv(65536)
        if not data:
            break
        received += data
    return bytes(received)


async def one_socket(running: Any) -> Socket:
    await until(lambda: len(running.server.sockets.sockets) == 1, "the reader to join")
    [joined] = running.server.sockets.sockets.values()
    assert isinstance(joined, Socket)
    return joined


def options(**more: Any) -> EngineIOOptions:
    return EngineIOOptions(max_payload=100_000, max_buffer=1_000_000, high_water_mark=MARK, ping_interval=60,
                           ping_timeout=60, **more)


@pytest_twisted.ensureDeferred
async def test_websocket_slow_reader_gets_drains_and_memory_stays_bounded(realtime: Realtime) -> None:
    running = await realtime.start_server(options=options())
    sock = await threads.deferToThread(open_and_stop_reading, running.port.getHost().port, 65536)
    try:
        pump = server_pump(await one_socket(running))
        pump.fill()  # the client reads nothing: emit says stop once its session holds more than the mark
        assert pump.refusals == 1 and MARK < pump.socket.buffered <= MARK + CHUNK + 100
        assert pump.drains == 0
        read = threads.deferToThread(read_until_done, sock)
        await pump.more(MORE)
        received = await read
        assert pump.drains >= 1 and pump.drains == pump.refusals
        assert pump.peak <= MARK + CHUNK + 100  # what waits in the session never passes the mark by more than a chunk
        assert received.count(b'42["chunk",') == pump.sent
        assert not pump.socket.client.session.closed
    finally:
        sock.close()


@pytest_twisted.ensureDeferred
async def test_polling_slow_reader_gets_drains_and_memory_stays_bounded(realtime: Realtime) -> None:
    running = await realtime.start_server(options=options(transports=["polling"]))
    peer = PollingPeer(running.url)
    await peer.open()
    pump = server_pump(await one_socket(running))
    pump.fill()  # no poll is parked: everything waits in the session
    assert pump.sent == MARK // (CHUNK + 14) + 1 and pump.refusals == 1
    writing = defer.ensureDeferred(pump.more(MORE))
    chunks = 0
    while not writing.called or pump.socket.buffered:
        payload = await peer.get()  # each poll takes all that waits: the drain
        chunks += payload.count('42["chunk",')
        await deferLater(reactor, 0.01, lambda: None)  # a slow reader: the server queues meanwhile
    await writing
    assert chunks == pump.sent
    assert pump.drains >= 2 and pump.drains == pump.refusals
    assert pump.peak <= MARK + CHUNK + 100


# -- the Python client's side -------------------------------------------------------------------------------------


def counting_server(received: list[int]) -> Any:
    def setup(server: Server) -> None:
        @server.on("connection")
        def connected(socket: Socket) -> None:
            socket.on("chunk", lambda n, data: received.append(n))

    return setup


@pytest_twisted.ensureDeferred
async def test_client_over_websocket_waits_for_drain_while_the_server_does_not_read(realtime: Realtime) -> None:
    received: list[int] = []
    running = await realtime.start_server(counting_server(received), options=options())
    client = await realtime.connect(running, transports=["websocket"], high_water_mark=MARK)
    [session] = list(running.server.manager)
    tcp = session.transport.transport  # type: ignore[attr-defined]
    tcp.pauseProducing()  # the server stops reading this connection
    pump = client_pump(client)
    pump.fill()  # kernel buffers, the client's TCP buffer, then its engine's queue fill up
    assert pump.refusals == 1 and MARK < client.buffered <= MARK + CHUNK + 100
    assert pump.drains == 0
    tcp.resumeProducing()
    await pump.more(MORE)
    await until(lambda: len(received) == pump.sent, "every chunk to arrive")
    assert received == list(range(pump.sent))
    assert pump.drains >= 1 and pump.drains == pump.refusals
    assert pump.peak <= MARK + CHUNK + 100


@pytest_twisted.ensureDeferred
async def test_client_over_polling_queues_behind_its_post_and_drains(realtime: Realtime) -> None:
    received: list[int] = []
    running = await realtime.start_server(counting_server(received), options=options())
    client = await realtime.connect(running, transports=["polling"], high_water_mark=MARK)
    pump = client_pump(client)
    pump.fill()  # the first chunk goes in a POST; the rest wait behind it, in the engine
    assert pump.refusals == 1 and pump.sent == 1 + MARK // (CHUNK + 14) + 1
    await pump.more(MORE)
    await until(lambda: len(received) == pump.sent, "every chunk to arrive")
    assert received == list(range(pump.sent))
    assert pump.drains >= 1 and pump.drains == pump.refusals
    assert pump.peak <= MARK + CHUNK + 100


def test_twistd_high_water_mark_option() -> None:
    from txrealtime.service import Options

    for args, mark in (([], 1_000_000), (["--high-water-mark", "5000"], 5000),
                       (["--max-buffer", "2000000", "--high-water-mark", "9000000"], 2_000_000)):
        parsed = Options()
        parsed.parseOptions(args)  # type: ignore[no-untyped-call]
        assert parsed["engineio-options"].drain_mark == mark
