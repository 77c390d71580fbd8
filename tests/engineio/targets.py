"""Two Engine.IO echo servers on loopback that the same raw-wire test can run against: txrealtime's, and
Node's engine.io (the reference), with the same hooks on both. Plus raw HTTP and WebSocket helpers."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import pytest_twisted
import treq
import websocket
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.peers import http, until
from tests.servers import INTEROP, NODE_MODULES, node
from txrealtime.engineio import (
    EngineIOOptions,
    EngineIOResource,
    Handshake,
    MessageReceived,
    SessionEvent,
    SessionManager,
)

PATH = "/engine.io/"

# Node's engine.io with Engine.IO's default timings, an echo, the same two header hooks and allowRequest as
# HOOKS; it prints one JSON line per connection_error, and one each time a polling GET is parked.
NODE_ENGINE = r"""
const http = require("http");
const { Server } = require("engine.io");
const server = http.createServer();
const engine = new Server({
  allowRequest: (req, callback) => {
    const deny = new URL(req.url, "http://x").searchParams.get("deny");
    callback(deny || null, !deny);
  },
});
engine.attach(server, { path: "/engine.io" });
engine.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
  // After the handshake's own: each later "ready" of the polling transport is a parked GET.
  if (socket.transport.name === "polling") {
    socket.transport.on("ready", () => console.log(JSON.stringify({ parked: socket.id })));
  }
});
engine.on("initial_headers", (headers) => { headers["X-Initial"] = "yes"; });
engine.on("headers", (headers, req) => { headers["X-Every"] = req._query.sid ? "later" : "first"; });
engine.on("connection_error", (err) => {
  const context = {};
  for (const [key, value] of Object.entries(err.context || {})) context[key] = String(value);
  console.log(JSON.stringify({ code: err.code, message: err.message, context }));
});
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: server.address().port })));
"""


def initial_headers(request: Handshake, sid: str) -> dict[str, str]:
    return {"X-Initial": "yes"}


def every_headers(request: Handshake, sid: str) -> dict[str, str]:
    return {"X-Every": "later" if "sid" in request.query else "first"}


def deny_by_query(request: Handshake) -> bool | str:
    return request.query.get("deny") or True


HOOKS = EngineIOOptions(initial_headers=initial_headers, headers=every_headers, allow_request=deny_by_query)
"""What the Node engine does, in txrealtime's options."""


@dataclass
class Target:
    """One Engine.IO echo server on loopback: ``txrealtime`` (with its event list) or ``node``."""

    name: str
    url: str
    manager: SessionManager | None = None
    events: list[SessionEvent] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    """What the Node engine printed since it started, lines taken by :meth:`node_line` left out."""

    @property
    def base(self) -> str:
        return f"{self.url}{PATH}?EIO=4&transport=polling"

    def ws_url(self, sid: str | None = None) -> str:
        url = f"{self.url.replace('http', 'ws', 1)}{PATH}?EIO=4&transport=websocket"
        return url if sid is None else f"{url}&sid={sid}"

    async def node_line(self, key: str) -> dict[str, Any]:
        """Take the first line the Node engine printed with ``key`` (``code`` or ``parked``), waiting for it."""
        await until(lambda: any(key in line for line in self.lines), f"Node's engine.io to print a {key!r} line")
        line = next(line for line in self.lines if key in line)
        self.lines.remove(line)
        return line


@contextmanager
def txrealtime_target(options: EngineIOOptions = HOOKS) -> Iterator[Target]:
    """txrealtime's echo server with ``options``; stopped on leaving (outside the reactor: fixture code)."""
    manager = SessionManager(options)
    root = Resource()
    root.putChild(b"engine.io", cast(Any, EngineIOResource(manager)))
    port: Any = cast(Any, reactor).listenTCP(0, Site(root), interface="127.0.0.1")
    target = Target("txrealtime", f"http://127.0.0.1:{port.getHost().port}", manager)

    def on_event(event: SessionEvent) -> None:
        target.events.append(event)
        if isinstance(event, MessageReceived):
            manager.send(event.sid, event.data)

    manager.subscribe(on_event)
    try:
        yield target
    finally:
        manager.shutdown(drop_lingering=True)
        pytest_twisted.blockon(port.stopListening())


@contextmanager
def node_target() -> Iterator[Target]:
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    process = subprocess.Popen([node(), "-e", NODE_ENGINE], stdout=subprocess.PIPE, text=True, env=env, cwd=INTEROP)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise AssertionError("Node's engine.io did not start")
    target = Target("node", f"http://127.0.0.1:{json.loads(line)['port']}", process=process)
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            target.lines.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield target
    finally:
        process.kill()
        process.wait(30)
        reader.join(30)


def targets(name: str) -> AbstractContextManager[Target]:
    """The server a test parametrized over ``["txrealtime", "node"]`` runs against."""
    return txrealtime_target() if name == "txrealtime" else node_target()


# -- raw HTTP ------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: str
    headers: Any
    """twisted's ``Headers``."""

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> list[str]:
        return [v.decode() for v in self.headers.getRawHeaders(name.encode(), [])]


async def request(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
    response: treq.response._Response = await http.request(method, url, data=body, headers=cast(Any, headers))
    return Answer(response.code, await response.text(), response.headers)


async def open_polling(target: Target) -> str:
    answer = await request("GET", target.base)
    assert answer.status == 200 and answer.body.startswith("0{"), answer
    sid: str = json.loads(answer.body[1:])["sid"]
    return sid


def poll(target: Target, sid: str) -> Deferred[Answer]:
    """A GET for ``sid``, left pending: the server parks it until it has something to send."""
    return Deferred.fromCoroutine(request("GET", f"{target.base}&sid={sid}"))


async def parked(target: Target, sid: str) -> None:
    """Wait until the server holds a GET for ``sid`` (txrealtime's session says so; Node's engine prints it)."""
    if target.manager is not None:
        await until(lambda: _parked(target, sid), f"a GET parked for {sid}")
    else:
        assert await target.node_line("parked") == {"parked": sid}


def _parked(target: Target, sid: str) -> bool:
    assert target.manager is not None
    session = target.manager.get(sid)
    return session is not None and session.transport.writable


# -- raw WebSocket -------------------------------------------------------------------------


def ws_connect(url: str) -> Deferred[websocket.WebSocket]:
    return threads.deferToThread(lambda: websocket.create_connection(url, timeout=10))


def ws_send(ws: websocket.WebSocket, text: str) -> Deferred[Any]:
    return threads.deferToThread(ws.send, text)


def ws_frame(ws: websocket.WebSocket) -> Deferred[tuple[int, bytes]]:
    """The next frame, control frames included: ``(opcode, payload)``."""

    def read() -> tuple[int, bytes]:
        opcode, frame = ws.recv_data_frame(control_frame=True)
        return opcode, frame.data

    return threads.deferToThread(read)


async def ws_upgrade(target: Target, sid: str) -> websocket.WebSocket:
    """Upgrade polling session ``sid`` to a WebSocket: probe, then UPGRADE."""
    ws = await ws_connect(target.ws_url(sid))
    await ws_send(ws, "2probe")
    assert await ws_frame(ws) == (websocket.ABNF.OPCODE_TEXT, b"3probe")
    await ws_send(ws, "5")
    return ws


async def ws_echo(ws: websocket.WebSocket, text: str) -> None:
    """The WebSocket works: a message comes back (pings answered on the way)."""
    await ws_send(ws, "4" + text)
    while True:
        frame = await ws_frame(ws)
        if frame == (websocket.ABNF.OPCODE_TEXT, b"2"):
            await ws_send(ws, "3")
            continue
        assert frame == (websocket.ABNF.OPCODE_TEXT, ("4" + text).encode()), frame
        return


def ws_close(ws: websocket.WebSocket) -> Deferred[Any]:
    return threads.deferToThread(ws.close)
