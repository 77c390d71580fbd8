"""The HTTP edge over real loopback: CORS with "*", origin lists, the header deadline, connections per address."""

from __future__ import annotations

import socket
import time
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from tests.peers import base, handshake, http, until, websocket_handshake
from tests.servers import serve
from txrealtime.engineio import EngineIOOptions
from txrealtime.pytest_plugin import Realtime
from txrealtime.testing import TestServer
from txrealtime.web import BoundedSite

WAIT = 20.0
"""Seconds a raw socket waits for the server before the test fails (a bound against hanging, not a measurement)."""


def bounded(running: TestServer) -> BoundedSite:
    """The server's site, whose limits the test changes."""
    site = running.site
    assert isinstance(site, BoundedSite)
    return site


def port_of(running: TestServer) -> int:
    return int(running.port.getHost().port)


def request_line(port: int, query: str = "EIO=4&transport=polling") -> bytes:
    return f"GET /socket.io/?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    sock.settimeout(WAIT)
    received = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response with a ``Content-Length`` from a kept-alive connection: (head, body)."""
    sock.settimeout(WAIT)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, "connection closed in the middle of a response"
        body += chunk
    return head, body


def partial_request(port: int, data: bytes) -> bytes:
    """Send ``data`` (an unfinished request, or nothing) and then nothing more; return what the server sent."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def header_clocks() -> list[object]:
    names = {"_headers_timed_out", "forceAbortClient"}
    return [c for c in cast(Any, reactor).getDelayedCalls() if getattr(c.func, "__name__", "") in names]


# -- CORS and origins ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_cors_star_is_a_literal_star_without_credentials(realtime: Realtime) -> None:
    running, _ = await serve(realtime, cors_allowed_origins="*")
    for origin in ("null", "https://evil.example"):
        code, _, headers = await handshake(running, {"Origin": origin})
        assert code == 200
        assert headers.getRawHeaders("access-control-allow-origin") == ["*"]
        assert not headers.hasHeader("access-control-allow-credentials")
        asking: dict[bytes | str, bytes | str] = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        preflight = await http.request("OPTIONS", base(running), headers=asking)
        assert preflight.code == 204
        assert preflight.headers.getRawHeaders("access-control-allow-origin") == ["*"]
        assert preflight.headers.getRawHeaders("access-control-allow-methods") == ["GET,HEAD,PUT,PATCH,POST,DELETE"]
        assert not preflight.headers.hasHeader("access-control-allow-credentials")

    # A list keeps reflecting the listed origin, with credentials, and says nothing to others.
    listed, _ = await serve(realtime, cors_allowed_origins=["https://app.example"])
    _, _, headers = await handshake(listed, {"Origin": "https://app.example"})
    assert headers.getRawHeaders("access-control-allow-origin") == ["https://app.example"]
    assert headers.getRawHeaders("access-control-allow-credentials") == ["true"]
    _, _, headers = await handshake(listed, {"Origin": "null"})
    assert not headers.hasHeader("access-control-allow-origin")
    assert not headers.hasHeader("access-control-allow-credentials")


def test_origins_must_be_lists_not_strings() -> None:
    with pytest.raises(TypeError, match="allowed_origins must be a list"):
        EngineIOOptions(allowed_origins="https://good.example")
    with pytest.raises(TypeError, match="allowed_origins must be a list"):
        EngineIOOptions(allowed_origins="*")
    with pytest.raises(TypeError, match='cors_allowed_origins must be "\\*" or a list'):
        EngineIOOptions(cors_allowed_origins="https://good.example")
    assert EngineIOOptions(cors_allowed_origins="*").cors_allowed_origins == "*"
    assert list(EngineIOOptions(allowed_origins=("https://good.example",)).allowed_origins or []) == [
        "https://good.example"
    ]


@pytest_twisted.ensureDeferred
async def test_part_of_an_allowed_origin_is_refused(realtime: Realtime) -> None:
    running, _ = await serve(realtime, allowed_origins=["https://good.example"])
    ws_url = f"{running.url}/socket.io/?EIO=4&transport=websocket"
    for origin in ("h", "https://good", "good.example", "https://good.example.evil"):
        code, _, _ = await handshake(running, {"Origin": origin})
        assert code == 403, origin
        assert await websocket_handshake(ws_url, origin=origin) == 400, origin  # an upgrade: 400, as Node
    code, _, _ = await handshake(running, {"Origin": "https://good.example"})
    assert code == 200


# -- header deadline ------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_unfinished_headers_get_408_and_a_close_while_others_carry_on(realtime: Realtime) -> None:
    running, _ = await serve(realtime)
    bounded(running).header_timeout = 0.3
    port = port_of(running)
    in_request_line = threads.deferToThread(partial_request, port, b"GET /socket.io/?EIO=4&transp")
    in_headers = threads.deferToThread(partial_request, port, request_line(port) + b"User-Agent: drip")
    silent = threads.deferToThread(partial_request, port, b"")
    # A polling client beside them (its polls park with complete headers) is not disturbed.
    client = await realtime.connect(running, transports=["polling"])
    assert await client.emit_with_ack("ack", "fine", timeout=10) == ("got", "fine")
    for answer in (await in_request_line, await in_headers, await silent):
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
        assert b"\r\nConnection: close\r\n" in answer
    assert await client.emit_with_ack("ack", "still", timeout=10) == ("got", "still")
    await until(lambda: not header_clocks(), "no header clock or abort timer left behind")


@pytest_twisted.ensureDeferred
async def test_kept_alive_connection_gets_a_new_deadline_per_request(realtime: Realtime) -> None:
    running, _ = await serve(realtime)
    bounded(running).header_timeout = 0.3
    port = port_of(running)

    def converse() -> tuple[bytes, bytes, bytes]:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request_line(port) + b"\r\n")
            first, _ = read_response(sock)
            time.sleep(1.0)  # idle between requests, longer than the deadline: no clock runs
            sock.sendall(request_line(port) + b"\r\n")
            second, _ = read_response(sock)
            sock.sendall(request_line(port))  # the next request's headers never end
            return first, second, read_until_closed(sock)

    first, second, third = await threads.deferToThread(converse)
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
    assert third.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), third
    await until(lambda: not header_clocks(), "no header clock or abort timer left behind")


@pytest_twisted.ensureDeferred
async def test_parked_long_poll_outlives_the_header_deadline(realtime: Realtime) -> None:
    running, _ = await serve(realtime, ping_interval=1, ping_timeout=5)
    bounded(running).header_timeout = 0.2
    _, body, _ = await handshake(running)
    sid = body.split('"sid":"', 1)[1].split('"', 1)[0]
    # Parked until the first ping, well after the header deadline would have struck.
    response = await http.get(f"{base(running)}&sid={sid}")
    assert response.code == 200
    assert await response.text() == "2"
    assert not header_clocks()


@pytest_twisted.ensureDeferred
async def test_websocket_outlives_the_header_deadline(realtime: Realtime) -> None:
    running, _ = await serve(realtime, ping_interval=1, ping_timeout=5)
    bounded(running).header_timeout = 0.2
    ws = await websocket_handshake(f"{running.url}/socket.io/?EIO=4&transport=websocket")
    assert (await threads.deferToThread(ws.recv)).startswith("0{")
    assert await threads.deferToThread(ws.recv) == "2"  # the first ping, a second later
    await threads.deferToThread(ws.send, "3")
    await threads.deferToThread(ws.send, "40")
    assert (await threads.deferToThread(ws.recv)).startswith('40{"sid":')
    await threads.deferToThread(ws.close)


def test_header_timeout_and_connection_cap_are_validated() -> None:
    from twisted.web.resource import IResource, Resource

    with pytest.raises(ValueError, match="header_timeout"):
        BoundedSite(cast(IResource, Resource()), header_timeout=0)
    with pytest.raises(ValueError, match="max_connections_per_ip"):
        BoundedSite(cast(IResource, Resource()), max_connections_per_ip=0)


# -- connections per address ----------------------------------------------------------------


def refused_at_once(port: int) -> bool:
    """Connect and send nothing: True if the server closes the connection without a word."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        return read_until_closed(sock) == b""


def accepted_again(port: int) -> bytes:
    """Retry (bounded) until a handshake on a new connection is answered; return the answer's head."""
    for _ in range(500):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            try:
                sock.sendall(request_line(port) + b"\r\n")
                head, _ = read_response(sock)
                return head
            except (AssertionError, OSError):
                pass  # refused: the server has not yet seen a connection close
        time.sleep(0.02)
    raise AssertionError("never accepted again")


@pytest_twisted.ensureDeferred
async def test_connections_per_address_are_capped(realtime: Realtime) -> None:
    running, _ = await serve(realtime)
    bounded(running).max_connections_per_ip = 2
    port = port_of(running)
    ws = await websocket_handshake(f"{running.url}/socket.io/?EIO=4&transport=websocket")
    assert (await threads.deferToThread(ws.recv)).startswith("0{")
    kept = await threads.deferToThread(socket.create_connection, ("127.0.0.1", port))
    try:
        assert await threads.deferToThread(refused_at_once, port)
        # The WebSocket took its connection over from twisted.web; closing it still frees the slot.
        await threads.deferToThread(ws.close)
        assert (await threads.deferToThread(accepted_again, port)).startswith(b"HTTP/1.1 200")

        def use_kept() -> bytes:
            kept.sendall(request_line(port) + b"\r\n")
            return read_response(kept)[0]

        assert (await threads.deferToThread(use_kept)).startswith(b"HTTP/1.1 200")
    finally:
        kept.close()
