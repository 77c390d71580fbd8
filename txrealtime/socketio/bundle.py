"""The official browser client, served beside the endpoint as Node's ``serveClient`` does.

``GET {path}socket.io.js`` (and ``socket.io.min.js``, ``socket.io.esm.min.js``,
``socket.io.msgpack.min.js`` and their ``.map`` files) answers the
``socket.io-client`` bundle shipped in ``client_dist/`` (MIT licence beside
it; ``tools/update-client-bundle`` refreshes it), with the client's version as
``ETag``, ``304`` on ``If-None-Match``, ``Cache-Control: public, max-age=0``,
and gzip or deflate as the browser's ``Accept-Encoding`` allows (as Node's
``accepts``: highest ``q`` first, ``q=0`` refuses). Every other request goes to the
Engine.IO resource.
"""

from __future__ import annotations

import gzip
import re
import zlib
from functools import cache
from importlib import resources

from twisted.web.http import Request
from twisted.web.resource import Resource

from ..engineio import EngineIOResource
from ..engineio.polling import accepted_encoding

__all__ = ["CLIENT_VERSION", "SocketIOResource", "client_file"]

_FILES = re.compile(r"socket\.io(\.msgpack|\.esm)?(\.min)?\.js(\.map)?")

CLIENT_VERSION = resources.files(__package__).joinpath("client_dist", "VERSION").read_text().strip()
"""The version of the ``socket.io-client`` bundle served."""


def client_file(name: str, encoding: bytes | None = None) -> bytes | None:
    """The bytes of one bundle file, or ``None`` if there is no such file.

    :param name: The file's name, e.g. ``socket.io.min.js``.
    :param encoding: ``gzip`` or ``deflate`` for the file compressed so; ``None``: as shipped.

    Only the bundle's own names are looked up and kept (a dozen files, each at
    most once per encoding): other names are refused before any cache.
    """
    if not _FILES.fullmatch(name) or encoding not in _ENCODINGS:
        return None
    return _read(name, encoding)


_ENCODINGS = (None, b"gzip", b"deflate")


@cache
def _read(name: str, encoding: bytes | None) -> bytes | None:
    """``client_file`` for a name the bundle may have: at most 3 × 12 entries."""
    path = resources.files(__package__).joinpath("client_dist", name)
    if not path.is_file():
        return None
    data = path.read_bytes()
    if encoding == b"gzip":
        return gzip.compress(data, mtime=0)
    return zlib.compress(data) if encoding == b"deflate" else data


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
        # As Node's serveClient: what ``accepts(req).encodings()`` picks (``q=0`` refuses).
        encoding = accepted_encoding(request.getHeader(b"accept-encoding"))
        if encoding is not None:
            request.setHeader(b"content-encoding", encoding)
        body = client_file(name, encoding)
        assert body is not None
        request.setHeader(b"content-length", b"%d" % len(body))
        return body
