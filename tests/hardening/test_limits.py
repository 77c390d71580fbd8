"""Each limit over real loopback connections: the offender gets a clear refusal or close, others carry on."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.web.client import FileBodyProducer
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer

from tests.peers import base, handshake, http, sid_of, until, websocket_handshake
from tests.servers import closes, serve
from txrealtime.engineio import CloseReason, EngineIOOptions
from txrealtime.engineio.options import CookieOptions
from txrealtime.pytest_plugin import Realtime
from txrealtime.testing import TestServer


async def healthy(realtime: Realtime, running: TestServer) -> None:
    client = await realtime.connect(running)
    assert await client.emit_with_ack("ack", "fine", timeout=10) == ("got", "fine")


@pytest_twisted.ensureDeferred
async def test_oversize_body_refused_while_it_arrives(realtime: Realtime) -> None:
    running, events = await serve(realtime, max_payload=1000)
    _, body, _ = await handshake(running)
    sid = sid_of(body)
    # Announced length over the limit: refused before the body is read.
    response = await http.post(f"{base(running)}&sid={sid}", data=b"4" + b"x" * 5000)
    assert response.code == 413
    assert await response.content() == b""  # as Node's engine.io
    # Nothing more, as in Node: the session carries on (Node's client, told 413, ends it itself).
    assert await (await http.post(f"{base(running)}&sid={sid}", data=b"40")).text() == "ok"
    assert (await (await http.get(f"{base(running)}&sid={sid}")).text()).startswith("40{")
    assert closes(events) == []

    # A chunked body (no length) is counted as it arrives.
    _, body, _ = await handshake(running)
    chunked = sid_of(body)
    from io import BytesIO

    producer = FileBodyProducer(BytesIO(b"4" + b"y" * 50_000))
    producer.length = UNKNOWN_LENGTH  # sent chunked
    response = await http.post(f"{base(running)}&sid={chunked}", data=cast(IBodyProducer, producer))
    assert response.code == 413
    assert await response.content() == b""
    assert running.server.manager.get(chunked) is not None and closes(events) == []
    await healthy(realtime, running)


@pytest_twisted.ensureDeferred
async def test_oversize_websocket_message(realtime: Realtime) -> None:
    running, events = await serve(realtime, max_payload=1000)
    ws = await websocket_handshake(f"{running.url}/socket.io/?EIO=4&transport=websocket")
    assert ws.recv().startswith("0{")
    await threads.deferToThread(ws.send, "4" + "z" * 5000)
    await threads.deferToThread(ws.recv)  # the server's close frame, which websocket-client answers
    await until(lambda: bool(closes(events)), "the session to close")
    assert closes(events)[0][0] is CloseReason.TRANSPORT_ERROR
    await threads.deferToThread(ws.close)
    await healthy(realtime, running)


@pytest_twisted.ensureDeferred
async def test_origin_allow_list_on_both_transports(realtime: Realtime) -> None:
    running, _ = await serve(realtime, allowed_origins=["https://good.example"])
    code, body, _ = await handshake(running, {"Origin": "https://evil.example"})
    assert (code, json.loads(body)) == (403, {"code": 4, "message": "Forbidden"})
    code, _, _ = await handshake(running, {"Origin": "https://good.example"})
    assert code == 200
    code, _, _ = await handshake(running)  # no Origin: not a browser, not cross-origin
    assert code == 200
    ws_url = f"{running.url}/socket.io/?EIO=4&transport=websocket"
    assert await websocket_handshake(ws_url, origin="https://evil.example") == 400  # refused upgrades: 400, as Node
    good = await websocket_handshake(ws_url, origin="https://good.example")
    assert good.recv().startswith("0{")
    await threads.deferToThread(good.close)


@pytest_twisted.ensureDeferred
async def test_allow_request_hook_may_be_async(realtime: Realtime) -> None:
    seen: list[str] = []

    def allow(handshake: Any) -> Deferred[Any]:
        seen.append(handshake.address)
        token = handshake.query.get("token")
        return deferLater(reactor, 0, lambda: True if token == "ok" else "bad token")

    running, _ = await serve(realtime, allow_request=allow)
    response = await http.get(base(running) + "&token=nope")
    assert response.code == 403
    assert json.loads(await response.text()) == {"code": 4, "message": "bad token"}  # the reason, as Node's
    response = await http.get(base(running) + "&token=ok")
    assert response.code == 200 and (await response.text()).startswith("0{")
    ws_url = f"{running.url}/socket.io/?EIO=4&transport=websocket"
    assert await websocket_handshake(ws_url + "&token=nope") == 400
    ws = await websocket_handshake(ws_url + "&token=ok")
    assert ws.recv().startswith("0{")
    await threads.deferToThread(ws.close)
    assert seen == ["127.0.0.1"] * 4


@pytest_twisted.ensureDeferred
async def test_sessions_per_address(realtime: Realtime) -> None:
    running, _ = await serve(realtime, max_sessions_per_ip=2)
    first = sid_of((await handshake(running))[1])
    await handshake(running)
    code, body, _ = await handshake(running)
    assert (code, json.loads(body)["code"]) == (403, 4)
    running.server.manager.close(first)
    code, _, _ = await handshake(running)
    assert code == 200


@pytest_twisted.ensureDeferred
async def test_packet_rate_limit(realtime: Realtime) -> None:
    running, events = await serve(realtime, max_packets_per_second=20)
    flooder = sid_of((await handshake(running))[1])
    bystander = sid_of((await handshake(running))[1])
    await http.post(f"{base(running)}&sid={bystander}", data=b"40")
    flood = "\x1e".join(["3"] * 100)  # a hundred pongs at once
    response = await http.post(f"{base(running)}&sid={flooder}", data=flood.encode())
    assert response.code == 200
    assert closes(events) == [(CloseReason.TRANSPORT_ERROR, "rate limit: more than 20 packets/s")]
    response = await http.get(f"{base(running)}&sid={flooder}")
    assert await response.text() == "1"  # the CLOSE packet
    response = await http.get(f"{base(running)}&sid={bystander}")
    assert (await response.text()).startswith('40{"sid":')


@pytest_twisted.ensureDeferred
async def test_session_cookie_on_both_transports(realtime: Realtime) -> None:
    running, _ = await serve(realtime, cookie=CookieOptions())
    _, body, headers = await handshake(running)
    assert headers.getRawHeaders("set-cookie") == [f"io={sid_of(body)}; Path=/; HttpOnly; SameSite=Lax"]
    ws = await websocket_handshake(f"{running.url}/socket.io/?EIO=4&transport=websocket")
    sid = json.loads(ws.recv()[1:])["sid"]
    assert ws.getheaders()["set-cookie"] == f"io={sid}; Path=/; HttpOnly; SameSite=Lax"
    await threads.deferToThread(ws.close)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        EngineIOOptions(max_payload=10, max_buffer=5)
    with pytest.raises(ValueError):
        EngineIOOptions(max_packets_per_second=0)
    with pytest.raises(ValueError):
        EngineIOOptions(max_sessions_per_ip=0)
