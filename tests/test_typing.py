"""The handler styles the docs teach type-check under ``mypy --strict`` in a user's project."""

from __future__ import annotations

from pathlib import Path

from mypy import api

GOOD = '''
from txrealtime.socketio import Namespace, Server, Socket

io = Server()


@io.on("connection")
def on_connection(socket: Socket) -> None:
    socket.emit("news", {"hello": "world"})

    @socket.on("my other event")
    def on_other_event(data: object) -> None:
        print(data)


@io.on("new_namespace")
def created(namespace: Namespace) -> None:
    print(namespace.name)


@io.of("/chat").on("connection")
async def chat(socket: Socket) -> None:
    await socket.emit_with_ack("hello")
'''

BAD = '''
from txrealtime.socketio import Server

io = Server()


@io.on("connection")
def wrong(number: int) -> None:
    print(number)
'''


def check(tmp_path: Path, source: str) -> tuple[str, int]:
    module = tmp_path / "user_app.py"
    module.write_text(source)
    out, err, status = api.run(["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(module)])
    return out + err, status


def test_decorated_handlers_are_typed(tmp_path: Path) -> None:
    report, status = check(tmp_path, GOOD)
    assert status == 0, report


def test_a_connection_handler_must_take_the_socket(tmp_path: Path) -> None:
    report, status = check(tmp_path, BAD)
    assert status == 1 and 'Value of type variable "OnConnection"' in report, report
