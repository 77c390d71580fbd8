"""The msgpack parser with real peers over loopback.

Node's socket.io-client with socket.io-msgpack-parser against txrealtime; the
Twisted client with ``parser="msgpack"`` against txrealtime and against Node's
socket.io server with the same parser; python-socketio's msgpack serializer;
and broken input: the offender is closed with ``parse error``, others go on.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import pytest_twisted
import socketio
from twisted.internet import threads
from twisted.internet.defer import Deferred

from tests.peers import PollingPeer, until
from tests.servers import NodeServer, SocketIOServer, node_peer
from txrealtime.client import ClientSocket, ConnectError, Manager
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionClosed, SessionEvent

MODES = ["polling", "websocket", "upgrade"]
TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}


@pytest.fixture
def msgpack_server() -> Iterator[SocketIOServer]:
    from tests.socketio.app import install
    from txrealtime.testing import start_server

    records: list[Any] = []
    running = pytest_twisted.blockon(start_server(
        lambda s: records.append(install(s)), options=EngineIOOptions(ping_interval=1, ping_timeout=2),
        parser="msgpack",
    ))
    yield SocketIOServer(running.server, running.url, records[0], running)
    pytest_twisted.blockon(running.stop())


@pytest.fixture
def node_msgpack_server() -> Iterator[NodeServer]:
    server = NodeServer(parser="msgpack")
    yield server
    server.kill()


async def run(server: SocketIOServer, scenario: str, mode: str) -> dict[str, Any]:
    report: dict[str, Any] = await node_peer("sio_client.js", server.url, scenario, mode, "msgpack")
    assert report.get("error") is None, report["error"]
    return report


# -- Node's socket.io-client with socket.io-msgpack-parser -------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.ensureDeferred
async def test_node_client_emit_ack_binary(msgpack_server: SocketIOServer, mode: str) -> None:
    report = await run(msgpack_server, "basic", mode)
    assert report["echo"] == ["hello", {"binary": [1, 2, 3]}, {"nested": [{"binary": [4]}], "n": 1.5}]
    assert report["ack"] == ["got", 1, "two", {"binary": [5]}]
    assert report["answer"] == [[42, {"binary": [9]}]]
    assert msgpack_server.record.answers == [(42, b"\x09")]
    assert report["afterFail"] == ["got", "still here"]
    assert report["transport"] == ("polling" if mode == "polling" else "websocket")
    assert report["disconnect"][0] == "io client disconnect"
    assert ("/", "client namespace disconnect") in msgpack_server.record.disconnects


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.ensureDeferred
async def test_node_client_namespaces_and_connect_errors(msgpack_server: SocketIOServer, mode: str) -> None:
    report = await run(msgpack_server, "namespaces", mode)
    assert (report["custom"], report["dyn"], report["admin"]) == (["got", "custom"], ["got", "dyn"], ["got", "admin"])
    assert report["invalid"] == {"message": "Invalid namespace", "data": None}
    assert report["rejected"] == {"message": "not authorized", "data": {"code": 401}}
    assert report["stillAlive"] == ["got", "alive"]
    assert {name for name, _ in msgpack_server.record.connected} == {"/custom", "/dyn-42", "/admin"}


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_node_client_rooms_and_broadcast(msgpack_server: SocketIOServer, mode: str) -> None:
    report = await run(msgpack_server, "rooms", mode)
    seen = report["seen"]
    assert seen["a"] == [["room message", "r1", "hi room"]]
    assert seen["b"] == [["room message", "r1", "hi room"], ["broadcast", "hi all"]]
    assert seen["c"] == [["broadcast", "hi all"]]


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_node_client_dates_undefined_and_numbers(msgpack_server: SocketIOServer, mode: str) -> None:
    report = await run(msgpack_server, "types", mode)
    assert report["echo"] == [
        {"date": "2020-01-02T03:04:05.678Z"}, None, 2**53 - 1, -(2**40), 0.1, "é€😀",
        {"deep": {"bin": {"binary": [1, 2]}}}, [None, True, False],
    ]
    assert report["ack"] == ["got", {"date": "1969-12-31T23:59:59.999Z"}]


# -- the Twisted client, against txrealtime and against Node ------------------------------------


def next_event(socket: ClientSocket, event: str) -> Deferred[tuple[Any, ...]]:
    got: Deferred[tuple[Any, ...]] = Deferred()

    def once(*args: Any) -> None:
        socket.off(event, once)
        got.callback(args)

    socket.on(event, once)
    return got


async def conversation(url: str, transports: list[str]) -> None:
    """Emit, acks both ways, binary and dates, namespaces, a refusal's data, and a broadcast."""
    manager = Manager(url, transports=transports, reconnection=False, parser="msgpack")
    other = Manager(url, transports=["websocket"], reconnection=False, parser="msgpack")
    try:
        main = await manager.socket("/").connect()
        custom = await manager.socket("/custom").connect()
        when = datetime.datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=datetime.UTC)
        echoed = next_event(main, "echo")
        main.emit("echo", "hello", b"\x01\x02", {"when": when, "n": [1.5, None, True]})
        assert await echoed == ("hello", b"\x01\x02", {"when": when, "n": [1.5, None, True]})
        assert await main.emit_with_ack("ack", 1, b"\x05", timeout=10) == ("got", 1, b"\x05")
        main.on("question", lambda value: value + 1)
        answered = next_event(main, "answer")
        main.emit("ask me", 41)
        assert await answered == (42,)
        assert await custom.emit_with_ack("ack", "custom", timeout=10) == ("got", "custom")
        with pytest.raises(ConnectError) as refused:
            await manager.socket("/admin", {"token": "wrong"}).connect()
        assert (refused.value.message, refused.value.data) == ("not authorized", {"code": 401})
        if len(transports) > 1:
            await until(lambda: manager.transport == "websocket", "the upgrade to WebSocket")
        listener = await other.socket("/").connect()
        heard = next_event(listener, "broadcast")
        assert await main.emit_with_ack("broadcast", {"bin": b"\x00\xff"}, timeout=10) is True
        assert await heard == ({"bin": b"\x00\xff"},)
    finally:
        await manager.close()
        await other.close()


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.ensureDeferred
async def test_twisted_client_against_txrealtime(msgpack_server: SocketIOServer, mode: str) -> None:
    await conversation(msgpack_server.url, TRANSPORTS[mode])


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.ensureDeferred
async def test_twisted_client_against_node(node_msgpack_server: NodeServer, mode: str) -> None:
    await conversation(node_msgpack_server.url, TRANSPORTS[mode])


@pytest_twisted.ensureDeferred
async def test_python_socketio_msgpack_client(msgpack_server: SocketIOServer) -> None:
    def talk() -> Any:
        client = socketio.Client(reconnection=False, serializer="msgpack")
        client.connect(msgpack_server.url, transports=["websocket"], wait_timeout=10)
        try:
            return client.call("ack", [1, "two", b"\x03"], timeout=10)
        finally:
            client.disconnect()

    assert await threads.deferToThread(talk) == ("got", [1, "two", b"\x03"])


# -- broken input ---------------------------------------------------------------------------


def binary(body: Any) -> str:
    """An Engine.IO polling payload carrying ``body`` as one binary message."""
    raw = body if isinstance(body, bytes) else msgpack.packb(body)
    return "b" + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "garbage",
    [
        "40",  # a text message: the JSON parser's CONNECT
        binary(b"\xc1"),
        binary(b"\x93\x01\x02"),
        binary({"type": 2, "nsp": "/", "data": "not an array"}),
        binary({"type": 0, "data": {}}),
        binary({"type": 2, "nsp": "/", "data": ["e"], "id": "1"}),
        binary({"type": 5, "nsp": "/", "data": ["e"]}),
    ],
)
@pytest_twisted.ensureDeferred
async def test_offender_closed_with_parse_error_others_unharmed(msgpack_server: SocketIOServer, garbage: str) -> None:
    events: list[SessionEvent] = []
    msgpack_server.server.manager.subscribe(events.append)
    bystander = await msgpack_server.test_server.client("/")
    offender = PollingPeer(msgpack_server.url)
    await offender.open(None)
    assert await offender.post(garbage) == "ok"
    assert await offender.get() == "1"  # the Engine.IO CLOSE packet
    closes = [e for e in events if isinstance(e, SessionClosed)]
    assert [(e.sid, e.reason) for e in closes] == [(offender.sid, CloseReason.PARSE_ERROR)]
    assert await bystander.emit_with_ack("ack", "still here", timeout=10) == ("got", "still here")
