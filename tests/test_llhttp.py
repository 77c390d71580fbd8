"""The httptools (llhttp) channel against twisted.web's own, byte for byte: the same requests, split anywhere,
pipelined or not, well-formed or hostile, get the same answers from both. Whole conversations on a
``task.Clock`` over in-memory connections."""

from __future__ import annotations

import gc
import re
import sys
import weakref
from importlib.metadata import version
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from tests.memhttp import ConnectionTransport, MemoryHTTP, MemoryWebSocket
from txrealtime import _compat
from txrealtime.engineio import EngineIOOptions, EngineIOResource, SessionManager
from txrealtime.llhttp import LlhttpChannel
from txrealtime.web import HTTP_PARSER_ENV, BoundedChannel, BoundedSite, channel_for

PARSERS = ("httptools", "twisted")

OLD_TWISTED_WEB = tuple(map(int, version("twisted").split(".")[:2])) < (24, 7)
"""Whether twisted.web's own parser has the two faults Twisted 24.7 fixed (run-tests' lowest-versions pass
runs 23.10): what follows a request's body in the same read is lost or garbled (GHSA-c8m8-j448-xjx7), and a
header name that is not a token is taken. Where its answers show one of them, :func:`both` lets them differ
there; each test's own checks of the C parser's answers still apply."""

_NOT_A_TOKEN = re.compile(rb"\r\n[^:\r\n]*[^-!#$%&'*+.^_`|~0-9A-Za-z:\r\n]")
"""A header line whose name (what comes before its colon) is not a token (RFC 9110 5.1)."""

_STATUS = re.compile(rb"HTTP/1\.1 \d{3} ")
"""Where an answer starts (the echoed request lines read ``HTTP/1.1 [``)."""

_HAD_BODY = re.compile(rb"\(b'transfer-encoding', |\(b'content-length', b'(?!0')")
"""An echoed request that had a body."""


def old_twisted_web_fault(pieces: list[bytes], fast: tuple[bytes, bool], slow: tuple[bytes, bool]) -> bool:
    """Whether twisted.web's answers ``slow`` differ from the C parser's ``fast`` by one of the faults of
    :data:`OLD_TWISTED_WEB`: from an answer on, after an answer to a request with a body; or a ``200`` where
    a header name is not a token and the C parser answered ``400``."""
    if (fast == (b"HTTP/1.1 400 Bad Request\r\n\r\n", True) and slow[0].startswith(b"HTTP/1.1 200 OK")
            and _NOT_A_TOKEN.search(b"".join(pieces).partition(b"\r\n\r\n")[0])):
        return True
    same = next((i for i, (a, b) in enumerate(zip(fast[0], slow[0], strict=False)) if a != b),
                min(len(fast[0]), len(slow[0])))
    starts = [m.start() for m in _STATUS.finditer(fast[0]) if m.start() <= same]  # up to the answer that differs
    return len(starts) >= 2 and _HAD_BODY.search(fast[0], starts[-2], starts[-1]) is not None


class Echo(Resource):
    """Answers with what it was sent; ``/later`` answers when the clock moves on (a parked request)."""

    isLeaf = True

    def __init__(self, clock: Clock) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.clock = clock

    def render(self, request: Request) -> Any:
        content = request.content.read() if request.content is not None else b""
        headers = sorted((k.lower(), v) for k, vs in request.requestHeaders.getAllRawHeaders() for v in vs)
        body = b"%s %s %s %r %r" % (request.method, request.uri, request.clientproto, headers, content)
        request.setHeader(b"content-type", b"text/plain")
        if request.path == b"/later":
            def finish() -> None:
                request.write(body)
                request.finish()
            self.clock.callLater(1, finish)
            return NOT_DONE_YET
        return body


def connect(parser: str, clock: Clock, max_body: int = 1000) -> ConnectionTransport:
    site = BoundedSite(cast(IResource, Echo(clock)), max_body=max_body, header_timeout=5, http_parser=parser,
                       access_log=False)
    addr = IPv4Address("TCP", "127.0.0.1", 40000)
    channel: Any = site.buildProtocol(cast(Any, addr))
    channel.callLater = clock.callLater
    transport = ConnectionTransport(peerAddress=addr, hostAddress=IPv4Address("TCP", "127.0.0.1", 80))
    transport.protocol = channel
    channel.makeConnection(transport)
    return transport


def converse(parser: str, pieces: list[bytes], max_body: int = 1000) -> tuple[bytes, bool]:
    """What the server wrote (``Date`` headers blanked) and whether it closed, once every piece arrived."""
    clock = Clock()
    transport = connect(parser, clock, max_body)
    for piece in pieces:
        if transport.disconnecting:
            break
        transport.protocol.dataReceived(piece)
        clock.advance(0)
    for _ in range(20):
        if not transport.disconnecting:
            clock.advance(1)
    return re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", transport.value()), bool(transport.disconnecting)


def both(pieces: list[bytes], max_body: int = 1000) -> tuple[bytes, bool]:
    """The conversation on both parsers; they must agree (but for an old twisted.web's faults, see
    :data:`OLD_TWISTED_WEB`)."""
    fast = converse("httptools", pieces, max_body)
    slow = converse("twisted", pieces, max_body)
    if not (OLD_TWISTED_WEB and old_twisted_web_fault(pieces, fast, slow)):
        assert fast == slow
    return fast


def test_the_parser_is_chosen_by_option_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert channel_for("twisted") is BoundedChannel
    assert channel_for("httptools") is LlhttpChannel
    monkeypatch.setenv(HTTP_PARSER_ENV, "twisted")
    assert channel_for() is BoundedChannel
    assert BoundedSite(cast(IResource, Resource())).protocol is BoundedChannel
    assert BoundedSite(cast(IResource, Resource()), http_parser="httptools").protocol is LlhttpChannel
    monkeypatch.setenv(HTTP_PARSER_ENV, "")
    assert channel_for() is (LlhttpChannel if _compat.fast.c_http_parser else BoundedChannel)
    monkeypatch.setattr(_compat.fast, "c_http_parser", False)  # its check failed, or TXREALTIME_FAST_PATHS=0
    assert channel_for() is BoundedChannel
    assert channel_for("httptools") is LlhttpChannel
    with pytest.raises(ValueError, match="HTTP parser must be one of"):
        channel_for("picohttp")


def test_a_request_split_at_every_byte() -> None:
    request = b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Two: a\r\nX-Two: b\r\n\r\nhello"
    whole = both([request])
    assert whole[0].startswith(b"HTTP/1.1 200 OK\r\n") and whole[0].endswith(
        b"POST /a?b=1 HTTP/1.1 [(b'content-length', b'5'), (b'host', b'x'), (b'x-two', b'a'), (b'x-two', b'b')] "
        b"b'hello'") and not whole[1]
    assert converse("httptools", [bytes([c]) for c in request]) == whole


def test_pipelined_requests_in_one_packet_are_answered_in_order_one_at_a_time() -> None:
    requests = (b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                b"GET /three HTTP/1.1\r\nHost: x\r\n\r\nGET /fo")
    clock = Clock()
    transport = connect("httptools", clock)
    transport.protocol.dataReceived(requests)
    assert transport.value() == b""  # /later is parked; the next ones wait behind it
    transport.protocol.dataReceived(b"ur HTTP/1.1\r\nHost: x\r\n\r\n")
    clock.advance(1)
    assert re.findall(rb"\n(?:[0-9a-f]+\r\n)?(\w+ /\w+) HTTP/1.1 ", transport.value()) == [
        b"GET /later", b"POST /two", b"GET /three", b"GET /four"]
    assert transport.value().count(b"HTTP/1.1 200 OK") == 4 and b"b'abc'" in transport.value()
    assert both([requests, b"ur HTTP/1.1\r\nHost: x\r\n\r\n"])[0].count(b"HTTP/1.1 200 OK") == 4


def test_nothing_is_read_after_a_request_that_closes_the_connection() -> None:
    for close in (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n"):
        wrote, closed = both([close + b"GET /more HTTP/1.1\r\n\r\n"])
        assert wrote.count(b" 200 OK") == 1 and b"/more" not in wrote and closed


def test_an_upgrade_the_resource_does_not_take_is_served_and_the_connection_goes_on() -> None:
    wrote, closed = both([b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                          b"GET /next HTTP/1.1\r\n\r\n"])
    assert wrote.count(b"HTTP/1.1 200 OK") == 2 and b"GET /next" in wrote and not closed


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /" + b"x" * 16400 + b" HTTP/1.1\r\n\r\n", b"414 URI Too Long"),
    (b"GET / HTTP/1.1\r\nX-Pad: " + b"x" * 16400 + b"\r\n\r\n", b"431 Request Header Fields Too Large"),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 501 + b"\r\n", b"400 Bad Request"),
    (b"GET / HTTP/1.1\r\n" + b"X-Pad: %s\r\n" % (b"y" * 8000) * 3 + b"\r\n", b"400 Bad Request"),
    (b"GET / HTTP/1.1\r\nBad Name: y\r\n\r\n", b"400 Bad Request"),
    (b"GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", b"400 Bad Request"),
    (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400 Bad Request"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"400 Bad Request"),
    (b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", b"413 Payload Too Large"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + b"x" * 2000 + b"\r\n", b"413 Payload Too Large"),
])
def test_limits_and_bad_requests_get_the_same_answer_on_both(request_bytes: bytes, status: bytes) -> None:
    for pieces in ([request_bytes], [request_bytes[:100], request_bytes[100:]]):
        wrote, closed = both(pieces)
        assert wrote.startswith(b"HTTP/1.1 " + status + b"\r\n") and wrote.count(b"HTTP/1.1 ") == 1 and closed


def test_a_head_that_never_ends_is_refused_before_it_grows() -> None:
    wrote, closed = both([b"GET / HTTP/1.1\r\nX-Pad: ", *[b"y" * 1000] * 40])
    assert wrote.startswith(b"HTTP/1.1 431 ") and closed


def test_headers_must_arrive_in_time_on_each_pipelined_request() -> None:
    wrote, closed = both([b"GET /later HTTP/1.1\r\n\r\nGET /partial HTTP/1.1\r\nX: y\r\n"])
    assert wrote.count(b"HTTP/1.1 200 OK") == 1 and b"408 Request Timeout" in wrote and closed


_token = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).map(str.encode)
_value = st.binary(max_size=40).map(lambda b: bytes(c for c in b if 0x20 < c < 0x7F))
_request = st.builds(
    lambda method, path, headers, body, chunked: (
        b"%s /%s HTTP/1.1\r\n" % (method, path)
        + b"".join(b"X-%s: %s\r\n" % h for h in headers)
        + (b"Transfer-Encoding: chunked\r\n\r\n" + (b"%x\r\n%s\r\n" % (len(body), body) if body else b"")
           + b"0\r\n\r\n" if chunked else b"Content-Length: %d\r\n\r\n%s" % (len(body), body))),
    st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS"]),
    st.text("abc/?=&%09", max_size=30).map(str.encode),
    st.lists(st.tuples(_token, _value), max_size=5),
    st.binary(max_size=60),
    st.booleans(),
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_request, min_size=1, max_size=4), st.lists(st.integers(0, 10_000), max_size=6), st.booleans())
def test_well_formed_conversations_split_anywhere_agree(requests: list[bytes], cuts: list[int], park: bool) -> None:
    if park:
        requests = [b"GET /later HTTP/1.1\r\n\r\n", *requests]
    wrote, closed = both(_split(b"".join(requests), cuts))
    assert wrote.count(b"HTTP/1.1 200 OK") == len(requests) and not closed


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(_request, st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=3)), min_size=1,
                          max_size=3), st.lists(st.integers(0, 10_000), max_size=3))
def test_fuzzed_requests_get_an_answer_or_a_clean_close(request: bytes, edits: list[tuple[int, bytes]],
                                                         cuts: list[int]) -> None:
    for at, junk in edits:
        at %= len(request) + 1
        request = request[:at] + junk + request[at + len(junk):]
    wrote, closed = converse("httptools", _split(request, cuts))
    statuses = re.findall(rb"HTTP/1\.1 (\d+) ", wrote)  # an escaped dot: a body may hold "HTTP/1 1 400 "
    assert all(s in (b"200", b"400", b"408", b"413", b"414", b"431") for s in statuses)
    assert closed or statuses == [b"200"] * len(statuses)
    if closed and statuses and statuses[-1] != b"200":
        assert wrote.endswith(b"\r\n\r\n") or b"Content-Length" in wrote.rpartition(b"HTTP/1.1 ")[2]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.skipif(not _compat.fast.release_upgraded, reason="the release_upgraded fast path is off")
def test_a_channel_a_websocket_took_over_is_freed_without_the_garbage_collector(parser: str) -> None:
    clock = Clock()
    manager = SessionManager(EngineIOOptions(), reactor=clock)
    root = Resource()
    root.putChild(b"engine.io", cast(IResource, EngineIOResource(manager)))
    site = BoundedSite(cast(IResource, root), header_timeout=None, http_parser=parser, timeout=None)
    gc.disable()
    try:
        ws = MemoryWebSocket(MemoryHTTP(cast(IResource, root), site=site), "/engine.io/?EIO=4&transport=websocket")
        assert ws.status == 101 and isinstance(ws.exchange.channel, site.protocol)
        channel = weakref.ref(ws.exchange.channel)
        del ws.exchange.channel
        assert channel() is None
    finally:
        gc.enable()
    [(_, opened)] = ws.frames()
    assert opened.startswith(b"0{")


def test_without_httptools_auto_falls_back_to_twisted_web(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HTTP_PARSER_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "httptools", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "txrealtime.llhttp")
    assert channel_for() is BoundedChannel
    with pytest.raises(ImportError):
        channel_for("httptools")


def test_thousands_of_pipelined_requests_in_one_packet_are_answered_without_recursion() -> None:
    wrote, closed = both([b"GET / HTTP/1.1\r\n\r\n" * 3000])
    assert wrote.count(b"HTTP/1.1 200 OK") == 3000 and not closed
