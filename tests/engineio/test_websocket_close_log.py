"""The close code a session's log line names is the one the server sent, not the client's reply."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
import pytest_twisted
import websocket
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from txrealtime.engineio import CloseReason, EngineIOOptions, EngineIOResource, SessionClosed, SessionManager


class Endpoint:
    def __init__(self) -> None:
        self.manager = SessionManager(EngineIOOptions(max_payload=100))
        root = Resource()
        root.putChild(b"engine.io", cast(IResource, EngineIOResource(self.manager)))
        self.port: Any = cast(Any, reactor).listenTCP(0, Site(root), interface="127.0.0.1")
        self.url = f"ws://127.0.0.1:{self.port.getHost().port}/engine.io/?EIO=4&transport=websocket"
        self.closed: Deferred[SessionClosed] = Deferred()
        self.manager.subscribe(self.on_event)
        self.log: list[str] = []

    def on_event(self, event: Any) -> None:
        if isinstance(event, SessionClosed) and not self.closed.called:
            self.closed.callback(event)

    def observe(self, event: dict[str, Any]) -> None:
        text = formatEvent(event)
        if "closed" in text:
            self.log.append(text)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    observer = cast(ILogObserver, server.observe)
    globalLogPublisher.addObserver(observer)
    yield server
    globalLogPublisher.removeObserver(observer)
    server.manager.shutdown()
    pytest_twisted.blockon(server.port.stopListening())


def oversize_message(url: str) -> int:
    """Send a message over the limit; return the close code the server sends (the client replies 1000)."""
    ws = websocket.create_connection(url, timeout=30)
    try:
        ws.recv()  # OPEN
        ws.send("4" + "x" * 1000)
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big")
    finally:
        ws.close()  # status 1000


def client_goes_away(url: str) -> None:
    ws = websocket.create_connection(url, timeout=30)
    ws.recv()
    ws.close(status=1001)


@pytest_twisted.ensureDeferred
async def test_oversize_message_logs_1009(endpoint: Endpoint) -> None:
    sent = await threads.deferToThread(oversize_message, endpoint.url)
    closed = await endpoint.closed
    assert sent == 1009
    assert closed.reason is CloseReason.TRANSPORT_ERROR
    assert closed.description.startswith("websocket closed (1009: "), closed.description
    assert "exceeds payload limit of 100" in closed.description
    [line] = [line for line in endpoint.log if closed.sid in line]
    assert "websocket closed (1009: " in line


@pytest_twisted.ensureDeferred
async def test_client_close_logs_the_clients_code(endpoint: Endpoint) -> None:
    await threads.deferToThread(client_goes_away, endpoint.url)
    closed = await endpoint.closed
    assert closed.reason is CloseReason.TRANSPORT_CLOSE
    assert closed.description.startswith("websocket closed (1001: "), closed.description
