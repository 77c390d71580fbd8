"""Typed event contracts: what ``mypy --strict`` and pyright report over ``examples/typed/``, and that the typed
views promise nothing the runtime objects lack."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

from mypy import api
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock

from examples.typed.app import chat, setup
from examples.typed.contract import Chat
from txrealtime.client.socket import ClientEmitter, ClientSocket
from txrealtime.client.typed import TypedClientEmitter, TypedClientSocket
from txrealtime.contract import ToClient, ToServer, signature
from txrealtime.engineio import SessionManager
from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.protocol.parser import resolve
from txrealtime.socketio import BroadcastOperator, Namespace, Server, Socket
from txrealtime.socketio.socket import SocketEmitter
from txrealtime.socketio.typed import (
    TypedNamespace,
    TypedOperator,
    TypedServer,
    TypedSocket,
    TypedSocketEmitter,
    typed,
)
from txrealtime.testing import connect_in_memory

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "typed"
KINDS = {"emit-name", "emit-args", "ack-type", "handler-signature", "broadcast-emit", "client-emit", "client-handler"}
MARK = re.compile(r"#\s*expect-error:\s*([a-z-]+)\s*$")


def mypy(tmp_path: Path, *files: Path) -> tuple[str, int]:
    out, err, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), *map(str, files)]
    )
    return out + err, status


def test_every_marked_mistake_and_only_those_is_reported_by_mypy(tmp_path: Path) -> None:
    source = (EXAMPLE / "mistakes.py").read_text().splitlines()
    marked = {number: m.group(1) for number, line in enumerate(source, 1) if (m := MARK.search(line))}
    assert set(marked.values()) == KINDS, "each kind of mistake appears at least once"
    report, status = mypy(tmp_path, EXAMPLE / "mistakes.py")
    reported = {int(m.group(1)) for m in re.finditer(r"^examples/typed/mistakes\.py:(\d+): error:", report, re.M)}
    assert status == 1
    assert reported == set(marked), report


def test_the_typed_example_is_clean_under_mypy_strict(tmp_path: Path) -> None:
    report, status = mypy(tmp_path, EXAMPLE / "app.py", EXAMPLE / "contract.py")
    assert status == 0, report


def test_the_typed_example_is_clean_under_pyright() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable,
         "examples/typed/app.py", "examples/typed/contract.py", "txrealtime/contract.py",
         "txrealtime/socketio/typed.py", "txrealtime/client/typed.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["filesAnalyzed"] == 5, result.stdout
    assert report["generalDiagnostics"] == [], result.stdout


def test_pyright_reports_the_mistakes_too() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable, "examples/typed/mistakes.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    report = json.loads(result.stdout)
    source = (EXAMPLE / "mistakes.py").read_text().splitlines()
    marked = {number for number, line in enumerate(source, 1) if MARK.search(line)}
    errors = {d["range"]["start"]["line"] + 1 for d in report["generalDiagnostics"] if d["severity"] == "error"}
    assert errors == marked, result.stdout


def members(protocol: type) -> set[str]:
    return {
        name for klass in protocol.__mro__ if klass.__module__.endswith(".typed")
        for name in vars(klass) if not name.startswith("_")
    }


def test_every_member_of_a_typed_view_exists_on_the_live_objects() -> None:
    """``typed()`` is a cast: each view must only promise what the object it is cast from has."""
    server = Server(SessionManager(reactor=Clock()))
    try:
        client = chat_result(connect_in_memory(server))
        socket = next(iter(server.sockets.sockets.values()))
        views: list[tuple[type, object]] = [
            (TypedOperator, server.to("room")),
            (TypedSocketEmitter, socket.timeout(1)),
            (TypedSocket, socket),
            (TypedNamespace, server.of("/other")),
            (TypedServer, server),
            (TypedClientEmitter, client.timeout(1)),
            (TypedClientSocket, client),
        ]
        for view, live in views:
            names = members(view)
            assert len(names) >= 4, view
            for name in names:
                assert hasattr(live, name), f"{view.__name__}.{name} is not on {type(live).__name__}"
                promised = getattr(view, name)
                actual = getattr(type(live), name, None)
                if inspect.isfunction(promised) and inspect.isfunction(actual):
                    # The view's positional parameters are the runtime's first ones (which may take more).
                    wanted = [p for p in inspect.signature(promised).parameters.values() if p.kind is p.POSITIONAL_ONLY]
                    assert len(inspect.signature(actual).parameters) >= len(wanted), f"{view.__name__}.{name}"
        assert isinstance(socket, Socket) and isinstance(client, ClientSocket)
        assert isinstance(server.to("room"), BroadcastOperator) and isinstance(server.sockets, Namespace)
        assert isinstance(socket.timeout(1), SocketEmitter) and isinstance(client.timeout(1), ClientEmitter)
    finally:
        server.close()


def test_a_typed_event_is_its_name_on_the_wire() -> None:
    news = ToClient[[str, int], None]("news")
    encoder = resolve("json").encoder()
    typed = encoder.encode(Packet(PacketType.EVENT, "/", [news, "hi", 1]))
    plain = encoder.encode(Packet(PacketType.EVENT, "/", ["news", "hi", 1]))
    assert typed == plain == ['2["news","hi",1]']
    msgpack = resolve("msgpack").encoder()
    assert msgpack.encode(Packet(PacketType.EVENT, "/", [news, "hi"])) == msgpack.encode(
        Packet(PacketType.EVENT, "/", ["news", "hi"])
    )


def test_an_event_remembers_its_declared_types() -> None:
    assert signature(ToServer[[str, int], bool]("join")) == ((str, int), bool)
    assert signature(ToClient[[], None]("ping")) == ((), type(None))
    assert signature(ToServer("untyped")) is None
    assert signature("plain") is None
    assert repr(ToServer[[str], None]("say")) == "ToServer('say')"


def test_the_typed_chat_runs_in_memory() -> None:
    server = Server(SessionManager(reactor=Clock()))
    try:
        setup(server)
        client = chat_result(connect_in_memory(server))
        assert chat_result(ensureDeferred(chat(client, "hello"))) == (1, {"room": "lobby", "text": "hello"})
        socket = typed(next(iter(server.sockets.sockets.values())))
        assert socket.rooms == {socket.id, "lobby"}
        assert chat_result(socket.emit_with_ack(Chat.ping)) == "pong"
    finally:
        server.close()


def chat_result(d: Deferred[T]) -> T:
    results: list[T] = []
    d.addCallback(results.append)
    assert len(results) == 1, "in memory, the whole conversation happens before emit returns"
    return results[0]
