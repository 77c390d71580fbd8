"""Raw HTTP against a ``twisted.web`` resource over in-memory connections."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import IResource
from twisted.web.server import Site

from txrealtime.web import HTTP_PARSER_ENV, channel_for


class ConnectionTransport(StringTransport):
    """A ``StringTransport`` with the ``protocol`` attribute of a TCP transport (a WebSocket upgrade replaces it)."""

    protocol: Protocol


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Exchange:
    """One request on its own connection; the response may still be pending."""

    channel: HTTPChannel
    transport: ConnectionTransport
    _raw: bytes = field(default=b"")

    @property
    def done(self) -> bool:
        return self.response() is not None

    def response(self) -> Response | None:
        raw = self.transport.value()
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            return None
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if len(body) < length:
            return None
        return Response(status, headers, body[:length])

    def result(self) -> Response:
        response = self.response()
        assert response is not None, "response still pending"
        return response

    def drop(self) -> None:
        """The client goes away."""
        self.channel.connectionLost(Failure(ConnectionDone()))


class MemoryHTTP:
    """Sends requests to ``root`` through a real ``Site`` with no sockets."""

    def __init__(self, root: IResource, host: str = "127.0.0.1", site: Site | None = None) -> None:
        self.site = site if site is not None else Site(root, timeout=None)
        if site is None and os.environ.get(HTTP_PARSER_ENV):
            # run-tests' pass on the other parser: these plain sites then parse with the one it names.
            self.site.protocol = channel_for()  # type: ignore[assignment]
        self.host = host

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Exchange:
        addr = IPv4Address("TCP", self.host, 40000)
        channel = self.site.buildProtocol(addr)
        assert channel is not None
        transport = ConnectionTransport(peerAddress=addr, hostAddress=IPv4Address("TCP", "127.0.0.1", 80))
        transport.protocol = channel  # as on a TCP transport; WebSocket upgrades replace it
        channel.makeConnection(transport)
        all_headers = {"Host": "localhost", "Content-Length": str(len(body))}
        all_headers.update(headers or {})
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in all_headers.items())
        channel.dataReceived(head.encode("latin-1") + b"\r\n" + body)
        return Exchange(channel, transport)


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client-to-server WebSocket frame (RFC 6455)."""
    mask = b"\x01\x02\x03\x04"
    length = len(payload)
    if length < 126:
        header = bytes([0x80 | opcode, 0x80 | length])
    elif length < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_parse(data: bytes, first_byte: bool = False) -> list[tuple[int, bytes]]:
    """Split unmasked server-to-client frames into ``(opcode, payload)`` (the whole first byte,
    FIN and RSV bits included, with ``first_byte``)."""
    frames = []
    while data:
        opcode, length = data[0] & (0xFF if first_byte else 0x0F), data[1] & 0x7F
        offset = 2
        if length == 126:
            length, offset = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, offset = int.from_bytes(data[2:10], "big"), 10
        frames.append((opcode, data[offset : offset + length]))
        data = data[offset + length :]
    return frames


class MemoryWebSocket:
    """A WebSocket client speaking raw frames to a resource through :class:`MemoryHTTP`."""

    def __init__(self, http: MemoryHTTP, path: str, headers: dict[str, str] | None = None) -> None:
        self.exchange = http.request(
            "GET",
            path,
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
                "Content-Length": "0",
                **(headers or {}),
            },
        )
        raw = self.exchange.transport.value()
        head, _, rest = raw.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1]) if head else 0
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.decode("latin-1").partition(":") for line in head.split(b"\r\n")[1:])
        }
        """The handshake answer's headers, names in lower case."""
        self.exchange.transport.clear()
        self._pending = rest

    @property
    def protocol(self) -> Protocol:
        return self.exchange.transport.protocol

    def send_text(self, text: str) -> None:
        self.protocol.dataReceived(ws_frame(text.encode()))

    def send_binary(self, data: bytes) -> None:
        self.protocol.dataReceived(ws_frame(data, opcode=2))

    def send_raw(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def frames(self, first_byte: bool = False) -> list[tuple[int, bytes]]:
        """Frames received since the last call (see :func:`ws_parse`)."""
        data = self._pending + self.exchange.transport.value()
        self._pending = b""
        self.exchange.transport.clear()
        return ws_parse(data, first_byte)

    def lose(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone()))
