"""TLS through endpoint strings, graceful shutdown of twistd, and logs that never carry secrets."""

from __future__ import annotations

import signal
import urllib.request
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import threads
from twisted.logger import ILogObserver, globalLogPublisher

from tests.servers import Twistd, node_peer
from tests.socketio.app import install
from tests.tls import self_signed
from txrealtime import set_log_level
from txrealtime.client import ConnectError, Manager
from txrealtime.pytest_plugin import Realtime


@pytest_twisted.ensureDeferred
async def test_tls_endpoint_with_the_official_client(tmp_path: Path) -> None:
    key, cert = self_signed(tmp_path)
    listen = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    server = Twistd("--app", "examples.chat.app:setup", "--shutdown-grace", "1", listen=listen, scheme="https")
    try:
        for mode in ("polling", "websocket"):
            report = await node_peer("tls_client.js", server.url, str(cert), mode)
            assert report.get("error") is None, report
            assert report["transport"] == mode and report["secure"] is True
            assert report["joined"]["ok"] is True
    finally:
        await threads.deferToThread(server.stop)


@pytest_twisted.ensureDeferred
async def test_sigterm_closes_every_client_then_stops() -> None:
    server = Twistd("--app", "examples.chat.app:setup", "--shutdown-grace", "20", "--ping-interval", "60")
    managers = [Manager(server.url, transports=["polling"], reconnection=False),
                Manager(server.url, transports=["websocket"], reconnection=False)]
    reasons: list[str] = []
    try:
        sockets = [await m.socket("/").connect() for m in managers]
        for s in sockets:
            s.on("disconnect", reasons.append)
            assert (await s.emit_with_ack("join", "u", timeout=10))["ok"] is True
        code = await threads.deferToThread(server.stop)
    finally:
        for m in managers:
            await m.close()
    # Every client got its close within the grace period: a clean stop, exit status 0.
    assert code == 0
    log = "".join(server.log)
    assert "Open files limit" in log  # raised (or already at the hard limit) at start-up
    assert "Shutting down: closing 2 sessions" in log
    assert "Shutdown clean" in log
    # Both clients were told: the server's CLOSE packet, not a dropped connection or a timeout.
    assert sorted(reasons) == ["transport close", "transport close"]


def test_sigterm_after_the_grace_period_keeps_the_signal() -> None:
    server = Twistd("--app", "examples.chat.app:setup", "--shutdown-grace", "0.5")
    # A polling session whose client never polls again cannot collect its close.
    with urllib.request.urlopen(server.url + "/socket.io/?EIO=4&transport=polling") as response:
        assert response.read().startswith(b"0{")
    code = server.stop()
    assert "Shutdown after grace period" in "".join(server.log)
    assert code == -signal.SIGTERM


@pytest_twisted.ensureDeferred
async def test_logs_carry_ids_and_reasons_but_never_auth(realtime: Realtime) -> None:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(cast(ILogObserver, events.append))
    set_log_level("debug")  # joins and departures are debug lines
    try:
        running = await realtime.start_server(install)
        with pytest.raises(ConnectError):
            await running.client("/admin", auth={"token": "wrong-secret-0451"})
        manager = Manager(running.url, reconnection=False)
        custom = await manager.socket("/custom").connect()
        admin = await manager.socket("/admin", auth={"token": "s3cret"}).connect()
        assert await admin.emit_with_ack("ack", timeout=10) == "got"
        admin.disconnect()
        # In order on one connection: once this is answered, the server has seen the DISCONNECT.
        assert await custom.emit_with_ack("ack", timeout=10) == "got"
        await manager.close()
        await running.stop()
    finally:
        set_log_level("info")
        globalLogPublisher.removeObserver(cast(ILogObserver, events.append))
    text = repr(events)
    assert "wrong-secret-0451" not in text and "s3cret" not in text
    joined = [e for e in events if str(e.get("log_format")).startswith("Socket {sid} joined {namespace}")]
    assert {e["namespace"] for e in joined} >= {"/custom", "/admin"}
    left = [e for e in events if e.get("log_format") == "Socket {sid} left {namespace}: {reason}"]
    assert {"client namespace disconnect"} <= {e["reason"] for e in left}
    closed = [e for e in events if e.get("log_format") == "Session {sid} closed: {reason} ({description})"]
    assert closed and all(e["sid"] and e["reason"] for e in closed)
    refusals = [e for e in events if "refused in" in str(e.get("log_format"))]
    assert [e["message"] for e in refusals] == ["not authorized"]
