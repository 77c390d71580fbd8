"""A txrealtime node and a Node socket.io node on the same adapter (sharded or streams), one client on each, and
the checks every mixed cluster passes: broadcasts, fetches and requests with acks, both ways."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from tests.adapters.cluster import WAIT, Node, inbox, start_node_server, wait_for_servers
from tests.peers import until
from txrealtime.adapters.redis import RemoteSocket
from txrealtime.client import ClientSocket, Manager
from txrealtime.pytest_plugin import Realtime


@dataclass
class Mixed:
    """Our node and a Node node, a client on each (``on_ours``, ``on_node``) and what each received."""

    ours: Node
    node_url: str
    node_manager: Manager
    on_ours: ClientSocket
    on_node: ClientSocket
    ours_box: list[list[Any]]
    node_box: list[list[Any]]


@asynccontextmanager
async def mixed(
    realtime: Realtime, ours: Node, redis_url: str, script: str, args: Sequence[str] = ()
) -> AsyncIterator[Mixed]:
    """tests/interop/``script`` on ``redis_url`` (with ``args``) beside ``ours``, a client on each, once both see
    each other; at the end, the Node server killed and our link stopped."""
    process: subprocess.Popen[str] | None = None
    node_manager: Manager | None = None
    try:
        process, node_url = start_node_server(redis_url, script=script, args=args)
        node_manager = Manager(node_url, transports=["websocket"], reconnection=False)
        on_ours = await realtime.connect(ours.test_server)
        on_node = await node_manager.socket("/").connect()
        pair = Mixed(ours, node_url, node_manager, on_ours, on_node, inbox(on_ours), inbox(on_node))
        await wait_for_servers(ours.server, 2)
        yield pair
    finally:
        if node_manager is not None:
            await node_manager.close()
        if process is not None:
            process.kill()
            process.wait(30)
        await ours.link.stop()


async def broadcasts_both_ways(pair: Mixed) -> None:
    """Namespace-wide broadcasts from each side reach the other's client, binary included."""
    pair.ours.server.emit("from python", {"n": 1}, b"\x07")
    await until(lambda: ["from python", {"n": 1}, b"\x07"] in pair.node_box, "python -> node", limit=WAIT)
    assert await pair.on_node.emit_with_ack("broadcast", "hi", b"\x08", timeout=10) is True
    await until(lambda: ["from node", "hi", b"\x08"] in pair.ours_box, "node -> python", limit=WAIT)


async def fetches_and_requests_both_ways(pair: Mixed) -> None:
    """Both clients being in room ``mixed``: ``fetch_sockets`` sees the other side's socket with its data, and
    server-side emits and broadcasts with acks are answered by both sides."""
    server, on_ours, on_node = pair.ours.server, pair.on_ours, pair.on_node
    everyone = await server.fetch_sockets()
    remote = [s for s in everyone if isinstance(s, RemoteSocket)]
    assert [(s.id, s.data, "mixed" in s.rooms) for s in remote] == [(on_node.id, {"node": "node.js"}, True)]
    seen_by_node = await on_node.emit_with_ack("fetch", timeout=10)
    mine = next(s for s in seen_by_node if s["id"] == on_ours.id)
    assert mine["data"] == {"node": "py"} and "mixed" in mine["rooms"]

    assert await server.server_side_emit_with_ack("hello from python", 5) == [{"node": "says hi", "value": 5}]
    server.on("hello from node", lambda value: f"py got [{value}]")
    assert await on_node.emit_with_ack("ask servers", timeout=10) == ["py got [9]"]

    on_ours.on("question", lambda n: n + 1)
    on_node.on("question", lambda n: n + 2)
    assert sorted(await server.timeout(10).emit_with_ack("question", 40)) == [41, 42]
    assert sorted(await on_node.emit_with_ack("ask clients", timeout=10)) == [2, 3]
