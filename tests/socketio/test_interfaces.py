"""The contracts of txrealtime.engineio.interfaces and txrealtime.socketio.interfaces: public members only, and
the implementations provide them (mypy checks the assignments below; the tests check what they hold)."""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.internet.task import Clock

from txrealtime.engineio import SessionManager
from txrealtime.engineio.interfaces import SessionHost
from txrealtime.engineio.session import Session
from txrealtime.socketio import Server
from txrealtime.socketio.interfaces import AdapterContract, AdapterNamespace, AdapterServer

PACKAGE = Path(__file__).parent.parent.parent / "txrealtime"
SERVER_SIDE = [PACKAGE / "engineio", PACKAGE / "socketio", PACKAGE / "adapters"]


def _protocol_members(path: Path) -> list[tuple[str, str]]:
    """(class, member) for every member of every typing Protocol class in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [b.value if isinstance(b, ast.Subscript) else b for b in node.bases]
        if not any(isinstance(b, ast.Name) and b.id == "Protocol" for b in bases):
            continue
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((node.name, item.name))
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                found.append((node.name, item.target.id))
    return found


def test_no_protocol_of_the_server_side_has_a_private_member() -> None:
    members = [(path.relative_to(PACKAGE).as_posix(), cls, name)
               for folder in SERVER_SIDE for path in sorted(folder.rglob("*.py"))
               for cls, name in _protocol_members(path)]
    assert ("socketio/interfaces.py", "AdapterNamespace", "on_server_side_emit") in members
    assert ("engineio/interfaces.py", "SessionHost", "forget") in members
    private = [m for m in members if m[2].startswith("_") and not m[2].startswith("__")]
    assert private == []


def test_the_server_provides_what_its_adapters_see() -> None:
    server = Server(SessionManager(reactor=Clock()))
    chat = server.of("/chat")
    namespace: AdapterNamespace = chat
    adapter: AdapterContract = chat.adapter
    seen: AdapterServer = namespace.server
    assert adapter.namespace is chat and seen is server
    assert adapter.socket_rooms("nobody") is None


def test_the_manager_hosts_its_sessions() -> None:
    manager = SessionManager(reactor=Clock())
    host: SessionHost[Session] = manager
    assert host.tracing is False and host.message_subscribers == 0
    manager.subscribe_packets(lambda event: None)
    assert host.tracing is True
