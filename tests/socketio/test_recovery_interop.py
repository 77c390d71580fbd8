"""Connection state recovery with real clients: Node's socket.io-client and the Twisted client.

The Node scenarios run against txrealtime and, to prove the tests, against Node's own server: the main
one passes on both; at the edges (recovery_edges.js) txrealtime does better than Node, and the tests
pin down both behaviours.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from tests.peers import until
from tests.servers import NodeServer, node_peer
from tests.socketio.app import install
from txrealtime.engineio import CloseReason
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio.recovery import StateRecovery

MODES = ["polling", "websocket", "upgrade"]


def check_recovered(report: dict[str, Any]) -> None:
    assert report.get("error") is None, report["error"]
    assert report["firstRecovered"] is False
    assert report["recovered"] is True
    assert report["secondId"] == report["firstId"]
    assert report["messages"] == [["r", "before"], ["r", "missed 1"], ["r", "missed 2"], ["r", "after"]]
    assert report["offsets"] == ["string"] * 4
    assert report["rooms"] == [["other", "r"]]


def check_fresh(report: dict[str, Any]) -> None:
    assert report.get("error") is None, report["error"]
    assert report["recovered"] is False
    assert report["secondId"] != report["firstId"]
    assert report["messages"] == [["r", "before"], ["r", "after"]]
    assert report["rooms"] == [["other", "r"]]


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.ensureDeferred
async def test_node_client_recovers_its_socket(realtime: Realtime, mode: str) -> None:
    running = await realtime.start_server(install, connection_state_recovery=StateRecovery())
    check_recovered(await node_peer("recovery_client.js", running.url, mode, "0"))


@pytest_twisted.ensureDeferred
async def test_node_client_away_too_long_gets_a_fresh_socket(realtime: Realtime) -> None:
    running = await realtime.start_server(
        install, connection_state_recovery=StateRecovery(max_disconnection_duration=0.2)
    )
    check_fresh(await node_peer("recovery_client.js", running.url, "websocket", "600"))


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_the_scenario_holds_against_node_server(mode: str) -> None:
    server = NodeServer(recovery_ms=120_000)
    try:
        check_recovered(await node_peer("recovery_client.js", server.url, mode, "0"))
    finally:
        server.kill()
    server = NodeServer(recovery_ms=200)
    try:
        check_fresh(await node_peer("recovery_client.js", server.url, "websocket", "600"))
    finally:
        server.kill()


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
@pytest_twisted.ensureDeferred
async def test_twisted_client_recovers_its_socket(realtime: Realtime, transports: list[str]) -> None:
    running = await realtime.start_server(install, connection_state_recovery=StateRecovery())
    client = await realtime.connect(
        running, transports=transports, reconnection=True, reconnection_delay=0.3, randomization_factor=0
    )
    seen: list[list[Any]] = []
    client.on("room message", lambda *args: seen.append(list(args)))
    assert await client.emit_with_ack("join", "r", timeout=10) == ["r"]
    first_id = client.id
    running.server.to("r").emit("room message", "r", "before")
    await until(lambda: len(seen) == 1, "the first message")
    for session in list(running.server.manager):
        session.close(CloseReason.TRANSPORT_CLOSE)
    running.server.to("r").emit("room message", "r", "missed")
    await until(lambda: client.connected and len(seen) == 2, "the reconnection with the missed message")
    assert client.recovered and client.id == first_id
    running.server.to("r").emit("room message", "r", "after")
    await until(lambda: len(seen) == 3, "the message after")
    # The offsets served to recover, and stay out of the handlers.
    assert seen == [["r", "before"], ["r", "missed"], ["r", "after"]]
    assert await client.emit_with_ack("join", "other", timeout=10) == ["other", "r"]


EDGES = {
    # scenario: (txrealtime's report, Node's report)
    "late-join": (
        {"recovered": True, "messages": [["a", "hello"], ["b", "missed"], ["b", "after"]]},
        # Node replays what was sent to "b" before the client joined it.
        {"recovered": True, "messages": [["a", "hello"], ["b", "before the join"], ["b", "missed"], ["b", "after"]]},
    ),
    "volatile": (
        {"recovered": True, "messages": [["a", "hello"], ["a", "status"], ["a", "missed"], ["a", "after"]]},
        # Node's volatile event carries no offset: the client takes "status" for one, and cannot recover.
        {"recovered": False, "messages": [["a", "hello"], ["a", "status"], ["a", "after"]]},
    ),
    "no-offset": (
        {"recovered": True, "messages": [["a", "missed"], ["a", "after"]]},
        # Node needs an offset: a client that got no event since it connected cannot recover.
        {"recovered": False, "messages": [["a", "after"]]},
    ),
}


# Over polling a volatile event is dropped when no GET is waiting, as volatile events may be.
@pytest.mark.parametrize(("scenario", "mode"), [(s, m) for s in sorted(EDGES) for m in ("polling", "websocket")
                                                if (s, m) != ("volatile", "polling")])
@pytest_twisted.ensureDeferred
async def test_node_client_at_the_edges(realtime: Realtime, scenario: str, mode: str) -> None:
    running = await realtime.start_server(install, connection_state_recovery=StateRecovery())
    report = await node_peer("recovery_edges.js", running.url, mode, scenario)
    assert report.get("error") is None, report["error"]
    assert {k: report[k] for k in ("recovered", "messages")} == EDGES[scenario][0]


@pytest.mark.parametrize("scenario", sorted(EDGES))
@pytest_twisted.ensureDeferred
async def test_the_edges_against_node_server(scenario: str) -> None:
    server = NodeServer(recovery_ms=120_000)
    try:
        report = await node_peer("recovery_edges.js", server.url, "websocket", scenario)
    finally:
        server.kill()
    assert report.get("error") is None, report["error"]
    assert {k: report[k] for k in ("recovered", "messages")} == EDGES[scenario][1]
