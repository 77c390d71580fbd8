"""The app of the rolling-restart test: tests/forwarding/app.py, and ``tick`` broadcasts to room ``r``.

Each node sends ``tick(pid, n)`` for n = 1, 2, ... every ``TICK_INTERVAL`` seconds (environment, default
0.05) until ``TICKS`` (default 100), then logs ``ticks done``.
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
            log.info("ticks done: {count}", count=sent[0])

    loop = LoopingCall(tick)
    loop.start(float(os.environ.get("TICK_INTERVAL", "0.05")), now=False)
