"""Floods over loopback: a client that makes the server work hard slows down only itself.

- WebSocket pings from a client that never reads: the server stops reading
  from it once its send buffer is full, so the pongs it owes stay bounded,
  and the session ends at its ping timeout.
- WebSocket pings and pongs count against ``max_packets_per_second``.
- A 1 MB polling POST of tiny packets is handled in slices, other clients
  served between them; a body whose first packet is bad is refused at once.

A python-socketio canary in its own process keeps asking for acks throughout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest_twisted
import websocket
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from tests.peers import base, handshake, http, open_and_stop_reading, sid_of, until, websocket_handshake
from tests.servers import closes, serve
from tests.socketio.app import install
from txrealtime.engineio import CloseReason, EngineIOOptions, MessageReceived, SessionClosed, SessionEvent
from txrealtime.engineio.websocket import EngineIOWebSocketProtocol
from txrealtime.pytest_plugin import Realtime

PING_PAYLOAD = b"p" * 125  # the largest a control frame may carry


def masked_ping(payload: bytes = PING_PAYLOAD) -> bytes:
    mask = os.urandom(4)
    return bytes([0x89, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


CANARY = """
import json, select, sys
import socketio

client = socketio.Client(reconnection=False)
client.connect(sys.argv[1], transports=["websocket"], wait_timeout=10)
print("ready", flush=True)
answers, errors = 0, []
while not select.select([sys.stdin], [], [], 0)[0]:  # until the test closes our stdin
    try:
        answer = client.call("ack", answers, timeout=20)
    except Exception as e:
        errors.append(repr(e))
        break
    if answer != ("got", answers):
        errors.append(repr(answer))
        break
    answers += 1
client.disconnect()
print(json.dumps({"answers": answers, "errors": errors}), flush=True)
"""


class Canary:
    """A python-socketio client in its own process asking for acks in a loop until stopped.

    A process, not a thread: a thread would share the GIL with the reactor and
    measure that instead of the server's responsiveness.
    """

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CANARY, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.report: dict[str, Any] = {}

    def start(self) -> Deferred[None]:
        """Fire once the canary is connected and asking."""

        def ready() -> None:
            assert self.process.stdout is not None
            line = self.process.stdout.readline()
            assert line == "ready\n", line

        return threads.deferToThread(ready)

    def stop(self) -> Deferred[None]:
        def stop() -> None:
            out, _ = self.process.communicate(timeout=60)
            self.report = json.loads(out.strip().splitlines()[-1])

        return threads.deferToThread(stop)

    def check(self) -> None:
        """Every answer was right and none failed; some came."""
        assert self.report["errors"] == []
        assert self.report["answers"] > 0, "the canary got no ack at all"


def held(tcp: Any) -> int:
    """Bytes a server-side TCP transport holds in user space, not yet handed to the kernel."""
    return int(len(tcp.dataBuffer) - tcp.offset + sum(map(len, tcp._tempDataBuffer)))


@pytest_twisted.ensureDeferred
async def test_ping_flood_from_a_client_that_never_reads(realtime: Realtime) -> None:
    running, events = await serve(realtime, ping_interval=1, ping_timeout=1)
    port = running.port.getHost().port
    flooder = await threads.deferToThread(open_and_stop_reading, port)
    [session] = list(running.server.manager)
    protocol = session.transport
    assert isinstance(protocol, EngineIOWebSocketProtocol)
    tcp: Any = protocol.transport
    canary = Canary(running.url)
    await canary.start()

    peak = [0]

    def sample() -> None:
        peak[0] = max(peak[0], held(tcp))

    sampler = LoopingCall(sample)
    sampler.clock = reactor
    sampler.start(0.002)

    batch = masked_ping() * 2000  # 262 KB: 2,000 pings per write
    total = 150  # up to 39 MB of pings, 300,000 pongs asked for

    def flood() -> int:
        flooder.settimeout(60)
        sent = 0
        try:
            for _ in range(total):
                flooder.sendall(batch)
                sent += len(batch)
        except OSError:  # the server dropped the connection
            pass
        return sent

    try:
        flooding = threads.deferToThread(flood)
        await until(lambda: session.closed, "the flooder's session to close")
        await until(lambda: not tcp.connected, "the flooder's connection to end")
        sent = await flooding
    finally:
        sampler.stop()
        flooder.close()
        await canary.stop()
    sample()

    [(reason, description)] = [
        (e.reason, e.description) for e in events if isinstance(e, SessionClosed) and e.sid == session.sid
    ]
    print(f"held at most {peak[0]} bytes; {sent} bytes of pings sent; closed: {reason.value} ({description})")
    assert reason in (CloseReason.PING_TIMEOUT, CloseReason.TRANSPORT_ERROR), (reason, description)
    # Twisted pauses its producer past 64 KiB buffered; one more read of at most 64 KiB of
    # pings may be answered after that, and a close frame: a few hundred KB at most, however
    # many megabytes of pongs the client asked for.
    assert peak[0] <= 256 * 1024, f"{peak[0]} bytes held for the flooder ({sent} bytes of pings sent)"
    canary.check()


def ping_and_read(ws: Any, count: int) -> list[tuple[int, bytes]]:
    """Send ``count`` pings at once, then read frames until the server closes (or ``count`` pongs came)."""
    ws.sock.sendall(b"".join(masked_ping(b"x%d" % n) for n in range(count)))
    frames: list[tuple[int, bytes]] = []
    pongs = 0
    while pongs < count:
        try:
            opcode, frame = ws.recv_data_frame(True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            break
        frames.append((opcode, frame.data))
        if opcode == websocket.ABNF.OPCODE_PONG:
            pongs += 1
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
    return frames


@pytest_twisted.ensureDeferred
async def test_websocket_pings_count_against_the_packet_rate(realtime: Realtime) -> None:
    running, events = await serve(realtime, max_packets_per_second=20, ping_interval=60, ping_timeout=60)
    url = f"{running.url}/socket.io/?EIO=4&transport=websocket"

    # Below the limit: 10 pings, a namespace join and an ack are 12 packets of a 20-packet burst.
    calm = await websocket_handshake(url)
    calm_sid = json.loads(calm.recv()[1:])["sid"]
    frames = await threads.deferToThread(ping_and_read, calm, 10)
    assert frames == [(websocket.ABNF.OPCODE_PONG, b"x%d" % n) for n in range(10)]
    await threads.deferToThread(calm.send, "40")
    assert (await threads.deferToThread(calm.recv)).startswith("40{")
    await threads.deferToThread(calm.send, '420["ack","calm"]')
    assert await threads.deferToThread(calm.recv) == '430["got","calm"]'
    assert running.server.manager.get(calm_sid) is not None

    # Over it: 500 pings at once, pongs read as they come.
    fast = await websocket_handshake(url)
    fast_sid = json.loads(fast.recv()[1:])["sid"]
    frames = await threads.deferToThread(ping_and_read, fast, 500)
    pongs = [f for f in frames if f[0] == websocket.ABNF.OPCODE_PONG]
    assert 0 < len(pongs) < 500
    assert pongs == [(websocket.ABNF.OPCODE_PONG, b"x%d" % n) for n in range(len(pongs))]
    assert frames[len(pongs)] == (websocket.ABNF.OPCODE_TEXT, b"1")  # the Engine.IO CLOSE packet
    assert frames[-1][0] == websocket.ABNF.OPCODE_CLOSE
    await until(lambda: bool(closes(events)), "the fast pinger's session to close")
    assert [(e.sid, e.reason, e.description) for e in events if isinstance(e, SessionClosed)] == [
        (fast_sid, CloseReason.TRANSPORT_ERROR, "rate limit: more than 20 packets/s")
    ]
    await threads.deferToThread(fast.close)

    # The calm client carries on.
    await threads.deferToThread(calm.send, '421["ack","still"]')
    assert await threads.deferToThread(calm.recv) == '431["got","still"]'
    await threads.deferToThread(calm.close)


def tiny_packets(count: int) -> bytes:
    """A polling body of ``count`` Socket.IO events ``n`` numbered from 0 (about 16 bytes each)."""
    return "\x1e".join(f'42["n",{k}]' for k in range(count)).encode()


async def polling_client(running: Any) -> str:
    """A polling session that joined the default namespace; its sid."""
    _, body, _ = await handshake(running)
    sid = sid_of(body)
    assert (await http.post(f"{base(running)}&sid={sid}", data=b"40")).code == 200
    response = await http.get(f"{base(running)}&sid={sid}")
    assert (await response.text()).startswith('40{"sid":')
    return sid


@pytest_twisted.ensureDeferred
async def test_megabyte_post_is_handled_in_slices_beside_a_canary(realtime: Realtime) -> None:
    received: list[int] = []

    def setup(server: Any) -> None:
        install(server)
        server.on("connection", lambda sock: sock.on("n", received.append))

    running = await realtime.start_server(setup, options=EngineIOOptions(ping_interval=60, ping_timeout=60))
    flooder = await polling_client(running)
    count = 71_000
    body = tiny_packets(count)
    assert 900_000 < len(body) <= 1_000_000
    order: list[SessionEvent] = []
    running.server.manager.subscribe(order.append)
    canary = Canary(running.url)
    await canary.start()
    try:
        response = await http.post(f"{base(running)}&sid={flooder}", data=body)
        answer = (response.code, await response.text())
    finally:
        await canary.stop()

    assert answer == (200, "ok")
    assert received == list(range(count))  # every packet, in order
    assert running.server.manager.get(flooder) is not None
    canary.check()
    # The canary was served while the body was being handled, not only before or after it.
    messages = [e for e in order if isinstance(e, MessageReceived)]
    flood = [i for i, e in enumerate(messages) if e.sid == flooder]
    assert len(flood) == count
    between = [e for e in messages[flood[0] : flood[-1]] if e.sid != flooder]
    assert between, "no canary request was handled while the body was"


@pytest_twisted.ensureDeferred
async def test_megabyte_post_with_a_bad_first_packet(realtime: Realtime) -> None:
    running, events = await serve(realtime, ping_interval=60, ping_timeout=60)
    bystander = await polling_client(running)
    flooder = await polling_client(running)
    canary = Canary(running.url)
    await canary.start()
    body = b"9\x1e" + tiny_packets(71_000)
    try:
        response = await http.post(f"{base(running)}&sid={flooder}", data=body)
        answer = (response.code, json.loads(await response.text()))
    finally:
        await canary.stop()
    assert answer == (400, {"code": 3, "message": "Bad request"})
    # Only the flooder's session closed (the canary's, after it, by its own disconnect).
    assert [(e.sid, e.reason, e.description) for e in events if isinstance(e, SessionClosed)][0] == (
        flooder, CloseReason.PARSE_ERROR, "unknown packet type '9'"
    )
    assert running.server.manager.get(flooder) is None
    assert running.server.manager.get(bystander) is not None
    response = await http.post(f"{base(running)}&sid={bystander}", data=b'421["ack","fine"]')
    assert (response.code, await response.text()) == (200, "ok")
    response = await http.get(f"{base(running)}&sid={bystander}")
    assert await response.text() == '431["got","fine"]'
    canary.check()
