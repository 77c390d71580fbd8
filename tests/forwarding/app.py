"""The app each node runs in the forwarding tests: it tells which node served a client."""

from __future__ import annotations

import os
from typing import Any

from txrealtime.socketio import Server, Socket


def setup(server: Server) -> None:
    """``whoami``: this node's pid; ``join``: a room; ``echo``: its arguments back; ``shout``: a broadcast
    to a room, from whichever node the client is on; ``rooms``: the socket's rooms, its own left out; ``keep``:
    a value for ``socket.data``; ``data``: ``socket.data``."""
    pid = os.getpid()

    @server.on("connection")
    def connected(socket: Socket) -> None:
        socket.on("whoami", lambda: {"pid": pid, "sid": socket.conn.sid})

        def join(room: str) -> int:
            socket.join(room)
            return pid

        def shout(room: str, text: str) -> str:
            server.to(room).emit("news", text, pid)
            return "sent"

        socket.on("join", join)
        socket.on("echo", lambda *args: list(args))
        socket.on("shout", shout)
        socket.on("rooms", lambda: sorted(socket.rooms - {socket.id}))

        def keep(value: dict[str, Any]) -> bool:
            socket.data = value
            return True

        socket.on("keep", keep)
        socket.on("data", lambda: socket.data)
