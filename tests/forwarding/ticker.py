"""The app of the rolling-restart test: tests/forwarding/app.py, and ``tick`` broadcasts to room ``r``.

Once its link reads the stream (a tick sent before could only be counted as undelivered), each node sends
``tick(pid, n)`` for n = 1, 2, ... every ``TICK_INTERVAL`` seconds (environment, default 0.05) until
``TICKS`` (default 100), then logs ``ticks done``.
"""

from __future__ import annotations

import os

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from tests.forwarding.app import setup as base
from txrealtime.socketio import Server

log = Logger()


def setup(server: Server) -> None:
    """The forwarding app, and the ticks."""
    base(server)
    pid = os.getpid()
    limit = int(os.environ.get("TICKS", "100"))
    sent = [0]

    def tick() -> None:
        sent[0] += 1
        server.to("r").emit("tick", pid, sent[0])
        if sent[0] >= limit:
            loop.stop()
            log.info("ticks done: {count} (pid {pid})", count=sent[0], pid=pid)

    loop = LoopingCall(tick)
    link = server.sockets.adapter.link  # type: ignore[attr-defined]
    def go(_: object) -> None:
        log.info("ticking (pid {pid})", pid=pid)
        loop.start(float(os.environ.get("TICK_INTERVAL", "0.05")))

    link.when_reading(60).addCallback(go)
