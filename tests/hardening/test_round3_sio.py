"""Hostile Socket.IO input, round three (issue 23): each test fails on the code before its fix.

- 8. Decoding amplification: a megabyte of empty maps or objects (or of ``[0]``,
  ``undefined`` or placeholders among them) costs the decoded values and the
  message, nothing per child beside them; a MessagePack map key that is not a
  string is a parse error.
"""

from __future__ import annotations

import base64
import tracemalloc
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
import pytest_twisted

from tests.peers import PollingPeer
from tests.socketio.app import install
from txrealtime.engineio import CloseReason, SessionClosed, SessionEvent
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio.msgpack import MsgpackDecoder
from txrealtime.socketio.packets import Decoder, Packet

# -- 8. decoding amplification -----------------------------------------------------------------

COUNT = 240_000
"""Children in one message (about 300-700 KB of them)."""


def msgpack_event(children: bytes, count: int) -> bytes:
    """A msgpack EVENT ``["x", *children]`` whose ``count`` children are the bytes ``children``."""
    return b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\xdd" + (count + 1).to_bytes(4, "big") + b"\xa1x" + children


def json_feed(*messages: str | bytes) -> Callable[[], Packet | None]:
    decoder = Decoder(max_bytes=2_000_000)
    return lambda: [decoder.feed(m) for m in messages][-1]


def msgpack_feed(message: bytes) -> Callable[[], Packet | None]:
    decoder = MsgpackDecoder()
    return lambda: decoder.feed(message)


AMPLIFIERS: dict[str, tuple[Callable[[], Callable[[], Packet | None]], Any]] = {
    "json-empty-objects": (lambda: json_feed('2["x",' + ",".join(["{}"] * COUNT) + "]"), {}),
    "json-small-arrays": (lambda: json_feed('2["x",' + ",".join(["[0]"] * COUNT) + "]"), [0]),
    "json-placeholder-among-objects": (
        lambda: json_feed('51-["x",' + ",".join(["{}"] * COUNT) + ',[{"_placeholder":true,"num":0}]]', b"\x01"), {}
    ),
    "msgpack-empty-maps": (lambda: msgpack_feed(msgpack_event(b"\x80" * COUNT, COUNT)), {}),
    "msgpack-nil-arrays": (lambda: msgpack_feed(msgpack_event(b"\x91\xc0" * COUNT, COUNT)), [None]),
    "msgpack-undefined-among-maps": (
        lambda: msgpack_feed(msgpack_event(b"\x80" * COUNT + b"\x91\xd4\x00\x00", COUNT + 1)), {}
    ),
}


@pytest.mark.parametrize("case", list(AMPLIFIERS))
def test_decoding_holds_nothing_per_child(case: str) -> None:
    """Peak memory while decoding is what the decoded packet holds plus about one message: no tuple, list
    entry or copy per child (the depth check held a tuple per child beside the values: 161 MB for 1 MB)."""
    make, child = AMPLIFIERS[case]
    feed = make()  # the message is built outside the measurement
    tracemalloc.start()
    try:
        packet = feed()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert packet is not None
    args = packet.args
    assert len(args) in (COUNT, COUNT + 1) and args[0] == child
    if case == "json-placeholder-among-objects":
        assert args[-1] == [b"\x01"]
    if case == "msgpack-undefined-among-maps":
        assert args[-1] == [None]
    # The JSON decoder slices the text once (COUNT * 4 bytes at most); everything else is the values.
    assert peak - held < COUNT * 4 + 100_000, (peak - held, held)


def test_nested_undefined_and_placeholders_are_replaced_in_place() -> None:
    undefined = msgpack.ExtType(0, b"\x00")
    message = msgpack.packb({"type": 2, "nsp": "/", "data": ["x", [undefined, {"k": [undefined]}], undefined]})
    packet = MsgpackDecoder().feed(message)
    assert packet is not None and packet.data == ["x", [None, {"k": [None]}], None]
    decoder = Decoder()
    assert decoder.feed('52-["x",{"a":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]') is None
    assert decoder.feed(b"zero") is None
    packet = decoder.feed(b"one")
    assert packet is not None and packet.data == ["x", {"a": [b"one"]}, b"zero"]


def closed(events: list[SessionEvent], sid: str) -> list[tuple[CloseReason, str]]:
    return [(e.reason, e.description) for e in events if isinstance(e, SessionClosed) and e.sid == sid]


def as_body(*packets: Any) -> str:
    return "\x1e".join("b" + base64.b64encode(msgpack.packb(p)).decode() for p in packets)


@pytest.mark.parametrize("key", [b"k", msgpack.ExtType(0, b"\x01\x02")], ids=["bin", "array-buffer"])
@pytest_twisted.ensureDeferred
async def test_binary_map_keys_are_a_parse_error(realtime: Realtime, key: Any) -> None:
    """Map keys must be strings (as the module says): a binary key closes that session, the canary carries on."""
    running = await realtime.start_server(install, parser="msgpack")
    events: list[SessionEvent] = []
    running.server.manager.subscribe(events.append)
    offender = PollingPeer(running.url)
    await offender.open(None)
    assert await offender.post(as_body({"type": 0, "nsp": "/"})) == "ok"
    assert (await offender.get()).startswith("b")  # the CONNECT answer
    assert await offender.post(as_body({"type": 2, "nsp": "/", "data": ["ack", {"deep": [{key: 1}]}]})) == "ok"
    assert closed(events, offender.sid) == [(CloseReason.PARSE_ERROR, "a map key is not a string")]
    canary = await realtime.connect(running, parser="msgpack")
    assert await canary.emit_with_ack("ack", {"k": b"v"}, timeout=10) == ("got", {"k": b"v"})
