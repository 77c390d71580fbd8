"""txrealtime nodes linked through one real redis-server, and what their tests need to watch them."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.task import deferLater

from tests.peers import until
from tests.servers import INTEROP, NODE_MODULES, RedisCluster, RedisServer, node
from txrealtime.adapters.redis import (
    RedisAdapter,
    RedisLink,
    RedisStreamsAdapter,
    RedisStreamsLink,
    ShardedRedisAdapter,
    ShardedRedisLink,
    redis_adapter,
    sharded_adapter,
    streams_adapter,
)
from txrealtime.client import ClientSocket, EngineIOClient, Manager
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio import Server, Socket
from txrealtime.testing import TestServer

WAIT = 20.0
"""Seconds to wait for something that happens through Redis (no fixed sleeps: ``until(..., limit=WAIT)``)."""


def app(name: str) -> Callable[[Server], None]:
    """The app each node runs: ``join`` a room (answering with the rooms), and ``which node`` between servers."""
    def setup(server: Server) -> None:
        @server.on("connection")
        def connected(socket: Socket) -> None:
            def join(room: str) -> list[str]:
                socket.join(room)
                return sorted(socket.rooms - {socket.id})

            socket.on("join", join)
            socket.data["node"] = name

        server.on("which node", lambda *args: f"{name} got {list(args)}")

    return setup


@dataclass
class Node:
    """One txrealtime server on loopback and its link to Redis."""

    name: str
    link: Any
    """A RedisLink, or a ShardedRedisLink."""
    test_server: TestServer

    @property
    def server(self) -> Server:
        return self.test_server.server


async def start_nodes(
    realtime: Realtime, redis: RedisServer | RedisCluster, names: list[str], parser: str = "json",
    streams: bool = False, subscription_mode: str = "dynamic", **server_options: Any,
) -> list[Node]:
    """Start one node per name (sharded ones on a Redis Cluster, each on a node of its own, in
    ``subscription_mode``; with ``streams``, on the streams adapter); fire once every link is up and every node
    has heard of the others.

    ``server_options`` go to each node's :class:`Server`.
    """
    nodes = []
    for index, name in enumerate(names):
        options: dict[str, Any] = {"heartbeat_interval": 0.2, "heartbeat_timeout": 1.0, "reconnect_max_delay": 0.2}
        if isinstance(redis, RedisCluster):
            sharded = ShardedRedisLink(redis.url_of(index % len(redis.ports)), health_check_interval=0.5,
                                       subscription_mode=subscription_mode, **options)
            link: Any = sharded
            adapter: Callable[[Any], Any] = sharded_adapter(sharded)
        elif streams:
            streams_link = RedisStreamsLink(redis.url, block_time=0.5, **options)
            link, adapter = streams_link, streams_adapter(streams_link)
        else:
            link = RedisLink(redis.url, **options)
            adapter = redis_adapter(link)
        running = await realtime.start_server(app(name), adapter=adapter, parser=parser, **server_options)
        nodes.append(Node(name, link, running))
    await until(lambda: all(n.link.connected for n in nodes), "every link to connect", limit=WAIT)
    await until(
        lambda: all(len(n.link.nodes()) == len(nodes) for n in nodes),
        "every node to hear the others",
        limit=WAIT,
    )
    return nodes


def start_node_server(
    redis_url: str, parser: str = "json", script: str = "redis_node_server.js", args: Sequence[str] = ()
) -> tuple[subprocess.Popen[str], str]:
    """tests/interop/redis_node_server.js (Node's socket.io on @socket.io/redis-adapter; ``script`` may name
    sharded_node_server.js, on createShardedAdapter and a Redis Cluster, whose ``args`` may name a subscription
    mode): the process and its URL."""
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    process = subprocess.Popen(
        [node(), str(INTEROP / script), redis_url, parser, *args], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise AssertionError("the Node socket.io server with the Redis adapter did not start")
    return process, f"http://127.0.0.1:{json.loads(line)['port']}"


async def clients_on_every_node(realtime: Realtime, nodes: list[Node]) -> tuple[list[ClientSocket], list[list[Any]]]:
    """A client on each node and its inbox, once the first node counts every server; a broadcast from the first
    node (binary included) has reached them all: it is first in every inbox."""
    clients = [await realtime.connect(n.test_server) for n in nodes]
    boxes = [inbox(s) for s in clients]
    await wait_for_servers(nodes[0].server, len(nodes))
    assert nodes[0].server.emit("news", "hello", b"\x00\x01") is True
    await until(lambda: all(boxes), "the broadcast on every node", limit=WAIT)
    assert boxes == [[["news", "hello", b"\x00\x01"]]] * len(nodes)
    return clients, boxes


def movable_manager(url: str) -> tuple[Manager, list[str]]:
    """A manager (WebSocket only, no reconnection of its own) and its target: each connection goes to
    ``target[0]``, so setting it moves the client to another node."""
    target = [url]
    manager = Manager(url, reconnection=False, engine_factory=lambda listener: EngineIOClient(
        target[0], listener, path="/socket.io/", transports=["websocket"]))
    return manager, target


async def stop_links(nodes: list[Node]) -> None:
    await DeferredList([n.link.stop() for n in nodes])


def inbox(socket: ClientSocket) -> list[list[Any]]:
    """Every event ``socket`` receives from now on, as ``[name, *args]``."""
    seen: list[list[Any]] = []
    socket.on_any(lambda *args: seen.append(list(args)))
    return seen


async def sync(*sockets: ClientSocket) -> None:
    """Each server answers an ack after anything it sent before: the inboxes are final for what came first."""
    for socket in sockets:
        await socket.emit_with_ack("join", "sync", timeout=10)


async def wait_for_servers(server: Server, count: int) -> None:
    """Wait until ``count`` servers subscribe to the default namespace's request channel."""
    adapter = server.sockets.adapter
    assert isinstance(adapter, RedisAdapter | ShardedRedisAdapter | RedisStreamsAdapter)
    for _ in range(1000):
        if await adapter.server_count() >= count:
            return
        await deferLater(reactor, 0.02, lambda: None)
    raise AssertionError(f"fewer than {count} servers subscribed")
