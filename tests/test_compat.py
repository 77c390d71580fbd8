"""``txrealtime._compat``: its fast paths are on with the installed Twisted and Autobahn, off with
``TXREALTIME_FAST_PATHS=0`` or when a probe finds a library changed, and no other module touches the
private names it wraps.

The switches are set at import, so the import itself runs in a child process for each setting.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import IResource

from tests.fakes import NO_BOUNDED_INFLATE
from txrealtime import _compat
from txrealtime.engineio import EngineIOOptions, SessionManager
from txrealtime.socketio import Server
from txrealtime.web import BoundedSite, EmptyResource, mount

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "txrealtime"

OLD_TWISTED_OFF = {
    # Before 24.7, HTTPChannel.writeHeaders takes (name, value) pairs, not a Headers: a response's head goes
    # out in a write of its own.
    "response_head": "TypeError: 'Headers' object is not iterable",
    # Before 25.5, Request.requestReceived has no switch for its form parsing: a urlencoded or multipart
    # POST body is parsed as a form whatever the resource.
    "form_skip": "Request.requestReceived no longer uses _parsePOSTFormSubmission",
}
"""What is off with the lowest Twisted declared (23.10), and why: run-tests' lowest-versions pass shows it."""

LOWEST_TWISTED = re.search(r"^twisted==(\S+)$", (ROOT / ".ci/lowest-constraints.txt").read_text(), re.M)
EXPECTED_OFF = OLD_TWISTED_OFF if LOWEST_TWISTED and version("twisted") == LOWEST_TWISTED[1] else {}
"""What the probes find off with the installed versions: nothing with the newest."""

SHOW = """
import json, sys
from twisted.logger import globalLogBeginner, formatEvent
lines = []
globalLogBeginner.beginLoggingTo([lambda event: lines.append(formatEvent(event))], redirectStandardIO=False)
{prelude}
from txrealtime import _compat
print(json.dumps({{"on": {{name: getattr(_compat.fast, name) for name in _compat.FAST_PATHS + _compat.NEEDS}},
                  "why": _compat.why_off, "lines": [l for l in lines if "fast path" in l]}}))
"""


def imported(fast_paths: str | None, prelude: str = "") -> dict[str, Any]:
    """What ``_compat`` decided when imported in a child process (``TXREALTIME_FAST_PATHS`` as given)."""
    env = {k: v for k, v in os.environ.items() if k != _compat.ENV}
    if fast_paths is not None:
        env[_compat.ENV] = fast_paths
    out = subprocess.run([sys.executable, "-c", SHOW.format(prelude=prelude)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return cast(dict[str, Any], json.loads(out.splitlines()[-1]))


def off_line(why: dict[str, str]) -> str:
    """The warning ``_compat`` logs for what ``why`` names, in the order of its probes."""
    found = "; ".join(f"{name}: {why[name]}" for name in _compat._probes() if name in why)
    return f"txrealtime fast paths off, public paths used instead ({found})"


def test_every_fast_path_is_on_with_the_installed_versions() -> None:
    # All of them with the newest releases; with the lowest declared, those that Twisted 23.10 lacks are off.
    result = imported(None)
    assert result["why"] == EXPECTED_OFF
    assert result["on"] == {name: name not in EXPECTED_OFF for name in _compat.FAST_PATHS + _compat.NEEDS}
    assert result["lines"] == ([off_line(EXPECTED_OFF)] if EXPECTED_OFF else [])


def test_the_environment_variable_turns_every_fast_path_off_and_says_so() -> None:
    result = imported("0")
    needs = {name: name not in EXPECTED_OFF for name in _compat.NEEDS}
    assert result["on"] == {**dict.fromkeys(_compat.FAST_PATHS, False), **needs}
    needs_off = {name: why for name, why in EXPECTED_OFF.items() if name in _compat.NEEDS}
    assert result["why"] == {**dict.fromkeys(_compat.FAST_PATHS, "TXREALTIME_FAST_PATHS=0"), **needs_off}
    assert result["lines"] == ["txrealtime fast paths off (TXREALTIME_FAST_PATHS=0)",
                               *([off_line(needs_off)] if needs_off else [])]


def test_a_twisted_buffering_writes_elsewhere_turns_the_tcp_write_off() -> None:
    # A later Twisted keeping what write() buffers in a new attribute: writing at once would put
    # later bytes before it. The probe writes through Twisted and sees the connection still idle.
    prelude = """
from twisted.internet import tcp
def write(self, data):
    self.__dict__.setdefault("_later", []).append(data)
tcp.Server.write = write
"""
    result = imported(None, prelude)
    reason = "a write Twisted buffered is not seen in its buffer attributes"
    assert result["why"] == {"tcp_write": reason, **EXPECTED_OFF}
    assert result["on"]["tcp_write"] is False and result["on"]["ws_handshake"] is True
    assert result["lines"] == [off_line({"tcp_write": reason, **EXPECTED_OFF})]


def test_an_autobahn_whose_handshake_changed_turns_the_handshake_path_off() -> None:
    prelude = """
from autobahn.websocket.protocol import WebSocketServerProtocol
def processHandshake(self):
    pass
WebSocketServerProtocol.processHandshake = processHandshake
"""
    result = imported(None, prelude)
    assert sorted(result["why"]) == sorted(["ws_handshake", *EXPECTED_OFF])
    assert result["why"]["ws_handshake"].startswith("processHandshake no longer uses http_request_uri, ")


# -- no other module touches the names _compat wraps ----------------------------------------------------

ATTRIBUTES = {
    # twisted.internet.tcp / abstract.FileDescriptor
    "_tempDataLen", "dataBuffer", "_tempDataBuffer", "_writeDisconnected", "_aborting", "_shouldShutdown",
    # twisted.web
    "_parsePOSTFormSubmission", "_path", "_handlingRequest", "requests",
    # reactors
    "_exitSignal",
    # Autobahn
    "_batched_timer", "_decompressor", "_perMessageCompress", "is_closed", "current_frame", "inside_message",
    "_wskey", "_parseExtensionsHeader", "_url_to_origin", "_is_same_origin", "_connectionMade",
    "openHandshakeTimeoutCall", "closeHandshakeTimeoutCall", "serverConnectionDropTimeoutCall",
}
"""Private (or undocumented) attributes of Twisted's and Autobahn's objects that only _compat may use."""

EXEMPT = {"_compat.py", "llhttp.py"}
"""_compat itself, and the C-parser channel built on twisted.web's HTTPChannel state (probed by _compat:
``c_http_parser``)."""


def offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ATTRIBUTES:
            found.append(f"{path.name}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("twisted", "autobahn"):
            found += [f"{path.name}:{node.lineno}: import {a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Constant) and node.value in ATTRIBUTES:
            found.append(f"{path.name}:{node.lineno}: {node.value!r}")  # getattr(x, "_path") and the like
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "CONFIG_ATTRS"
                                                  for t in node.targets):
            found.append(f"{path.name}:{node.lineno}: CONFIG_ATTRS")
    return found


def test_only_compat_uses_the_private_names_it_wraps() -> None:
    modules = [p for p in PACKAGE.rglob("*.py") if p.name not in EXEMPT]
    assert len(modules) > 50
    assert [offence for path in modules for offence in offences(path)] == []


def test_the_scan_finds_what_it_looks_for() -> None:
    # The check above could pass by finding nothing at all: _compat itself is full of these names.
    found = offences(PACKAGE / "_compat.py")
    for name in ("_tempDataLen", "_exitSignal", "_batched_timer", "_wskey", "_path", "requests"):
        assert any(offence.endswith((f".{name}", repr(name))) for offence in found), name


# -- the handshake answered from twisted.web's parse is Autobahn's answer -----------------------------------


def site(compression: bool = False) -> BoundedSite:
    options = EngineIOOptions(per_message_deflate=compression)
    server = Server(SessionManager(options, reactor=Clock()))
    root = EmptyResource()
    mount(root, "/socket.io/", server.resource())
    return BoundedSite(cast(IResource, root), managers=[server.manager], access_log=False)


class Transport(StringTransport):
    protocol: Any


def answer(request: bytes, compression: bool = False) -> bytes:
    """The head of what a server answers to ``request`` on a fresh connection."""
    served = site(compression)
    address = IPv4Address("TCP", "127.0.0.1", 50000)
    channel: Any = cast(Any, served).buildProtocol(address)
    transport = Transport(peerAddress=address, hostAddress=IPv4Address("TCP", "127.0.0.1", 80))
    transport.protocol = channel
    channel.makeConnection(transport)
    channel.dataReceived(request)
    head = transport.value().partition(b"\r\n\r\n")[0]
    return re.sub(rb"\r\nDate: [^\r]*", b"", head)  # twisted.web's, from the wall clock


def upgrade(*extra: str, host: str = "127.0.0.1:3000", version: str = "13",
            key: str = "dGhlIHNhbXBsZSBub25jZQ==") -> bytes:
    lines = ["GET /socket.io/?EIO=4&transport=websocket HTTP/1.1", f"Host: {host}", "Connection: keep-alive, Upgrade",
             "Upgrade: websocket", f"Sec-WebSocket-Key: {key}", f"Sec-WebSocket-Version: {version}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"

CASES = {
    # request, permessage-deflate configured, answered from twisted.web's parse, the status
    "plain": (upgrade(), False, True, b"101"),
    "origin and a subprotocol offer": (upgrade("Origin: http://example.com", "Sec-WebSocket-Protocol: a, b"),
                                       False, True, b"101"),
    "deflate offered and accepted": (upgrade(DEFLATE), True, True, b"101"),
    "deflate offered, not configured": (upgrade(DEFLATE), False, True, b"101"),
    "version 8 (Autobahn's parse accepts it)": (upgrade(version="8"), False, False, b"101"),
    "version 12": (upgrade(version="12"), False, False, b"400"),
    "bad key": (upgrade(key="short=="), False, False, b"400"),
    "bad port": (upgrade(host="127.0.0.1:x"), False, False, b"400"),
    "a null origin": (upgrade("Origin: null"), False, False, b"400"),
    "twice the same subprotocol": (upgrade("Sec-WebSocket-Protocol: a, a"), False, False, b"400"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_handshake_from_twisted_webs_parse_answers_as_autobahn(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    request, compression, fast, status = CASES[case]
    if compression and NO_BOUNDED_INFLATE:
        pytest.skip(NO_BOUNDED_INFLATE)
    monkeypatch.setattr(_compat.fast, "ws_handshake", True)  # on even in the TXREALTIME_FAST_PATHS=0 pass
    taken: list[bool] = []
    real = _compat.fast_handshake

    def counted(protocol: Any, parsed: Any) -> bool:
        taken.append(real(protocol, parsed))
        return taken[-1]

    monkeypatch.setattr(_compat, "fast_handshake", counted)
    ours = answer(request, compression)
    assert taken == [fast]
    monkeypatch.setattr(_compat.fast, "ws_handshake", False)
    assert answer(request, compression) == ours
    assert taken == [fast, False]
    assert ours.startswith(b"HTTP/1.1 " + status + b" ")
    if status == b"101":
        assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in ours
        assert (b"\r\nSec-WebSocket-Extensions: permessage-deflate" in ours) == compression


def test_autobahn_formats_hltype_and_hlval_for_log_lines_only() -> None:
    # ws_debug makes them lazy in these modules: right only if every call is an argument of a log call.
    import autobahn.twisted.websocket
    import autobahn.websocket.protocol

    for module in (autobahn.websocket.protocol, autobahn.twisted.websocket):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        logged: set[int] = set()
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "log"):
                logged.update(id(k.value) for k in node.keywords)
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                 and node.func.id in ("hltype", "hlval")]
        assert calls
        assert [c.lineno for c in calls if id(c) not in logged] == [], module.__name__
