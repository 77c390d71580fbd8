"""A txrealtime node and a Node socket.io node sharing one Redis, with clients on both, as the emitter's
end-to-end tests use them: whatever the adapter, the same six clients and what they received."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from tests.adapters.cluster import WAIT, Node, inbox, wait_for_servers
from txrealtime.adapters.redis import RedisLink, RedisStreamsLink, RedisUnavailable
from txrealtime.client import ClientSocket, Manager
from txrealtime.emitter import BaseEmitter, Emitter, TwistedEmitter
from txrealtime.socketio import Socket


@asynccontextmanager
async def front_end(kind: str, url: str, streams: bool = False) -> AsyncIterator[BaseEmitter[Any]]:
    """The synchronous emitter (redis-py) or the Twisted one (a link of its own: a RedisStreamsLink with
    ``streams``, else a RedisLink), for the classic adapter or, with ``streams``, the streams adapter."""
    if kind == "sync":
        with Emitter(url, streams=streams) as emitter:
            yield emitter
        return
    link = RedisStreamsLink(url) if streams else RedisLink(url)
    twisted_emitter = TwistedEmitter(link)
    assert twisted_emitter.streams == streams
    failures: list[Any] = []
    twisted_emitter.emit("too early").addErrback(failures.append)  # not started: refused, and counted
    assert failures and failures[0].check(RedisUnavailable) and link.undelivered == 1
    link.start()
    try:
        await link.when_connected()
        yield twisted_emitter
    finally:
        await link.stop()


async def sent(result: int | Deferred[int]) -> int:
    """How many Redis subscribers received a message (or servers read an entry), whichever front end sent it."""
    if isinstance(result, Deferred):
        count: int = await result
        return count
    return result


async def rooms_become(socket: ClientSocket, expected: set[str]) -> None:
    """Wait until the server says ``socket`` is in ``expected`` (plus ``sync``, the room asking adds)."""
    rooms: set[str] = set()
    for _ in range(int(WAIT * 20)):
        rooms = set(await socket.emit_with_ack("join", "sync", timeout=10)) - {"sync"}
        if rooms == expected:
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"rooms are {sorted(rooms)}, not {sorted(expected)}")


@dataclass
class Clients:
    """On each server (``t`` ours, ``n`` Node's): a client in room r1 (``t1``, ``n1``), and one outside it
    (``t2``, ``n2``) whose connection also holds ``/chat`` (``tc``, ``nc``)."""

    sockets: dict[str, ClientSocket]
    boxes: dict[str, list[list[Any]]]
    """What each received, as ``[event, *args]``."""
    gone: dict[str, list[str]]
    """Each one's disconnection reasons."""
    notes: list[list[Any]] = field(default_factory=list)
    """The arguments of every ``note`` our server's own handler got (a server-side emit)."""

    def got(self, *names: str) -> Callable[[], bool]:
        """Whether every one of ``names`` received something."""
        return lambda: all(self.boxes[n] for n in names)


@asynccontextmanager
async def six_clients(ours: Node, node_url: str) -> AsyncIterator[Clients]:
    """:class:`Clients` on ``ours`` and on the Node server at ``node_url``, once both servers see each other;
    their managers closed at the end."""

    def chat_connected(socket: Socket) -> None:
        def join(room: str) -> list[str]:
            socket.join(room)
            return sorted(socket.rooms - {socket.id})

        socket.on("join", join)

    ours.server.of("/chat").on("connection", chat_connected)
    managers: list[Manager] = []

    async def connect(url: str, *namespaces: str) -> list[ClientSocket]:
        manager = Manager(url, transports=["websocket"], reconnection=False)
        managers.append(manager)
        return [await manager.socket(n).connect() for n in namespaces]

    try:
        [t1], [t2, tc] = await connect(ours.test_server.url, "/"), await connect(ours.test_server.url, "/", "/chat")
        [n1], [n2, nc] = await connect(node_url, "/"), await connect(node_url, "/", "/chat")
        sockets = {"t1": t1, "t2": t2, "tc": tc, "n1": n1, "n2": n2, "nc": nc}
        clients = Clients(sockets, {name: inbox(s) for name, s in sockets.items()}, {name: [] for name in sockets})
        for name, s in sockets.items():
            s.on("disconnect", clients.gone[name].append)
        ours.server.on("note", lambda *args: clients.notes.append(list(args)))
        for socket in (t1, n1):
            assert await socket.emit_with_ack("join", "r1", timeout=10) == ["r1"]
        await wait_for_servers(ours.server, 2)
        yield clients
    finally:
        for manager in managers:
            await manager.close()
