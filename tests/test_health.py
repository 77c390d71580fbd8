"""/healthz and the twistd metrics options: running, draining on SIGTERM, Redis up and down."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.python import usage
from twisted.web.resource import Resource

from tests.peers import http, until
from tests.servers import RedisServer, Twistd, free_port
from txrealtime.adapters.redis import RedisLink, redis_adapter
from txrealtime.metrics import mount_metrics
from txrealtime.pytest_plugin import Realtime
from txrealtime.service import Options
from txrealtime.socketio import Server
from txrealtime.testing import TestServer

WAIT = 20.0


def get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def gauge(text: bytes, name: str) -> float:
    """The value of an unlabelled sample in a Prometheus text scrape."""
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the scrape")


def test_healthz_running_then_draining_on_sigterm() -> None:
    server = Twistd("--metrics", "--shutdown-grace", "5")
    try:
        status, body = get(server.url + "/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok", "accepting": True, "sessions": 0, "redis": None})
        # A polling session that never polls again: its CLOSE packet waits, so the node drains for the grace period.
        status, opened = get(server.url + "/socket.io/?EIO=4&transport=polling")
        assert status == 200 and opened.startswith(b"0{")
        server.process.terminate()
        answers = []
        for _ in range(200):
            status, body = get(server.url + "/healthz")
            answers.append((status, json.loads(body)))
            if status == 503:
                break
        assert answers[-1] == (503, {"status": "draining", "accepting": False, "sessions": 0, "redis": None})
        status, metrics = get(server.url + "/metrics")
        assert status == 200 and gauge(metrics, "txrealtime_engineio_accepting") == 0
        # New sessions are refused meanwhile, and counted.
        assert get(server.url + "/socket.io/?EIO=4&transport=polling")[0] == 403
        status, metrics = get(server.url + "/metrics")
        assert 'txrealtime_engineio_requests_refused_total{code="4",reason="Forbidden"} 1.0' in metrics.decode()
    finally:
        server.stop()


def test_metrics_listen_serves_on_its_own_port() -> None:
    port = free_port()
    server = Twistd("--metrics-listen", f"tcp:{port}:interface=127.0.0.1", "--shutdown-grace", "1")
    try:
        assert get(server.url + "/metrics")[0] == 404
        assert get(server.url + "/healthz")[0] == 404
        status, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and gauge(metrics, "txrealtime_engineio_accepting") == 1
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
    finally:
        assert server.stop() == 0


def test_metrics_options_in_help_and_checked() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "twistd"), "txrealtime", "--help"], capture_output=True, text=True,
        timeout=60,
    )
    assert "--metrics " in done.stdout and "/healthz" in done.stdout
    assert "--metrics-listen=" in done.stdout
    options = Options()
    with pytest.raises(usage.UsageError, match="--metrics-listen nope: Unknown endpoint type"):
        options.parseOptions(["--metrics-listen", "nope"])  # type: ignore[no-untyped-call]
    options = Options()
    options.parseOptions(["--metrics-listen", "tcp:0"])  # type: ignore[no-untyped-call]
    assert options["metrics"]


async def start_with_redis(realtime: Realtime, link: RedisLink) -> TestServer:
    root = Resource()

    def setup(server: Server) -> None:
        mount_metrics(root, server)

    return await realtime.start_server(setup, root=root, adapter=redis_adapter(link))


async def health(running: TestServer) -> tuple[int, Any]:
    response = await http.get(running.url + "/healthz")
    return response.code, json.loads(await response.text())


async def metrics(running: TestServer) -> bytes:
    response = await http.get(running.url + "/metrics")
    return bytes(await response.content())


@pytest_twisted.ensureDeferred
async def test_healthz_and_metrics_follow_the_redis_link(realtime: Realtime, redis_server: RedisServer) -> None:
    link = RedisLink(redis_server.url, reconnect_max_delay=0.2, heartbeat_interval=0.2)
    running = await start_with_redis(realtime, link)
    try:
        await until(lambda: link.connected, "the link to connect", limit=WAIT)
        assert await health(running) == (200, {"status": "ok", "accepting": True, "sessions": 0, "redis": True})
        scrape = await metrics(running)
        assert gauge(scrape, "txrealtime_redis_link_up") == 1
        assert gauge(scrape, "txrealtime_redis_nodes") == 1
        assert gauge(scrape, "txrealtime_redis_link_losses_total") == 0

        redis_server.stop()
        await until(lambda: not link.connected, "the link to go down", limit=WAIT)
        assert await health(running) == (503, {"status": "redis down", "accepting": True, "sessions": 0,
                                               "redis": False})
        running.server.emit("news", "reaches this node only")
        scrape = await metrics(running)
        assert gauge(scrape, "txrealtime_redis_link_up") == 0
        assert gauge(scrape, "txrealtime_redis_link_losses_total") == 1
        assert gauge(scrape, "txrealtime_redis_undelivered_messages_total") == 1

        redis_server.start()
        await until(lambda: link.connected, "the link to come back", limit=WAIT)
        assert (await health(running))[0] == 200
        assert gauge(await metrics(running), "txrealtime_redis_link_up") == 1
    finally:
        await link.stop()
