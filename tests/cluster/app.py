"""The app each worker runs in the ``--workers`` tests: it tells which process served a client."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred

from txrealtime.socketio import Server, Socket


def setup(server: Server) -> None:
    """``whoami``: this worker's pid; ``shout``: a broadcast to every client; ``census``: ``fetch_sockets``;
    ``ask workers``: a server-side emit answered by the other workers."""
    pid = os.getpid()

    @server.on("connection")
    def connected(socket: Socket) -> None:
        socket.join("everyone")
        socket.data["pid"] = pid
        socket.on("whoami", lambda: {"pid": pid, "id": socket.id, "address": socket.handshake.address})

        def shout(text: str) -> str:
            server.to("everyone").emit("news", text, pid)
            return "sent"

        def census() -> Deferred[Any]:
            found = server.fetch_sockets()
            return found.addCallback(lambda sockets: sorted([s.id, s.data["pid"]] for s in sockets))

        def ask_workers() -> Deferred[Any]:
            return server.server_side_emit_with_ack("who are you", pid).addCallback(sorted)

        socket.on("shout", shout)
        socket.on("census", census)
        socket.on("ask workers", ask_workers)

    server.on("who are you", lambda asker, *_: {"pid": pid, "asked by": asker})
