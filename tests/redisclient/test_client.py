"""The reconnecting client against real redis-servers started on free ports."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogPublisher

from tests.peers import until
from tests.servers import RedisServer
from txrealtime.redis.client import ClientDown, ClientUp, RedisClient
from txrealtime.redis.connection import RedisUnavailable
from txrealtime.redis.resp import ReplyError

WAIT = 20.0


def client(url: str, **options: Any) -> tuple[RedisClient, list[tuple[bytes, bytes, bytes | None]]]:
    messages: list[tuple[bytes, bytes, bytes | None]] = []
    options.setdefault("reconnect_max_delay", 0.2)
    c = RedisClient(url, on_message=lambda ch, m, p: messages.append((ch, m, p)), **options)
    c.start()
    return c, messages


@pytest.fixture
def logged() -> Iterator[list[tuple[LogLevel, str]]]:
    lines: list[tuple[LogLevel, str]] = []

    def observe(event: dict[str, Any]) -> None:
        if str(event.get("log_namespace", "")).startswith("txrealtime"):
            lines.append((event["log_level"], formatEvent(event)))

    observer = cast(ILogObserver, observe)
    globalLogPublisher.addObserver(observer)
    yield lines
    globalLogPublisher.removeObserver(observer)


@pytest_twisted.ensureDeferred
async def test_commands_pubsub_and_a_dedicated_blocking_client(redis_server: RedisServer) -> None:
    c, messages = client(redis_server.url)
    blocking = c.dedicated()
    blocking.start()
    try:
        await c.when_connected()
        await blocking.when_connected()
        assert c.protocol is not None and c.protocol.resp == 3
        assert await c.execute("SET", "k", b"\x00\xff") == b"OK"
        assert await c.execute("GET", "k") == b"\x00\xff"
        with pytest.raises(ReplyError) as error:
            await c.execute("INCR", "k")
        assert error.value.code == "ERR"
        await c.subscribe("subscribe", ["news"])
        await c.subscribe("psubscribe", [b"room:*"])
        await c.subscribe("ssubscribe", ["shard"])
        # A blocking read on its own connection holds up nothing on the shared one.
        read = blocking.execute("XREAD", "BLOCK", 10_000, "STREAMS", "s", "$", timeout=15)
        assert await c.execute("PUBLISH", "news", "n") == 1
        assert await c.execute("PUBLISH", "room:1", "r") == 1
        assert await c.execute("SPUBLISH", "shard", "s") == 1
        await c.execute("XADD", "s", "*", "f", "v")
        streams = await read  # RESP3: a map of stream name to entries
        [[_, fields]] = streams[b"s"]
        assert list(streams) == [b"s"] and fields == [b"f", b"v"]
        await until(lambda: len(messages) == 3, "three messages", limit=WAIT)
        assert messages == [(b"news", b"n", None), (b"room:1", b"r", b"room:*"), (b"shard", b"s", None)]
        await c.unsubscribe("subscribe", ["news"])
        assert await c.execute("PUBLISH", "news", "gone") == 0
    finally:
        await c.stop()
        await blocking.stop()
    assert not c.connected
    with pytest.raises(RedisUnavailable):
        await c.execute("PING")


@pytest_twisted.ensureDeferred
async def test_subscriptions_come_back_after_a_restart(
    redis_server: RedisServer, logged: list[tuple[LogLevel, str]]
) -> None:
    c, messages = client(redis_server.url)
    publisher, _ = client(redis_server.url)
    events: list[ClientUp | ClientDown] = []
    c.subscribe_events(events.append)
    try:
        await c.when_connected()
        await c.subscribe("subscribe", ["a"])
        await c.subscribe("psubscribe", ["p*"])
        await c.subscribe("ssubscribe", ["s"])
        redis_server.stop()
        await until(lambda: not c.connected and not publisher.connected, "the clients to notice", limit=WAIT)
        with pytest.raises(RedisUnavailable):
            await c.execute("PING")  # nothing is queued while down
        await c.subscribe("subscribe", ["b"]).addErrback(lambda _: None)  # held for the next connection
        redis_server.start()
        await c.when_connected()
        await publisher.when_connected()
        for channel in ("a", "b", "px", "s"):
            command = "SPUBLISH" if channel == "s" else "PUBLISH"
            assert await publisher.execute(command, channel, channel) == 1
        await until(lambda: len(messages) == 4, "the messages after the restart", limit=WAIT)
        assert sorted(m[0] for m in messages) == [b"a", b"b", b"px", b"s"]
        assert [type(e) for e in events] == [ClientUp, ClientDown, ClientUp]
    finally:
        await c.stop()
        await publisher.stop()
    # One line when the connection went, one when it came back, however many attempts failed between.
    lines = [text for _, text in logged if f"127.0.0.1:{redis_server.port}" in text and "RedisClient" not in text]
    assert sum("connection lost" in line for line in lines) == 2  # one per client
    assert sum("reachable again" in line for line in lines) == 2


@pytest_twisted.ensureDeferred
async def test_password_user_and_database(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, "--requirepass", "s3cret", "--user", "app", "on", ">apppass", "~*", "&*", "+@all")
    try:
        c, _ = client(f"redis://:s3cret@127.0.0.1:{server.port}/2")
        user, _ = client(f"redis://app:apppass@127.0.0.1:{server.port}")
        await c.when_connected()
        await user.when_connected()
        await c.execute("SET", "where", "db2")
        info = (await c.execute("CLIENT", "INFO")).decode()
        assert " db=2 " in info
        assert " user=app " in (await user.execute("CLIENT", "INFO")).decode()
        assert await user.execute("GET", "where") is None  # database 0
        await c.stop()
        await user.stop()
    finally:
        server.stop()


@pytest_twisted.ensureDeferred
async def test_a_wrong_password_is_logged_once_while_retrying(
    tmp_path: Path, logged: list[tuple[LogLevel, str]]
) -> None:
    server = RedisServer(tmp_path, "--requirepass", "right")
    c, _ = client(f"redis://:wrong@127.0.0.1:{server.port}", reconnect_max_delay=0.05)
    try:
        await until(lambda: c._failures >= 5, "several refused attempts", limit=WAIT)
        assert not c.connected
        warnings = [text for level, text in logged if level == LogLevel.warn]
        assert len(warnings) == 1 and "WRONGPASS" in warnings[0]
    finally:
        await c.stop()
        server.stop()


@pytest_twisted.ensureDeferred
async def test_resp2_servers_are_served_too(tmp_path: Path) -> None:
    # A server without HELLO stands for Redis before 6.
    server = RedisServer(tmp_path, "--rename-command", "HELLO", "", "--requirepass", "pw")
    try:
        c, messages = client(f"redis://:pw@127.0.0.1:{server.port}/1")
        publisher = c.dedicated()
        publisher.start()
        await c.when_connected()
        await publisher.when_connected()
        assert c.protocol is not None and c.protocol.resp == 2
        await c.subscribe("subscribe", ["x"])
        await c.subscribe("psubscribe", ["y*"])
        assert await publisher.execute("PUBLISH", "x", "1") == 1
        assert await publisher.execute("PUBLISH", "yz", "2") == 1
        await until(lambda: len(messages) == 2, "both messages", limit=WAIT)
        assert messages == [(b"x", b"1", None), (b"yz", b"2", b"y*")]
        assert await c.execute("PING") == [b"pong", b""]  # the subscribed form of the answer
        await c.stop()
        await publisher.stop()
    finally:
        server.stop()


@pytest_twisted.ensureDeferred
async def test_a_frozen_server_is_noticed_by_the_health_check(redis_server: RedisServer) -> None:
    c, messages = client(redis_server.url, health_check_interval=0.2)
    try:
        await c.when_connected()
        await c.subscribe("subscribe", ["x"])  # a subscriber hears nothing when its server stops answering
        assert redis_server.process is not None
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        try:
            await until(lambda: not c.connected, "the health check to give up", limit=WAIT)
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        await c.when_connected()
        publisher, _ = client(redis_server.url)
        await publisher.when_connected()
        assert await publisher.execute("PUBLISH", "x", "back") == 1
        await until(lambda: messages == [(b"x", b"back", None)], "the message after thawing", limit=WAIT)
        await publisher.stop()
    finally:
        await c.stop()
