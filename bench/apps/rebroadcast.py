"""A handler that broadcasts what a client sends to everyone else (as a chat does), for bench/recovery_memory.py."""

from __future__ import annotations

from typing import Any

from txrealtime.socketio import Server, Socket


def setup(server: Server) -> None:
    @server.on("connection")
    def on_connection(socket: Socket) -> None:
        @socket.on("say")
        def say(*args: Any) -> None:
            socket.broadcast.emit("msg", *args)

        socket.on("done", lambda: True)
