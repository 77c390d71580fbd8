"""The client on real networks: a server that is down, TLS with a certificate the test makes, a clean close."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource

from tests.peers import until
from tests.servers import free_port
from tests.socketio.app import Record, install
from tests.tls import self_signed
from txrealtime.client import ConnectError, Manager, NotConnected, TLSOptions, connect
from txrealtime.pytest_plugin import Realtime
from txrealtime.service import mount
from txrealtime.socketio import Server
from txrealtime.web import BoundedSite

MODES = [["polling"], ["websocket"]]


@pytest_twisted.ensureDeferred
async def test_connect_to_a_server_that_is_down_fails_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectError) as caught:
        await connect(url)  # reconnection is on by default: connect() still fails
    assert isinstance(caught.value, NotConnected)
    assert f"cannot connect to {url}" in str(caught.value)


@pytest.mark.parametrize("transports", MODES)
@pytest_twisted.ensureDeferred
async def test_a_server_that_never_answers_fails_naming_the_connect_timeout(transports: list[str]) -> None:
    """It accepts the TCP connection and says nothing: the error says the connect timeout ran out, not
    that the client closed the connection (which it then does)."""
    connections: list[Protocol] = []
    lost: list[Protocol] = []

    class Silent(Protocol):
        def connectionMade(self) -> None:
            connections.append(self)

        def connectionLost(self, reason: Failure = connectionDone) -> None:
            lost.append(self)

    port = cast(Any, reactor).listenTCP(0, Factory.forProtocol(Silent), interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}"
    try:
        with pytest.raises(NotConnected) as caught:
            await connect(url, transports=transports, timeout=0.5, reconnection=False)
        assert connections  # it did get through to the server
        assert str(caught.value) == f"cannot connect to {url}: no answer within the connect timeout (0.5 s, the " \
            "timeout option)"
        await until(lambda: len(lost) == len(connections), "the client to close its connections")
    finally:
        await port.stopListening()


async def tls_server(tmp_path: Path) -> tuple[str, Path, Server, tuple[Any, Record]]:
    from twisted.internet import ssl

    key, cert = self_signed(tmp_path)
    server = Server()
    record = install(server)
    root = Resource()
    mount(root, "/socket.io/", server.resource())
    context = ssl.DefaultOpenSSLContextFactory(str(key), str(cert))
    site = BoundedSite(cast(IResource, root), managers=[server.manager])
    port = cast(Any, reactor).listenSSL(0, site, context, interface="127.0.0.1")
    return f"https://127.0.0.1:{port.getHost().port}", cert, server, (port, record)


@pytest.mark.parametrize("transports", MODES)
@pytest_twisted.ensureDeferred
async def test_tls_with_a_private_ca_and_without_verification(tmp_path: Path, transports: list[str]) -> None:
    url, cert, server, (port, _) = await tls_server(tmp_path)
    managers: list[Manager] = []
    try:
        for tls in (TLSOptions(ca_certs=cert), TLSOptions(verify=False)):
            manager = Manager(url, transports=transports, reconnection=False, tls=tls)
            managers.append(manager)
            socket = await manager.socket("/").connect()
            assert await socket.emit_with_ack("ack", "secure", timeout=10) == ("got", "secure")
        # The system's authorities do not know the test's certificate.
        manager = Manager(url, transports=transports, reconnection=False)
        managers.append(manager)
        with pytest.raises(NotConnected):
            await manager.socket("/").connect()
    finally:
        for manager in managers:
            await manager.close()
        server.close()
        server.manager.shutdown(drop_lingering=True)
        await port.stopListening()


@pytest.mark.parametrize("transports", MODES)
@pytest_twisted.ensureDeferred
async def test_manager_close_is_a_clean_goodbye(realtime: Realtime, transports: list[str]) -> None:
    running = await realtime.start_server()
    record = install(running.server)
    manager = Manager(running.url, transports=transports, reconnection=False)
    main = await manager.socket("/").connect()
    custom = await manager.socket("/custom").connect()
    assert await main.emit_with_ack("ack", timeout=10) == "got"
    assert custom.connected
    await manager.close()
    await until(lambda: len(record.disconnects) == 2, f"both namespaces to be left: {record.disconnects}")
    assert sorted(record.disconnects) == [("/", "client namespace disconnect"),
                                          ("/custom", "client namespace disconnect")]


@pytest_twisted.ensureDeferred
async def test_sending_while_the_websocket_closes_neither_raises_nor_sends(realtime: Realtime) -> None:
    """Between the closing handshake's start and the connection's end, what the client emits stays in the
    engine (Autobahn refuses to send then): no exception reaches the caller, and close() still works."""
    running = await realtime.start_server()
    record = install(running.server)
    seen: list[str] = []
    running.server.on("connection", lambda socket: socket.on("while closing", lambda: seen.append("it")))
    manager = Manager(running.url, transports=["websocket"], reconnection=False)
    main = await manager.socket("/").connect()
    assert manager.engine is not None
    transport: Any = cast(Any, manager.engine).transport
    transport.protocol.sendClose(1000)  # the closing handshake starts; the connection is not lost yet
    assert not transport.writable
    main.emit("while closing")
    await manager.close()
    await until(lambda: record.disconnects != [], "the server to see the socket go")
    assert seen == [] and record.disconnects == [("/", "transport close")]
