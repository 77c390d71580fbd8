"""Hand-driven peers for tests that speak the wire protocol themselves, and waiting helpers."""

from __future__ import annotations

import json
from collections.abc import Callable

import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.web.client import Agent, HTTPConnectionPool

# Connections are not kept alive, so no test leaves one open behind it.
http = treq.client.HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))


async def until(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait, turn by turn of the reactor, until ``condition()``; fail after ``limit`` seconds."""
    for _ in range(int(limit * 100)):
        if condition():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


class PollingPeer:
    """An Engine.IO polling session driven by hand: raw payloads in, raw payloads out."""

    def __init__(self, url: str, path: str = "/socket.io/") -> None:
        self.base = f"{url}{path}?EIO=4&transport=polling"
        self.sid = ""

    async def open(self, namespace_connect: str | None = "40") -> None:
        """Handshake, then (unless ``None``) send ``namespace_connect`` and read the CONNECT answer."""
        body = await (await http.get(self.base)).text()
        self.sid = json.loads(body[1:])["sid"]
        if namespace_connect is not None:
            await self.post(namespace_connect)
            assert (await self.get()).startswith("40{")

    async def post(self, payload: str | bytes) -> str:
        """POST a payload; return the answer's body (``ok`` when accepted)."""
        data = payload.encode() if isinstance(payload, str) else payload
        response = await http.post(f"{self.base}&sid={self.sid}", data=data)
        return str(await response.text())

    async def get(self) -> str:
        """Poll once; return the payload (waits while the server has nothing to send)."""
        return str(await (await http.get(f"{self.base}&sid={self.sid}")).text())
