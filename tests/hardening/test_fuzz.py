"""Random and mutated Engine.IO / Socket.IO packets against a live server over both transports.

Both parsers are fuzzed: JSON text packets, and the msgpack parser's binary
maps (the same server with ``parser="msgpack"``, a python-socketio client
with its msgpack serializer as the healthy peer).

Hypothesis drives blocking peers (websocket-client, requests) in a thread
while the server runs in the reactor. After every example a healthy
python-socketio client beside the fuzzed sessions must still get its
acknowledgement, and input our own codec rejects must have closed the
session that sent it. Nothing the server logs may be an unexpected failure.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import msgpack
import pytest_twisted
import requests
import socketio
import websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import threads

from tests.socketio.app import install
from txrealtime.engineio import EngineIOOptions
from txrealtime.engineio.packets import DecodeError as EIODecodeError
from txrealtime.engineio.packets import PacketType, decode_payload, decode_ws_frame
from txrealtime.protocol.msgpack import MsgpackDecoder
from txrealtime.protocol.packets import DecodeError as SIODecodeError
from txrealtime.protocol.packets import Decoder
from txrealtime.protocol.parser import Decoder as AnyDecoder
from txrealtime.pytest_plugin import Realtime

TEMPLATES = [
    "40",
    '40/admin,{"token":"s3cret"}',
    '42["ack",1,"two"]',
    '421["ack",{"a":[1,2,null]}]',
    '431[1]',
    '451-["ack",{"_placeholder":true,"num":0}]',
    '461-1[{"_placeholder":true,"num":0}]',
    "41",
    '44{"message":"x"}',
    "2probe",
    "3",
    "5",
    "6",
    "1",
    # Lone surrogates (escaped, as browsers send them), non-standard numbers, deep nesting,
    # and binary packets whose attachments never all arrive.
    '42["ack","\\ud800"]',
    '421["ack",{"k\\udfff":"\\ud83d"}]',
    '42["ack",NaN]',
    '421["ack",1e999,-Infinity]',
    '42["ack",' + "[" * 150 + "]" * 150 + "]",
    '40{"token":' + "[" * 1200 + "]" * 1200 + "}",
    '452-["ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
    '451-["ack",' + "[" * 300 + '{"_placeholder":true,"num":0}' + "]" * 300 + "]",
    # Many empty or small containers (the depth check's pre-count), and placeholders among them.
    '42["ack",' + ",".join(["{}", "[]", "[0]", '{"":{}}'] * 30) + "]",
    '451-["ack",' + ",".join(["{}"] * 60) + ',[{"a":{"_placeholder":true,"num":0}}]]',
]

mutation = st.tuples(st.integers(0, 60), st.sampled_from(["insert", "delete", "replace"]), st.characters())


def mutate(template: str, edits: list[tuple[int, str, str]]) -> str:
    text = template
    for position, op, char in edits:
        i = position % (len(text) + 1)
        if op == "insert":
            text = text[:i] + char + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + 1 :]
        else:
            text = text[:i] + char + text[i + 1 :]
    return text


mutated = st.builds(mutate, st.sampled_from(TEMPLATES), st.lists(mutation, max_size=3))
text_frame = st.one_of(st.text(max_size=40), mutated)
frame = st.one_of(text_frame, st.binary(max_size=40))
json_bodies = st.one_of(st.binary(max_size=60), st.lists(text_frame, min_size=1, max_size=3).map("\x1e".join))

_date, _undefined = msgpack.ExtType(0, b"\x00\x00\x01\x6f\x5e\x66\xe8\x00"), msgpack.ExtType(0, b"\x00")
MSGPACK_TEMPLATES = [
    msgpack.packb(body, unicode_errors="surrogatepass") for body in [
        {"type": 0, "nsp": "/"},
        {"type": 0, "data": {"token": "s3cret"}, "nsp": "/admin"},
        {"type": 2, "data": ["ack", 1, "two", b"\x03"], "id": 1, "nsp": "/"},
        {"type": 2, "data": ["ack", {"a": [1, 2, None]}, _date, _undefined], "options": {"compress": True}, "nsp": "/"},
        {"type": 3, "id": 1, "data": [1], "nsp": "/"},
        {"type": 1, "nsp": "/"},
        {"type": 4, "data": {"message": "x"}, "nsp": "/"},
        {"type": 2, "data": ["ack", "\ud800"], "nsp": "/"},
        {"type": 2, "data": ["ack", [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]], "nsp": "/"},
        # Keys that are not strings, undefined deep inside, dates and timestamps out of range, big integers.
        {"type": 2, "data": ["ack", {b"binary key": 1}], "nsp": "/"},
        {"type": 2, "data": ["ack", {msgpack.ExtType(0, b"ab"): 1}], "nsp": "/"},
        {"type": 2, "data": ["ack", [_undefined, {"k": [_undefined]}], _undefined], "id": 2, "nsp": "/"},
        {"type": 2, "data": ["ack", msgpack.ExtType(0, b"\x7f" * 8)], "nsp": "/"},
        {"type": 2, "data": ["ack", 2**64 - 1, -(2**63), 1e300], "nsp": "/"},
        {"type": 2, "data": ["ack", {"_placeholder": True, "num": 0}], "nsp": "/"},
        {"type": 0, "data": {"pid": "oHNbKV7l2SRnJjrFiKBo", "offset": "0a1b2c3d-1f"}, "nsp": "/"},
    ]
] + [b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa3ack" + b"\x91" * 150 + b"\xc0",
     b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\xdc\x00\x41\xa3ack" + b"\x80\x90" * 32,
     # A timestamp (extension -1, 96 bits) beyond what datetime holds.
     b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa3ack\xc7\x0c\xff" + b"\x00" * 4 + (2**63 - 1).to_bytes(8, "big")]


def mutate_bytes(template: bytes, edits: list[tuple[int, str, int]]) -> bytes:
    message = template
    for position, op, byte in edits:
        i = position % (len(message) + 1)
        if op == "insert":
            message = message[:i] + bytes([byte]) + message[i:]
        elif op == "delete":
            message = message[:i] + message[i + 1 :]
        else:
            message = message[:i] + bytes([byte]) + message[i + 1 :]
    return message


msgpack_message = st.one_of(
    st.builds(mutate_bytes, st.sampled_from(MSGPACK_TEMPLATES),
              st.lists(st.tuples(st.integers(0, 80), st.sampled_from(["insert", "delete", "replace"]),
                                 st.integers(0, 255)), max_size=3)),
    st.binary(max_size=40),
)
msgpack_frame = st.one_of(msgpack_message, msgpack_message, text_frame)
msgpack_bodies = st.lists(
    st.one_of(msgpack_message.map(lambda b: "b" + base64.b64encode(b).decode()), text_frame), min_size=1, max_size=3
).map("\x1e".join)


def undecodable(frames: list[str | bytes], new_decoder: Callable[[], AnyDecoder] = Decoder) -> bool:
    """Whether our own codecs reject this sequence (then the server must close the session)."""
    decoder = new_decoder()
    for f in frames:
        try:
            if isinstance(f, bytes):
                payload = f
                packet = decode_ws_frame(payload, True)
            else:
                packet = decode_ws_frame(f.encode("utf-8", "surrogatepass"), False)
        except (EIODecodeError, UnicodeEncodeError):
            return True
        if packet.type is PacketType.MESSAGE:
            try:
                decoder.feed(packet.data)
            except SIODecodeError:
                return True
        elif packet.type in (PacketType.OPEN, PacketType.UPGRADE, PacketType.PING):
            return True
        elif packet.type is PacketType.CLOSE:
            return False
    return False


def run_fuzz(
    url: str,
    frames_strategy: st.SearchStrategy[str | bytes] = frame,
    bodies_strategy: st.SearchStrategy[str | bytes] = json_bodies,
    new_decoder: Callable[[], AnyDecoder] = Decoder,
    serializer: str = "default",
    examples_each: tuple[int, int, int] = (150, 20, 100),
) -> int:
    healthy = socketio.Client(reconnection=False, serializer=serializer)
    healthy.connect(url, transports=["websocket"], wait_timeout=10)
    ws_url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    poll_url = url + "/socket.io/?EIO=4&transport=polling"
    examples = [0]

    def still_healthy() -> None:
        assert healthy.call("ack", examples[0], timeout=10) == ("got", examples[0])

    @settings(max_examples=examples_each[0], deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(frames_strategy, min_size=1, max_size=3))
    def websocket_frames(frames: list[str | bytes]) -> None:
        examples[0] += 1
        ws = websocket.create_connection(ws_url, timeout=10)
        try:
            opened = ws.recv()
            assert isinstance(opened, str) and opened.startswith("0{")
            for f in frames:
                try:
                    if isinstance(f, bytes):
                        ws.send_binary(f)
                    else:
                        ws.send(f.encode("utf-8", "surrogatepass"), opcode=websocket.ABNF.OPCODE_TEXT)
                except (websocket.WebSocketConnectionClosedException, BrokenPipeError, ConnectionResetError):
                    break
            if undecodable(frames, new_decoder):
                # The server must close this session: read until the connection ends.
                while True:
                    try:
                        if ws.recv() in ("", b""):
                            break
                    except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
                        break
        finally:
            ws.close(timeout=1)
        still_healthy()

    @settings(max_examples=max(examples_each[1], 1), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(1, 3000), st.integers(0, 125))
    def pings_without_reading(count: int, size: int) -> None:
        # Pings whose pongs the client never reads: the server must not buffer them without bound.
        examples[0] += 1
        ws = websocket.create_connection(ws_url, timeout=10)
        try:
            for _ in range(count):
                ws.ping(b"p" * size)
        except (websocket.WebSocketConnectionClosedException, BrokenPipeError, ConnectionResetError,
                TimeoutError):
            pass
        finally:
            ws.close(timeout=1)
        still_healthy()

    @settings(max_examples=examples_each[2], deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(bodies_strategy)
    def polling_bodies(body: bytes | str) -> None:
        examples[0] += 1
        opened = requests.get(poll_url, timeout=10)
        sid = opened.text[1:].split('"sid":"', 1)[1].split('"', 1)[0]
        raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
        posted = requests.post(f"{poll_url}&sid={sid}", data=raw, timeout=10)
        assert posted.status_code in (200, 400, 413), posted.status_code
        try:
            text = raw.decode("utf-8")
            frames: list[str | bytes] = [p.data if p.type is PacketType.MESSAGE and isinstance(p.data, bytes)
                                         else str(p.type.value) + str(p.data) for p in decode_payload(text)]
            bad = undecodable(frames, new_decoder)
        except (UnicodeDecodeError, EIODecodeError):
            bad = True
        if bad:
            # Closed: the next poll gets the CLOSE packet, or learns the session is gone.
            polled = requests.get(f"{poll_url}&sid={sid}", timeout=10)
            assert (polled.status_code, polled.text) in ((200, "1"),) or polled.status_code == 400
        still_healthy()

    try:
        websocket_frames()
        if examples_each[1]:
            pings_without_reading()
        polling_bodies()
        still_healthy()
    finally:
        healthy.disconnect()
    return examples[0]


@pytest_twisted.ensureDeferred
async def test_fuzzed_packets_close_only_their_sessions(
    realtime: Realtime, logged_failures: list[dict[str, Any]]
) -> None:
    running = await realtime.start_server(install, options=EngineIOOptions(ping_interval=60, ping_timeout=60))
    examples = await threads.deferToThread(run_fuzz, running.url)
    assert examples >= 270
    assert [e["log_failure"].getTraceback() for e in logged_failures] == []


@pytest_twisted.ensureDeferred
async def test_fuzzed_msgpack_packets_close_only_their_sessions(
    realtime: Realtime, logged_failures: list[dict[str, Any]]
) -> None:
    running = await realtime.start_server(install, options=EngineIOOptions(ping_interval=60, ping_timeout=60),
                                          parser="msgpack")
    examples = await threads.deferToThread(
        run_fuzz, running.url, msgpack_frame, msgpack_bodies, MsgpackDecoder, "msgpack", (120, 0, 80)
    )
    assert examples >= 200
    assert [e["log_failure"].getTraceback() for e in logged_failures] == []
