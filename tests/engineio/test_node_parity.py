"""txrealtime's wire against Node's engine.io serving the same requests with the same options.

Each test starts tests/interop/eio_server.js and ``twistd txrealtime --engineio`` (built in process by
``make_process_service`` from the same flags an operator types, or as a ``twistd`` process) and compares
what both answer: status, the headers that matter, bodies byte for byte (the sid left out); and what Node's
engine.io-client reports on each.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import pytest_twisted
import websocket
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.web.http import Request
from twisted.web.http_headers import Headers

from tests.peers import raw_request, until, websocket_handshake
from tests.servers import INTEROP, NODE_MODULES, Twistd, node, node_peer
from txrealtime.engineio import Handshake, MessageReceived, SessionEvent, SessionManager
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


def deny_by_query(handshake: Handshake) -> bool | str:
    """eio_server.js's ``denyQuery``: ``?deny=REASON`` refuses with that reason, ``?deny=`` without one."""
    deny = handshake.query.get("deny")
    return True if deny is None else deny or False


def echo_denying(manager: SessionManager, options: Options) -> None:
    """Echo, and allow_request as eio_server.js's ``denyQuery``."""
    echo(manager, options)
    options.configure(allow_request=deny_by_query)


def echo_binary_initial(manager: SessionManager, options: Options) -> None:
    """Echo, and a binary initial packet (``--initial-packet`` takes text: bytes go through the hook)."""
    echo(manager, options)
    options.configure(initial_packet=b"\x01\x02")


@dataclass
class NodeEngine:
    """tests/interop/eio_server.js running: its URL and the lines it printed after the first."""

    process: subprocess.Popen[str]
    url: str
    lines: list[dict[str, Any]] = field(default_factory=list)


def start_node(options: dict[str, Any]) -> NodeEngine:
    process = subprocess.Popen(
        [node(), str(INTEROP / "eio_server.js"), json.dumps(options)],
        stdout=subprocess.PIPE, text=True, env={"NODE_PATH": str(NODE_MODULES), "PATH": "/usr/bin:/bin"},
    )
    assert process.stdout is not None
    engine = NodeEngine(process, f"http://127.0.0.1:{json.loads(process.stdout.readline())['port']}")
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            engine.lines.append(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    return engine


def stop_node(engine: NodeEngine) -> None:
    engine.process.kill()
    engine.process.wait(30)


@dataclass
class Pair:
    """Node's engine.io and txrealtime, each at its URL (no path)."""

    node: str
    txrealtime: str
    engine: NodeEngine
    manager: SessionManager

    async def parked(self, base: str, sid: str) -> None:
        """Wait until the server at ``base`` holds a polling GET of ``sid`` (Node's engine says so)."""
        if base == self.node:
            await until(lambda: {"parked": sid} in self.engine.lines, f"Node's engine.io to hold a GET of {sid}")
        else:
            session = self.manager.get(sid)
            await until(lambda: session is not None and session.transport.writable, f"a GET of {sid} held")


@pytest.fixture
def pair(request: pytest.FixtureRequest) -> Any:
    """Both servers, from ``(node options, twistd arguments)`` given with ``indirect`` parametrization."""
    node_options, args = request.param
    engine = start_node(node_options)
    options = Options()
    options.parseOptions(["--engineio", "--listen", "tcp:0", *args])  # type: ignore[no-untyped-call]
    service = make_process_service(options)
    port = cast(Any, reactor).listenTCP(0, service.site, interface="127.0.0.1")
    yield Pair(engine.url, f"http://127.0.0.1:{port.getHost().port}", engine, service.manager)
    stop_node(engine)
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


WS_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
              "Sec-WebSocket-Version": "13"}


def upgrade(base: str, path: str, headers: dict[str, str] | None = None) -> Deferred[dict[str, Any]]:
    """Send an upgrade request by hand; fire with the answer read until the server closed the connection: its
    status line, content type and body bytes (``b""`` and nothing else if the server sent nothing)."""
    host, port = base.removeprefix("http://").split(":")

    def run() -> dict[str, Any]:
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {value}" for name, value in {**WS_HEADERS, **(headers or {})}.items()]
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            answer = b""
            while chunk := connection.recv(65536):  # the server closes the connection after its answer
                answer += chunk
        if not answer:
            return {"answer": b""}
        head, _, body = answer.partition(b"\r\n\r\n")
        status, *fields = head.decode("latin-1").split("\r\n")
        named = dict(line.lower().split(": ", 1) for line in fields)
        return {"status": status, "content-type": named.get("content-type"), "body": body}

    return threads.deferToThread(run)


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
    assert ours == node_answer
    assert (ours["status"], ours["x-checked"], ours["body"]) == (401, "yes", "")
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


@pytest.mark.parametrize("pair", [FEATURES], indirect=True)
@pytest_twisted.ensureDeferred
async def test_middleware_refusing_the_upgrade_as_node(pair: Pair) -> None:
    reports = [await node_peer("eio_parity_client.js", base, "deny-websocket") for base in (pair.node, pair.txrealtime)]
    for report in reports:  # what engine.io-client makes of it is the same...
        assert {**report, "detail": {**report["detail"], "description": None}} == {
            "closeReason": "transport error", "errors": ["Error: websocket error"], "messages": [], "transport": None,
            "detail": {"message": "websocket error", "description": None, "code": None, "reason": None,
                       "wasClean": None, "status": None},
        }
    # ...but for the words of its WebSocket library: Node's engine.io drops the connection without an answer
    # (its middleware's writeHead and end on an upgrade destroy the socket), txrealtime sends the middleware's 401.
    assert [report["detail"]["description"] for report in reports] == [
        {"message": "socket hang up"}, {"message": "Unexpected server response: 401"}]
    path = "/engine.io/?EIO=4&transport=websocket&deny=1"
    assert await upgrade(pair.node, path) == {"answer": b""}
    assert await websocket_handshake(pair.txrealtime + path) == 401


@pytest.mark.parametrize("pair", [({"addTrailingSlash": False}, ["--no-trailing-slash"])], indirect=True)
@pytest_twisted.ensureDeferred
async def test_without_trailing_slash_as_node(pair: Pair) -> None:
    for path in ("/engine.io?EIO=4&transport=polling", HANDSHAKE):
        node_answer, ours = await both(pair, "GET", path)
        assert ours == node_answer and ours["status"] == 200


DENYING = ({"denyQuery": True}, ["--app", f"{HERE}:echo_denying"])


@pytest.mark.parametrize("pair", [DENYING], indirect=True)
@pytest.mark.parametrize(("method", "query", "status", "body"), [
    ("GET", "EIO=4&transport=tobi", 400, '{"code":0,"message":"Transport unknown"}'),
    ("GET", "EIO=4&transport=polling&sid=nope", 400, '{"code":1,"message":"Session ID unknown"}'),
    ("POST", "EIO=4&transport=polling&sid=nope", 400, '{"code":1,"message":"Session ID unknown"}'),
    ("POST", "EIO=4&transport=polling", 400, '{"code":2,"message":"Bad handshake method"}'),
    ("POST", "EIO=4&transport=websocket", 400, '{"code":2,"message":"Bad handshake method"}'),
    ("GET", "EIO=4&transport=websocket", 400, '{"code":3,"message":"Bad request"}'),
    ("GET", "EIO=4&transport=polling&deny=go+away", 403, '{"code":4,"message":"go away"}'),
    ("GET", "EIO=4&transport=polling&deny=%C3%A9t%C3%A9+%E2%9C%93", 403, '{"code":4,"message":"été ✓"}'),
    ("GET", "EIO=4&transport=polling&deny=", 403, '{"code":4,"message":"Forbidden"}'),
    ("GET", "EIO=3&transport=polling", 400, '{"code":5,"message":"Unsupported protocol version"}'),
])
@pytest_twisted.ensureDeferred
async def test_error_answers_as_node(pair: Pair, method: str, query: str, status: int, body: str) -> None:
    answers = []
    for base in (pair.node, pair.txrealtime):
        code, headers, data = await raw_request(method, f"{base}/engine.io/?{query}", body=b"4x" if method == "POST"
                                                else None)
        answers.append((code, headers.getRawHeaders("content-type"), data))
    assert answers[1] == answers[0] == (status, ["application/json"], body.encode())  # byte for byte


@pytest.mark.parametrize("pair", [DENYING], indirect=True)
@pytest_twisted.ensureDeferred
async def test_refused_upgrades_as_node(pair: Pair) -> None:
    """Node's engine.io answers a refused upgrade on the socket itself: 400 whatever the code, the bare message."""
    refusals = [
        ("EIO=4&transport=tobi", b"Transport unknown"),
        ("EIO=4&transport=websocket&sid=nope", b"Session ID unknown"),
        ("EIO=4&transport=websocket&deny=go+away", b"go away"),
        ("EIO=4&transport=websocket&deny=%C3%A9t%C3%A9", "été".encode()),
        ("EIO=4&transport=websocket&deny=", b"Forbidden"),
    ]
    for query, message in refusals:
        answers = [await upgrade(base, f"/engine.io/?{query}") for base in (pair.node, pair.txrealtime)]
        assert answers[1] == answers[0] == {"status": "HTTP/1.1 400 Bad Request", "content-type": "text/html",
                                            "body": message}, query
    # An upgrade naming a session of another protocol revision: Bad request (PROTOCOL_MISMATCH).
    answers = []
    for base in (pair.node, pair.txrealtime):
        _, _, opened = await raw_request("GET", base + HANDSHAKE)
        sid = json.loads(opened[1:])["sid"]
        answers.append(await upgrade(base, f"/engine.io/?EIO=3&transport=websocket&sid={sid}"))
    assert answers[1] == answers[0] == {"status": "HTTP/1.1 400 Bad Request", "content-type": "text/html",
                                        "body": b"Bad request"}


LIMITED = ({"maxHttpBufferSize": 1000}, ["--max-payload", "1000", "--app", f"{HERE}:echo"])


@pytest.mark.parametrize("pair", [LIMITED], indirect=True)
@pytest_twisted.ensureDeferred
async def test_oversize_post_leaves_the_parked_poll_as_node(pair: Pair) -> None:
    """A poll held, then a POST over the limit: 413 with an empty body and nothing more. The held poll is
    answered by what comes next (here the echo of the next POST), not by the end of the session."""
    outcomes = []
    for base in (pair.node, pair.txrealtime):
        _, _, opened = await raw_request("GET", base + HANDSHAKE)
        url = f"{base}{HANDSHAKE}&sid={json.loads(opened[1:])['sid']}"
        poll = Deferred.fromCoroutine(raw_request("GET", url))
        await pair.parked(base, json.loads(opened[1:])["sid"])
        oversize = seen(*await raw_request("POST", url, body=b"4" + b"x" * 2000))
        after = seen(*await raw_request("POST", url, body=b"4after"))
        held = await poll
        outcomes.append((oversize, after["body"], held[0], held[2]))
    assert outcomes[1] == outcomes[0] == ({"status": 413, "body": ""}, "ok", 200, b"4after")


@pytest.mark.parametrize("pair", [LIMITED], indirect=True)
@pytest.mark.parametrize(("case", "reason", "detail"), [
    ("oversize-polling", "transport error", {"message": "xhr post error", "description": 413, "code": None,
                                             "reason": None, "wasClean": None, "status": 413}),
    ("oversize-websocket", "transport close", {"message": None, "description": "websocket connection closed",
                                               "code": 1009, "reason": "", "wasClean": True, "status": None}),
])
@pytest_twisted.ensureDeferred
async def test_engineio_client_reports_oversize_as_with_node(pair: Pair, case: str, reason: str,
                                                             detail: dict[str, Any]) -> None:
    """engine.io-client's own account: the close reason, the 413 of its POST, or the WebSocket's 1009 close
    frame with its empty reason."""
    reports = [await node_peer("eio_parity_client.js", base, case) for base in (pair.node, pair.txrealtime)]
    errors = ["Error: xhr post error"] if case == "oversize-polling" else []
    assert reports[1] == reports[0] == {"closeReason": reason, "detail": detail, "errors": errors, "messages": [],
                                        "transport": case.split("-")[1]}


@pytest.mark.parametrize("pair", [LIMITED], indirect=True)
@pytest_twisted.ensureDeferred
async def test_1009_close_frame_without_reason_as_node(pair: Pair) -> None:
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
    assert reports[1] == reports[0] == {"closeReason": "forced close", "detail": None, "errors": [],
                                        "messages": [{"binary": [1, 2, 3]}], "transport": "websocket"}


BINARY_INITIAL = ({"initialPacketBytes": [1, 2]}, ["--app", f"{HERE}:echo_binary_initial"])


@pytest.mark.parametrize("pair", [BINARY_INITIAL], indirect=True)
@pytest_twisted.ensureDeferred
async def test_binary_initial_packet_as_node(pair: Pair) -> None:
    node_answer, ours = await both(pair, "GET", HANDSHAKE)
    assert ours == node_answer
    assert ours["body"].endswith("\x1ebAQI=")  # after the OPEN packet: the bytes as a "b" + base64 packet
    frames = []
    for base in (pair.node, pair.txrealtime):
        ws = await websocket_handshake(base + "/engine.io/?EIO=4&transport=websocket")

        def two(ws: Any = ws) -> list[tuple[int, bytes]]:
            return [(frame.opcode, frame.data) for frame in (ws.recv_frame(), ws.recv_frame())]

        opening, initial = await threads.deferToThread(two)
        frames.append((opening[0], initial))
        await threads.deferToThread(ws.close)
    assert frames[1] == frames[0] == (websocket.ABNF.OPCODE_TEXT, (websocket.ABNF.OPCODE_BINARY, b"\x01\x02"))
    for case in ("initial-polling", "initial-websocket"):
        reports = [await node_peer("eio_parity_client.js", base, case) for base in (pair.node, pair.txrealtime)]
        assert reports[1] == reports[0] == {"closeReason": "forced close", "detail": None, "errors": [],
                                            "messages": [{"binary": [1, 2]}], "transport": case.split("-")[1]}


@pytest.fixture
def cors_pair() -> Iterator[tuple[str, str]]:
    """Node's engine.io with the cors package's allowedHeaders and credentials: false, and ``twistd txrealtime``
    (a process) with the flags that say the same."""
    engine = start_node({"cors": {"origin": [ALLOWED], "allowedHeaders": ["X-Token", "X-Trace"],
                                  "credentials": False}})
    server = Twistd("--engineio", "--cors-origin", ALLOWED, "--cors-allowed-header", "X-Token",
                    "--cors-allowed-header", "X-Trace", "--no-cors-credentials", "--app", f"{HERE}:echo")
    yield engine.url, server.url
    server.stop()
    stop_node(engine)


@pytest_twisted.ensureDeferred
async def test_cors_flags_through_twistd_as_node(cors_pair: tuple[str, str]) -> None:
    requests: list[tuple[str, dict[str, str]]] = [
        ("OPTIONS", {"Origin": ALLOWED, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "x-token, x-other"}),
        ("GET", {"Origin": ALLOWED}),
    ]
    answers = [[seen(*await raw_request(method, base + HANDSHAKE, headers)) for method, headers in requests]
               for base in cors_pair]
    assert answers[1] == answers[0]
    preflight, actual = answers[1]
    assert preflight == {"status": 204, "access-control-allow-origin": ALLOWED, "vary": "Origin",
                         "access-control-allow-methods": "GET,HEAD,PUT,PATCH,POST,DELETE",
                         "access-control-allow-headers": "X-Token,X-Trace", "body": ""}
    assert actual["access-control-allow-origin"] == ALLOWED and "access-control-allow-credentials" not in actual
    # The one departure (docs/engineio.md, CORS): to an origin not listed the cors package still sends Vary and
    # the preflight's methods and headers (without Access-Control-Allow-Origin, so the browser refuses all
    # the same); txrealtime sends no CORS header at all.
    other = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    node_answer, ours = [seen(*await raw_request("OPTIONS", base + HANDSHAKE, other)) for base in cors_pair]
    assert node_answer == {"status": 204, "vary": "Origin", "body": "",
                           "access-control-allow-methods": "GET,HEAD,PUT,PATCH,POST,DELETE",
                           "access-control-allow-headers": "X-Token,X-Trace"}
    assert ours == {"status": 204, "body": ""}
