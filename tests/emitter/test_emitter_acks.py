"""Acknowledgements through the emitter, from the clients of a txrealtime node and of a Node socket.io node sharing
one real redis-server (the Redis adapter's own broadcast-with-acks request)."""

from __future__ import annotations

import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import threads

from tests.adapters.cluster import app, start_node_server, wait_for_servers
from tests.servers import RedisServer
from txrealtime.adapters.redis import RedisLink, redis_adapter
from txrealtime.client import Manager
from txrealtime.emitter import Emitter, TwistedEmitter
from txrealtime.emitter_acks import Gathering
from txrealtime.pytest_plugin import Realtime


@pytest_twisted.ensureDeferred
async def test_emit_with_ack_gathers_answers_from_txrealtime_and_node_nodes(
    realtime: Realtime, redis_server: RedisServer
) -> None:
    node_link = RedisLink(redis_server.url)
    ours = await realtime.start_server(app("ours"), adapter=redis_adapter(node_link))
    process, node_url = start_node_server(redis_server.url)
    emitter_link = RedisLink(redis_server.url)
    emitter_link.start()
    try:
        await wait_for_servers(ours.server, 2)
        on_ours = await realtime.connect(ours)
        on_node = await Manager(node_url, transports=["websocket"], reconnection=False).socket("/").connect()
        on_ours.on("question", lambda n: ["ours", n + 1])
        on_node.on("question", lambda n: ["node", n + 1])
        assert await on_node.emit_with_ack("join", "r", timeout=10) == ["r"]
        await emitter_link.when_connected()
        emitter = TwistedEmitter(emitter_link)

        acks = await emitter.emit_with_ack("question", 41, timeout=10)
        assert sorted(acks.answers) == [["node", 42], ["ours", 42]]
        assert (acks.servers, acks.reported, acks.clients, acks.complete) == (2, 2, 2, True)

        in_room = await emitter.emit_with_ack("question", 1, timeout=10, rooms=["r"])
        assert (in_room.answers, in_room.clients, in_room.complete) == ([["node", 2]], 1, True)
        others = await emitter.emit_with_ack("question", 2, timeout=10, except_rooms=["r"])
        assert (others.answers, others.complete) == ([["ours", 3]], True)

        # The same from redis-py, as a Django view or a Celery task would (in a thread here: the nodes need
        # this reactor meanwhile).
        with Emitter(redis_server.url) as blocking:
            gathered = await threads.deferToThread(blocking.emit_with_ack, "question", 5, timeout=10)
            assert sorted(gathered.answers) == [["node", 6], ["ours", 6]] and gathered.complete

        # A client that does not answer: the timeout gives what came, marked incomplete.
        on_node.off("question")
        late = await emitter.emit_with_ack("question", 3, timeout=1)
        assert (late.answers, late.clients, late.complete) == ([["ours", 4]], 2, False)
        with Emitter(redis_server.url) as blocking:
            late = await threads.deferToThread(blocking.emit_with_ack, "question", 4, timeout=1)
            assert (late.answers, late.clients, late.complete) == ([["ours", 5]], 2, False)
    finally:
        process.terminate()
        process.wait(30)
        await emitter_link.stop()
        await node_link.stop()


@given(st.binary(max_size=200))
def test_any_bytes_on_an_answer_channel_are_ignored_or_counted(message: bytes) -> None:
    gathering = Gathering("socket.io", "/", "question", [1], (), ())
    gathering.receive(message)  # never raises: another asker's answer, or garbage, is not ours
    assert (gathering.result.answers, gathering.result.reported) == ([], 0)


def test_answers_are_counted_for_this_request_only() -> None:
    gathering = Gathering("socket.io", "/", "question", [1], ["r"], ())
    gathering.result.servers = 1
    rid = gathering.request_id.encode()
    assert not gathering.receive(b'{"type":8,"requestId":"other","clientCount":5}')
    assert not gathering.receive(b'{"type":8,"requestId":"' + rid + b'","clientCount":2}')
    assert not gathering.receive(b"\x83\xa4type\x09\xa9requestId\xa8" + rid[:8] + b"\xa6packet\x01")  # wrong id
    assert (gathering.result.reported, gathering.result.clients) == (1, 2)
    ack = b"\x83\xa4type\x09\xa9requestId" + bytes([0xA0 | len(rid)]) + rid + b"\xa6packet\x2a"
    assert not gathering.receive(ack)
    assert gathering.receive(ack)
    assert gathering.result.answers == [42, 42] and gathering.result.complete
