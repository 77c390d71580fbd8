"""docs/socketio.md's Node→Python table names every option of Node's servers and clients, read from the type
declarations of the packages the suite runs against (tests/interop/node_modules): engine.io 6.6's
``ServerOptions`` and ``AttachOptions``, the ``cors`` package's ``CorsOptions`` they take, socket.io 4.8's
``ServerOptions``, and socket.io-client 4.8's options (its ``ManagerOptions``, engine.io-client's
``SocketOptions`` under them, and its own ``SocketOptions``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.servers import NODE_MODULES

TABLE_DOC = Path(__file__).parent.parent / "docs" / "socketio.md"

SERVER = [
    ("engine.io/build/server.d.ts", "ServerOptions"),
    ("engine.io/build/server.d.ts", "AttachOptions"),
    ("@types/cors/index.d.ts", "CorsOptions"),
    ("socket.io/dist/index.d.ts", "ServerOptions"),
]
CLIENT = [
    ("engine.io-client/build/cjs/socket.d.ts", "SocketOptions"),
    ("socket.io-client/build/cjs/manager.d.ts", "ManagerOptions"),
    ("socket.io-client/build/cjs/socket.d.ts", "SocketOptions"),
]


def members(path: str, interface: str) -> list[str]:
    """The names of an interface's own members (not those of the types nested in it)."""
    text = re.sub(r"/\*.*?\*/", "", (NODE_MODULES / path).read_text(), flags=re.S)
    start = re.search(rf"\binterface {interface}\b[^{{]*{{", text)
    assert start is not None, (path, interface)
    names, depth = [], 1
    for line in text[start.end():].splitlines():
        if depth == 1 and (member := re.match(r"\s*(\w+)\??\s*:", line)):
            names.append(member.group(1))
        depth += line.count("{") - line.count("}")
        if depth <= 0:
            return names
    raise AssertionError(f"{interface} in {path} does not end")


def node_column(client: bool) -> str:
    """The Node cells of the table's rows for the client (``client: …``) or for the servers."""
    table = TABLE_DOC.read_text().split("translates line by line:", 1)[1].split("\n\n")[1]
    cells = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    return "\n".join(cell for cell in cells if cell.startswith("client:") == client)


@pytest.mark.parametrize(("path", "interface", "client"),
                         [(*source, False) for source in SERVER] + [(*source, True) for source in CLIENT])
def test_every_node_option_has_a_row(path: str, interface: str, client: bool) -> None:
    names = members(path, interface)
    assert len(names) >= 3, names  # the declarations were read
    rows = node_column(client)
    assert [name for name in names if not re.search(rf"\b{name}\b", rows)] == []
