"""Random and mutated Engine.IO v3 input (``allow_eio3``) against a live server over both transports.

As tests/hardening/test_fuzz.py does for v4: Hypothesis drives blocking peers in a thread; after
every example a healthy python-socketio client beside the fuzzed sessions must still get its
acknowledgement, and input the v3 codec rejects must have closed the session that sent it.
Nothing the server logs may be an unexpected failure.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest_twisted
import requests
import socketio
import websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import threads

from tests.socketio.app import install
from txrealtime.engineio import EngineIOOptions
from txrealtime.engineio.packets import DecodeError
from txrealtime.engineio.packets_v3 import decode_ws_frame, iter_binary_payload, iter_payload, jsonp_data
from txrealtime.pytest_plugin import Realtime

ITEMS = ["2", "2probe", "3", "6", "1", "40", '42["ack",1]', "41", "b4AQI=", "5",
         '451-["ack",{"_placeholder":true,"num":0}]']


def payload(items: list[str], lengths: list[int]) -> str:
    """A text payload of ``items``, some lengths off by the amounts in ``lengths``."""
    out = []
    for i, item in enumerate(items):
        off = lengths[i] if i < len(lengths) else 0
        out.append(f"{max(len(item) + off, 0)}:{item}")
    return "".join(out)


text_payloads = st.one_of(
    st.builds(payload, st.lists(st.sampled_from(ITEMS), min_size=1, max_size=4),
              st.lists(st.sampled_from([0, 0, 0, 1, -1, 5]), max_size=4)),
    st.text(max_size=40),
)
binary_payloads = st.one_of(
    st.binary(max_size=40),
    st.lists(st.tuples(st.sampled_from([0, 1, 2]), st.binary(max_size=8)), min_size=1, max_size=3).map(
        lambda parts: b"".join(bytes([kind, *map(int, str(len(data)))]) + b"\xff" + data for kind, data in parts)
    ),
)


jsonp_forms = st.one_of(
    # The client's form: d=<text payload>, percent-encoded, maybe among other fields.
    st.builds(lambda text, before, after: "&" * before + "d=" + quote(text, safe="") + "&" * after,
              text_payloads, st.integers(0, 3), st.integers(0, 3)),
    st.builds(lambda count: "d=" + quote("1:2" * count, safe=""), st.integers(1, 300)),  # ping floods
    st.text(max_size=40),
)


def rejected_text(body: str) -> bool:
    try:
        list(iter_payload(body))
    except DecodeError:
        return True
    return False


def rejected_binary(body: bytes) -> bool:
    try:
        list(iter_binary_payload(body))
    except DecodeError:
        return True
    return False


def run_fuzz(url: str) -> int:
    healthy = socketio.Client(reconnection=False)
    healthy.connect(url, transports=["websocket"], wait_timeout=10)
    poll_url = url + "/socket.io/?EIO=3&transport=polling"
    ws_url = url.replace("http", "ws", 1) + "/socket.io/?EIO=3&transport=websocket"
    examples = [0]

    def still_healthy() -> None:
        assert healthy.call("ack", examples[0], timeout=10) == ("got", examples[0])

    def open_session() -> str:
        opened = requests.get(poll_url, timeout=10)
        assert opened.status_code == 200
        return opened.text.split('"sid":"', 1)[1].split('"', 1)[0]

    def check_closed(sid: str) -> None:
        polled = requests.get(f"{poll_url}&sid={sid}", timeout=10)
        # Closed: the CLOSE packet ("1:1"), possibly after what was queued, or the sid is unknown.
        assert polled.status_code == 400 or polled.content.endswith(b"1:1"), polled.content

    @settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(text_payloads, binary_payloads))
    def polling_bodies(body: str | bytes) -> None:
        examples[0] += 1
        sid = open_session()
        if isinstance(body, bytes):
            headers = {"Content-Type": "application/octet-stream"}
            posted = requests.post(f"{poll_url}&sid={sid}", data=body, headers=headers, timeout=10)
            bad = rejected_binary(body)
        else:
            raw = body.encode("utf-8", "surrogatepass")
            posted = requests.post(f"{poll_url}&sid={sid}", data=raw, timeout=10)
            try:
                bad = rejected_text(raw.decode("utf-8"))
            except UnicodeDecodeError:
                bad = True
        assert posted.status_code in (200, 400), posted.status_code
        if bad:  # 400, or 200 if a packet before the bad one already broke Socket.IO and closed it
            check_closed(sid)
        still_healthy()

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(jsonp_forms)
    def jsonp_bodies(form: str) -> None:
        examples[0] += 1
        opened = requests.get(poll_url + "&j=0", timeout=10)
        assert opened.status_code == 200 and opened.text.startswith("___eio[0](")
        sid = opened.text.split('\\"sid\\":\\"', 1)[1].split("\\", 1)[0]
        raw = form.encode("utf-8", "surrogatepass")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        posted = requests.post(f"{poll_url}&sid={sid}&j=0", data=raw, headers=headers, timeout=10)
        try:
            data = jsonp_data(raw.decode("utf-8"))
            bad = data is not None and rejected_text(data)
        except UnicodeDecodeError:
            data, bad = None, True
        assert posted.status_code in (200, 400), posted.status_code
        if bad:
            polled = requests.get(f"{poll_url}&sid={sid}&j=0", timeout=10)
            assert polled.status_code == 400 or polled.text.endswith('1:1");'), polled.text
        elif data and data == "1:2" * (len(data) // 3):
            # Pings never read before: one PONG, whatever their number (after the namespace's CONNECT).
            polled = requests.get(f"{poll_url}&sid={sid}&j=0", timeout=10)
            assert polled.text.endswith('1:3");') and polled.text.count("1:3") == 1, polled.text
        still_healthy()

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.one_of(st.sampled_from(ITEMS), st.text(max_size=20), st.binary(max_size=20)),
                    min_size=1, max_size=3))
    def websocket_frames(frames: list[str | bytes]) -> None:
        examples[0] += 1
        ws = websocket.create_connection(ws_url, timeout=10)
        bad = False
        try:
            opened = ws.recv()
            assert isinstance(opened, str) and opened.startswith("0{")
            for f in frames:
                try:
                    decode_ws_frame(f if isinstance(f, bytes) else f.encode("utf-8", "surrogatepass"),
                                    isinstance(f, bytes))
                except DecodeError:
                    bad = True
                try:
                    if isinstance(f, bytes):
                        ws.send_binary(f)
                    else:
                        ws.send(f.encode("utf-8", "surrogatepass"), opcode=websocket.ABNF.OPCODE_TEXT)
                except (websocket.WebSocketConnectionClosedException, BrokenPipeError, ConnectionResetError):
                    break
            if bad:
                while True:  # the server must close this session: read until the connection ends
                    try:
                        if ws.recv() in ("", b""):
                            break
                    except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
                        break
        finally:
            ws.close(timeout=1)
        still_healthy()

    try:
        polling_bodies()
        jsonp_bodies()
        websocket_frames()
        still_healthy()
    finally:
        healthy.disconnect()
    return examples[0]


@pytest_twisted.ensureDeferred
async def test_fuzzed_v3_input_closes_only_its_sessions(
    realtime: Realtime, logged_failures: list[dict[str, Any]]
) -> None:
    options = EngineIOOptions(ping_interval=60, ping_timeout=60, allow_eio3=True)
    running = await realtime.start_server(install, options=options)
    examples = await threads.deferToThread(run_fuzz, running.url)
    assert examples >= 180
    assert [e["log_failure"].getTraceback() for e in logged_failures] == []
