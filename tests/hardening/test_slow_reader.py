"""A WebSocket client that stops reading while the server broadcasts megabytes is cut off; memory stays bounded."""

from __future__ import annotations

import base64
import os
import socket

import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.task import deferLater

from tests.socketio.app import install
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionClosed, SessionEvent
from txrealtime.pytest_plugin import Realtime


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81, 0x80 | len(payload)])  # FIN + text; masked, short length
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def open_and_stop_reading(port: int) -> socket.socket:
    """A raw WebSocket: handshake, join the default namespace, then never read again."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: leave every frame after the headers unread
    assert head.startswith(b"HTTP/1.1 101"), head
    sock.sendall(masked_text_frame("40"))
    return sock


@pytest_twisted.ensureDeferred
async def test_slow_reader_is_dropped_and_memory_stays_bounded(realtime: Realtime) -> None:
    limit = 1_000_000
    running = await realtime.start_server(
        install, options=EngineIOOptions(max_payload=200_000, max_buffer=limit, ping_interval=60, ping_timeout=60)
    )
    events: list[SessionEvent] = []
    running.server.manager.subscribe(events.append)
    healthy = await realtime.connect(running, transports=["websocket"])
    received: list[int] = []
    healthy.on("blob", lambda n, data: received.append(n))

    slow = await threads.deferToThread(open_and_stop_reading, running.port.getHost().port)
    try:
        for _ in range(500):
            if len(running.server.sockets.sockets) == 2:
                break
            await deferLater(reactor, 0.01, lambda: None)
        slow_session = next(s for s in running.server.manager if s.sid != healthy.io.engine.sid)  # type: ignore[union-attr]

        blob = b"\xab" * 100_000
        rounds = 300  # 30 MB in all: far more than socket buffers hold
        peak = 0
        for n in range(rounds):
            running.server.emit("blob", n, blob)
            peak = max(peak, slow_session.buffered_bytes)
            await deferLater(reactor, 0, lambda: None)
            if slow_session.closed:
                break
        assert slow_session.closed, "the slow reader was never cut off"
        assert peak <= limit
        [closed] = [e for e in events if isinstance(e, SessionClosed) and e.sid == slow_session.sid]
        assert closed.reason is CloseReason.TRANSPORT_ERROR
        assert "client not reading" in closed.description

        # The healthy client, reading all along, got every broadcast, in order.
        sent = n + 1
        for _ in range(3000):
            if len(received) == sent:
                break
            await deferLater(reactor, 0.01, lambda: None)
        assert received == list(range(sent))
        assert await healthy.emit_with_ack("ack", "ok", timeout=10) == ("got", "ok")
    finally:
        slow.close()


