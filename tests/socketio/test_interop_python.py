"""python-socketio's client against a real txrealtime Socket.IO server on loopback."""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.servers import SocketIOServer, python_peer


@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
@pytest_twisted.ensureDeferred
async def test_python_socketio_client(sio_server: SocketIOServer, mode: str) -> None:
    report = await python_peer("sio_client.py", sio_server.url, mode)
    assert report.get("error") is None, report["error"]
    assert report["namespaces"] == ["/", "/admin", "/custom"]
    assert report["echo"] == ["echo", ["hello", {"binary": [1, 2, 3]}, {"nested": [{"binary": [4]}]}]]
    assert report["ack"] == ["got", 1, {"binary": [5]}]
    assert report["answer"] == ["answer", [42, {"binary": [9]}]]
    assert sio_server.record.answers == [(42, b"\x09")]
    assert report["default"] == ["got", "default"]
    assert report["transport"] == ("polling" if mode == "polling" else "websocket")
    # python-socketio reports the refused namespace, not the server's message ("Invalid namespace").
    assert report["invalid"] == "One or more namespaces failed to connect: /nope"
    assert {"token": "s3cret"} in sio_server.record.auth
