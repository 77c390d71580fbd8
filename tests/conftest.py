"""Fixtures shared by the test suite: servers on loopback and real client peers (see :mod:`tests.servers`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from tests.servers import EchoServer, NodeServer, RedisCluster, RedisServer, SocketIOServer
from txrealtime._logging import reset_throttles
from txrealtime.engineio import EngineIOOptions, EngineIOResource, MessageReceived, SessionEvent, SessionManager


@pytest.fixture(autouse=True)
def fresh_log_throttles() -> None:
    """Each test sees every log line a throttle would let through in a new period."""
    reset_throttles()


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    manager = SessionManager(EngineIOOptions(ping_interval=1, ping_timeout=2))
    root = Resource()
    root.putChild(b"engine.io", cast(IResource, EngineIOResource(manager)))
    # The reactor's interface methods are declared without self, which mypy cannot call through.
    port = cast(Any, reactor).listenTCP(0, Site(root), interface="127.0.0.1")
    server = EchoServer(manager, f"http://127.0.0.1:{port.getHost().port}")

    def on_event(event: SessionEvent) -> None:
        server.events.append(event)
        if isinstance(event, MessageReceived):
            manager.send(event.sid, event.data)

    manager.subscribe(on_event)
    yield server
    manager.shutdown()
    pytest_twisted.blockon(port.stopListening())


@pytest.fixture
def sio_server() -> Iterator[SocketIOServer]:
    from tests.socketio.app import install
    from txrealtime.testing import start_server

    records: list[Any] = []
    running = pytest_twisted.blockon(
        start_server(lambda s: records.append(install(s)), options=EngineIOOptions(ping_interval=1, ping_timeout=2))
    )
    yield SocketIOServer(running.server, running.url, records[0], running)
    pytest_twisted.blockon(running.stop())


@pytest.fixture
def node_server() -> Iterator[NodeServer]:
    server = NodeServer()
    yield server
    server.kill()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A private three-master Redis Cluster (see :class:`tests.servers.RedisCluster`)."""
    cluster = RedisCluster(tmp_path)
    yield cluster
    cluster.stop_all()
