"""The Socket.IO application the interop tests drive: echo, acks, rooms, namespaces, middleware."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from txrealtime.socketio import ConnectionRefused, Server, Socket


@dataclass
class Record:
    """What the server saw, for tests to assert on."""

    connected: list[tuple[str, str]] = field(default_factory=list)
    """(namespace, socket id) of each connection."""
    disconnects: list[tuple[str, str]] = field(default_factory=list)
    """(namespace, reason) of each disconnection."""
    answers: list[Any] = field(default_factory=list)
    """What clients answered to the server's ``question`` events."""
    auth: list[Any] = field(default_factory=list)


def install(server: Server) -> Record:
    record = Record()

    def common(socket: Socket) -> None:
        record.connected.append((socket.nsp.name, socket.id))

        @socket.on("echo")
        def echo(*args: Any) -> None:
            socket.emit("echo", *args)

        @socket.on("echo uncompressed")
        def echo_uncompressed(*args: Any) -> None:
            socket.compress(False).emit("echo", *args)

        @socket.on("ack")
        def ack(*args: Any) -> tuple[Any, ...]:
            return ("got", *args)

        @socket.on("ask me")
        async def ask_me(value: Any) -> None:
            answer = await socket.timeout(10).emit_with_ack("question", value)
            record.answers.append(answer)
            socket.emit("answer", answer)

        @socket.on("join")
        def join(room: str) -> list[str]:
            socket.join(room)
            return sorted(socket.rooms - {socket.id})

        @socket.on("to room")
        def to_room(room: str, message: Any) -> bool:
            server.of(socket.nsp.name).to(room).emit("room message", room, message)
            return True

        @socket.on("volatile to room")
        def volatile_to_room(room: str, message: Any) -> bool:
            server.of(socket.nsp.name).volatile.to(room).emit("room message", room, message)
            return True

        @socket.on("broadcast")
        def broadcast(message: Any) -> bool:
            socket.broadcast.emit("broadcast", message)
            return True

        @socket.on("disconnect me")
        def disconnect_me() -> None:
            socket.disconnect()

        @socket.on("fail")
        def fail() -> None:
            raise RuntimeError("handler failure the test provokes")

        @socket.on("disconnect")
        def disconnected(reason: str) -> None:
            record.disconnects.append((socket.nsp.name, str(reason)))

    server.on("connection", common)
    server.of("/custom").on("connection", common)

    admin = server.of("/admin")

    @admin.use
    def check_token(socket: Socket) -> None:
        record.auth.append(socket.handshake.auth)
        if socket.handshake.auth.get("token") != "s3cret":
            raise ConnectionRefused("not authorized", {"code": 401})

    admin.on("connection", common)
    server.of(re.compile(r"/dyn-\d+")).on("connection", common)
    return record
