"""Node's official socket.io-client against a real txrealtime Socket.IO server on loopback."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from tests.servers import SocketIOServer, node_peer

MODES = ["polling", "websocket", "upgrade"]


async def run(server: SocketIOServer, scenario: str, mode: str) -> dict[str, Any]:
    report: dict[str, Any] = await node_peer("sio_client.js", server.url, scenario, mode)
    assert report.get("error") is None, report["error"]
    return report


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.ensureDeferred
async def test_emit_ack_binary_both_ways(sio_server: SocketIOServer, mode: str) -> None:
    report = await run(sio_server, "basic", mode)
    assert report["echo"] == ["hello", {"binary": [1, 2, 3]}, {"nested": [{"binary": [4]}], "n": 1.5}]
    assert report["ack"] == ["got", 1, "two", {"binary": [5]}]
    # The server asked with emit_with_ack; the client answered with two values, one binary.
    assert report["answer"] == [[42, {"binary": [9]}]]
    assert sio_server.record.answers == [(42, b"\x09")]
    assert report["afterFail"] == ["got", "still here"]
    assert report["transport"] == ("polling" if mode == "polling" else "websocket")
    assert report["disconnect"][0] == "io client disconnect"
    assert ("/", report["id"]) in sio_server.record.connected
    assert ("/", "client namespace disconnect") in sio_server.record.disconnects


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.ensureDeferred
async def test_namespaces_and_middleware(sio_server: SocketIOServer, mode: str) -> None:
    report = await run(sio_server, "namespaces", mode)
    assert report["sameEngine"] is True
    assert report["custom"] == ["got", "custom"]
    assert report["dyn"] == ["got", "dyn"]
    assert report["admin"] == ["got", "admin"]
    assert report["invalid"] == {"message": "Invalid namespace", "data": None}
    assert report["rejected"] == {"message": "not authorized", "data": {"code": 401}}
    assert report["stillAlive"] == ["got", "alive"]
    assert {"token": "s3cret"} in sio_server.record.auth and {"token": "wrong"} in sio_server.record.auth
    names = {name for name, _ in sio_server.record.connected}
    assert names == {"/custom", "/dyn-42", "/admin"}
    assert "/dyn-42" in sio_server.server.namespaces


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_rooms_and_broadcast(sio_server: SocketIOServer, mode: str) -> None:
    report = await run(sio_server, "rooms", mode)
    assert report["aRooms"] == [["r1"]] and report["bRooms"] == [["r1"]]
    seen = report["seen"]
    assert seen["a"] == [["room message", "r1", "hi room"]]
    assert seen["b"] == [["room message", "r1", "hi room"], ["broadcast", "hi all"]]
    assert seen["c"] == [["broadcast", "hi all"]]


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_server_side_disconnect(sio_server: SocketIOServer, mode: str) -> None:
    report = await run(sio_server, "serverDisconnect", mode)
    assert report["disconnect"][0] == "io server disconnect"
    assert sio_server.record.disconnects == [("/", "server namespace disconnect")]
