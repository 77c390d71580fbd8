"""socket.io-client 2.x (Engine.IO v3, Socket.IO v4) against txrealtime with ``allow_eio3``, and
against Node's socket.io with ``allowEIO3``: both servers must give the client the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted

from tests.servers import NodeServer, SocketIOServer, node_peer
from txrealtime.engineio import EngineIOOptions

MODES = ["polling", "websocket", "upgrade", "polling-b64", "websocket-b64"]


@pytest.fixture
def eio3_server() -> Iterator[SocketIOServer]:
    from tests.socketio.app import install
    from txrealtime.testing import start_server

    records: list[Any] = []
    options = EngineIOOptions(ping_interval=1, ping_timeout=2, allow_eio3=True)
    running = pytest_twisted.blockon(start_server(lambda s: records.append(install(s)), options=options))
    yield SocketIOServer(running.server, running.url, records[0], running)
    pytest_twisted.blockon(running.stop())


@pytest.fixture(scope="module")
def node_eio3() -> Iterator[NodeServer]:
    server = NodeServer(allow_eio3=True)
    yield server
    server.kill()


async def run(url: str, scenario: str, mode: str) -> dict[str, Any]:
    report: dict[str, Any] = await node_peer("sio_v2_client.js", url, scenario, mode)
    assert report.get("error") is None, report["error"]
    return report


@pytest.mark.parametrize("mode", MODES)
@pytest_twisted.ensureDeferred
async def test_emit_ack_binary_heartbeat(eio3_server: SocketIOServer, mode: str) -> None:
    report = await run(eio3_server.url, "basic", mode)
    assert report["sameAsEngine"] is True
    assert report["echo"] == ["hello ☃ 𝄞", {"binary": [1, 2, 3]}, {"nested": [{"binary": [4]}], "n": 1.5}]
    assert report["ack"] == ["got", 1, "two", {"binary": [5]}]
    assert report["answer"] == [[42, {"binary": [9]}]]
    assert eio3_server.record.answers == [(42, b"\x09")]
    assert report["afterUpgrade"] == ["got", "still here", {"binary": [7]}]
    assert report["transport"] == ("polling" if mode.startswith("polling") else "websocket")
    assert report["pongs"] is True and report["afterPings"] == ["got", "alive"]
    assert report["disconnect"] == ["io server disconnect"]
    assert eio3_server.record.connected == [("/", report["id"])]
    assert eio3_server.record.disconnects == [("/", "server namespace disconnect")]


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_namespaces_and_middleware_as_node(
    eio3_server: SocketIOServer, node_eio3: NodeServer, mode: str
) -> None:
    ours = await run(eio3_server.url, "namespaces", mode)
    node = await run(node_eio3.url, "namespaces", mode)
    for report in (ours, node):
        assert report["customIdShape"] is True
        assert report["custom"] == ["got", "custom"]
        assert report["admin"] == ["got", "admin"]
        assert report["dyn"] == ["got", "dyn"]
        # A v2 client sees a middleware's err.data (else its message); a missing namespace as an object.
        assert report["rejected"] == {"code": 401}
        assert report["invalid"] == {"message": "Invalid namespace"}
    # The namespace's query string is the socket's handshake.auth, as in Node.
    assert {"token": "s3cret"} in eio3_server.record.auth and {"token": "wrong"} in eio3_server.record.auth
    names = [name for name, _ in eio3_server.record.connected]
    # Every v2 connection joins "/" implicitly, then the namespace it asked for.
    assert sorted(set(names)) == ["/", "/admin", "/custom", "/dyn-42"]


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_rooms_and_broadcast(eio3_server: SocketIOServer, mode: str) -> None:
    report = await run(eio3_server.url, "rooms", mode)
    assert report["aRooms"] == [["r1"]] and report["bRooms"] == [["r1"]]
    seen = report["seen"]
    assert seen["a"] == [["room message", "r1", "hi room"]]
    assert seen["b"] == [["room message", "r1", "hi room"], ["broadcast", {"binary": [1, 2]}]]
    assert seen["c"] == [["broadcast", {"binary": [1, 2]}]]


@pytest.mark.parametrize("mode", ["polling", "websocket", "polling-b64", "websocket-b64"])
@pytest_twisted.ensureDeferred
async def test_one_broadcast_reaches_v2_and_v4_clients(eio3_server: SocketIOServer, mode: str) -> None:
    report = await run(eio3_server.url, "mixed", mode)
    expected = ["mixed", {"text": "hi", "bytes": {"binary": [1, 2, 3]}}]
    assert report["old"] == expected and report["current"] == expected
    assert report["oldBroadcast"] == report["currentBroadcast"] == ["text only"]


@pytest_twisted.ensureDeferred
async def test_node_gives_the_same_answers(node_eio3: NodeServer) -> None:
    """The scenarios above, against Node with allowEIO3: the reference the assertions come from."""
    basic = await run(node_eio3.url, "basic", "upgrade")
    assert basic["echo"] == ["hello ☃ 𝄞", {"binary": [1, 2, 3]}, {"nested": [{"binary": [4]}], "n": 1.5}]
    assert basic["sameAsEngine"] is True and basic["disconnect"] == ["io server disconnect"]
    mixed = await run(node_eio3.url, "mixed", "polling-b64")
    assert mixed["old"] == mixed["current"] == ["mixed", {"text": "hi", "bytes": {"binary": [1, 2, 3]}}]


def raw_conversation(url: str, b64: bool) -> dict[str, Any]:
    """A v3 polling conversation in raw bytes: handshake, a ping, a binary echo; what the server answered."""
    import json

    import requests

    base = url + "/socket.io/?EIO=3&transport=polling" + ("&b64=1" if b64 else "")
    opened = requests.get(base, timeout=10)
    length, _, rest = opened.text.partition(":")
    handshake = json.loads(rest[1 : int(length)])
    poll = f"{base}&sid={handshake['sid']}"
    seen = opened.content[len(length) + 1 + int(length) :]
    for _ in range(5):  # Node sends the implicit CONNECT with the next poll; txrealtime with the OPEN
        if b"40" in seen:
            break
        seen += requests.get(poll, timeout=10).content
    header = '51-["echo",{"_placeholder":true,"num":0}]'
    if b64:
        body = f"1:2{len(header) + 1}:4{header}10:b4AQIDBA==".encode()
        headers = {"Content-Type": "text/plain;charset=UTF-8"}
    else:
        encoded = ("4" + header).encode()
        body = (b"\x00\x01\xff2\x00" + bytes(map(int, str(len(encoded)))) + b"\xff" + encoded
                + b"\x01\x05\xff\x04\x01\x02\x03\x04")
        headers = {"Content-Type": "application/octet-stream"}
    posted = requests.post(poll, data=body, headers=headers, timeout=10)
    answer = b""
    for _ in range(5):
        got = requests.get(poll, timeout=10)
        answer += got.content
        if b"\x04\x01\x02\x03\x04" in answer or b"AQIDBA==" in answer or got.status_code != 200:
            break
    return {"keys": sorted(handshake), "connect": seen, "posted": posted.text, "answer": answer,
            "type": got.headers["content-type"]}


@pytest.mark.parametrize("b64", [False, True])
@pytest_twisted.ensureDeferred
async def test_raw_polling_bytes_as_node(eio3_server: SocketIOServer, node_eio3: NodeServer, b64: bool) -> None:
    from twisted.internet import threads

    ours = await threads.deferToThread(raw_conversation, eio3_server.url, b64)
    node = await threads.deferToThread(raw_conversation, node_eio3.url, b64)
    assert ours == node
    assert ours["connect"] == b"2:40"
    if b64:
        assert ours["answer"] == b'1:342:451-["echo",{"_placeholder":true,"num":0}]10:b4AQIDBA=='
    else:
        assert ours["answer"] == (b'\x00\x01\xff3\x00\x04\x02\xff451-["echo",{"_placeholder":true,"num":0}]'
                                  b"\x01\x05\xff\x04\x01\x02\x03\x04")


def raw_jsonp(url: str) -> list[tuple[int, str, bytes]]:
    """A JSONP polling conversation (``j=4``): every answer, the sid replaced by ``SID``."""
    import json

    import requests

    base = url + "/socket.io/?EIO=3&transport=polling&j=4&b64=1"
    opened = requests.get(base, timeout=10)
    prefix = b'___eio[4]('
    assert opened.content.startswith(prefix), opened.content
    payload = json.loads(opened.content[len(prefix) : -2])
    sid = json.loads(payload[payload.index(":") + 2 :].split("40", 1)[0].rstrip("0123456789:"))["sid"]
    poll = f"{base}&sid={sid}"
    answers = [opened]
    if b"40" not in opened.content:
        answers.append(requests.get(poll, timeout=10))  # Node's implicit CONNECT
    # An event with a newline (the client escapes it as \\n) and a backslash-n (escaped as \\\\n).
    event = '42["echo","a\\nb","c\\\\nd"]'
    form = {"d": f"{len(event)}:{event}".replace("\\n", "\\\\n").replace("\n", "\\n")}
    answers.append(requests.post(poll, data=form, timeout=10))
    answers.append(requests.get(poll, timeout=10))
    return [(r.status_code, r.headers["content-type"], r.content.replace(sid.encode(), b"SID")) for r in answers]


@pytest_twisted.ensureDeferred
async def test_jsonp_as_node(eio3_server: SocketIOServer, node_eio3: NodeServer) -> None:
    from twisted.internet import threads

    ours = await threads.deferToThread(raw_jsonp, eio3_server.url)
    node = await threads.deferToThread(raw_jsonp, node_eio3.url)
    # txrealtime answers the handshake with the OPEN and the implicit CONNECT together; Node in two polls.
    assert ours[1:] == node[2:]
    assert ours[-1] == (200, "text/plain; charset=UTF-8",
                        b'___eio[4]("25:42[\\"echo\\",\\"a\\\\nb\\",\\"c\\\\\\\\nd\\"]");')


@pytest_twisted.ensureDeferred
async def test_jsonp_in_a_browser() -> None:
    """socket.io-client 2.x in Chromium with forceJSONP: scripts for answers, hidden-form POSTs."""
    from tests.servers import page_report

    report = await page_report("jsonp_v2_browser.js", "--allow-eio3", "--app", "tests.socketio.app:install")
    assert report.get("error") is None, report["error"]
    assert report["errors"] == []
    assert report["jsonpRequests"] is True and report["transport"] == "polling"
    assert report["id"] == report["engineId"]
    assert report["answer"] == ["got", "line\nbreak", "back\\nslash", "é 𝄞 <U+2028>"]
    assert report["binary"] == [1, 2, 3]
