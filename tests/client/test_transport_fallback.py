"""``try_all_transports`` and ``remember_upgrade`` (socket.io-client 4.8's ``tryAllTransports`` and
``rememberUpgrade``) against Node's engine.io with polling blocked (``transports: ["websocket"]``), and through the
public client API (``Manager``, ``connect``) against Node's socket.io with one transport blocked."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from tests.servers import INTEROP, NODE_MODULES, NodeServer, node
from txrealtime.client import ClientEvent, Manager, NotConnected, Upgraded, connect
from txrealtime.client.engineio import EngineError, EngineIOClient


class Listener:
    """Records what the connection reports; ``messages`` fires with the first message."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.message: Deferred[str | bytes] = Deferred()
        self.upgraded: Deferred[str] = Deferred()

    def engine_open(self) -> None:
        self.events.append(("open", None))

    def engine_message(self, data: str | bytes) -> None:
        self.events.append(("message", data))
        if not self.message.called:
            self.message.callback(data)

    def engine_upgrade(self, transport: str) -> None:
        self.events.append(("upgrade", transport))
        self.upgraded.callback(transport)

    def engine_close(self, reason: str, description: str) -> None:
        self.events.append(("close", reason))

    def engine_drain(self) -> None:
        self.events.append(("drain", ""))


def node_engine(options: dict[str, Any]) -> Iterator[str]:
    process = subprocess.Popen(
        [node(), str(INTEROP / "eio_server.js"), json.dumps(options)],
        stdout=subprocess.PIPE, text=True, env={"NODE_PATH": str(NODE_MODULES), "PATH": "/usr/bin:/bin"},
    )
    assert process.stdout is not None
    yield f"http://127.0.0.1:{json.loads(process.stdout.readline())['port']}"
    process.kill()
    process.wait(30)


@pytest.fixture
def blocked() -> Iterator[str]:
    """Node's engine.io refusing polling: the first transport of a default client is blocked."""
    yield from node_engine({"transports": ["websocket"]})


@pytest.fixture
def open_server() -> Iterator[str]:
    """Node's engine.io with both transports."""
    yield from node_engine({})


@pytest.fixture(autouse=True)
def no_prior_websocket() -> Iterator[None]:
    EngineIOClient.prior_websocket = False
    yield
    EngineIOClient.prior_websocket = False


async def echoed(client: EngineIOClient, listener: Listener) -> str | bytes:
    client.send(["hello"])
    answer = await listener.message
    client.close()
    await client.when_closed()
    return answer


@pytest_twisted.ensureDeferred
async def test_try_all_transports_falls_back_to_websocket(blocked: str) -> None:
    plain = EngineIOClient(blocked, Listener())
    with pytest.raises(EngineError, match="400"):  # Node: "Transport unknown" for polling
        await plain.open()
    await plain.when_closed()

    listener = Listener()
    client = EngineIOClient(blocked, listener, try_all_transports=True)
    await client.open()
    assert client.transport_name == "websocket"
    assert await echoed(client, listener) == "hello"
    assert listener.events[0] == ("open", None)


@pytest_twisted.ensureDeferred
async def test_remember_upgrade_skips_polling_after_an_upgrade(open_server: str, blocked: str) -> None:
    first = EngineIOClient(blocked, Listener(), remember_upgrade=True)
    with pytest.raises(EngineError):  # nothing remembered yet: polling first, which is blocked
        await first.open()
    await first.when_closed()

    listener = Listener()
    upgrading = EngineIOClient(open_server, listener)
    await upgrading.open()
    assert upgrading.transport_name == "polling"
    assert await listener.upgraded == "websocket"
    assert await echoed(upgrading, listener) == "hello"
    assert EngineIOClient.prior_websocket

    forgetful = EngineIOClient(blocked, Listener())  # without the option, polling first still
    with pytest.raises(EngineError):
        await forgetful.open()
    await forgetful.when_closed()
    assert not EngineIOClient.prior_websocket  # a transport error forgets the upgrade, as in Node

    listener = Listener()
    again = EngineIOClient(open_server, listener)
    await again.open()
    assert await listener.upgraded == "websocket"
    again.close()
    await again.when_closed()
    listener = Listener()
    remembering = EngineIOClient(blocked, listener, remember_upgrade=True)
    await remembering.open()
    assert remembering.transport_name == "websocket"
    assert await echoed(remembering, listener) == "hello"


# -- through the public client API, against Node's socket.io ----------------------------------------------


@pytest.fixture
def node_without_polling() -> Iterator[str]:
    """Node's socket.io serving WebSocket only: long-polling, a default client's first transport, is refused."""
    server = NodeServer(transports=("websocket",))
    yield server.url
    server.kill()


@pytest.fixture
def node_without_websocket() -> Iterator[str]:
    """Node's socket.io serving long-polling only: WebSocket is refused."""
    server = NodeServer(transports=("polling",))
    yield server.url
    server.kill()


@pytest.fixture
def node_socketio() -> Iterator[str]:
    """Node's socket.io with both transports."""
    server = NodeServer()
    yield server.url
    server.kill()


async def acked_over(manager: Manager) -> tuple[Any, str | None]:
    """Join ``/``, have an event acknowledged; the answer and the transport it went over, then close."""
    socket = await manager.socket("/").connect()
    answer = await socket.emit_with_ack("ack", "hi", timeout=10)
    transport = manager.transport
    await manager.close()
    return answer, transport


async def refused(manager: Manager) -> None:
    """The manager cannot connect: its socket's connect fails (the blocked transport, nothing else tried)."""
    with pytest.raises(NotConnected):
        await manager.socket("/").connect()
    await manager.close()


@pytest_twisted.ensureDeferred
async def test_manager_tries_websocket_when_polling_is_blocked(node_without_polling: str) -> None:
    await refused(Manager(node_without_polling, reconnection=False))
    manager = Manager(node_without_polling, try_all_transports=True)
    assert await acked_over(manager) == (("got", "hi"), "websocket")


@pytest_twisted.ensureDeferred
async def test_connect_tries_polling_when_websocket_is_blocked(node_without_websocket: str) -> None:
    first = ["websocket", "polling"]
    await refused(Manager(node_without_websocket, transports=first, reconnection=False))
    socket = await connect(node_without_websocket, transports=first, try_all_transports=True)
    assert await socket.emit_with_ack("ack", "hi", timeout=10) == ("got", "hi")
    assert socket.io.transport == "polling"
    await socket.io.close()


@pytest_twisted.ensureDeferred
async def test_manager_remembers_an_upgrade(node_socketio: str, node_without_polling: str) -> None:
    await refused(Manager(node_without_polling, remember_upgrade=True, reconnection=False))  # nothing to remember

    upgraded: Deferred[ClientEvent] = Deferred()
    first = Manager(node_socketio)
    first.subscribe(lambda event: upgraded.callback(event) if isinstance(event, Upgraded) else None)
    await first.socket("/").connect()
    assert await upgraded == Upgraded("websocket")
    await first.close()

    remembering = Manager(node_without_polling, remember_upgrade=True)  # WebSocket first: polling never tried
    assert await acked_over(remembering) == (("got", "hi"), "websocket")
    assert EngineIOClient.prior_websocket
    await refused(Manager(node_without_polling, reconnection=False))  # without the option: polling first
