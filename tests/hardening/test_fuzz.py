"""Random and mutated Engine.IO / Socket.IO packets against a live server over both transports.

Hypothesis drives blocking peers (websocket-client, requests) in a thread
while the server runs in the reactor. After every example a healthy
python-socketio client beside the fuzzed sessions must still get its
acknowledgement, and input our own codec rejects must have closed the
session that sent it. Nothing the server logs may be an unexpected failure.
"""

from __future__ import annotations

from typing import Any, cast

import pytest_twisted
import requests
import socketio
import websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import threads
from twisted.logger import ILogObserver, globalLogPublisher

from tests.socketio.app import install
from txrealtime.engineio import EngineIOOptions
from txrealtime.engineio.packets import DecodeError as EIODecodeError
from txrealtime.engineio.packets import PacketType, decode_payload, decode_ws_frame
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio.packets import DecodeError as SIODecodeError
from txrealtime.socketio.packets import Decoder

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


def undecodable(frames: list[str | bytes]) -> bool:
    """Whether our own codecs reject this sequence (then the server must close the session)."""
    decoder = Decoder()
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


def run_fuzz(url: str) -> int:
    healthy = socketio.Client(reconnection=False)
    healthy.connect(url, transports=["websocket"], wait_timeout=10)
    ws_url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    poll_url = url + "/socket.io/?EIO=4&transport=polling"
    examples = [0]

    def still_healthy() -> None:
        assert healthy.call("ack", examples[0], timeout=10) == ("got", examples[0])

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(frame, min_size=1, max_size=3))
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
            if undecodable(frames):
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

    @settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
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

    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.binary(max_size=60), st.lists(text_frame, min_size=1, max_size=3).map("\x1e".join)))
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
            bad = undecodable(frames)
        except (UnicodeDecodeError, EIODecodeError):
            bad = True
        if bad:
            # Closed: the next poll gets the CLOSE packet, or learns the session is gone.
            polled = requests.get(f"{poll_url}&sid={sid}", timeout=10)
            assert (polled.status_code, polled.text) in ((200, "1"),) or polled.status_code == 400
        still_healthy()

    try:
        websocket_frames()
        pings_without_reading()
        polling_bodies()
        still_healthy()
    finally:
        healthy.disconnect()
    return examples[0]


@pytest_twisted.ensureDeferred
async def test_fuzzed_packets_close_only_their_sessions(realtime: Realtime) -> None:
    failures: list[dict[str, Any]] = []

    def watch(event: dict[str, Any]) -> None:
        if "log_failure" in event and "handler of" not in str(event.get("log_format", "")):
            failures.append(event)

    globalLogPublisher.addObserver(cast(ILogObserver, watch))
    try:
        running = await realtime.start_server(install, options=EngineIOOptions(ping_interval=60, ping_timeout=60))
        examples = await threads.deferToThread(run_fuzz, running.url)
    finally:
        globalLogPublisher.removeObserver(cast(ILogObserver, watch))
    assert examples >= 270
    assert [e["log_failure"].getTraceback() for e in failures] == []
