"""The official Engine.IO clients against a real txrealtime server on loopback."""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.servers import EchoServer, node_peer, python_peer
from txrealtime.engineio import SessionOpened, SessionUpgraded

ECHOED = ["hello", {"binary": [1, 2, 3]}]


@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
@pytest_twisted.ensureDeferred
async def test_node_engineio_client(echo_server: EchoServer, mode: str) -> None:
    report = await node_peer("eio_client.js", echo_server.url, mode)
    assert report.get("error") is None
    if mode == "upgrade":
        assert report["openTransport"] == "polling"
        assert report["upgradedTo"] == "websocket"
        assert report["messages"] == [*ECHOED, "after upgrade"]
        assert [(e.from_transport, e.to_transport) for e in echo_server.of_type(SessionUpgraded)] == [
            ("polling", "websocket")
        ]
    else:
        assert report["openTransport"] == mode
        assert report["messages"] == ECHOED
        assert echo_server.of_type(SessionUpgraded) == []
    assert report["finalTransport"] == ("polling" if mode == "polling" else "websocket")
    assert report["closeReason"] == "forced close"
    assert [e.transport for e in echo_server.of_type(SessionOpened)] == [
        "websocket" if mode == "websocket" else "polling"
    ]


@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
@pytest_twisted.ensureDeferred
async def test_python_engineio_client(echo_server: EchoServer, mode: str) -> None:
    report = await python_peer("eio_client.py", echo_server.url, mode)
    assert report["complete"] is True
    assert report["messages"] == ECHOED
    assert report["finalTransport"] == ("polling" if mode == "polling" else "websocket")
    assert len(echo_server.of_type(SessionUpgraded)) == (1 if mode == "upgrade" else 0)
