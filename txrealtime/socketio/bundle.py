"""The official browser client, served beside the endpoint as Node's ``serveClient`` does.

``GET {path}socket.io.js`` (and ``socket.io.min.js``, ``socket.io.esm.min.js``,
``socket.io.msgpack.min.js`` and their ``.map`` files) answers the
``socket.io-client`` bundle shipped in ``client_dist/`` (MIT licence beside
it; ``tools/update-client-bundle`` refreshes it), with the client's version as
``ETag``, ``304`` on ``If-None-Match``, ``Cache-Control: public, max-age=0``,
and gzip when the browser accepts it. Every other request goes to the
Engine.IO resource.
"""

from __future__ import annotations

import gzip
import re
from functools import cache
from importlib import resources

from twisted.web.http import Request
from twisted.web.resource import Resource

from ..engineio import EngineIOResource

__all__ = ["CLIENT_VERSION", "SocketIOResource", "client_file"]

_FILES = re.compile(r"socket\.io(\.msgpack|\.esm)?(\.min)?\.js(\.map)?")

CLIENT_VERSION = resources.files(__package__).joinpath("client_dist", "VERSION").read_text().strip()
"""The version of the ``socket.io-client`` bundle served."""


@cache
def client_file(name: str, compressed: bool = False) -> bytes | None:
    """The bytes of one bundle file (gzipped if ``compressed``), or ``None`` if there is no such file."""
    if not _FILES.fullmatch(name):
        return None
    path = resources.files(__package__).joinpath("client_dist", name)
    if not path.is_file():
        return None
    data = path.read_bytes()
    return gzip.compress(data, mtime=0) if compressed else data


class SocketIOResource(Resource):
    """A Socket.IO endpoint: the browser client's files, and Engine.IO for everything else."""

    isLeaf = True
    reads_form_args = False
    """As :attr:`EngineIOResource.reads_form_args`: form bodies sent to it are not parsed into ``request.args``."""

    def __init__(self, engine: EngineIOResource, serve_client: bool = True) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.engine = engine
        self.serve_client = serve_client

    def render(self, request: Request) -> object:
        postpath: list[bytes] = getattr(request, "postpath", None) or []
        if self.serve_client and request.method in (b"GET", b"HEAD") and len(postpath) == 1:
            name = postpath[0].decode("latin-1")
            if client_file(name) is not None:
                return self._client(request, name)
        return self.engine.render(request)

    def _client(self, request: Request, name: str) -> bytes:
        etag = f'"{CLIENT_VERSION}"'.encode()
        if request.getHeader(b"if-none-match") in (etag, b"W/" + etag):
            request.setResponseCode(304)
            return b""
        kind = b"json" if name.endswith(".map") else b"javascript"
        request.setHeader(b"content-type", b"application/" + kind + b"; charset=utf-8")
        request.setHeader(b"cache-control", b"public, max-age=0")
        request.setHeader(b"etag", etag)
        request.setHeader(b"vary", b"Accept-Encoding")
        accepted = (request.getHeader(b"accept-encoding") or b"").lower()
        compressed = b"gzip" in accepted
        if compressed:
            request.setHeader(b"content-encoding", b"gzip")
        body = client_file(name, compressed)
        assert body is not None
        request.setHeader(b"content-length", b"%d" % len(body))
        return body
