"""In-process cost of one long-polling echo (POST + GET) or one WebSocket echo, for profiling levers.

Drives the same site ``twistd txrealtime --no-access-log`` serves, through
in-memory transports (no sockets, no reactor running), so that the figure is
txrealtime + twisted.web + Autobahn work per message, free of the load
generator. Use it for before/after comparisons of hot-path changes, e.g. with
``valgrind --tool=callgrind`` (instruction counts do not depend on the
machine's other load) or ``--profile``::

    python -m bench.inproc polling --messages 20000
    python -m bench.inproc polling --profile
    python -m bench.inproc websocket
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import IResource

from txrealtime.engineio import EngineIOOptions, SessionManager
from txrealtime.socketio import Server, Socket
from txrealtime.web import BoundedSite, EmptyResource, mount

PATH = "/socket.io/?EIO=4&transport=polling"


def build(clock: Clock) -> BoundedSite:
    server = Server(SessionManager(EngineIOOptions(ping_interval=1e6, ping_timeout=1e6), reactor=clock))

    @server.on("connection")
    def on_connection(socket: Socket) -> None:
        socket.join("room")
        socket.on("echo", lambda data: data)

    root = EmptyResource()
    mount(root, "/socket.io/", server.resource())
    site = BoundedSite(cast(IResource, root), max_body=1_000_000, managers=[server.manager], access_log=False)
    return site


class Conn:
    """One kept-alive HTTP connection."""

    def __init__(self, site: BoundedSite, port: int) -> None:
        addr = IPv4Address("TCP", "127.0.0.1", port)
        self.channel: Any = site.buildProtocol(addr)
        transport: Any = StringTransport(peerAddress=addr, hostAddress=IPv4Address("TCP", "127.0.0.1", 80))
        transport.protocol = self.channel  # as on a TCP transport; a WebSocket upgrade replaces it
        self.transport = transport
        self.channel.makeConnection(transport)

    def send(self, method: str, path: str, body: bytes = b"") -> None:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
        if body:
            head += f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n"
        self.channel.dataReceived(head.encode() + b"\r\n" + body)

    def take(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data


def polling(messages: int, clients: int = 10) -> float:
    clock = Clock()
    site = build(clock)
    conns = []
    for i in range(clients):
        get, post = Conn(site, 40000 + 2 * i), Conn(site, 40001 + 2 * i)
        get.send("GET", PATH)
        sid = json.loads(get.take().split(b"\r\n\r\n", 1)[1][1:])["sid"]
        url = f"{PATH}&sid={sid}"
        post.send("POST", url, b"40")
        post.take()
        get.send("GET", url)
        assert b"40{" in get.take()
        get.send("GET", url)  # parked
        conns.append((get, post, url))
    body = json.dumps(["echo", {"pad": "z" * 32}], separators=(",", ":"))
    start = time.perf_counter()
    for n in range(messages // clients):
        for get, post, url in conns:
            post.send("POST", url, f"42{n}{body}".encode())
            assert post.take().endswith(b"ok")
            answer = get.take()
            assert b"43%d[" % n in answer, answer
            get.send("GET", url)
    return (time.perf_counter() - start) / (messages // clients * clients)


def _masked(text: str) -> bytes:
    """A masked client text frame (RFC 6455), as a browser sends it."""
    payload, mask = text.encode(), b"\x01\x02\x03\x04"
    size = len(payload)
    header = bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    key = (mask * (size // 4 + 1))[:size]
    return header + mask + (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


def websocket(messages: int, clients: int = 10) -> float:
    """One WebSocket echo with an ack (``42<n>["echo",{...}]`` in, ``43<n>[...]`` out), ``clients`` sockets in turn."""
    clock = Clock()
    site = build(clock)
    conns = []
    for i in range(clients):
        conn = Conn(site, 40000 + i)
        key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        conn.channel.dataReceived(
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\n{key}\r\n".encode()
        )
        assert b" 101 " in conn.take()
        protocol = conn.transport.protocol
        protocol.dataReceived(_masked("40"))
        assert b"40{" in conn.take()
        conns.append((protocol, conn))
    body = json.dumps(["echo", {"pad": "z" * 32}], separators=(",", ":"))
    frames = [_masked(f"42{n}{body}") for n in range(messages // clients)]
    start = time.perf_counter()
    for n, frame in enumerate(frames):
        for protocol, conn in conns:
            protocol.dataReceived(frame)
            answer = conn.take()
            assert b"43%d[" % n in answer, answer
    return (time.perf_counter() - start) / (messages // clients * clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["polling", "websocket"])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    scenarios: dict[str, Callable[[int], float]] = {"polling": polling, "websocket": websocket}
    run = scenarios[args.scenario]
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        run(args.messages)
        profile.disable()
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(35)
        stats.sort_stats("cumtime").print_stats(40)
    else:
        run(2000)
        print(f"{args.scenario}: {run(args.messages) * 1e6:.1f} µs per echo")


if __name__ == "__main__":
    main()
