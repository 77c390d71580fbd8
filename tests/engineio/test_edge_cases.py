"""Protocol edge cases on the raw wire, each run against txrealtime and against Node's engine.io (the reference).

Where the two differ on purpose the test says so: a POST body that is not a payload is answered
400 by txrealtime and 200 ``ok`` by Node; the session ends at once on both.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pytest_twisted
import websocket

from tests.engineio.targets import (
    Target,
    open_polling,
    parked,
    poll,
    request,
    targets,
    ws_close,
    ws_connect,
    ws_echo,
    ws_frame,
    ws_send,
    ws_upgrade,
)
from txrealtime.engineio import CloseReason, SessionClosed

UNKNOWN_SID = {"code": 1, "message": "Session ID unknown"}


@pytest.fixture(params=["txrealtime", "node"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    with targets(request.param) as target:
        yield target


def closes(target: Target, sid: str) -> list[CloseReason]:
    return [e.reason for e in target.events if isinstance(e, SessionClosed) and e.sid == sid]


async def assert_gone(target: Target, sid: str) -> None:
    """Every later request for ``sid`` is refused as unknown: no CLOSE packet waits for a poll."""
    for method, body in [("GET", None), ("POST", b"4late")]:
        answer = await request(method, f"{target.base}&sid={sid}", body)
        assert (answer.status, answer.json()) == (400, UNKNOWN_SID), (method, answer)


# -- a POST body that is not a payload --------------------------------------------------------


@pytest.mark.parametrize("body", [b"9garbage", b"4fine\x1e9garbage", b"\xff\xfe"])
@pytest_twisted.ensureDeferred
async def test_bad_post_ends_the_session_at_once(target: Target, body: bytes) -> None:
    sid = await open_polling(target)
    answer = await request("POST", f"{target.base}&sid={sid}", body)
    if target.name == "node":
        assert (answer.status, answer.body) == (200, "ok")  # Node answers the bad body as a good one
    else:
        assert (answer.status, answer.json()) == (400, {"code": 3, "message": "Bad request"})
        assert closes(target, sid) == [CloseReason.PARSE_ERROR]
    await assert_gone(target, sid)


@pytest_twisted.ensureDeferred
async def test_bad_post_answers_a_parked_poll_with_close(target: Target) -> None:
    sid = await open_polling(target)
    pending = poll(target, sid)
    await parked(target, sid)
    answer = await request("POST", f"{target.base}&sid={sid}", b"9garbage")
    assert answer.status == (200 if target.name == "node" else 400)
    assert (await pending).body == "1"
    await assert_gone(target, sid)


@pytest_twisted.ensureDeferred
async def test_bystander_unharmed_by_a_bad_post(target: Target) -> None:
    bystander = await open_polling(target)
    offender = await open_polling(target)
    await request("POST", f"{target.base}&sid={offender}", b"9garbage")
    pending = poll(target, bystander)
    assert (await request("POST", f"{target.base}&sid={bystander}", b"4still here")).body == "ok"
    assert (await pending).body == "4still here"


# -- the client sends CLOSE while its poll is parked --------------------------------------------


@pytest_twisted.ensureDeferred
async def test_client_close_answers_the_parked_poll_with_noop(target: Target) -> None:
    sid = await open_polling(target)
    pending = poll(target, sid)
    await parked(target, sid)
    answer = await request("POST", f"{target.base}&sid={sid}", b"1")
    assert (answer.status, answer.body) == (200, "ok")
    assert (await pending).body == "6"
    await assert_gone(target, sid)
    if target.name == "txrealtime":
        assert closes(target, sid) == [CloseReason.TRANSPORT_CLOSE]


@pytest_twisted.ensureDeferred
async def test_client_close_after_messages(target: Target) -> None:
    """Messages before the CLOSE in the same body are delivered; the parked poll still gets the NOOP."""
    sid = await open_polling(target)
    pending = poll(target, sid)
    await parked(target, sid)
    assert (await request("POST", f"{target.base}&sid={sid}", b"4a\x1e1\x1e4b")).body == "ok"
    # The echo of "a" answers the parked poll before the CLOSE is read.
    assert (await pending).body == "4a"
    await assert_gone(target, sid)


@pytest_twisted.ensureDeferred
async def test_client_close_without_a_parked_poll(target: Target) -> None:
    sid = await open_polling(target)
    assert (await request("POST", f"{target.base}&sid={sid}", b"1")).body == "ok"
    await assert_gone(target, sid)


# -- a second WebSocket for a session that already upgraded ------------------------------------


@pytest_twisted.ensureDeferred
async def test_second_websocket_after_upgrade_is_accepted_and_closed(target: Target) -> None:
    sid = await open_polling(target)
    first = await ws_upgrade(target, sid)
    await ws_echo(first, "upgraded")  # the upgrade is complete on the server
    second = await ws_connect(target.ws_url(sid))
    assert second.getstatus() == 101
    assert await ws_frame(second) == (websocket.ABNF.OPCODE_CLOSE, b"")  # no status code, as Node's ws
    await ws_close(second)
    await ws_echo(first, "first still works")
    await ws_close(first)


@pytest_twisted.ensureDeferred
async def test_second_websocket_during_upgrade_is_accepted_and_closed(target: Target) -> None:
    sid = await open_polling(target)
    first = await ws_connect(target.ws_url(sid))
    await ws_send(first, "2probe")
    assert await ws_frame(first) == (websocket.ABNF.OPCODE_TEXT, b"3probe")
    second = await ws_connect(target.ws_url(sid))
    assert second.getstatus() == 101
    assert await ws_frame(second) == (websocket.ABNF.OPCODE_CLOSE, b"")
    await ws_close(second)
    await ws_send(first, "5")  # the first one completes its upgrade
    await ws_echo(first, "first still works")
    await ws_close(first)
