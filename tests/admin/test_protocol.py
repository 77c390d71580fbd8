"""The admin UI's protocol, spoken by Node's socket.io-client (tests/interop/admin_client.js) to an
instrumented txrealtime server on loopback."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import bcrypt
import pytest_twisted

from tests.admin.app import setup
from tests.servers import node_peer
from txrealtime.admin import Instrumentation, instrument
from txrealtime.pytest_plugin import Realtime
from txrealtime.testing import TestServer

USER, PASSWORD = "admin", "s3cret pass"
ALL = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"]
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def run(server: TestServer, scenario: str) -> dict[str, Any]:
    report: dict[str, Any] = await node_peer("admin_client.js", server.url, scenario, USER, PASSWORD)
    assert report.get("error") is None, report["error"]
    return report


async def instrumented(realtime: Realtime, **options: Any) -> AsyncIterator[tuple[TestServer, Instrumentation]]:
    running = await realtime.start_server(setup)
    instrumentation = instrument(running.server, **{"auth": (USER, PASSWORD), **options})
    yield running, instrumentation
    instrumentation.close()


@pytest_twisted.ensureDeferred
async def test_login_session_config_all_sockets_and_stats(realtime: Realtime) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    async for running, _ in instrumented(realtime, auth={"type": "basic", "username": USER, "password": hashed}):
        report = await run(running, "login")
    assert report["wrongPassword"] == report["wrongUser"] == report["noAuth"] == "invalid credentials"
    assert report["badSession"] == "invalid credentials"
    # As in Node, its own room comes first (before CONNECT, even); then the session id, after CONNECT.
    assert report["firstEvents"] == ["room_joined", "socket_connected", "session"]
    assert re.fullmatch(r"[0-9a-f]{32}", report["session"])
    assert report["config"] == {"supportedFeatures": ALL}
    (me,) = [s for s in report["allSockets"] if s["id"] == report["adminId"]]
    assert me["nsp"] == "/admin" and me["transport"] == "websocket" and me["rooms"] == [report["adminId"]]
    assert me["data"] == {} and len(me["clientId"]) == 12
    handshake = me["handshake"]
    assert sorted(handshake) == ["address", "headers", "issued", "query", "secure", "time", "url", "xdomain"]
    assert handshake["address"] == "127.0.0.1" and handshake["secure"] is False
    assert "auth" not in handshake  # the password never goes to the UI
    stats = report["stats"]
    assert stats["serverId"] == f"{socket.gethostname()}#{os.getpid()}"
    assert (stats["hostname"], stats["pid"]) == (socket.gethostname(), os.getpid())
    assert stats["clientsCount"] >= 1 and stats["pollingClientsCount"] >= 0 and stats["uptime"] >= 0
    assert {"name": "/admin", "socketsCount": 1} in stats["namespaces"]
    assert {"name": "/", "socketsCount": 0} in stats["namespaces"]
    # The UI back with its session id: no login, no new session id.
    assert report["againEvents"] == ["config", "all_sockets"]


@pytest_twisted.ensureDeferred
async def test_socket_room_and_event_notifications(realtime: Realtime) -> None:
    async for running, _ in instrumented(realtime):
        report = await run(running, "events")
    sid = report["clientId"]
    serialized, when = report["connected"]
    assert ISO.fullmatch(when)
    assert serialized["id"] == sid and serialized["nsp"] == "/" and serialized["transport"] == "polling"
    assert serialized["rooms"] == [sid] and serialized["data"] == {}
    assert serialized["handshake"]["query"]["EIO"] == "4"
    assert report["updated"] == [{"id": sid, "nsp": "/", "transport": "websocket"}]
    assert report["dataUpdated"] == [{"id": sid, "nsp": "/", "data": {"name": "bob"}}]
    assert report["received"][:3] == ["/", sid, ["echo", "hi", 1]]
    assert report["sent"][:3] == ["/", sid, ["echoed", "hi", 1]]
    assert report["joinAck"] == sorted([sid, "room1"])
    assert report["joined"][:3] == ["/", "room1", sid]
    assert report["left"][:3] == ["/", "room1", sid]
    assert report["disconnected"][:3] == ["/", sid, "client namespace disconnect"]
    assert report["order"] == ["socket_disconnected", "room_left"]  # as Node: room_left on the next turn
    stats = report["stats"]
    assert stats["clientsCount"] == 2
    types = {e["type"] for e in stats["aggregatedEvents"]}
    assert {"rawConnection", "packetsIn", "packetsOut", "bytesIn", "bytesOut"} <= types
    for event in stats["aggregatedEvents"]:
        assert event["timestamp"] % 1000 == 0 and event["count"] > 0
    (closed,) = [e for e in report["lastStats"]["aggregatedEvents"] if e["type"] == "rawDisconnection"]
    assert closed["subType"] == "transport close" and closed["count"] == 1


@pytest_twisted.ensureDeferred
async def test_commands_emit_join_leave_disconnect(realtime: Realtime) -> None:
    async for running, _ in instrumented(realtime):
        report = await run(running, "commands")
    assert report["news"] == [{"a": 1}, [2]]
    assert report["joined"][1] == "r2"
    assert "r2" in report["roomsAfterJoin"]
    assert report["roomNews"] == ["for r2"]
    assert report["left"][1] == "r2"
    assert "everyone" in report["roomsAfterMjoin"] and "r2" not in report["roomsAfterMjoin"]
    assert report["disconnectReason"] == "io server disconnect"
    assert report["closeReasons"] == ["io server disconnect", "io server disconnect"]
    assert len(running.server.namespaces["/"].sockets) == 0


@pytest_twisted.ensureDeferred
async def test_read_only_refuses_commands(realtime: Realtime) -> None:
    async for running, _ in instrumented(realtime, read_only=True):
        report = await run(running, "readonly")
    assert report["config"] == {"supportedFeatures": ["AGGREGATED_EVENTS", "ALL_EVENTS"]}
    assert report["probe"] is True
    assert report["news"] == 0
    assert report["connected"] is True and report["lost"] is None
    assert len(report["rooms"]) == 1  # its own room only: no join


@pytest_twisted.ensureDeferred
async def test_production_mode_sends_stats_only(realtime: Realtime) -> None:
    async for running, _ in instrumented(realtime, mode="production"):
        report = await run(running, "production")
    assert report["config"] == {"supportedFeatures": ALL[:-1]}
    assert report["events"] == ["config", "server_stats", "session"]
    assert report["probe"] is True
    assert {"name": "/", "socketsCount": 1} in report["stats"]["namespaces"]


@pytest_twisted.ensureDeferred
async def test_no_auth(realtime: Realtime) -> None:
    async for running, _ in instrumented(realtime, auth=False, mode="production", read_only=True):
        report = await run(running, "production")
    assert report["config"] == {"supportedFeatures": ["AGGREGATED_EVENTS"]}
    assert report["events"] == ["config", "server_stats"]  # no login, so no session id
