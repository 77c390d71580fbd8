r"""The chat example, run from the checkout (the README's first command)::

    twistd -n txrealtime --listen tcp:8080:interface=127.0.0.1 \
        --static examples/chat/public --app examples.chat.app:setup

Users join with a name; messages go to everyone in the ``chat`` room;
joins, departures and typing are announced to the others. The number of
users online counts every node's (``fetch_sockets``), so it stays right
behind ``--redis``; the page joins again by itself after a reconnection.
"""

from __future__ import annotations

import time
from typing import Any

from txrealtime.socketio import Server, Socket

ROOM = "chat"
MAX_NAME = 32
MAX_TEXT = 2000


async def users(server: Server) -> int:
    """How many users are in the room, on every node of a cluster."""
    return len(await server.in_(ROOM).fetch_sockets())


def setup(server: Server) -> None:
    """Register the chat's handlers on ``server``."""

    @server.on("connection")
    def on_connection(socket: Socket) -> None:
        @socket.on("join")
        async def join(name: Any) -> dict[str, Any]:
            if "name" in socket.data:
                return {"ok": False, "error": "already joined"}
            clean = str(name).strip()[:MAX_NAME]
            if not clean:
                return {"ok": False, "error": "a name is needed"}
            socket.data["name"] = clean
            socket.join(ROOM)
            online = await users(server)
            socket.to(ROOM).emit("user joined", {"name": clean, "users": online})
            return {"ok": True, "users": online}

        @socket.on("chat message")
        def message(text: Any) -> dict[str, Any]:
            if "name" not in socket.data:
                return {"ok": False, "error": "join first"}
            body = str(text)[:MAX_TEXT]
            if body.strip():
                server.to(ROOM).emit(
                    "chat message", {"name": socket.data["name"], "text": body, "time": int(time.time() * 1000)}
                )
            return {"ok": True}

        @socket.on("typing")
        def typing(active: Any) -> None:
            if "name" in socket.data:
                socket.to(ROOM).volatile.emit("typing", {"name": socket.data["name"], "active": bool(active)})

        @socket.on("disconnect")
        async def left(reason: str) -> None:
            if "name" in socket.data:
                server.to(ROOM).emit("user left", {"name": socket.data["name"], "users": await users(server)})
