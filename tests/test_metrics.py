"""Prometheus metrics: exact counts scraped during real conversations, and the totals behind them on a Clock."""

from __future__ import annotations

import json
from typing import Any

import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.web.resource import Resource

from tests.fakes import HANDSHAKE, FakeTransport
from tests.peers import http, until
from tests.servers import node_peer
from txrealtime.engineio import EngineIOOptions, SessionManager
from txrealtime.metrics import MetricsResource, RealtimeCollector, metrics_registry, mount_metrics
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio import AckTimeout, Server, Socket
from txrealtime.testing import TestServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def install(server: Server) -> None:
    @server.on("connection")
    def on_connection(socket: Socket) -> None:
        socket.on("echo", lambda word: word)

        @socket.on("ask")
        async def ask() -> str:
            try:
                await socket.timeout(0.2).emit_with_ack("question")
            except AckTimeout:
                return "timed out"
            return "answered"


async def start(realtime: Realtime) -> TestServer:
    root = Resource()

    def setup(server: Server) -> None:
        install(server)
        mount_metrics(root, server)

    return await realtime.start_server(setup, root=root)


async def scrape(running: TestServer) -> Samples:
    response = await http.get(running.url + "/metrics")
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type") == ["text/plain; version=0.0.4; charset=utf-8"]
    return parse(await response.text())


def frame(payload: str) -> int:
    """Bytes of an unmasked server frame carrying a short text payload."""
    assert len(payload) < 126
    return 2 + len(payload)


def server_packets(report: dict[str, Any], upgrades: list[str]) -> list[str]:
    """What the server sends in the conversation of metrics_client.js, Engine.IO packets as text."""
    opening = {"sid": report["sid"], "upgrades": upgrades, "pingInterval": 25000, "pingTimeout": 20000,
               "maxPayload": 1_000_000}
    return [
        "0" + json.dumps(opening, separators=(",", ":")),
        '40{"sid":"' + report["id"] + '"}',
        '430["one"]',
        '431["two"]',
        '432["three"]',
        '420["question"]',
        '433["timed out"]',
    ]


@pytest_twisted.ensureDeferred
async def test_websocket_conversation_counted_exactly(realtime: Realtime) -> None:
    running = await start(realtime)
    report = await node_peer("metrics_client.js", running.url, "websocket")
    assert report["acks"] == ["one", "two", "three", "timed out"]
    during = parse(report["metrics"])
    sent = server_packets(report, upgrades=[])
    # The client sent CONNECT, three echoes and the ask; the server the packets above.
    assert value(during, "txrealtime_engineio_packets_received_total") == 5
    assert value(during, "txrealtime_engineio_packets_sent_total") == len(sent)
    assert value(during, "txrealtime_engineio_sent_bytes_total", transport="websocket") == sum(map(frame, sent))
    client_frames = sum(6 + len(p) for p in ["40", '420["one"]', '421["two"]', '422["three"]', '423["ask"]'])
    # Everything read on the connection: the HTTP upgrade request, then the masked frames.
    assert value(during, "txrealtime_engineio_received_bytes_total", transport="websocket") > client_frames
    assert value(during, "txrealtime_engineio_received_bytes_total", transport="polling") == 0
    assert value(during, "txrealtime_engineio_sent_bytes_total", transport="polling") == 0
    assert value(during, "txrealtime_engineio_sessions", transport="websocket") == 1
    assert value(during, "txrealtime_engineio_sessions", transport="polling") == 0
    assert value(during, "txrealtime_engineio_sessions_opened_total", transport="websocket") == 1
    assert value(during, "txrealtime_socketio_sockets", namespace="/") == 1
    assert value(during, "txrealtime_socketio_clients") == 1
    assert value(during, "txrealtime_socketio_ack_timeouts_total", kind="socket") == 1
    assert value(during, "txrealtime_socketio_ack_timeouts_total", kind="broadcast") == 0
    assert value(during, "txrealtime_engineio_accepting") == 1
    assert not any(name == "txrealtime_engineio_sessions_closed_total" for name, _ in during)
    assert report["health"] == {
        "status": 200, "body": {"status": "ok", "accepting": True, "sessions": 1, "redis": None}
    }

    await until(lambda: not running.server.manager.sessions, "the session to close")
    after = await scrape(running)
    assert value(after, "txrealtime_engineio_packets_received_total") == 6  # and the DISCONNECT
    assert value(after, "txrealtime_engineio_sessions_closed_total", transport="websocket",
                 reason="transport close") == 1
    assert value(after, "txrealtime_engineio_sessions", transport="websocket") == 0
    assert value(after, "txrealtime_socketio_sockets", namespace="/") == 0
    # Process metrics come with the server's own registry.
    assert value(after, "process_open_fds") > 0


@pytest_twisted.ensureDeferred
async def test_upgrade_and_refusals_counted(realtime: Realtime) -> None:
    running = await start(realtime)
    for query, expected in [("EIO=3&transport=polling", 400), ("EIO=4&transport=polling&sid=nope", 400),
                            ("EIO=4&transport=carrier-pigeon", 400)]:
        response = await http.get(f"{running.url}/socket.io/?{query}")
        assert response.code == expected
        await response.text()
    report = await node_peer("metrics_client.js", running.url, "upgrade")
    assert report["transport"] == "websocket"
    during = parse(report["metrics"])
    assert value(during, "txrealtime_engineio_sessions_opened_total", transport="polling") == 1
    assert value(during, "txrealtime_engineio_sessions_opened_total", transport="websocket") == 0
    assert value(during, "txrealtime_engineio_upgrades_total", **{"from": "polling", "to": "websocket"}) == 1
    assert value(during, "txrealtime_engineio_sessions", transport="websocket") == 1
    # CONNECT over polling; the probe and UPGRADE; three echoes and the ask over the WebSocket.
    assert value(during, "txrealtime_engineio_packets_received_total") == 7
    assert value(during, "txrealtime_engineio_received_bytes_total", transport="polling") == len("40")
    opening, connect = server_packets(report, upgrades=["websocket"])[:2]
    # Both were answered to polls; NOOPs that release a poll during the upgrade come on top.
    assert value(during, "txrealtime_engineio_sent_bytes_total", transport="polling") >= len(opening) + len(connect)
    refused = {labels: v for (name, labels), v in during.items()
               if name == "txrealtime_engineio_requests_refused_total"}
    assert refused == {
        frozenset({("code", "0"), ("reason", "Transport unknown")}): 1,
        frozenset({("code", "1"), ("reason", "Session ID unknown")}): 1,
        frozenset({("code", "5"), ("reason", "Unsupported protocol version")}): 1,
    }


@pytest_twisted.ensureDeferred
async def test_openmetrics_when_asked(realtime: Realtime) -> None:
    running = await start(realtime)
    accept: dict[bytes | str, bytes | str] = {"accept": "application/openmetrics-text"}
    response = await http.get(running.url + "/metrics", headers=accept)
    text = await response.text()
    assert response.headers.getRawHeaders("content-type")[0].startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")
    assert "txrealtime_engineio_sessions_opened_total" in text


def collect(manager: SessionManager) -> Samples:
    """What a scrape of ``manager`` alone (bare Engine.IO) would show, without process metrics."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in RealtimeCollector(manager).collect()
        for sample in family.samples
    }


def test_close_reasons_and_buffer_high_water_on_a_clock() -> None:
    clock = Clock()
    options = EngineIOOptions(max_payload=10, max_buffer=10, ping_interval=5, ping_timeout=2)
    manager = SessionManager(options, reactor=clock)
    stalled = manager.open_session(FakeTransport("polling", writable=False), HANDSHAKE)
    assert stalled.send("12345") and stalled.send("1234")
    assert not stalled.send("12")  # 9 + 2 > 10 and the client does not read: cut
    quiet = manager.open_session(FakeTransport("websocket"), HANDSHAKE)
    assert quiet.send("abc")
    clock.advance(5)  # ping
    clock.advance(2)  # no pong
    assert manager.accepting
    manager.shutdown()
    samples = collect(manager)
    assert value(samples, "txrealtime_engineio_sessions_closed_total", transport="polling",
                 reason="transport error") == 1
    assert value(samples, "txrealtime_engineio_sessions_closed_total", transport="websocket",
                 reason="ping timeout") == 1
    assert value(samples, "txrealtime_engineio_outgoing_buffer_high_water_bytes") == 9
    assert value(samples, "txrealtime_engineio_max_buffer_bytes") == 10
    # OPEN twice (the stalled one never written), "abc", the ping.
    assert value(samples, "txrealtime_engineio_packets_sent_total") == 3
    assert value(samples, "txrealtime_engineio_accepting") == 0
    # Bare Engine.IO: no Socket.IO or Redis families.
    assert not any(name.startswith(("txrealtime_socketio", "txrealtime_redis")) for name, _ in samples)


def test_registries_do_not_collide() -> None:
    first, second = Server(reactor=Clock()), Server(reactor=Clock())
    one, two = MetricsResource(first), MetricsResource(second)
    assert one.registry is not two.registry
    shared = metrics_registry(first, process=False)
    names = {family.name for family in shared.collect()}
    assert "txrealtime_engineio_sessions" in names and "process_open_fds" not in names
