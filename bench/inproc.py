"""In-process cost of one long-polling echo, one WebSocket echo or one WebSocket connection, for profiling levers.

Drives the same site ``twistd txrealtime --no-access-log`` serves, through
in-memory transports (no sockets, no reactor running), so that the figure is
txrealtime + twisted.web + Autobahn work per message, free of the load
generator. Use it for before/after comparisons of hot-path changes, e.g. with
``valgrind --tool=callgrind`` (instruction counts do not depend on the
machine's other load) or ``--profile``::

    python -m bench.inproc polling --messages 20000
    python -m bench.inproc websocket --profile
    python -m bench.inproc connect --messages 2000

Scenarios: ``polling`` (one POST carrying an event with an ack, one GET
collecting the ack), ``websocket`` (one frame carrying an event with an
ack, one frame back, on open connections), ``connect`` (one client: the
WebSocket handshake, Engine.IO OPEN, Socket.IO CONNECT and its answer, then
the client closes the connection), ``broadcast`` (one ~2.5 KB broadcast to a
room of 10 WebSocket clients) and ``broadcast_recovery`` (the same with
connection state recovery on: each broadcast gets an offset and is kept).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import IResource
from typing_extensions import TypedDict  # pydantic wants it before Python 3.12

from txrealtime.engineio import EngineIOOptions, SessionManager
from txrealtime.socketio import Server, Socket, StateRecovery
from txrealtime.web import BoundedSite, EmptyResource, mount

PATH = "/socket.io/?EIO=4&transport=polling"
WS_PATH = "/socket.io/?EIO=4&transport=websocket"
UPGRADE = (
    f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


UPGRADE_DEFLATE = UPGRADE[:-2] + b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
"""The same upgrade offering permessage-deflate, as Node's ``ws`` client and browsers do."""

DEFLATE = False
"""permessage-deflate on in the server, and offered by every WebSocket client (:func:`broadcast_deflate`)."""


def build(clock: Clock) -> BoundedSite:
    return serve(clock)[0]


VALIDATION = "none"
"""``--validation``: ``none``, ``middleware`` (one event middleware doing nothing), ``msgspec`` or ``pydantic``
(a :class:`txrealtime.socketio.validation.Validator` checking the echo's payload)."""


class Padded(TypedDict):
    """The echo's payload, as the contract of the ``--validation`` runs declares it."""

    pad: str


def serve(clock: Clock, **server_options: Any) -> tuple[BoundedSite, Server]:
    """The site and its Socket.IO server (``server_options`` go to :class:`Server`)."""
    options = EngineIOOptions(ping_interval=1e6, ping_timeout=1e6, per_message_deflate=DEFLATE)
    server = Server(SessionManager(options, reactor=clock),
                    **server_options)
    if VALIDATION in ("msgspec", "pydantic"):
        from txrealtime.contract import ToServer
        from txrealtime.socketio.validation import Validator

        Validator(ToServer[[Padded], Padded]("echo"), backend=cast(Any, VALIDATION)).install(server)
    elif VALIDATION == "middleware":
        server.on("connection", lambda socket: socket.use(lambda event, args: None))

    @server.on("connection")
    def on_connection(socket: Socket) -> None:
        socket.join("room")
        socket.on("echo", lambda data: data)
        socket.on("say", lambda data: socket.emit("said", data))  # an emit, with its back-pressure answer

    root = EmptyResource()
    mount(root, "/socket.io/", server.resource())
    site = BoundedSite(cast(IResource, root), max_body=1_000_000, managers=[server.manager], access_log=False)
    return site, server


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


def client_frame(payload: bytes) -> bytes:
    """A masked client text frame (RFC 6455), as a browser sends it."""
    mask = b"\x01\x02\x03\x04"
    size = len(payload)
    head = bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0xFE)) + size.to_bytes(2, "big")
    key = (mask * (size // 4 + 1))[:size]
    return head + mask + (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


class WSTransport(StringTransport):
    """A ``StringTransport`` with the ``protocol`` attribute a WebSocket upgrade replaces (as a TCP transport's)."""

    protocol: Any


class WSConn:
    """One client: an HTTP connection upgraded to WebSocket, its Engine.IO OPEN packet read."""

    def __init__(self, site: BoundedSite, port: int) -> None:
        addr = IPv4Address("TCP", "127.0.0.1", port)
        channel: Any = site.buildProtocol(addr)
        self.transport = WSTransport(peerAddress=addr, hostAddress=IPv4Address("TCP", "127.0.0.1", 80))
        self.transport.protocol = channel
        channel.makeConnection(self.transport)
        channel.dataReceived(UPGRADE_DEFLATE if DEFLATE else UPGRADE)
        head, _, rest = self.take().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        assert rest.startswith(b"\x81") and b"sid" in rest, rest  # the Engine.IO OPEN packet
        self.protocol: Any = self.transport.protocol

    def send(self, frame: bytes) -> None:
        self.protocol.dataReceived(frame)

    def take(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data

    def lose(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone()))


def connected(site: BoundedSite, clients: int) -> list[WSConn]:
    """``clients`` WebSocket clients, each in the main namespace (and in "room")."""
    conns = []
    for i in range(clients):
        conn = WSConn(site, 40000 + i)
        conn.send(client_frame(b"40"))
        assert conn.take()[2:].startswith(b'40{"sid"'), "no CONNECT answer"
        conns.append(conn)
    return conns


def websocket(messages: int, clients: int = 10) -> float:
    """``messages`` echoes with an ack over ``clients`` open WebSocket connections."""
    conns = connected(build(Clock()), clients)
    body = json.dumps(["echo", {"pad": "z" * 32}], separators=(",", ":"))
    frames = [client_frame(f"42{n}{body}".encode()) for n in range(messages // clients)]
    start = time.perf_counter()
    for n in range(messages // clients):
        frame, ack = frames[n], b"43%d[" % n
        for conn in conns:
            conn.send(frame)
            answer = conn.take()
            assert answer[2:].startswith(ack), answer
    return (time.perf_counter() - start) / (messages // clients * clients)


def websocket_emit(messages: int, clients: int = 10) -> float:
    """``messages`` events without an ack over ``clients`` open WebSocket connections, each answered by
    the server's ``socket.emit`` (which tells whether the connection is over its high-water mark)."""
    conns = connected(build(Clock()), clients)
    frame = client_frame(b"42" + json.dumps(["say", {"pad": "z" * 32}], separators=(",", ":")).encode())
    start = time.perf_counter()
    for _ in range(messages // clients):
        for conn in conns:
            conn.send(frame)
            answer = conn.take()
            assert answer[2:].startswith(b'42["said"'), answer
    return (time.perf_counter() - start) / (messages // clients * clients)


def validated(kind: str) -> Any:
    """The ``websocket`` scenario with ``--validation kind`` (for bench/icount.sh, which names a function)."""
    def run(messages: int, clients: int = 10) -> float:
        global VALIDATION
        VALIDATION = kind
        return websocket(messages, clients)

    return run


websocket_middleware = validated("middleware")
websocket_msgspec = validated("msgspec")
websocket_pydantic = validated("pydantic")


def connect(messages: int, clients: int = 0) -> float:
    """``messages`` clients one after the other: handshake, OPEN, CONNECT and its answer, then the client leaves."""
    site = build(Clock())
    manager = site.managers[0]
    connect_frame = client_frame(b"40")
    start = time.perf_counter()
    for i in range(messages):
        conn = WSConn(site, 10000 + i % 50000)
        conn.send(connect_frame)
        assert conn.take()[2:].startswith(b'40{"sid"'), "no CONNECT answer"
        conn.lose()
    assert not manager.sessions, "sessions left open"
    return (time.perf_counter() - start) / messages


def broadcast(messages: int, clients: int = 10, **server_options: Any) -> float:
    """``messages`` broadcasts of ~2.5 KB (as bench/cpu.sh's) to a room of ``clients`` WebSocket clients."""
    site, server = serve(Clock(), **server_options)
    conns = connected(site, clients)
    room = server.to("room")
    pad = "z" * 2500
    start = time.perf_counter()
    for n in range(messages):
        room.emit("b", {"n": n, "pad": pad})
        for conn in conns:
            assert conn.take(), "nothing delivered"
    return (time.perf_counter() - start) / messages


def broadcast_recovery(messages: int, clients: int = 10) -> float:
    """:func:`broadcast` with connection state recovery on."""
    return broadcast(messages, clients, connection_state_recovery=StateRecovery())


def broadcast_deflate(messages: int, clients: int = 10) -> float:
    """:func:`broadcast` with permessage-deflate negotiated by every client (the ~2.5 KB payload compressed)."""
    global DEFLATE
    DEFLATE = True
    try:
        return broadcast(messages, clients)
    finally:
        DEFLATE = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["polling", "websocket", "websocket_emit", "connect", "broadcast",
                                                 "broadcast_recovery", "broadcast_deflate"])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--validation", choices=["none", "middleware", "msgspec", "pydantic"], default="none",
                        help="check each event: with no-op event middleware, or a Validator (typed events)")
    args = parser.parse_args()
    global VALIDATION
    VALIDATION = args.validation
    run = {"polling": polling, "websocket": websocket, "websocket_emit": websocket_emit, "connect": connect,
           "broadcast": broadcast,
           "broadcast_recovery": broadcast_recovery, "broadcast_deflate": broadcast_deflate}[args.scenario]
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
        unit = {"connect": "client", "broadcast": "broadcast", "broadcast_recovery": "broadcast",
                "broadcast_deflate": "broadcast"}.get(
            args.scenario, "echo")
        print(f"{args.scenario}: {run(args.messages) * 1e6:.1f} µs per {unit}")


if __name__ == "__main__":
    main()
