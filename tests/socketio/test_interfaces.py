"""The contracts of txrealtime: every typing Protocol of the package lists public members only (pydoctor shows
them), and the implementations provide them (mypy checks the assignments below; the tests check what they hold).
The server side's are in txrealtime.engineio.interfaces and txrealtime.socketio.interfaces."""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.internet.task import Clock

from txrealtime.client import Manager
from txrealtime.client.engineio import EngineIOClient
from txrealtime.client.socket import ManagerLink
from txrealtime.client.transport import EngineLink
from txrealtime.engineio import SessionManager
from txrealtime.engineio.interfaces import SessionHost
from txrealtime.engineio.session import Session
from txrealtime.protocol.dispatch import Host
from txrealtime.socketio import Server
from txrealtime.socketio.interfaces import AdapterContract, AdapterNamespace, AdapterServer

PACKAGE = Path(__file__).parent.parent.parent / "txrealtime"
TYPING = ("typing", "typing_extensions")


def _protocol_names(tree: ast.Module) -> set[str]:
    """The names a module binds to ``typing.Protocol`` (not Twisted's ``Protocol``)."""
    return {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module in TYPING for alias in node.names if alias.name == "Protocol"}


def _is_protocol(base: ast.expr, names: set[str]) -> bool:
    base = base.value if isinstance(base, ast.Subscript) else base  # Protocol[T]
    if isinstance(base, ast.Name):
        return base.id in names
    return isinstance(base, ast.Attribute) and base.attr == "Protocol" and isinstance(base.value, ast.Name) \
        and base.value.id in TYPING


def _protocols(path: Path) -> list[tuple[str, list[str]]]:
    """(class, members) for every typing Protocol class in ``path``."""
    tree = ast.parse(path.read_text())
    names = _protocol_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef) or not any(_is_protocol(b, names) for b in node.bases):
            continue
        members = []
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                members.append(item.name)
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                members.append(item.target.id)
            elif isinstance(item, ast.Assign):
                members.extend(t.id for t in item.targets if isinstance(t, ast.Name))
        found.append((node.name, members))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_protocol_of_the_package_has_a_private_member_or_name() -> None:
    protocols = {(path.relative_to(PACKAGE).as_posix(), cls): members
                 for path in sorted(PACKAGE.rglob("*.py")) for cls, members in _protocols(path)}
    members = [(where, cls, name) for (where, cls), names in protocols.items() for name in names]
    for seen in [("socketio/interfaces.py", "AdapterNamespace", "on_server_side_emit"),
                 ("engineio/interfaces.py", "SessionHost", "forget"),
                 ("protocol/dispatch.py", "Host", "take_handlers"),
                 ("client/socket.py", "ManagerLink", "send_packet"),
                 ("client/transport.py", "EngineLink", "transport_packet")]:
        assert seen in members
    assert ("redis/connection.py", "RedisProtocol") not in protocols  # Twisted's Protocol, not a contract
    assert [m for m in members if _private(m[2])] == []
    assert [p for p in protocols if _private(p[1])] == []


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


def test_the_client_provides_what_its_sockets_and_transports_see() -> None:
    manager = Manager("http://127.0.0.1:1", reactor=Clock())
    link: ManagerLink = manager
    host: Host = manager.socket("/chat")
    engine: EngineLink = EngineIOClient("http://127.0.0.1:1/", manager, reactor=Clock())
    assert link.transport is None and not link.writable
    assert host.connected is False and host.take_handlers("connect") == []
    assert engine.request_url("websocket", "s1") == "ws://127.0.0.1:1/engine.io/?EIO=4&transport=websocket&sid=s1"
    assert engine.request_headers() == {}
