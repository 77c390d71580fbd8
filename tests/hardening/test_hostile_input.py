"""Hostile Socket.IO input over loopback: each case closes only the offender, a canary client carries on.

Surrogates, attachment hoarding, deep nesting, non-standard JSON, log floods
and dynamic namespaces. Each test fails on the code before its fix.
"""

from __future__ import annotations

import base64
import gc
import json
import weakref
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from twisted.logger import LogLevel

from tests.fakes import HANDSHAKE, FakeTransport
from tests.peers import PollingPeer, until
from tests.socketio.app import install
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionClosed, SessionEvent, SessionManager
from txrealtime.engineio.packets import Packet as EIOPacket
from txrealtime.engineio.packets import PacketType as EIOType
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio import Server, Socket
from txrealtime.testing import TestServer


async def serve(realtime: Realtime, options: EngineIOOptions | None = None,
                **server_options: Any) -> tuple[TestServer, list[SessionEvent]]:
    running = await realtime.start_server(install, options=options, **server_options)
    events: list[SessionEvent] = []
    running.server.manager.subscribe(events.append)
    return running, events


def closed(events: list[SessionEvent], sid: str) -> list[tuple[CloseReason, str]]:
    return [(e.reason, e.description) for e in events if isinstance(e, SessionClosed) and e.sid == sid]


async def canary_ok(realtime: Realtime, running: TestServer) -> None:
    client = await realtime.connect(running)
    assert await client.emit_with_ack("ack", "still here", timeout=10) == ("got", "still here")


def ours(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if str(e.get("log_namespace", "")).startswith("txrealtime")]


# -- 1. lone surrogates ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_lone_surrogate_reaches_the_room_escaped(realtime: Realtime) -> None:
    running, events = await serve(realtime)
    sender, recipient = PollingPeer(running.url), PollingPeer(running.url)
    await sender.open()
    await recipient.open()
    parked = recipient.get()  # waits on the server for the broadcast
    assert await sender.post('421["broadcast","a\\ud800b"]') == "ok"
    # The recipient's parked poll is answered, the surrogate escaped as JSON.stringify writes it.
    assert await parked == '42["broadcast","a\\ud800b"]'
    assert await sender.get() == "431[true]"
    assert closed(events, sender.sid) == closed(events, recipient.sid) == []
    # The same text echoed over a WebSocket client arrives as the string that was sent.
    client = await realtime.connect(running, transports=["websocket"])
    assert await client.emit_with_ack("ack", "x\ud800y", timeout=10) == ("got", "x\ud800y")


# -- 2. attachment hoarding ---------------------------------------------------------


def placeholders(count: int) -> str:
    return ",".join(json.dumps({"_placeholder": True, "num": n}) for n in range(count))


@pytest_twisted.ensureDeferred
async def test_pending_binary_packet_capped_at_max_payload(realtime: Realtime) -> None:
    running, events = await serve(realtime, EngineIOOptions(max_payload=100_000))
    hoarder = PollingPeer(running.url)
    await hoarder.open()
    assert await hoarder.post(f'4510-["ack",{placeholders(10)}]') == "ok"
    chunk = "b" + base64.b64encode(b"\0" * 60_000).decode()
    assert await hoarder.post(chunk) == "ok"  # 60 KB held: under the cap
    assert closed(events, hoarder.sid) == []
    await hoarder.post(chunk)  # 120 KB: over
    assert closed(events, hoarder.sid) == [(CloseReason.PARSE_ERROR, "binary packet over 100000 bytes")]
    await canary_ok(realtime, running)


@pytest_twisted.ensureDeferred
async def test_unfinished_binary_packet_times_out(realtime: Realtime) -> None:
    running, events = await serve(realtime, attachment_timeout=0.2)
    hoarder = PollingPeer(running.url)
    await hoarder.open()
    assert await hoarder.post(f'452-["ack",{placeholders(2)}]\x1eb' + base64.b64encode(b"one").decode()) == "ok"
    await until(lambda: bool(closed(events, hoarder.sid)), "the unfinished packet to close its session")
    assert closed(events, hoarder.sid) == [(CloseReason.PARSE_ERROR, "binary packet not completed within 0.2 s")]
    await canary_ok(realtime, running)


def test_closed_client_memory_returns_without_a_gc_pass() -> None:
    """A hoarded binary packet and the objects around it are freed by reference counting alone."""
    clock = Clock()
    manager = SessionManager(EngineIOOptions(), reactor=clock)
    server = Server(manager)

    @server.on("connection")
    def connection(socket: Socket) -> None:
        socket.on("x", lambda *args: socket.id)  # the usual closure over the socket

    transport = FakeTransport()
    session = manager.open_session(transport, HANDSHAKE)
    session.receive(EIOPacket(EIOType.MESSAGE, "0"), transport)
    session.receive(EIOPacket(EIOType.MESSAGE, '52-["x",{"_placeholder":true,"num":0}]'), transport)
    session.receive(EIOPacket(EIOType.MESSAGE, b"\0" * 100_000), transport)
    client = server.clients[session.sid]
    refs: list[weakref.ref[Any]] = [weakref.ref(client), weakref.ref(next(iter(client.sockets.values())))]
    try:
        refs.append(weakref.ref(session))
    except TypeError:
        pass  # mypyc's compiled Session takes no weak references; the client's and socket's tell enough
    assert client.decoder.pending
    del client
    gc.collect()
    gc.disable()
    try:
        session.close()
        del session, transport
        assert [ref() is None for ref in refs] == [True] * len(refs)
    finally:
        gc.enable()
    assert clock.getDelayedCalls() == []


# -- 3. deep nesting, and no payload in any log line ------------------------------------


@pytest.mark.parametrize(
    "packet",
    [
        '42["echo",' + "[" * 5000 + "]" * 5000 + "]",
        '42["echo",' + "[" * 101 + "]" * 101 + "]",
        '40{"token":"SECRET-0451","x":' + "[" * 3000 + "]" * 3000 + "}",
        '451-["echo",' + "[" * 2000 + '{"_placeholder":true,"num":0}' + "]" * 2000 + "]\x1ebAAAA",
        '451-["echo",{"_placeholder":true,"num":"SECRET-0451' + "x" * 10_000 + '"}]\x1ebAAAA',
    ],
    ids=["deep-5000", "deep-101", "deep-auth", "deep-placeholder", "placeholder-string"],
)
@pytest_twisted.ensureDeferred
async def test_deep_or_odd_json_is_a_parse_error_and_never_logged(
    realtime: Realtime, log_events: list[dict[str, Any]], packet: str
) -> None:
    running, events = await serve(realtime)
    offender = PollingPeer(running.url)
    await offender.open(None if packet.startswith("40") else "40")
    assert await offender.post(packet) == "ok"
    [(reason, description)] = closed(events, offender.sid)
    assert reason is CloseReason.PARSE_ERROR
    assert len(description) < 100
    await canary_ok(realtime, running)
    text = repr(log_events)
    assert "SECRET-0451" not in text and "[[[[" not in text
    assert [e for e in log_events if "log_failure" in e] == []


def test_ordinary_depth_is_accepted() -> None:
    from txrealtime.protocol.packets import MAX_DEPTH, Decoder

    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    packet = Decoder().feed(f'2["x",{nested}]')
    assert packet is not None and packet.event == "x"


# -- 9. non-standard JSON ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
@pytest_twisted.ensureDeferred
async def test_non_standard_numbers_are_a_parse_error(
    realtime: Realtime, log_events: list[dict[str, Any]], value: str
) -> None:
    running, events = await serve(realtime)
    offender = PollingPeer(running.url)
    await offender.open()
    assert await offender.post(f'421["ack",{value}]') == "ok"
    assert closed(events, offender.sid) == [(CloseReason.PARSE_ERROR, "invalid JSON payload")]
    assert await offender.get() == "1"
    await canary_ok(realtime, running)
    assert [e for e in log_events if "log_failure" in e] == []


# -- 8. log floods -----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_unknown_acks_make_one_line(realtime: Realtime, log_events: list[dict[str, Any]]) -> None:
    running, events = await serve(realtime)
    flooder = PollingPeer(running.url)
    await flooder.open()
    assert await flooder.post("\x1e".join(f"43{n}[]" for n in range(1000, 3000))) == "ok"
    assert await flooder.post("1") == "ok"  # leaves
    await until(lambda: bool(closed(events, flooder.sid)), "the flooder to leave")
    lines = [e for e in ours(log_events) if "acknowledgement" in str(e.get("log_format"))]
    assert [(e["log_level"], e["count"]) for e in lines] == [(LogLevel.info, 2000)]
    assert [e for e in ours(log_events) if e["log_level"] is LogLevel.debug] == []


@pytest_twisted.ensureDeferred
async def test_flooded_sessions_log_a_bounded_number_of_lines(
    realtime: Realtime, log_events: list[dict[str, Any]]
) -> None:
    running, events = await serve(realtime)
    for _ in range(40):
        offender = PollingPeer(running.url)
        await offender.open()
        await offender.post("42garbage")
    assert sum(1 for e in events if isinstance(e, SessionClosed) and e.reason is CloseReason.PARSE_ERROR) == 40
    closes = [e for e in ours(log_events) if "closed" in e["log_format"] and e["log_level"] >= LogLevel.info]
    assert len(closes) == 20  # the throttle's burst; the other 20 are counted for its next line
    assert [e for e in ours(log_events) if e["log_level"] is LogLevel.debug] == []
    await canary_ok(realtime, running)


# -- 11. dynamic namespaces --------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_empty_dynamic_namespaces_are_removed(realtime: Realtime) -> None:
    running, events = await serve(realtime, cleanup_empty_child_namespaces=True)
    peer = PollingPeer(running.url)
    await peer.open()
    for n in range(200):
        assert await peer.post(f"40/dyn-{n},") == "ok"
        assert (await peer.get()).startswith(f"40/dyn-{n},")
        assert await peer.post(f"41/dyn-{n},") == "ok"
    await canary_ok(realtime, running)
    assert sorted(running.server.namespaces) == ["/", "/admin", "/custom"]


@pytest_twisted.ensureDeferred
async def test_namespaces_per_client_are_capped(realtime: Realtime) -> None:
    running, events = await serve(realtime, max_namespaces_per_client=3)
    peer = PollingPeer(running.url)
    await peer.open()  # "/" is the first
    assert await peer.post("40/dyn-1,\x1e40/dyn-2,\x1e40/dyn-3,") == "ok"
    answers = (await peer.get()).split("\x1e")
    assert [a[:9] for a in answers] == ["40/dyn-1,", "40/dyn-2,", '44/dyn-3,']
    assert json.loads(answers[2].split(",", 1)[1]) == {"message": "Too many namespaces (limit 3)"}
    assert "/dyn-3" not in running.server.namespaces
    assert closed(events, peer.sid) == []
    await canary_ok(realtime, running)
