"""A Twisted chat bot: joins the chat example, says hello, prints what it hears back, leaves.

Run the chat server (see the README), then: ``python -m examples.chat.bot [http://127.0.0.1:8080]``.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import react

from txrealtime.client import connect


async def main(reactor: Any, url: str) -> None:
    socket = await connect(url)
    heard: Deferred[dict[str, Any]] = Deferred()
    socket.on("chat message", lambda msg: heard.callback(msg) if not heard.called else None)
    print("join:", await socket.emit_with_ack("join", "bot", timeout=5))
    socket.emit("chat message", "hello from Twisted")
    message = await heard
    print(f"{message['name']}: {message['text']}")
    socket.io.close()


if __name__ == "__main__":
    react(lambda reactor: ensureDeferred(main(reactor, sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080")))
