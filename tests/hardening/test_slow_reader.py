"""A WebSocket client that stops reading while the server broadcasts megabytes is cut off; memory stays bounded."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.task import deferLater

from tests.peers import open_and_stop_reading
from tests.socketio.app import install
from txrealtime.client import Manager
from txrealtime.client.engineio import EngineIOClient
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionClosed, SessionEvent
from txrealtime.pytest_plugin import Realtime


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
        manager = healthy.io
        assert isinstance(manager, Manager) and isinstance(manager.engine, EngineIOClient)
        healthy_sid = manager.engine.sid
        slow_session = next(s for s in running.server.manager if s.sid != healthy_sid)

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


