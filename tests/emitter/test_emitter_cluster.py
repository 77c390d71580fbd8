"""The Python emitter, both front ends, on a real redis-server: reaching the clients of a txrealtime node and of a
Node socket.io server with ``@socket.io/redis-adapter``, and a separate Python process without a reactor."""

from __future__ import annotations

import datetime

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from tests.adapters.cluster import WAIT, inbox, start_node_server, start_nodes, sync
from tests.emitter.mixed import front_end, rooms_become, sent, six_clients
from tests.peers import until
from tests.servers import RedisServer, python_peer
from txrealtime.adapters.redis import RedisLink
from txrealtime.pytest_plugin import Realtime

WHEN = datetime.datetime(2026, 11, 29, 5, 6, 7, 891000, tzinfo=datetime.UTC)
WHEN_ON_CLIENTS = "2026-11-29T05:06:07.891Z"


async def numsub(link: RedisLink, channel: str, count: int) -> None:
    for _ in range(int(WAIT * 20)):
        if await link.numsub(channel) >= count:
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"fewer than {count} subscribers on {channel}")


@pytest.mark.parametrize("kind", ["sync", "twisted"])
@pytest_twisted.ensureDeferred
async def test_the_emitter_reaches_txrealtime_and_node_clients(
    realtime: Realtime, redis_server: RedisServer, kind: str
) -> None:
    [ours] = await start_nodes(realtime, redis_server, ["py"])
    process, node_url = start_node_server(redis_server.url)
    try:
        async with six_clients(ours, node_url) as clients, front_end(kind, redis_server.url) as emitter:
            await numsub(ours.link, "socket.io-request#/chat#", 2)
            boxes, gone, got, notes = clients.boxes, clients.gone, clients.got, clients.notes
            t1, t2, n1, n2 = (clients.sockets[n] for n in ("t1", "t2", "n1", "n2"))
            # A room, binary (nested too) and a date: both servers' clients in r1, and only them.
            news = ["hello", b"\x00\xff", {"nested": b"\x01"}, WHEN]
            assert await sent(emitter.to("r1").emit("news", *news)) == 2  # both servers' pattern subscriptions
            await until(got("t1", "n1"), "the room event on both servers", limit=WAIT)
            expected = ["news", "hello", b"\x00\xff", {"nested": b"\x01"}, WHEN_ON_CLIENTS]
            assert boxes["t1"] == boxes["n1"] == [expected]

            # Except: everyone on / but r1.
            assert await sent(emitter.except_("r1").emit("not r1", 1)) == 2
            await until(got("t2", "n2"), "the except event on both servers", limit=WAIT)
            await sync(t1, t2, n1, n2)
            assert boxes["t2"] == boxes["n2"] == [["not r1", 1]]
            assert boxes["t1"] == boxes["n1"] == [expected]

            # A namespace of its own: /chat's clients only.
            assert await sent(emitter.of("chat").emit("chat news", {"n": 2})) == 2
            await until(got("tc", "nc"), "the /chat event on both servers", limit=WAIT)
            await sync(t1, t2, n1, n2)
            assert boxes["tc"] == boxes["nc"] == [["chat news", {"n": 2}]]
            assert [len(boxes[n]) for n in ("t1", "t2", "n1", "n2")] == [1, 1, 1, 1]

            # sockets_join / sockets_leave of the sockets in r1, on both servers.
            assert await sent(emitter.in_("r1").sockets_join(["r2", "r3"])) == 2
            for socket in (t1, n1):
                await rooms_become(socket, {"r1", "r2", "r3"})
            for socket in (t2, n2):
                await rooms_become(socket, set())
            assert await sent(emitter.to("r2").emit("via r2")) == 2
            await until(lambda: ["via r2"] in boxes["t1"] and ["via r2"] in boxes["n1"], "r2's event", limit=WAIT)
            assert await sent(emitter.sockets_leave("r3")) == 2
            for socket in (t1, n1):
                await rooms_become(socket, {"r1", "r2"})
            await sync(t2, n2)
            assert ["via r2"] not in boxes["t2"] and ["via r2"] not in boxes["n2"]

            # server_side_emit: the servers' own handlers (the Node server passes it on to its clients).
            assert await sent(emitter.server_side_emit("note", {"n": 3}, WHEN)) == 2
            await until(lambda: bool(notes), "the txrealtime server's handler", limit=WAIT)
            assert notes == [[{"n": 3}, WHEN_ON_CLIENTS]]
            await until(lambda: ["note", {"n": 3}, WHEN_ON_CLIENTS] in boxes["n2"], "the Node server's", limit=WAIT)

            # disconnect_sockets: r1's sockets go, the others stay.
            assert await sent(emitter.in_("r1").disconnect_sockets()) == 2
            await until(lambda: bool(gone["t1"] and gone["n1"]), "r1's sockets to be disconnected", limit=WAIT)
            assert gone["t1"] == gone["n1"] == ["io server disconnect"]
            await sync(t2, n2)
            assert gone["t2"] == gone["n2"] == []

            # With close=True the connection closes: / goes too, on the connection /chat shared.
            assert await sent(emitter.of("/chat").disconnect_sockets(close=True)) == 2
            await until(lambda: all(gone[n] for n in ("tc", "nc", "t2", "n2")), "the connections to close", limit=WAIT)
            assert not t2.connected and not n2.connected
    finally:
        process.kill()
        process.wait(30)
        await ours.link.stop()


@pytest_twisted.ensureDeferred
async def test_a_separate_python_process_without_a_reactor(realtime: Realtime, redis_server: RedisServer) -> None:
    [ours] = await start_nodes(realtime, redis_server, ["py"])
    try:
        inside = await realtime.connect(ours.test_server)
        outside = await realtime.connect(ours.test_server)
        box, other = inbox(inside), inbox(outside)
        assert await inside.emit_with_ack("join", "room", timeout=10) == ["room"]
        report = await python_peer("redis_py_emit.py", redis_server.url, "room", "from a script", '{"ok": true}')
        assert report == {"received_by": 1, "modules": []}
        await until(lambda: bool(box), "the script's event", limit=WAIT)
        assert box == [["from a script", {"ok": True}, b"\x01\x02\x03"]]
        await sync(outside)
        assert other == []
    finally:
        await ours.link.stop()
