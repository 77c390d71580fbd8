"""Stopping a Redis link (a `--redis` node on SIGTERM) is clean: the goodbye arrives, no error is logged."""

from __future__ import annotations

from typing import Any, cast

import pytest_twisted
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogPublisher

from tests.peers import until
from tests.servers import RedisServer
from txrealtime.adapters.redis import RedisLink

WAIT = 20.0


@pytest_twisted.ensureDeferred
async def test_stop_says_goodbye_without_errors(redis_server: RedisServer) -> None:
    # Heartbeats time out after a minute: only the goodbye can make the other node forget this one.
    leaving, staying = links = [
        RedisLink(redis_server.url, heartbeat_interval=0.2, heartbeat_timeout=60.0, reconnect_max_delay=0.2)
        for _ in range(2)
    ]
    problems: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level") in (LogLevel.warn, LogLevel.error, LogLevel.critical):
            problems.append(formatEvent(event))

    for link in links:
        link.start()
    try:
        await until(lambda: all(link.connected for link in links), "both links to connect", limit=WAIT)
        await until(lambda: leaving.uid in staying.nodes(), "the nodes to hear each other", limit=WAIT)
        for n in range(20):  # publishes in flight when the link stops are answered too
            leaving.publish("some-channel", b"message %d" % n)
        observer = cast(ILogObserver, observe)
        globalLogPublisher.addObserver(observer)
        try:
            await leaving.stop()
        finally:
            globalLogPublisher.removeObserver(observer)
        assert problems == []
        assert leaving.undelivered == 0
        await until(lambda: leaving.uid not in staying.nodes(), "the goodbye to arrive", limit=WAIT)
        assert staying.connected
    finally:
        await leaving.stop()
        await staying.stop()
