"""The application the admin UI tests watch: echo, rooms on request, and a probe on the admin namespace."""

from __future__ import annotations

from typing import Any

from txrealtime.socketio import Server, Socket


def setup(server: Server) -> None:
    """``echo`` (answered with an ``echoed`` event), ``join``/``leave`` a room, ``set`` a key of
    ``socket.data``, ``rooms`` (acked with the socket's rooms), and ``probe`` on ``/admin``: acked, so an
    admin script knows its earlier commands ran."""

    @server.on("connection")
    def connected(socket: Socket) -> None:
        @socket.on("echo")
        def echo(*args: Any) -> None:
            socket.emit("echoed", *args)

        @socket.on("join")
        def join(room: str) -> list[str]:
            socket.join(room)
            return sorted(socket.rooms)

        @socket.on("leave")
        def leave(room: str) -> list[str]:
            socket.leave(room)
            return sorted(socket.rooms)

        @socket.on("set")
        def set_data(key: str, value: Any) -> None:
            socket.data[key] = value

        @socket.on("rooms")
        def rooms() -> list[str]:
            return sorted(socket.rooms)

    @server.of("/admin").on("connection")
    def admin_connected(socket: Socket) -> None:
        socket.on("probe", lambda: True)
