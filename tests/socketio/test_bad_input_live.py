"""Broken Socket.IO packets over real loopback TCP: the offender is closed, everyone else carries on."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.web.client import Agent, HTTPConnectionPool

from tests.conftest import SocketIOServer, node_peer

# Connections are not kept alive, so no test leaves one open behind it.
http = treq.client.HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))


class PollingPeer:
    """A hand-driven Engine.IO polling session speaking raw Socket.IO text."""

    def __init__(self, server: SocketIOServer) -> None:
        self.base = f"{server.url}/socket.io/?EIO=4&transport=polling"
        self.sid = ""

    async def open(self) -> None:
        body = await (await http.get(self.base)).text()
        self.sid = json.loads(body[1:])["sid"]
        await self.post("40")
        assert (await self.get()).startswith('40{"sid":')

    async def post(self, payload: str) -> None:
        response = await http.post(f"{self.base}&sid={self.sid}", data=payload.encode())
        assert await response.text() == "ok"

    async def get(self) -> str:
        return str(await (await http.get(f"{self.base}&sid={self.sid}")).text())


@pytest.mark.parametrize(
    "garbage",
    ['42["unterminated', "49", "42[]", '42{"not":"an array"}', '451-["x",{"_placeholder":true,"num":0}]\x1e42["y"]'],
)
@pytest_twisted.ensureDeferred
async def test_offender_closed_others_unharmed(sio_server: SocketIOServer, garbage: str) -> None:
    bystander, offender = PollingPeer(sio_server), PollingPeer(sio_server)
    await bystander.open()
    await offender.open()
    await offender.post(garbage)
    assert await offender.get() == "1"  # the Engine.IO CLOSE packet
    assert sio_server.record.disconnects == [("/", "parse error")]

    pending = bystander.get()
    await bystander.post('421["ack","still here"]')
    assert await pending == '431["got","still here"]'
    sio_server.server.emit("news", 1)
    assert await bystander.get() == '42["news",1]'
    report = await node_peer("sio_client.js", sio_server.url, "serverDisconnect", "websocket")
    assert report["disconnect"][0] == "io server disconnect"
