"""Hostile payloads and faults through the Redis adapters (issue 23 items 3 and 10, issue 22 item 6).

Each test fails on the code before its fix: big integers no longer vanish
between nodes, hostile messages on the channels are refused and counted
without a traceback each, outages cost two log lines whatever the traffic,
what a receiving node missed while it reconnected is counted, and closing
leaves no unhandled error behind.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
import pytest_twisted
from twisted.logger import LogLevel, formatEvent

from tests.adapters.cluster import WAIT, inbox, start_nodes, stop_links, sync
from tests.peers import until
from tests.servers import RedisServer
from txrealtime.adapters.redis import RedisLink, redis_adapter
from txrealtime.adapters.redis.wire import pack
from txrealtime.pytest_plugin import Realtime
from txrealtime.redis.client import RedisClient


def lines(events: list[dict[str, Any]], level: LogLevel | None = None) -> list[str]:
    return [
        formatEvent(e) for e in events
        if str(e.get("log_namespace", "")).startswith("txrealtime") and (level is None or e["log_level"] == level)
    ]


async def raw_client(redis_server: RedisServer) -> RedisClient:
    client = RedisClient(redis_server.url, reconnect_max_delay=0.2)
    client.start()
    await client.when_connected()
    return client


# -- issue 23 item 3: what the cross-node formats cannot carry ------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_big_integer_reaches_every_node(
    realtime: Realtime, redis_server: RedisServer, logged_failures: list[dict[str, Any]]
) -> None:
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"])
    try:
        ca, cb = await realtime.connect(a.test_server), await realtime.connect(b.test_server)
        box_a, box_b = inbox(ca), inbox(cb)
        assert a.server.emit("big", 2**100, [-(2**70)]) is True
        await until(lambda: bool(box_b), "the broadcast on the other node", limit=WAIT)
        # Across Redis as the float any JavaScript peer reads for it; locally as sent.
        assert box_b == [["big", 1.2676506002282294e30, [-1.1805916207174113e21]]]
        await sync(ca)
        assert box_a == [["big", 2**100, [-(2**70)]]]
        assert a.link.undelivered == 0 and logged_failures == []
    finally:
        await stop_links(nodes)


@pytest_twisted.ensureDeferred
async def test_a_payload_no_node_can_carry_is_refused_before_anyone_gets_it(
    realtime: Realtime, redis_server: RedisServer
) -> None:
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"])
    try:
        ca, cb = await realtime.connect(a.test_server), await realtime.connect(b.test_server)
        box_a, box_b = inbox(ca), inbox(cb)
        with pytest.raises(ValueError, match="sent to no one"):
            a.server.emit("huge", 10**400)
        deep: list[Any] = []
        for _ in range(2000):  # MessagePack stops at 1,024 levels
            deep = [deep]
        with pytest.raises(ValueError, match="sent to no one"):
            a.server.emit("deep", deep)
        assert a.link.refused == 2
        a.server.emit("fine", 1)
        await until(lambda: box_b == [["fine", 1]], "the next broadcast", limit=WAIT)
        await sync(ca)
        assert box_a == [["fine", 1]]  # not the refused ones: nobody got them
    finally:
        await stop_links(nodes)


# -- issue 23 item 10: hostile messages, logs, losses ---------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_hostile_messages_on_the_channels_are_refused_and_counted(
    realtime: Realtime, redis_server: RedisServer, log_events: list[dict[str, Any]],
    logged_failures: list[dict[str, Any]]
) -> None:
    [a] = nodes = await start_nodes(realtime, redis_server, ["a"])
    publisher = await raw_client(redis_server)
    try:
        client = await realtime.connect(a.test_server)
        box = inbox(client)
        deep: list[Any] = []
        for _ in range(1000):
            deep = [deep]
        opts: dict[str, list[str]] = {"rooms": [], "except": []}
        # A timestamp (MessagePack extension -1, 96 bits) beyond what datetime holds, where the bytes stand.
        overflowing = b"\xc7\x0c\xff" + b"\x00" * 4 + (2**63 - 1).to_bytes(8, "big")
        hostile = [
            pack(["x", {"type": 2, "data": ["ev", b"TIMESTAMP!"], "nsp": "/"}, opts]).replace(
                b"\xc4\x0aTIMESTAMP!", overflowing
            ),
            pack(["x", {"type": 2, "data": ["ev", {b"binary key": 1}], "nsp": "/"}, opts]),
            pack(["x", {"type": 2, "data": ["ev", deep], "nsp": "/"}, opts]),
        ]
        for _ in range(50):
            for message in hostile:
                await publisher.execute("PUBLISH", "socket.io#/#", message)
        await publisher.execute("PUBLISH", "socket.io-request#/#", b'{"type": 6, "data": ' + b"[" * 1000 + b"]" * 1000
                                + b"}")
        # One megabyte of uid in a heartbeat: not a node, not a log line.
        heartbeat = b'{"uid": "' + b"u" * 1_000_000 + b'", "type": "heartbeat"}'
        await publisher.execute("PUBLISH", "socket.io-nodes#", heartbeat)
        await until(lambda: a.link.malformed == 152, "the hostile messages to be counted", limit=WAIT)
        await publisher.execute("PUBLISH", "socket.io#/#", pack(["x", {"type": 2, "data": ["ok"], "nsp": "/"}, opts]))
        await until(lambda: box == [["ok"]], "a well-formed broadcast after them", limit=WAIT)
        assert logged_failures == []
        warnings = lines(log_events, LogLevel.warn)
        assert len(warnings) <= 25  # throttled: a burst per kind of line, then a count
        assert all(len(line) < 1000 for line in lines(log_events))
        assert a.link.nodes() == [a.link.uid]
    finally:
        await publisher.stop()
        await stop_links(nodes)


@pytest_twisted.ensureDeferred
async def test_a_redis_restart_mid_broadcast_costs_two_log_lines_and_is_counted(
    realtime: Realtime, redis_server: RedisServer, log_events: list[dict[str, Any]]
) -> None:
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"])
    try:
        await realtime.connect(a.test_server)
        redis_server.stop()
        await until(lambda: not a.link.connected, "the outage to be noticed", limit=WAIT)
        sent = [a.server.emit("during", n) for n in range(2000)]
        redis_server.start()
        await until(lambda: a.link.connected and b.link.connected, "the links to come back", limit=WAIT)
        assert sent == [False] * 2000 and a.link.undelivered == 2000
        mine = [line for line in lines(log_events) if a.link.uid in line]
        assert len([line for line in mine if "lost" in line]) == 1
        [back] = [line for line in mine if "back after" in line]
        assert "2000 messages for other nodes were not sent" in back
        assert len(lines(log_events, LogLevel.warn)) + len(lines(log_events, LogLevel.error)) <= 6
    finally:
        await stop_links(nodes)


@pytest_twisted.ensureDeferred
async def test_what_a_reconnecting_node_missed_is_counted(realtime: Realtime, redis_server: RedisServer) -> None:
    a, b = nodes = await start_nodes(realtime, redis_server, ["a", "b"])
    killer = await raw_client(redis_server)
    try:
        cb = await realtime.connect(b.test_server)
        box = inbox(cb)
        a.server.emit("before", 0)
        await until(lambda: box == [["before", 0]], "a first broadcast", limit=WAIT)
        clients = (await killer.execute("CLIENT", "LIST")).decode()
        [subscriber] = [line for line in clients.splitlines() if f"name=txrealtime:{b.link.uid}:sub" in line]
        await killer.execute("CLIENT", "KILL", "ID", subscriber.split()[0].split("=")[1])
        # In the same turn of the reactor: b cannot have subscribed again yet, so all of these are lost to it.
        for n in range(1, 101):
            a.server.emit("while away", n)
        await until(lambda: b.link.connected and b.link.deafness.spans == 1, "b to subscribe again", limit=WAIT)
        a.server.emit("after", 101)
        await until(lambda: ["after", 101] in box, "the broadcast after", limit=WAIT)
        assert [m for m in box if m[0] == "while away"] == []
        assert b.link.missed == 100 and a.link.undelivered == 0
    finally:
        await killer.stop()
        await stop_links(nodes)


@pytest_twisted.ensureDeferred
async def test_closing_the_server_then_the_link_leaves_no_unhandled_error(
    realtime: Realtime, redis_server: RedisServer, log_events: list[dict[str, Any]]
) -> None:
    link = RedisLink(redis_server.url, reconnect_max_delay=0.2)
    running = await realtime.start_server(lambda server: None, adapter=redis_adapter(link))
    await link.when_connected()
    await realtime.connect(running)
    for n in range(100):  # in flight when the connections close
        running.server.emit("bye", n)
    running.server.of("/other")
    running.server.close()
    await link.stop()
    gc.collect()  # a Deferred that failed unhandled says so when it is collected
    assert [formatEvent(e) for e in log_events if "Unhandled error" in formatEvent(e)] == []
    assert link.undelivered == 0


@pytest_twisted.ensureDeferred
async def test_fake_nodes_cost_a_bounded_number_of_log_lines(
    realtime: Realtime, redis_server: RedisServer, log_events: list[dict[str, Any]]
) -> None:
    """Heartbeats of 300 made-up nodes, then their goodbyes: a burst of "joined" and "left" lines, then a count,
    not a line per uid (each short: the uid is capped)."""
    [a] = nodes = await start_nodes(realtime, redis_server, ["a"])
    publisher = await raw_client(redis_server)
    try:
        for n in range(300):
            await publisher.execute("PUBLISH", "socket.io-nodes#", f'{{"uid": "fake-{n}", "type": "heartbeat"}}')
        await until(lambda: len(a.link.nodes()) == 301, "the fake nodes to be known", limit=WAIT)
        for n in range(300):
            await publisher.execute("PUBLISH", "socket.io-nodes#", f'{{"uid": "fake-{n}", "type": "leave"}}')
        await until(lambda: a.link.nodes() == [a.link.uid], "the fake nodes to leave", limit=WAIT)
        fake = [line for line in lines(log_events) if "fake-" in line]
        assert 0 < len(fake) <= 50 and all(len(line) < 200 for line in fake)
    finally:
        await publisher.stop()
        await stop_links(nodes)
