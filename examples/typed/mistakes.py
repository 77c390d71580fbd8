"""One mistake per marked line: ``mypy --strict`` reports each line marked ``# expect-error: KIND``, and no other.

``tests/test_typed_events.py`` checks it (this module is excluded from the suite's own mypy run).
KIND says what is wrong: ``emit-name`` (no such event), ``emit-args`` (wrong arguments),
``ack-type`` (wrong acknowledgement type), ``handler-signature`` (a handler that does not fit
its event), ``broadcast-emit`` (the same through ``io.to(room)``), ``client-emit`` and
``client-handler`` (the Python client's side).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from txrealtime.client import ClientSocket
from txrealtime.client.typed import typed as typed_client
from txrealtime.socketio import Server
from txrealtime.socketio.typed import TypedSocket, typed

from .contract import Chat, Message

io = typed(Server())
HELLO: Message = {"room": "lobby", "text": "hello"}


def join_with_a_number(room: int) -> int:
    return room


def join_without_an_answer(room: str) -> None:
    print(room)


async def join_answering_text(room: str) -> str:
    return room


def say_twice(message: Message, times: int) -> None:
    print(message, times)


def message_as_text(message: str) -> None:
    print(message)


def ping_answering_a_number() -> int:
    return 1


@io.on("connection")
def connected(socket: TypedSocket) -> None:
    socket.emit(Chat.mesage, HELLO)  # expect-error: emit-name
    socket.emit(Chat.message, "hello")  # expect-error: emit-args
    socket.emit(Chat.message)  # expect-error: emit-args
    socket.emit(Chat.message, HELLO, 1)  # expect-error: emit-args
    socket.emit(Chat.message, {"room": "lobby"})  # expect-error: emit-args
    socket.emit(Chat.join, "lobby")  # expect-error: emit-name
    socket.timeout(5).emit(Chat.message, 42)  # expect-error: emit-args
    answer: Deferred[int] = socket.timeout(5).emit_with_ack(Chat.ping)  # expect-error: ack-type
    socket.on(Chat.join)(join_with_a_number)  # expect-error: handler-signature
    socket.on(Chat.join)(join_without_an_answer)  # expect-error: handler-signature
    socket.on(Chat.join)(join_answering_text)  # expect-error: handler-signature
    socket.on(Chat.say)(say_twice)  # expect-error: handler-signature
    socket.on(Chat.message)(message_as_text)  # expect-error: handler-signature
    socket.to("lobby").emit(Chat.message, "hello")  # expect-error: broadcast-emit
    io.to("lobby").emit(Chat.mesage, HELLO)  # expect-error: broadcast-emit
    io.to("lobby").except_("quiet").emit(Chat.say, HELLO)  # expect-error: broadcast-emit
    io.emit(Chat.message, HELLO, "extra")  # expect-error: broadcast-emit
    answers: Deferred[list[int]] = io.timeout(5).emit_with_ack(Chat.ping)  # expect-error: ack-type
    print(answer, answers)


def client(connection: ClientSocket) -> None:
    socket = typed_client(connection)
    socket.emit(Chat.jion, "lobby")  # expect-error: client-emit
    socket.emit(Chat.join, 1)  # expect-error: client-emit
    socket.emit(Chat.message, HELLO)  # expect-error: client-emit
    rooms: Deferred[str] = socket.emit_with_ack(Chat.join, "lobby")  # expect-error: ack-type
    socket.on(Chat.message)(message_as_text)  # expect-error: client-handler
    socket.on(Chat.ping)(ping_answering_a_number)  # expect-error: client-handler
    socket.on(Chat.say)(say_twice)  # expect-error: client-handler
    print(rooms)
