"""txrealtime's client against Node's socket.io 4.x server and against txrealtime's own server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from tests.servers import NodeServer
from tests.socketio.app import install
from txrealtime.client import (
    ClientEvent,
    ClientSocket,
    ConnectError,
    Manager,
    Reconnected,
    ReconnectFailed,
    Upgraded,
)
from txrealtime.engineio import EngineIOOptions
from txrealtime.pytest_plugin import Realtime

MODES = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}


@dataclass
class Peer:
    """The server under test, whichever it is, with a way to kill and restart it on its port."""

    url: str
    kill: Callable[[], Any]
    restart: Callable[[], Any]
    managers: list[Manager] = field(default_factory=list)

    def manager(self, mode: str, **options: Any) -> Manager:
        options.setdefault("reconnection", False)
        manager = Manager(self.url, transports=MODES[mode], **options)
        self.managers.append(manager)
        return manager


@pytest_twisted.async_yield_fixture(params=["txrealtime", "node"])
async def peer(request: pytest.FixtureRequest, realtime: Realtime) -> AsyncIterator[Peer]:
    options = EngineIOOptions(ping_interval=1, ping_timeout=2)
    if request.param == "node":
        holder = [NodeServer()]
        url = holder[0].url

        def restart_node() -> None:
            holder[0] = NodeServer(int(url.rsplit(":", 1)[1]))

        result = Peer(url, lambda: holder[0].kill(), restart_node)
        yield result
        for manager in result.managers:
            await manager.close()
        holder[0].kill()
    else:
        servers = [await realtime.start_server(install, options=options)]
        port = servers[0].port.getHost().port

        async def restart_own() -> None:
            servers.append(await realtime.start_server(install, options=options, port=port))

        result = Peer(servers[0].url, lambda: servers[-1].stop(), restart_own)
        yield result
        for manager in result.managers:
            await manager.close()


def events(manager: Manager) -> list[ClientEvent]:
    seen: list[ClientEvent] = []
    manager.subscribe(seen.append)
    return seen


def next_event(socket: ClientSocket, name: str) -> Deferred[list[Any]]:
    d: Deferred[list[Any]] = Deferred()
    socket.once(name, lambda *args: d.callback(list(args)))
    return d


async def upgraded(manager: Manager, seen: list[ClientEvent]) -> None:
    if not any(isinstance(e, Upgraded) for e in seen):
        d: Deferred[None] = Deferred()
        manager.subscribe(lambda e: d.callback(None) if isinstance(e, Upgraded) and not d.called else None)
        await d


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.ensureDeferred
async def test_emit_acks_and_binary_both_ways(peer: Peer, mode: str) -> None:
    manager = peer.manager(mode)
    seen = events(manager)
    socket = await manager.socket("/").connect()
    assert socket.connected and socket.id

    echoed = next_event(socket, "echo")
    socket.emit("echo", "hello", b"\x01\x02\x03", {"nested": [b"\x04"], "n": 1.5})
    assert await echoed == ["hello", b"\x01\x02\x03", {"nested": [b"\x04"], "n": 1.5}]

    assert await socket.emit_with_ack("ack", 1, b"\x05", timeout=10) == ("got", 1, b"\x05")

    socket.on("question", lambda value: {"n": value + 1, "blob": b"\x09"})
    answer = next_event(socket, "answer")
    socket.emit("ask me", 41)
    assert await answer == [{"n": 42, "blob": b"\x09"}]

    if mode == "upgrade":
        await upgraded(manager, seen)
    assert await socket.emit_with_ack("ack", "after", timeout=10) == ("got", "after")
    assert manager.transport == ("polling" if mode == "polling" else "websocket")


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_namespaces_auth_and_refusals(peer: Peer, mode: str) -> None:
    manager = peer.manager(mode)
    custom = await manager.socket("/custom").connect()
    dyn = await manager.socket("/dyn-42").connect()
    admin = await manager.socket("/admin", auth={"token": "s3cret"}).connect()
    assert await custom.emit_with_ack("ack", "c", timeout=10) == ("got", "c")
    assert await dyn.emit_with_ack("ack", "d", timeout=10) == ("got", "d")
    assert await admin.emit_with_ack("ack", "a", timeout=10) == ("got", "a")

    errors: list[Any] = []
    refused = peer.manager(mode).socket("/admin", auth={"token": "wrong"})
    refused.on("connect_error", errors.append)
    with pytest.raises(ConnectError) as info:
        await refused.connect()
    assert (info.value.message, info.value.data) == ("not authorized", {"code": 401})
    assert errors == [info.value]

    with pytest.raises(ConnectError, match="Invalid namespace"):
        await manager.socket("/nope").connect()
    assert await custom.emit_with_ack("ack", "alive", timeout=10) == ("got", "alive")


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_server_initiated_disconnect(peer: Peer, mode: str) -> None:
    socket = await peer.manager(mode).socket("/").connect()
    gone = next_event(socket, "disconnect")
    socket.emit("disconnect me")
    assert await gone == ["io server disconnect"]
    assert not socket.connected and not socket.active


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_reconnects_after_restart_and_sends_what_was_buffered(peer: Peer, mode: str) -> None:
    manager = peer.manager(mode, reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.5)
    seen = events(manager)
    socket = await manager.socket("/").connect()
    first_id = socket.id
    gone = next_event(socket, "disconnect")
    await _maybe_await(peer.kill())
    [reason] = await gone
    assert reason in ("transport close", "transport error")

    socket.emit("echo", "sent while down")  # buffered until the namespace is connected again
    back = next_event(socket, "connect")
    echoed = next_event(socket, "echo")
    await _maybe_await(peer.restart())
    await back
    assert await echoed == ["sent while down"]
    assert socket.id != first_id
    reconnected = [e for e in seen if isinstance(e, Reconnected)]
    assert len(reconnected) == 1 and reconnected[0].attempts >= 1


@pytest_twisted.ensureDeferred
async def test_gives_up_after_the_configured_attempts(peer: Peer) -> None:
    await _maybe_await(peer.kill())
    manager = peer.manager("websocket", reconnection=True, reconnection_attempts=2, reconnection_delay=0.05)
    seen = events(manager)
    with pytest.raises(ConnectionError):
        await manager.socket("/").connect(retry=True)
    assert [e for e in seen if isinstance(e, ReconnectFailed)] == [ReconnectFailed(2)]


async def _maybe_await(value: Any) -> None:
    if isinstance(value, Deferred):
        await value
    elif hasattr(value, "__await__"):
        await value
