"""Broken Socket.IO packets over real loopback TCP: the offender is closed, everyone else carries on."""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.peers import PollingPeer
from tests.servers import SocketIOServer, node_peer


@pytest.mark.parametrize(
    "garbage",
    ['42["unterminated', "49", "42[]", '42{"not":"an array"}', '451-["x",{"_placeholder":true,"num":0}]\x1e42["y"]'],
)
@pytest_twisted.ensureDeferred
async def test_offender_closed_others_unharmed(sio_server: SocketIOServer, garbage: str) -> None:
    bystander, offender = PollingPeer(sio_server.url), PollingPeer(sio_server.url)
    await bystander.open()
    await offender.open()
    assert await offender.post(garbage) == "ok"
    assert await offender.get() == "1"  # the Engine.IO CLOSE packet
    assert sio_server.record.disconnects == [("/", "parse error")]

    pending = bystander.get()
    assert await bystander.post('421["ack","still here"]') == "ok"
    assert await pending == '431["got","still here"]'
    sio_server.server.emit("news", 1)
    assert await bystander.get() == '42["news",1]'
    report = await node_peer("sio_client.js", sio_server.url, "serverDisconnect", "websocket")
    assert report["disconnect"][0] == "io server disconnect"
