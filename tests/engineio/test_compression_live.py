"""Compression over loopback: polling answers compressed as Node's engine.io compresses them (the same test
runs against both), and a decompression bomb sent by a raw WebSocket client."""

from __future__ import annotations

import base64
import gzip
import os
import socket
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import pytest_twisted
from twisted.internet import threads

from tests.engineio.targets import Target, open_polling, request, targets
from tests.fakes import NO_BOUNDED_INFLATE
from tests.peers import raw_request, until
from tests.servers import closes, serve
from txrealtime._autobahn import unmask
from txrealtime.engineio import CloseReason
from txrealtime.pytest_plugin import Realtime

BIG = "4" + "compress me " * 200


@pytest.fixture(params=["txrealtime", "node"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    with targets(request.param) as target:
        yield target


# The encoding each Accept-Encoding gets (checked against Node's accepts/negotiator by the "node" runs).
ACCEPTED = [
    ("gzip", "gzip"),
    ("deflate", "deflate"),
    ("gzip, deflate, br", "gzip"),
    ("deflate, gzip", "deflate"),
    ("gzip;q=0.5, deflate;q=0.8", "deflate"),
    ("*", "gzip"),
    ("gzip;q=0, *", "deflate"),
    ("br", None),
    ("identity", None),
    (None, None),
]


@pytest.mark.parametrize(("accept", "encoding"), ACCEPTED)
@pytest_twisted.ensureDeferred
async def test_polling_answer_compressed_as_node(target: Target, accept: str | None, encoding: str | None) -> None:
    sid = await open_polling(target)
    answer = await request("POST", f"{target.base}&sid={sid}", BIG.encode())
    assert (answer.status, answer.body) == (200, "ok")
    headers = {"Accept-Encoding": accept} if accept is not None else {}
    status, got, body = await raw_request("GET", f"{target.base}&sid={sid}", headers)  # the echo
    assert status == 200
    assert got.getRawHeaders(b"content-encoding", [None])[0] == (encoding.encode() if encoding else None)
    assert got.getRawHeaders(b"content-type") == [b"text/plain; charset=UTF-8"]
    assert got.getRawHeaders(b"vary") is None
    decoders: dict[str | None, Callable[[bytes], bytes]] = {"gzip": gzip.decompress, "deflate": zlib.decompress}
    inflate = decoders.get(encoding, bytes)
    assert inflate(body) == BIG.encode()


@pytest_twisted.ensureDeferred
async def test_small_answers_and_compressed_posts(target: Target) -> None:
    sid = await open_polling(target)
    # Content-Encoding on a POST is not acted on: a plain body is taken as it is.
    answer = await request("POST", f"{target.base}&sid={sid}", b"4" + b"s" * 1000, {"Content-Encoding": "gzip"})
    assert (answer.status, answer.body) == (200, "ok")
    _, got, body = await raw_request("GET", f"{target.base}&sid={sid}", {"Accept-Encoding": "gzip"})
    assert got.getRawHeaders(b"content-encoding") is None  # 1001 bytes: under the threshold
    assert body == b"4" + b"s" * 1000
    # A gzipped body is not a payload: the session ends (Node answers the POST 200 "ok", txrealtime 400).
    answer = await request("POST", f"{target.base}&sid={sid}", gzip.compress(b"4hello"), {"Content-Encoding": "gzip"})
    assert answer.status == (200 if target.name == "node" else 400)
    gone = await request("GET", f"{target.base}&sid={sid}")
    assert (gone.status, gone.json()) == (400, {"code": 1, "message": "Session ID unknown"})


def _bomb(size: int) -> bytes:
    """``"4"`` and ``size`` zero digits, deflated as one permessage-deflate message (made piecewise)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"0" * 1_000_000
    parts = [compressor.compress(b"4")]
    parts += [compressor.compress(chunk) for _ in range(size // len(chunk))]
    return (b"".join(parts) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def _send_bomb(port: int, bomb: bytes) -> tuple[str, int]:
    """A raw client: offer permessage-deflate, read the OPEN packet, send ``bomb`` as one compressed frame;
    return the extension the server accepted and the code of the close frame it answers with."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ).encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, data = data.partition(b"\r\n\r\n")
    extension = next(
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-extensions:")
    )
    mask = os.urandom(4)
    header = bytes([0xC1, 0x80 | 127]) + len(bomb).to_bytes(8, "big")  # FIN, RSV1, text; masked
    sock.sendall(header + mask + unmask(bomb, mask))
    try:
        while True:
            while len(data) < 2 or len(data) < 2 + (data[1] & 0x7F):
                more = sock.recv(65536)
                if not more:
                    raise AssertionError(f"connection closed without a close frame: {data!r}")
                data += more
            opcode, length = data[0] & 0x0F, data[1] & 0x7F  # the server's frames here are all short
            if opcode == 0x8:
                return extension, int.from_bytes(data[2:4], "big")
            data = data[2 + length :]
    finally:
        sock.close()


@pytest.mark.skipif(NO_BOUNDED_INFLATE is not None, reason=str(NO_BOUNDED_INFLATE))
@pytest_twisted.ensureDeferred
async def test_decompression_bomb_over_loopback(realtime: Realtime) -> None:
    """500 MB of zeros in one ~0.5 MB frame: closed with 1009 once max_payload is inflated, never all of it."""
    running, events = await serve(realtime, per_message_deflate=True)
    bomb = await threads.deferToThread(_bomb, 500_000_000)
    assert len(bomb) < 1_000_000  # the frame itself is within max_payload
    port = urlsplit(running.url).port
    assert port is not None
    tracemalloc.start()
    try:
        extension, code = await threads.deferToThread(_send_bomb, port, bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (extension, code) == ("permessage-deflate", 1009)
    assert peak < 50_000_000, f"{peak:,} bytes allocated at the peak"  # inflating it all would take 500 MB
    await until(lambda: bool(closes(events)), "the session to close")
    [(reason, description)] = closes(events)
    assert reason is CloseReason.TRANSPORT_ERROR
    assert "1009" in description
    client = await realtime.connect(running)  # nothing else disturbed
    assert await client.emit_with_ack("ack", "fine", timeout=10) == ("got", "fine")
