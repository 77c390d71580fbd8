"""The benchmark handlers on txrealtime: echo with an ack, broadcast to the room everyone joins."""

from __future__ import annotations

from typing import Any

from txrealtime.socketio import Server, Socket


def setup(server: Server) -> None:
    room = server.to("room")

    @server.on("connection")
    def on_connection(socket: Socket) -> None:
        socket.join("room")
        socket.on("echo", lambda data: data)

        @socket.on("broadcast")
        def broadcast(data: Any) -> bool:
            room.emit("b", data)
            return True
