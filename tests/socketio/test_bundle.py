"""The browser client served beside the endpoint (Node's serveClient), over loopback."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers

from tests.peers import http
from tests.servers import NODE_MODULES
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio.bundle import CLIENT_VERSION

DIST = Path(__file__).parent.parent.parent / "txrealtime" / "socketio" / "client_dist"
FILES = ["socket.io.js", "socket.io.min.js", "socket.io.esm.min.js", "socket.io.msgpack.min.js"]


def test_shipped_bundle_is_the_pinned_official_client() -> None:
    official = NODE_MODULES / "socket.io-client"
    assert CLIENT_VERSION == (official / "package.json").read_text().split('"version": "', 1)[1].split('"', 1)[0]
    for name in FILES + [f + ".map" for f in FILES]:
        assert (DIST / name).read_bytes() == (official / "dist" / name).read_bytes(), name
    assert (DIST / "LICENSE").read_bytes() == (official / "LICENSE").read_bytes()


@pytest.mark.parametrize("name", FILES + ["socket.io.min.js.map"])
@pytest_twisted.ensureDeferred
async def test_bundle_files_are_served(realtime: Realtime, name: str) -> None:
    running = await realtime.start_server()
    identity: dict[bytes | str, bytes | str] = {"Accept-Encoding": "identity"}
    response = await http.get(f"{running.url}/socket.io/{name}", headers=identity)
    assert response.code == 200
    kind = "json" if name.endswith(".map") else "javascript"
    assert response.headers.getRawHeaders("content-type") == [f"application/{kind}; charset=utf-8"]
    assert response.headers.getRawHeaders("cache-control") == ["public, max-age=0"]
    assert response.headers.getRawHeaders("etag") == [f'"{CLIENT_VERSION}"']
    assert await response.content() == (DIST / name).read_bytes()


@pytest_twisted.ensureDeferred
async def test_etag_and_gzip(realtime: Realtime) -> None:
    running = await realtime.start_server()
    url = f"{running.url}/socket.io/socket.io.min.js"
    for tag in (f'"{CLIENT_VERSION}"', f'W/"{CLIENT_VERSION}"'):
        if_none_match: dict[bytes | str, bytes | str] = {"If-None-Match": tag}
        unchanged = await http.get(url, headers=if_none_match)
        assert unchanged.code == 304 and await unchanged.content() == b""
    # A plain Agent: treq would decompress on its own and hide the encoding.
    agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
    zipped = await agent.request(b"GET", url.encode(), Headers({b"Accept-Encoding": [b"gzip, deflate"]}))
    assert zipped.headers.getRawHeaders(b"content-encoding") == [b"gzip"]
    assert gzip.decompress(await treq.content(zipped)) == (DIST / "socket.io.min.js").read_bytes()


@pytest_twisted.ensureDeferred
async def test_other_paths_and_opt_out_go_to_engineio(realtime: Realtime) -> None:
    running = await realtime.start_server()
    for path in ("socket.io.jsx", "other.js", "client_dist/VERSION", "socket.io.msgpack.js"):
        response = await http.get(f"{running.url}/socket.io/{path}")
        assert response.code == 400, path
        assert await response.json() == {"code": 0, "message": "Transport unknown"}
    off = await realtime.start_server(serve_client=False)
    response = await http.get(f"{off.url}/socket.io/socket.io.js")
    assert response.code == 400
    handshake = await http.get(f"{off.url}/socket.io/?EIO=4&transport=polling")
    assert handshake.code == 200
