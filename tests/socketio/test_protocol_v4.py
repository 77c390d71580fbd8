"""Socket.IO protocol v4 clients (on Engine.IO v3 sessions) over in-memory sessions and a fake clock:
the differences Node's socket.io makes for ``conn.protocol === 3``."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import Peer
from txrealtime.engineio import EngineIOOptions, SessionManager
from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.socketio import ConnectionRefused, Server, Socket

T = PacketType


class ProtocolV4Tests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        options = EngineIOOptions(ping_interval=25, ping_timeout=20, allow_eio3=True)
        self.manager = SessionManager(options, reactor=self.clock)
        self.server = Server(self.manager, connect_timeout=5)
        self.sockets: list[Socket] = []
        self.server.on("connection", self.sockets.append)
        self.server.of("/chat").on("connection", self.sockets.append)

    def peer(self) -> Peer:
        return Peer(self.manager, protocol=3)

    def test_joins_the_main_namespace_at_once(self) -> None:
        peer = self.peer()
        self.assertEqual(peer.packets(), [Packet(T.CONNECT, "/")])  # "40": no payload
        [socket] = self.sockets
        self.assertEqual(socket.id, peer.session.sid)
        self.assertEqual(socket.rooms, {peer.session.sid})
        self.assertEqual(socket.handshake.auth, {})
        self.clock.advance(10)  # past connect_timeout: the implicit connection counts
        self.assertFalse(peer.closed)

    def test_namespace_query_is_the_auth(self) -> None:
        peer = self.peer()
        peer.packets()
        peer.send("0/chat?token=abc&x=1&x=2&s=a+b,")
        self.assertEqual(peer.packets(), [Packet(T.CONNECT, "/chat")])  # "40/chat,"
        socket = self.sockets[-1]
        self.assertEqual(socket.id, "/chat#" + peer.session.sid)
        self.assertEqual(socket.handshake.auth, {"token": "abc", "x": ["1", "2"], "s": "a b"})
        peer.send('2/chat,1["ping"]')
        self.assertIn("/chat", self.server.namespaces)

    def test_events_and_acks_route_by_namespace_name(self) -> None:
        peer = self.peer()
        peer.send("0/chat?token=abc,")
        peer.packets()
        got: list[Any] = []

        def hello(*args: Any) -> str:
            got.append(args)
            return "hi back"

        self.sockets[-1].on("hello", hello)
        peer.send('2/chat,7["hello",1]')
        self.assertEqual(got, [(1,)])
        self.assertEqual(peer.packets(), [Packet(T.ACK, "/chat", ["hi back"], 7)])

    def test_middleware_errors_as_node_sends_them(self) -> None:
        chat = self.server.of("/chat")
        verdicts: list[ConnectionRefused] = [ConnectionRefused("no entry"), ConnectionRefused("bad", {"code": 7})]

        @chat.use
        def refuse(socket: Socket) -> None:
            raise verdicts.pop(0)

        peer = self.peer()
        peer.packets()
        peer.send("0/chat,")
        self.assertEqual(peer.packets(), [Packet(T.CONNECT_ERROR, "/chat", "no entry")])  # '44/chat,"no entry"'
        peer.send("0/chat,")
        self.assertEqual(peer.packets(), [Packet(T.CONNECT_ERROR, "/chat", {"code": 7})])
        peer.send("0/nowhere,")
        self.assertEqual(peer.packets(), [Packet(T.CONNECT_ERROR, "/nowhere", {"message": "Invalid namespace"})])
        self.assertFalse(peer.closed)

    def test_v4_and_v5_clients_side_by_side(self) -> None:
        old, new = self.peer(), Peer(self.manager)
        old.packets()
        sid = new.connect()
        self.assertNotEqual(sid, new.session.sid)  # v5 ids are not the Engine.IO sid
        self.server.emit("news", 1)
        self.assertEqual(old.packets(), [Packet(T.EVENT, "/", ["news", 1])])
        self.assertEqual(new.packets(), [Packet(T.EVENT, "/", ["news", 1])])
        self.assertIs(old.transport.sent[-1].data, new.transport.sent[-1].data)  # encoded once
