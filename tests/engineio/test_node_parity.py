"""txrealtime's wire against Node's engine.io serving the same requests with the same options.

Each test starts tests/interop/eio_server.js and ``twistd txrealtime --engineio`` (built in process by
``make_process_service`` from the same flags an operator types) and compares what both answer: status, the
headers that matter, bodies with the sid left out; and what Node's engine.io-client reports on each.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.web.http import Request
from twisted.web.http_headers import Headers

from tests.peers import raw_request, websocket_handshake
from tests.servers import INTEROP, NODE_MODULES, node, node_peer
from txrealtime.engineio import MessageReceived, SessionEvent, SessionManager
from txrealtime.service import Options, make_process_service

HERE = "tests.engineio.test_node_parity"
ALLOWED = "https://app.example"
COMPARED = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "access-control-expose-headers",
    "vary",
    "x-checked",
]


def checked(request: Request) -> None:
    """The middleware under test, as eio_server.js's: a header on every answer, ?deny=1 answered 401 here."""
    request.setHeader(b"x-checked", b"yes")
    if b"deny=1" in request.uri:
        request.setResponseCode(401)
        request.finish()


def echo(manager: SessionManager, options: Options) -> None:
    """The --app hook: echo every message, as eio_server.js does."""

    def on_event(event: SessionEvent) -> None:
        if isinstance(event, MessageReceived):
            manager.send(event.sid, event.data)

    manager.subscribe(on_event)


def echo_checked(manager: SessionManager, options: Options) -> None:
    """Echo, the middleware and an origin function (what has no flag)."""
    echo(manager, options)
    options.configure(middleware=[checked], cors_allowed_origins=lambda origin: origin == ALLOWED)


@dataclass
class Pair:
    """Node's engine.io and txrealtime, each at its URL (no path)."""

    node: str
    txrealtime: str


@pytest.fixture
def pair(request: pytest.FixtureRequest) -> Any:
    """Both servers, from ``(node options, twistd arguments)`` given with ``indirect`` parametrization."""
    node_options, args = request.param
    process = subprocess.Popen(
        [node(), str(INTEROP / "eio_server.js"), json.dumps(node_options)],
        stdout=subprocess.PIPE, text=True, env={"NODE_PATH": str(NODE_MODULES), "PATH": "/usr/bin:/bin"},
    )
    assert process.stdout is not None
    node_port = json.loads(process.stdout.readline())["port"]
    options = Options()
    options.parseOptions(["--engineio", "--listen", "tcp:0", *args])  # type: ignore[no-untyped-call]
    service = make_process_service(options)
    port = cast(Any, reactor).listenTCP(0, service.site, interface="127.0.0.1")
    yield Pair(f"http://127.0.0.1:{node_port}", f"http://127.0.0.1:{port.getHost().port}")
    process.kill()
    process.wait(30)
    service.manager.shutdown()
    pytest_twisted.blockon(port.stopListening())


def seen(status: int, headers: Headers, body: bytes) -> dict[str, Any]:
    """What is compared of an answer: the status, the headers that matter, the body without its sid."""
    compared = {name: ", ".join(headers.getRawHeaders(name) or []) for name in COMPARED}
    if body:
        compared["content-type"] = (headers.getRawHeaders("content-type") or [""])[0]
    text = re.sub(r'"sid":"[^"]+"', '"sid":"SID"', body.decode("utf-8", "replace"))
    return {"status": status, **{k: v for k, v in compared.items() if v}, "body": text}


async def both(pair: Pair, method: str, path: str, headers: dict[str, str] | None = None,
               body: bytes | None = None) -> list[dict[str, Any]]:
    return [seen(*await raw_request(method, base + path, headers, body)) for base in (pair.node, pair.txrealtime)]


HANDSHAKE = "/engine.io/?EIO=4&transport=polling"
FEATURES = (
    {"initialPacket": "hi", "originList": [ALLOWED], "middleware": True,
     "cors": {"credentials": True, "exposedHeaders": ["X-A"], "maxAge": 600, "methods": ["GET", "POST"]}},
    ["--initial-packet", "hi", "--cors-exposed-header", "X-A", "--cors-max-age", "600", "--cors-method", "GET",
     "--cors-method", "POST", "--app", f"{HERE}:echo_checked"],
)


@pytest.mark.parametrize("pair", [FEATURES], indirect=True)
@pytest_twisted.ensureDeferred
async def test_cors_initial_packet_middleware_and_errors_as_node(pair: Pair) -> None:
    node_answer, ours = await both(pair, "GET", HANDSHAKE, {"Origin": ALLOWED})
    assert ours == node_answer
    assert ours["body"].endswith("\x1e4hi") and ours["x-checked"] == "yes"
    assert ours["access-control-expose-headers"] == "X-A"
    node_answer, ours = await both(pair, "GET", HANDSHAKE, {"Origin": "https://evil.example"})
    assert ours == node_answer and "access-control-allow-origin" not in ours
    preflight = {"Origin": ALLOWED, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-foo"}
    node_answer, ours = await both(pair, "OPTIONS", HANDSHAKE, preflight)
    assert ours == node_answer
    assert (ours["status"], ours["access-control-allow-methods"], ours["access-control-max-age"]) == (204, "GET,POST",
                                                                                                       "600")
    node_answer, ours = await both(pair, "GET", HANDSHAKE + "&deny=1", {"Origin": ALLOWED})
    assert (ours["status"], ours["x-checked"]) == (401, "yes")
    assert {**ours, "body": ""} == {**node_answer, "body": ""}  # Node's bare end() vs twisted.web's empty page
    node_answer, ours = await both(pair, "GET", HANDSHAKE + "&sid=nope")
    assert ours == node_answer
    assert ours["body"] == '{"code":1,"message":"Session ID unknown"}'  # compact, as Node's
    node_answer, ours = await both(pair, "GET", "/engine.io/?EIO=4&transport=tobi")
    assert ours == node_answer and ours["body"] == '{"code":0,"message":"Transport unknown"}'
    node_answer, ours = await both(pair, "GET", "/engine.io?EIO=4&transport=polling")  # no trailing slash
    assert (node_answer["status"], ours["status"]) == (404, 404)


@pytest.mark.parametrize("pair", [FEATURES], indirect=True)
@pytest_twisted.ensureDeferred
async def test_middleware_headers_go_with_the_101(pair: Pair) -> None:
    for base in (pair.node, pair.txrealtime):
        ws = await websocket_handshake(base + "/engine.io/?EIO=4&transport=websocket", origin=ALLOWED)
        assert not isinstance(ws, int), base
        assert ws.getheaders()["x-checked"] == "yes"
        assert ws.getheaders()["access-control-allow-origin"] == ALLOWED
        assert ws.recv().startswith("0{") and ws.recv() == "4hi"
        await threads.deferToThread(ws.close)
    assert await websocket_handshake(pair.txrealtime + "/engine.io/?EIO=4&transport=websocket&deny=1") == 401


@pytest.mark.parametrize("pair", [({"addTrailingSlash": False}, ["--no-trailing-slash"])], indirect=True)
@pytest_twisted.ensureDeferred
async def test_without_trailing_slash_as_node(pair: Pair) -> None:
    for path in ("/engine.io?EIO=4&transport=polling", HANDSHAKE):
        node_answer, ours = await both(pair, "GET", path)
        assert ours == node_answer and ours["status"] == 200


LIMITED = ({"maxHttpBufferSize": 1000}, ["--max-payload", "1000", "--app", f"{HERE}:echo"])


@pytest.mark.parametrize("pair", [LIMITED], indirect=True)
@pytest_twisted.ensureDeferred
async def test_oversize_post_gets_an_empty_413_as_node(pair: Pair) -> None:
    answers = []
    for base in (pair.node, pair.txrealtime):
        _, _, opened = await raw_request("GET", base + HANDSHAKE)
        sid = json.loads(opened[1:])["sid"]
        answers.append(seen(*await raw_request("POST", f"{base}{HANDSHAKE}&sid={sid}", body=b"4" + b"x" * 2000)))
    assert answers[1] == answers[0] == {"status": 413, "body": ""}


@pytest.mark.parametrize("pair", [LIMITED], indirect=True)
@pytest.mark.parametrize("case, reason", [("oversize-polling", "transport error"),
                                          ("oversize-websocket", "transport close")])
@pytest_twisted.ensureDeferred
async def test_engineio_client_reports_oversize_as_with_node(pair: Pair, case: str, reason: str) -> None:
    for _ in range(3):  # the answer and the session's end race on two connections: the reason must not change
        reports = [await node_peer("eio_parity_client.js", base, case) for base in (pair.node, pair.txrealtime)]
        assert reports[1] == reports[0] == {"closeReason": reason, "messages": [], "transport": case.split("-")[1]}


@pytest.mark.parametrize("pair", [LIMITED], indirect=True)
@pytest_twisted.ensureDeferred
async def test_1009_close_frame_without_reason_as_node(pair: Pair) -> None:
    import websocket

    frames = []
    for base in (pair.node, pair.txrealtime):
        ws = await websocket_handshake(base + "/engine.io/?EIO=4&transport=websocket")
        assert ws.recv().startswith("0{")

        def oversize(ws: Any = ws) -> tuple[int, bytes]:
            ws.send("4" + "x" * 2000)
            frame = ws.recv_data_frame(True)[1]
            return frame.opcode, frame.data

        frames.append(await threads.deferToThread(oversize))
        await threads.deferToThread(ws.close)
    assert frames[1] == frames[0] == (websocket.ABNF.OPCODE_CLOSE, (1009).to_bytes(2, "big"))


@pytest.mark.parametrize("pair", [LIMITED], indirect=True)
@pytest_twisted.ensureDeferred
async def test_force_base64_binary_on_websocket_as_node(pair: Pair) -> None:
    bases = (pair.node, pair.txrealtime)
    reports = [await node_peer("eio_parity_client.js", base, "base64-websocket") for base in bases]
    assert reports[1] == reports[0] == {"closeReason": "forced close", "messages": [{"binary": [1, 2, 3]}],
                                        "transport": "websocket"}
