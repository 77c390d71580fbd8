"""A typed server and a typed Python client sharing one contract (``contract.py``).

Both are checked by ``mypy --strict`` and pyright: ``mistakes.py`` shows what they report.
Run the pair on loopback from the checkout::

    python -m examples.typed.app

or serve the server alone::

    twistd -n txrealtime --listen tcp:8080:interface=127.0.0.1 --app examples.typed.app:setup
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import react

from txrealtime.client import ClientSocket
from txrealtime.client.typed import typed as typed_client
from txrealtime.socketio import Server
from txrealtime.socketio.typed import TypedSocket, typed

from .contract import Chat, Message


def setup(server: Server) -> None:
    """Register the chat's typed handlers on ``server``."""
    io = typed(server)

    @io.on("connection")
    def connected(socket: TypedSocket) -> None:
        @socket.on(Chat.join)
        def join(room: str) -> int:
            socket.join(room)
            return len(socket.rooms) - 1  # its own room does not count

        @socket.on(Chat.say)
        def say(message: Message) -> None:
            io.to(message["room"]).emit(Chat.message, message)

        @socket.on("disconnect")
        def gone(reason: object) -> None:
            print(f"{socket.id} left: {reason}")


async def chat(connection: ClientSocket, text: str) -> tuple[int, Message]:
    """Join ``lobby``, say ``text`` there, and return the room count and the message as it came back."""
    socket = typed_client(connection)
    received: Deferred[Message] = Deferred()

    @socket.on(Chat.message)
    def message(message: Message) -> None:
        received.callback(message)

    @socket.on(Chat.ping)
    def ping() -> str:
        return "pong"

    rooms = await socket.emit_with_ack(Chat.join, "lobby")
    socket.emit(Chat.say, {"room": "lobby", "text": text})
    return rooms, await received


async def main() -> None:
    """Serve on a free loopback port, chat with one client, ping it from the server, stop."""
    from txrealtime.testing import start_server

    server = await start_server(setup)
    try:
        rooms, echoed = await chat(await server.client(), "hello")
        print(f"in {rooms} room(s); the server relayed {echoed['text']!r} to {echoed['room']}")
        socket = typed(next(iter(server.server.sockets.sockets.values())))
        answer: str = await socket.timeout(5).emit_with_ack(Chat.ping)
        print(f"ping: {answer}")
    finally:
        await server.stop()


if __name__ == "__main__":
    react(lambda _: ensureDeferred(main()))
