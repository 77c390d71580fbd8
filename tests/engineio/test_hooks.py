"""Engine hooks and events (Node's ``io.engine``) on the raw wire: refusals, header hooks, generate_id,
per-packet events. Where Node's engine.io has the same hook, the test runs against it too."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import websocket
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from tests.engineio.targets import (
    HOOKS,
    Target,
    open_polling,
    request,
    targets,
    txrealtime_target,
    ws_close,
    ws_connect,
    ws_echo,
    ws_frame,
    ws_send,
    ws_upgrade,
)
from tests.peers import until, websocket_handshake
from tests.servers import free_port
from txrealtime.engineio import (
    Drained,
    EngineIOOptions,
    Handshake,
    PacketCreated,
    PacketEvent,
    PacketReceived,
    RequestRefused,
    SessionClosed,
    SessionUpgraded,
)
from txrealtime.engineio.options import CookieOptions
from txrealtime.engineio.packets import Packet, PacketType

DOCS = Path(__file__).parent.parent.parent / "docs" / "engineio.md"


@pytest.fixture(params=["txrealtime", "node"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    with targets(request.param) as target:
        yield target


@pytest.fixture
def engine() -> Iterator[Callable[..., Target]]:
    """Starts txrealtime echo servers, ``engine(**options)`` (the hooks of ``HOOKS`` by default), stopped after."""
    with ExitStack() as stack:

        def start(**options: Any) -> Target:
            return stack.enter_context(txrealtime_target(EngineIOOptions(**options) if options else HOOKS))

        yield start


def headers_of(ws: websocket.WebSocket) -> dict[str, str]:
    """The headers of a WebSocket's 101 answer (names lower-cased, several Set-Cookie joined by "; ")."""
    return dict(ws.getheaders() or {})


def refusals(target: Target) -> list[RequestRefused]:
    return [e for e in target.events if isinstance(e, RequestRefused)]


async def refusal_seen(target: Target) -> tuple[int, str, dict[str, str]]:
    """The refusal the server reported last: Node's ``connection_error``, or txrealtime's :class:`RequestRefused`."""
    if target.name == "node":
        line = await target.node_line("code")
        return line["code"], line["message"], line["context"]
    await until(lambda: bool(refusals(target)), "a RequestRefused event")
    event = refusals(target)[-1]
    target.events.remove(event)
    return event.code, event.message, dict(event.context)


# -- connection_error ------------------------------------------------------------------------

REFUSED = [
    ("GET", "?EIO=4&transport=carrier", (0, "Transport unknown", {"transport": "carrier"})),
    ("GET", "?EIO=3&transport=polling", (5, "Unsupported protocol version", {"protocol": "3"})),
    ("GET", "?EIO=4&transport=polling&sid=nope", (1, "Session ID unknown", {"sid": "nope"})),
    ("POST", "?EIO=4&transport=polling&sid=nope", (1, "Session ID unknown", {"sid": "nope"})),
    ("POST", "?EIO=4&transport=polling", (2, "Bad handshake method", {"method": "POST"})),
    ("GET", "?EIO=4&transport=websocket", (3, "Bad request", {"name": "TRANSPORT_HANDSHAKE_ERROR"})),
    ("GET", "?EIO=4&transport=polling&deny=go+away", (4, "Forbidden", {"message": "go away"})),
]


@pytest.mark.parametrize(("method", "query", "expected"), REFUSED, ids=[f"{m} {q}" for m, q, _ in REFUSED])
@pytest_twisted.ensureDeferred
async def test_refused_polling_requests_as_node(
    target: Target, method: str, query: str, expected: tuple[int, str, dict[str, str]]
) -> None:
    answer = await request(method, f"{target.url}/engine.io/{query}", b"secret body" if method == "POST" else None)
    assert answer.status == (403 if expected[0] == 4 else 400)
    assert answer.json()["code"] == expected[0]
    assert await refusal_seen(target) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?EIO=4&transport=websocket&sid=nope", (1, "Session ID unknown", {"sid": "nope"})),
        ("?EIO=4&transport=websocket&deny=go+away", (4, "Forbidden", {"message": "go away"})),
        ("?EIO=4&transport=carrier", (0, "Transport unknown", {"transport": "carrier"})),
    ],
)
@pytest_twisted.ensureDeferred
async def test_refused_websocket_handshakes_as_node(
    target: Target, query: str, expected: tuple[int, str, dict[str, str]]
) -> None:
    # Node answers every refused upgrade with 400, a forbidden one too; so does txrealtime.
    assert await websocket_handshake(f"{target.url}/engine.io/{query}") == 400
    assert await refusal_seen(target) == expected


@pytest_twisted.ensureDeferred
async def test_refusal_describes_the_request_never_its_body(engine: Callable[..., Target]) -> None:
    server = engine()
    answer = await request(
        "POST", f"{server.url}/engine.io/?EIO=4&transport=polling&t=1", b"secret body", {"X-Trace": "abc"}
    )
    assert answer.status == 400
    [event] = refusals(server)
    assert (event.code, event.message, event.status, event.method) == (2, "Bad handshake method", 400, "POST")
    assert event.request.address == "127.0.0.1"
    assert event.request.headers["x-trace"] == "abc"
    assert event.request.query == {"EIO": "4", "transport": "polling", "t": "1"}
    assert event.request.url == "/engine.io/?EIO=4&transport=polling&t=1"
    assert "secret" not in repr(event)


@pytest_twisted.ensureDeferred
async def test_every_forbidden_request_is_reported_on_both_transports(engine: Callable[..., Target]) -> None:
    server = engine(allowed_origins=["https://app.example"], max_sessions_per_ip=1, allow_request=lambda h: True)
    assert server.manager is not None
    origin = {"Origin": "https://evil.example"}
    assert (await request("GET", server.base, headers=origin)).status == 403
    assert await websocket_handshake(server.ws_url(), origin="https://evil.example") == 400  # an upgrade, as Node
    sid = await open_polling(server)  # the one session this address may have
    assert (await request("GET", server.base)).status == 403
    assert await websocket_handshake(server.ws_url(), suppress_origin=True) == 400
    server.manager.close(sid)
    server.manager.shutdown()
    assert (await request("GET", server.base)).status == 403
    assert await websocket_handshake(server.ws_url(), suppress_origin=True) == 400
    seen = [(e.code, e.status, e.context["message"], e.request.query["transport"]) for e in refusals(server)]
    assert seen == [
        (4, 403, "origin 'https://evil.example' not allowed", "polling"),
        (4, 400, "origin 'https://evil.example' not allowed", "websocket"),
        (4, 403, "more than 1 sessions from 127.0.0.1", "polling"),
        (4, 400, "more than 1 sessions from 127.0.0.1", "websocket"),
        (4, 403, "server shutting down", "polling"),
        (4, 400, "server shutting down", "websocket"),
    ]


@pytest_twisted.ensureDeferred
async def test_refused_requests_of_a_session(engine: Callable[..., Target]) -> None:
    """A polling request for a WebSocket session, and an unsupported method: Bad request, reported."""
    server = engine()
    ws = await ws_connect(server.ws_url())
    sid = json.loads((await ws_frame(ws))[1][1:])["sid"]
    assert (await request("GET", f"{server.base}&sid={sid}")).status == 400
    polling = await open_polling(server)
    assert (await request("PUT", f"{server.base}&sid={polling}")).status == 400
    contexts = [dict(e.context) for e in refusals(server)]
    assert contexts == [
        {"name": "TRANSPORT_MISMATCH", "transport": "polling", "previousTransport": "websocket"},
        {"name": "UNSUPPORTED_METHOD", "method": "PUT"},
    ]
    await ws_close(ws)


# -- initial_headers and headers ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_header_hooks_as_node(target: Target) -> None:
    first = await request("GET", target.base)
    assert (first.header("X-Initial"), first.header("X-Every")) == (["yes"], ["first"])
    sid = json.loads(first.body[1:])["sid"]
    posted = await request("POST", f"{target.base}&sid={sid}", b"4hi")
    polled = await request("GET", f"{target.base}&sid={sid}")
    assert polled.body == "4hi"
    for answer in (posted, polled):
        assert (answer.header("X-Initial"), answer.header("X-Every")) == ([], ["later"])
    refused = await request("GET", f"{target.base}&sid=nope")
    assert (refused.header("X-Initial"), refused.header("X-Every")) == ([], [])  # error answers get none

    direct = await ws_connect(target.ws_url())
    assert (headers_of(direct).get("x-initial"), headers_of(direct).get("x-every")) == ("yes", "first")
    upgrade = await ws_upgrade(target, sid)
    assert (headers_of(upgrade).get("x-initial"), headers_of(upgrade).get("x-every")) == (None, "later")
    await ws_close(direct)
    await ws_close(upgrade)


def cookies(request: Handshake, sid: str) -> dict[str, list[str]]:
    return {"Set-Cookie": [f"first={sid}", "second=2"]}


def broken(request: Handshake, sid: str) -> dict[str, str]:
    raise RuntimeError("hook bug")


def injecting(request: Handshake, sid: str) -> dict[str, str]:
    return {"X-Ok": "fine", "X-Bad": "a\r\nSet-Cookie: evil=1"}


@pytest_twisted.ensureDeferred
async def test_several_values_after_the_cookie_and_a_failing_hook(engine: Callable[..., Target]) -> None:
    server = engine(cookie=CookieOptions(), initial_headers=cookies, headers=broken)
    answer = await request("GET", server.base)
    sid = json.loads(answer.body[1:])["sid"]
    assert answer.header("Set-Cookie") == [f"io={sid}; Path=/; HttpOnly; SameSite=Lax", f"first={sid}", "second=2"]
    ws = await ws_connect(server.ws_url())
    sid = json.loads((await ws_frame(ws))[1][1:])["sid"]
    assert headers_of(ws)["set-cookie"] == f"io={sid}; Path=/; HttpOnly; SameSite=Lax; first={sid}; second=2"
    await ws_close(ws)


@pytest_twisted.ensureDeferred
async def test_a_header_with_a_line_break_is_left_out(engine: Callable[..., Target]) -> None:
    server = engine(headers=injecting)
    answer = await request("GET", server.base)
    assert (answer.header("X-Ok"), answer.header("X-Bad"), answer.header("Set-Cookie")) == (["fine"], [], [])
    ws = await ws_connect(server.ws_url())
    assert headers_of(ws).get("x-ok") == "fine" and "x-bad" not in headers_of(ws)
    assert "set-cookie" not in headers_of(ws)
    await ws_close(ws)


# -- generate_id ------------------------------------------------------------------------------

_counter = iter(range(1, 1_000_000))


def sync_id(request: Handshake) -> str:
    return f"sync-{request.query['transport']}-{next(_counter)}"


def deferred_id(request: Handshake) -> Deferred[str]:
    return deferLater(reactor, 0.01, lambda: f"deferred-{next(_counter)}")


async def coroutine_id(request: Handshake) -> str:
    await deferLater(reactor, 0.01, lambda: None)
    return f"coroutine-{next(_counter)}"


@pytest.mark.parametrize(
    ("hook", "prefix"), [(sync_id, "sync-"), (deferred_id, "deferred-"), (coroutine_id, "coroutine-")]
)
@pytest_twisted.ensureDeferred
async def test_generate_id_on_both_transports(engine: Callable[..., Target], hook: Any, prefix: str) -> None:
    target = engine(generate_id=hook, cookie=CookieOptions())
    sid = await open_polling(target)
    assert sid.startswith(prefix)
    ws = await ws_connect(target.ws_url())
    ws_sid = json.loads((await ws_frame(ws))[1][1:])["sid"]
    assert ws_sid.startswith(prefix) and ws_sid != sid
    assert headers_of(ws)["set-cookie"].startswith(f"io={ws_sid};")
    await ws_echo(ws, "works")
    upgraded = await ws_upgrade(target, sid)  # the generated sid names the session in later requests
    await ws_echo(upgraded, "works too")
    assert target.manager is not None and set(target.manager.sessions) == {sid, ws_sid}
    await ws_close(ws)
    await ws_close(upgraded)


def failing_id(request: Handshake) -> str:
    raise RuntimeError("database down")


def bad_id(request: Handshake) -> str:
    return {"space": "has space", "empty": "", "taken": "taken"}[request.query["case"]]


@pytest.mark.parametrize(
    ("hook", "case", "why"),
    [
        (failing_id, "any", "generate_id failed: RuntimeError"),
        (bad_id, "space", "generate_id returned str that is not a valid sid"),
        (bad_id, "empty", "generate_id returned str that is not a valid sid"),
        (bad_id, "taken", "generate_id returned a sid in use"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_generate_id_failures_refuse_the_handshake(
    engine: Callable[..., Target], hook: Any, case: str, why: str
) -> None:
    target = engine(generate_id=hook)
    assert target.manager is not None
    if case == "taken":
        target.manager.options = EngineIOOptions(generate_id=lambda request: "taken")
        await open_polling(target)
        target.manager.options = EngineIOOptions(generate_id=hook)
    answer = await request("GET", f"{target.base}&case={case}")
    assert (answer.status, answer.json()) == (400, {"code": 3, "message": "Bad request"})
    assert await websocket_handshake(f"{target.ws_url()}&case={case}") == 400
    assert len(target.manager) == (1 if case == "taken" else 0)
    assert [(e.code, dict(e.context)) for e in refusals(target)] == [(3, {"name": "ID_GENERATION_ERROR"})] * 2


# -- packet, packet_create, drain, upgrade ---------------------------------------------------


def traffic(events: list[PacketEvent], sid: str) -> list[tuple[str, str]]:
    out = []
    for event in events:
        if event.sid != sid:
            continue
        if isinstance(event, Drained):
            out.append(("drained", ""))
        else:
            packet: Packet = event.packet
            kind = "received" if isinstance(event, PacketReceived) else "created"
            out.append((kind, f"{packet.type.name} {packet.data!r}" if packet.type is not PacketType.OPEN else "OPEN"))
    return out


@pytest_twisted.ensureDeferred
async def test_packet_events_over_polling_and_the_upgrade(engine: Callable[..., Target]) -> None:
    server = engine()
    assert server.manager is not None
    seen: list[PacketEvent] = []
    unsubscribe = server.manager.subscribe_packets(seen.append)
    sid = await open_polling(server)
    assert (await request("POST", f"{server.base}&sid={sid}", b"4one\x1ebAQI=")).body == "ok"
    assert (await request("GET", f"{server.base}&sid={sid}")).body == "4one\x1ebAQI="
    ws = await ws_upgrade(server, sid)
    await ws_echo(ws, "two")
    assert traffic(seen, sid) == [
        ("created", "OPEN"),
        ("drained", ""),  # the handshake GET took the OPEN packet
        ("received", "MESSAGE 'one'"),
        ("created", "MESSAGE 'one'"),
        ("received", "MESSAGE b'\\x01\\x02'"),
        ("created", "MESSAGE b'\\x01\\x02'"),
        ("drained", ""),  # both echoes in one poll
        ("received", "MESSAGE 'two'"),
        ("created", "MESSAGE 'two'"),
        ("drained", ""),
    ]
    upgrades = [e for e in server.events if isinstance(e, SessionUpgraded)]
    assert upgrades == [SessionUpgraded(sid, "polling", "websocket")]
    assert not [e for e in server.events if isinstance(e, (PacketReceived, PacketCreated, Drained))]
    unsubscribe()
    await ws_echo(ws, "three")
    assert len(traffic(seen, sid)) == 10
    await ws_close(ws)


@pytest_twisted.ensureDeferred
async def test_packet_events_of_the_heartbeat_and_the_close(engine: Callable[..., Target]) -> None:
    server = engine(ping_interval=0.05)
    assert server.manager is not None
    seen: list[PacketEvent] = []
    server.manager.subscribe_packets(seen.append)
    ws = await ws_connect(server.ws_url())
    sid = json.loads((await ws_frame(ws))[1][1:])["sid"]
    assert await ws_frame(ws) == (websocket.ABNF.OPCODE_TEXT, b"2")
    await ws_send(ws, "3")
    await ws_send(ws, "1")
    await until(lambda: bool([e for e in server.events if isinstance(e, SessionClosed)]), "the session to close")
    assert traffic(seen, sid)[:6] == [
        ("created", "OPEN"),
        ("drained", ""),
        ("created", "PING ''"),
        ("drained", ""),
        ("received", "PONG ''"),
        ("received", "CLOSE ''"),
    ]
    await ws_close(ws)


# -- the docs' example -----------------------------------------------------------------------


def test_docs_example_runs() -> None:
    """docs/engineio.md's example of events and hooks runs as printed."""
    section = DOCS.read_text().split("## Events and hooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    port = free_port()
    assert 'reactor.listenTCP(8080, site, interface="127.0.0.1")' in code
    code = code.replace("reactor.listenTCP(8080,", f"reactor.listenTCP({port},")
    process = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}/engine.io/?EIO=4&transport=polling"
    try:
        for _ in range(300):
            try:
                handshake = urllib.request.urlopen(base, timeout=10)
                break
            except urllib.error.URLError:
                time.sleep(0.1)  # the example is still starting
        else:
            raise AssertionError("the example never answered")
        sid = json.loads(handshake.read()[1:])["sid"]
        assert sid == "user-1"
        assert handshake.headers.get_all("Set-Cookie") == ["visited=1; Path=/", "theme=dark; Path=/"]
        assert handshake.headers["X-Served-By"] == "node-a"
        posted = urllib.request.urlopen(urllib.request.Request(f"{base}&sid={sid}", data=b"4hello"), timeout=10)
        assert posted.read() == b"ok" and posted.headers["X-Served-By"] == "node-a"
        assert urllib.request.urlopen(f"{base}&sid={sid}", timeout=10).read() == b"4hello"
        try:
            urllib.request.urlopen(f"{base}&sid=nope", timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 400
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        assert lines == ["packet MESSAGE from user-1\n", "refused 1 Session ID unknown {'sid': 'nope'} 127.0.0.1\n"]
    finally:
        process.terminate()
        process.wait(30)
