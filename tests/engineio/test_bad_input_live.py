"""Hostile input over real loopback TCP: each offender gets the spec's error, bystanders keep working."""

from __future__ import annotations

import json

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.task import deferLater

from tests.peers import http
from tests.servers import EchoServer, node_peer
from txrealtime.engineio import CloseReason, SessionClosed


async def handshake(server: EchoServer) -> str:
    response = await http.get(f"{server.url}/engine.io/?EIO=4&transport=polling")
    body = await response.text()
    assert response.code == 200 and body.startswith("0")
    sid: str = json.loads(body[1:])["sid"]
    return sid


def poll_url(server: EchoServer, sid: str) -> str:
    return f"{server.url}/engine.io/?EIO=4&transport=polling&sid={sid}"


async def error_of(response: treq.response._Response) -> tuple[int, dict[str, object]]:
    return response.code, json.loads(await response.text())


async def parked(server: EchoServer, sid: str) -> None:
    """Wait until the server holds a GET for ``sid`` (the request travels on its own connection)."""
    for _ in range(500):
        session = server.manager.get(sid)
        if session is not None and session.transport.writable:
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"no GET parked for {sid}")


def closed(server: EchoServer, sid: str) -> list[CloseReason]:
    return [e.reason for e in server.of_type(SessionClosed) if e.sid == sid]


@pytest_twisted.ensureDeferred
async def test_offenders_closed_bystander_and_new_clients_unharmed(echo_server: EchoServer) -> None:
    server = echo_server
    bystander = await handshake(server)

    malformed = await handshake(server)
    response = await http.post(poll_url(server, malformed), data=b"9garbage")
    assert await error_of(response) == (400, {"code": 3, "message": "Bad request"})
    assert closed(server, malformed) == [CloseReason.PARSE_ERROR]

    response = await http.get(poll_url(server, "no-such-sid"))
    assert await error_of(response) == (400, {"code": 1, "message": "Session ID unknown"})

    oversize = await handshake(server)
    response = await http.post(poll_url(server, oversize), data=b"4" + b"x" * 1_000_000)
    assert response.code == 413
    assert await response.content() == b""
    # Refused, and nothing more: the session carries on, as with Node's engine.io.
    poll = http.get(poll_url(server, oversize))
    assert await (await http.post(poll_url(server, oversize), data=b"4after")).text() == "ok"
    assert await (await poll).text() == "4after"
    assert closed(server, oversize) == []

    overlapping = await handshake(server)
    first = http.get(poll_url(server, overlapping))
    await parked(server, overlapping)
    second = await http.get(poll_url(server, overlapping))
    assert await error_of(second) == (400, {"code": 3, "message": "Bad request"})
    assert await (await first).text() == "1"
    assert closed(server, overlapping) == [CloseReason.TRANSPORT_ERROR]

    # The bystander session still round-trips a message.
    poll = http.get(poll_url(server, bystander))
    posted = await http.post(poll_url(server, bystander), data=b"4still here")
    assert await posted.text() == "ok"
    assert await (await poll).text() == "4still here"
    assert closed(server, bystander) == []
    assert server.manager.get(bystander) is not None

    # And new clients are served as before.
    results = await DeferredList(
        [node_peer("eio_client.js", server.url, mode) for mode in ("polling", "websocket", "upgrade")],
        consumeErrors=True,
    )
    assert all(ok for ok, _ in results), results
    assert [r["messages"][0] for _, r in results] == ["hello"] * 3
