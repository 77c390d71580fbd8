"""Hand-driven peers for tests that speak the wire protocol themselves over loopback, and waiting helpers."""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Callable
from typing import Any, cast

import treq
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer

from txrealtime.testing import TestServer

# Connections are not kept alive, so no test leaves one open behind it.
http = treq.client.HTTPClient(cast(IAgent, Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))))


async def raw_request(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, Headers, bytes]:
    """One request through a bare Agent: status, headers and body exactly as sent (treq would
    inflate a gzip answer and drop its ``Content-Encoding``)."""
    from io import BytesIO

    agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
    producer = cast(IBodyProducer, FileBodyProducer(BytesIO(body))) if body is not None else None
    raw_headers = Headers({k: [v] for k, v in (headers or {}).items()})
    response = await agent.request(method.encode(), url.encode(), raw_headers, producer)
    return response.code, response.headers, await treq.content(response)


async def until(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait, turn by turn of the reactor, until ``condition()``; fail after ``limit`` seconds."""
    for _ in range(int(limit * 100)):
        if condition():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


class PollingPeer:
    """An Engine.IO polling session driven by hand: raw payloads in, raw payloads out."""

    def __init__(self, url: str, path: str = "/socket.io/") -> None:
        self.base = f"{url}{path}?EIO=4&transport=polling"
        self.sid = ""

    async def open(self, namespace_connect: str | None = "40") -> None:
        """Handshake, then (unless ``None``) send ``namespace_connect`` and read the CONNECT answer."""
        body = await (await http.get(self.base)).text()
        self.sid = json.loads(body[1:])["sid"]
        if namespace_connect is not None:
            await self.post(namespace_connect)
            assert (await self.get()).startswith("40{")

    async def post(self, payload: str | bytes) -> str:
        """POST a payload; return the answer's body (``ok`` when accepted)."""
        data = payload.encode() if isinstance(payload, str) else payload
        response = await http.post(f"{self.base}&sid={self.sid}", data=data)
        return str(await response.text())

    async def get(self) -> str:
        """Poll once; return the payload (waits while the server has nothing to send)."""
        return str(await (await http.get(f"{self.base}&sid={self.sid}")).text())


def base(running: TestServer) -> str:
    """The Engine.IO polling URL of a server started with ``realtime.start_server``."""
    return f"{running.url}/socket.io/?EIO=4&transport=polling"


async def handshake(running: TestServer, headers: dict[bytes | str, bytes | str] | None = None) -> tuple[int, Any, Any]:
    """A polling handshake: the status code, body and headers of the answer."""
    response = await http.get(base(running), headers=headers)
    body = await response.text()
    return response.code, body, response.headers


def sid_of(body: str) -> str:
    """The session id in a handshake's OPEN packet."""
    return str(json.loads(body[1:])["sid"])


def websocket_handshake(url: str, **kwargs: Any) -> Deferred[Any]:
    """Open a raw WebSocket with websocket-client in a thread; fire with the status, or the open socket."""
    import websocket

    def run() -> Any:
        try:
            return websocket.create_connection(url.replace("http", "ws", 1), timeout=10, **kwargs)
        except websocket.WebSocketBadStatusException as e:
            return e.status_code

    return threads.deferToThread(run)


def masked_text_frame(text: str) -> bytes:
    """A client's WebSocket text frame (masked, under 126 bytes)."""
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81, 0x80 | len(payload)])  # FIN + text; masked, short length
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def open_and_stop_reading(port: int, receive_buffer: int = 4096) -> socket.socket:
    """A raw WebSocket: handshake, join the default namespace, then never read again (``receive_buffer``
    bytes of socket buffer: a small one makes the server's buffers fill sooner, and reading later slower)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: leave every frame after the headers unread
    assert head.startswith(b"HTTP/1.1 101"), head
    sock.sendall(masked_text_frame("40"))
    return sock
