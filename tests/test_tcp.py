"""Writing to a TCP connection at once (``txrealtime._compat``) and the HTTP channel's one write per response.

The shortcut is checked on real loopback connections of the running reactor:
what is written reaches the peer complete and in order, what the kernel does
not take stays in Twisted's buffer (which pauses a streaming producer as
before), and anything but a plain TCP connection is written to as usual.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor, tcp
from twisted.internet.testing import StringTransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web.http import NO_CONTENT
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from txrealtime import _compat
from txrealtime.web import BoundedChannel, BoundedSite

R: Any = reactor


@pytest.fixture(autouse=True)
def fast_paths_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are of the fast paths themselves: on even in the TXREALTIME_FAST_PATHS=0 pass."""
    monkeypatch.setattr(_compat.fast, "tcp_write", True)
    monkeypatch.setattr(_compat.fast, "response_head", True)


class Collect(protocol.Protocol):
    """Keeps what it receives; ``until(n)`` fires once ``n`` bytes arrived."""

    transport: Any

    def __init__(self) -> None:
        self.data = bytearray()
        self.made: defer.Deferred[None] = defer.Deferred()
        self._waiting: tuple[int, defer.Deferred[bytes]] | None = None

    def connectionMade(self) -> None:
        self.made.callback(None)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        self._check()

    def until(self, size: int) -> defer.Deferred[bytes]:
        d: defer.Deferred[bytes] = defer.Deferred()
        self._waiting = (size, d)
        self._check()
        return d

    def _check(self) -> None:
        if self._waiting is not None and len(self.data) >= self._waiting[0]:
            d = self._waiting[1]
            self._waiting = None
            d.callback(bytes(self.data))


class Pair:
    """A loopback TCP connection: ``server`` (a ``tcp.Server`` transport) and the client's protocol."""

    def __init__(self) -> None:
        self.accepted = Collect()
        self.client = Collect()
        self.port: Any = None
        self.connector: Any = None

    @property
    def server(self) -> Any:
        return self.accepted.transport

    async def open(self) -> Pair:
        accepted = self.accepted
        factory = protocol.Factory.forProtocol(lambda: accepted)
        self.port = R.listenTCP(0, factory, interface="127.0.0.1")
        self.connector = R.connectTCP("127.0.0.1", self.port.getHost().port,
                                      protocol.ClientFactory.forProtocol(lambda: self.client))
        await self.accepted.made
        await self.client.made
        return self


@pytest.fixture
def pair() -> Iterator[Pair]:
    p = Pair()
    yield p
    if p.port is not None:
        for proto in (p.accepted, p.client):
            if proto.transport is not None:
                proto.transport.abortConnection()
        p.port.stopListening()


@pytest_twisted.ensureDeferred
async def test_an_idle_connection_is_written_at_once(pair: Pair) -> None:
    await pair.open()
    server = pair.server
    assert type(server) is tcp.Server
    _compat.write(server, b"hello ")
    _compat.write_sequence(server, [b"wor", b"ld"])
    assert server.dataBuffer == b"" and server._tempDataLen == 0  # nothing left for Twisted to send later
    assert await pair.client.until(11) == b"hello world"


@pytest_twisted.ensureDeferred
async def test_writes_behind_buffered_data_keep_their_order(pair: Pair) -> None:
    await pair.open()
    server = pair.server
    server.write(b"first ")  # Twisted buffers it until the reactor's next turn
    _compat.write(server, b"second ")
    _compat.write_sequence(server, [b"third", b"!"])
    assert server._tempDataLen == len(b"first second third!")
    assert await pair.client.until(19) == b"first second third!"


class Producer:
    """A streaming producer that records whether the transport paused it."""

    paused = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        pass


@pytest_twisted.ensureDeferred
async def test_what_the_kernel_does_not_take_waits_in_twisteds_buffer(pair: Pair) -> None:
    await pair.open()
    server = pair.server
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    pair.client.transport.pauseProducing()  # the client stops reading: the kernel's buffers fill up
    producer = Producer()
    server.registerProducer(producer, True)
    data = bytes(range(256)) * 16384  # 4 MiB
    _compat.write(server, data)
    assert 0 < server._tempDataLen < len(data)  # part went out at once, the rest waits in Twisted's buffer
    assert producer.paused  # over the transport's bufferSize: the producer is paused as with transport.write
    _compat.write(server, b"tail")  # behind the buffered rest, not before it
    pair.client.transport.resumeProducing()
    assert await pair.client.until(len(data) + 4) == data + b"tail"


@pytest_twisted.ensureDeferred
async def test_a_closed_connection_is_left_to_twisted(pair: Pair) -> None:
    await pair.open()
    server = pair.server
    lost: defer.Deferred[None] = defer.Deferred()
    def connection_lost(reason: object) -> None:
        lost.callback(None)

    pair.accepted.connectionLost = connection_lost  # type: ignore[method-assign,assignment]
    server.socket.shutdown(socket.SHUT_WR)  # sending now fails with EPIPE
    _compat.write(server, b"lost")  # no exception here: Twisted's own write meets the error and closes
    lost.addTimeout(10, reactor)  # fails with TimeoutError rather than hanging if Twisted never closes it
    await lost


def test_other_transports_are_written_to_as_usual() -> None:
    transport = StringTransport()
    _compat.write(transport, b"a")
    _compat.write_sequence(transport, [b"b", b"c"])
    assert transport.value() == b"abc"


@pytest_twisted.ensureDeferred
async def test_tls_connections_are_written_to_as_usual(pair: Pair) -> None:
    await pair.open()
    server = pair.server
    server.TLS = True  # what startTLS sets: writes must go through the TLS layer
    assert _compat._direct(server) is None
    server.TLS = False
    assert _compat._direct(server) is server


@pytest_twisted.ensureDeferred
async def test_aborted_connections_and_pull_producers_are_left_to_twisted(pair: Pair) -> None:
    await pair.open()
    server = pair.server
    producer = Producer()
    server.registerProducer(producer, False)  # a pull producer is asked for more when Twisted's buffer drains
    assert _compat._direct(server) is None
    server.unregisterProducer()
    server.registerProducer(producer, True)
    assert _compat._direct(server) is server
    server.unregisterProducer()
    server.abortConnection()  # closes on the reactor's next turn; nothing may be written meanwhile
    assert _compat._direct(server) is None


@pytest_twisted.ensureDeferred
async def test_only_bytes_are_sent_at_once(pair: Pair) -> None:
    await pair.open()
    with pytest.raises(TypeError):
        _compat.write(pair.server, cast(bytes, bytearray(b"not bytes")))  # refused as Twisted's write refuses it
    assert pair.server._tempDataLen == 0


@pytest_twisted.ensureDeferred
async def test_forwarding_wrappers_are_seen_through(pair: Pair) -> None:
    await pair.open()
    wrapper = ProtocolWrapper(WrappingFactory(protocol.Factory()), cast(Any, protocol.Protocol()))
    wrapper.makeConnection(pair.server)
    assert _compat._direct(wrapper) is pair.server

    class Rewriting(ProtocolWrapper):
        def write(self, data: bytes) -> None:
            super().write(data.upper())  # type: ignore[no-untyped-call]

    rewriting = Rewriting(WrappingFactory(protocol.Factory()), cast(Any, protocol.Protocol()))
    rewriting.makeConnection(pair.server)
    assert _compat._direct(rewriting) is None  # a subclass may change what it writes


# -- the HTTP channel: a response's head goes out with its body --------------------------------------------------


class Writes(StringTransport):
    """Records each write call."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.calls: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.calls.append(data)
        super().write(data)  # type: ignore[no-untyped-call]

    def writeSequence(self, seq: Any) -> None:
        self.write(b"".join(seq))


class Page(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.parked: list[Request] = []

    def render_GET(self, request: Request) -> bytes | int:
        path = request.path
        if path == b"/empty":
            request.setResponseCode(NO_CONTENT)
            return b""
        if path == b"/chunked":
            request.write(b"part one;")
            request.write(b"part two")
            request.finish()
            return NOT_DONE_YET
        if path == b"/early":
            request.write(b"")  # the head now, the body later
            self.parked.append(request)
            return NOT_DONE_YET
        return b"body"


def channel() -> tuple[BoundedChannel, Writes, Page]:
    page = Page()
    site = BoundedSite(cast(IResource, page), access_log=False, header_timeout=None)
    proto = cast(BoundedChannel, site.buildProtocol(cast(Any, None)))
    transport = Writes()
    proto.makeConnection(transport)  # type: ignore[no-untyped-call]
    return proto, transport, page


def test_a_response_is_one_write() -> None:
    proto, transport, _ = channel()
    proto.dataReceived(b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(transport.calls) == 1
    assert transport.calls[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.calls[0].endswith(b"\r\n\r\nbody")


def test_heads_without_bodies_are_written_too() -> None:
    proto, transport, _ = channel()
    proto.dataReceived(b"HEAD /page HTTP/1.1\r\nHost: x\r\n\r\nGET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
    head, empty = transport.calls
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert b"Content-Length: 4\r\n" in head
    assert empty.startswith(b"HTTP/1.1 204 No Content\r\n") and empty.endswith(b"\r\n\r\n")


def test_a_chunked_response_carries_its_head_in_its_first_write() -> None:
    proto, transport, _ = channel()
    proto.dataReceived(b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
    first = transport.calls[0]
    assert b"Transfer-Encoding: chunked\r\n" in first and first.endswith(b"\r\n\r\n9\r\npart one;\r\n")
    assert b"".join(transport.calls[1:]) == b"8\r\npart two\r\n0\r\n\r\n"


def test_a_head_written_before_the_body_is_not_held_back() -> None:
    proto, transport, page = channel()
    proto.dataReceived(b"GET /early HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(transport.calls) == 1 and transport.calls[0].endswith(b"\r\n\r\n")  # the head alone, at once
    page.parked[0].write(b"later")
    page.parked[0].finish()
    assert b"".join(transport.calls[1:]) == b"5\r\nlater\r\n0\r\n\r\n"


@pytest_twisted.ensureDeferred
async def test_http_connections_send_without_delay() -> None:
    page = Page()
    site = BoundedSite(cast(IResource, page), access_log=False, header_timeout=None)
    port = R.listenTCP(0, site, interface="127.0.0.1")
    client = Collect()
    connector = R.connectTCP("127.0.0.1", port.getHost().port, protocol.ClientFactory.forProtocol(lambda: client))
    try:
        await client.made
        client.transport.write(b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await client.until(1)
        while not answer.endswith(b"body"):
            answer = await client.until(len(answer) + 1)
        ours = [c for c in R.getReaders() if isinstance(c, tcp.Server) and c.getHost().port == port.getHost().port]
        assert len(ours) == 1
        assert ours[0].socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        connector.disconnect()
        await port.stopListening()
