"""The Engine.IO client notices a server that stopped sending heartbeats."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest_twisted
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from txrealtime.client import Manager


class SilentServer(WebSocketServerProtocol):
    """Opens an Engine.IO session promising heartbeats every 0.2 s, accepts the namespace, then goes quiet."""

    def onOpen(self) -> None:
        info = {"sid": "silent", "upgrades": [], "pingInterval": 200, "pingTimeout": 200, "maxPayload": 1000}
        self.sendMessage(("0" + json.dumps(info)).encode())

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if payload == b"40":
            self.sendMessage(b'40{"sid":"socket"}')


@pytest_twisted.ensureDeferred
async def test_dead_server_detected_by_ping_timeout() -> None:
    factory = WebSocketServerFactory()
    factory.protocol = SilentServer
    port = cast(Any, reactor).listenTCP(0, factory, interface="127.0.0.1")
    manager = Manager(f"http://127.0.0.1:{port.getHost().port}", transports=["websocket"], reconnection=False)
    try:
        socket = await manager.socket("/").connect()
        reasons: Deferred[Any] = Deferred()
        socket.on("disconnect", reasons.callback)
        assert await reasons == "ping timeout"
        assert manager.engine is None and not socket.connected
    finally:
        await manager.close()
        await port.stopListening()
