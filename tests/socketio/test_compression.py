"""The ``compress`` flag from the Socket.IO API down to the Engine.IO packets the transports get."""

from __future__ import annotations

import gzip
import json

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import NO_BOUNDED_INFLATE, Peer
from tests.peers import PollingPeer, raw_request
from tests.servers import node_peer
from tests.socketio.app import install
from txrealtime.engineio import EngineIOOptions, SessionManager
from txrealtime.engineio.packets import Packet as EIOPacket
from txrealtime.engineio.packets import PacketType as EIOType
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio import Server, Socket
from txrealtime.socketio.recovery import StateRecovery

BIG = "x" * 3000


class CompressFlagTests(SynchronousTestCase):
    recovery: StateRecovery | None = None

    def setUp(self) -> None:
        self.manager = SessionManager(EngineIOOptions(), reactor=Clock())
        self.server = Server(self.manager, connection_state_recovery=self.recovery)
        self.sockets: list[Socket] = []
        self.server.on("connection", self.sockets.append)
        self.peers = [Peer(self.manager), Peer(self.manager)]
        for peer in self.peers:
            peer.connect()
            peer.packets()

    def flags(self, peer: Peer) -> list[tuple[str | bytes, bool]]:
        """The messages a peer got since the last call, each with its compress flag."""
        sent: list[EIOPacket] = peer.transport.sent[peer._seen :]
        peer._seen = len(peer.transport.sent)
        return [(p.data, p.compress) for p in sent if p.type is EIOType.MESSAGE]

    def test_socket_emit(self) -> None:
        socket, peer = self.sockets[0], self.peers[0]
        socket.emit("a", 1)
        socket.compress(False).emit("b", 2)
        socket.compress(False).volatile.emit("c", 3)
        socket.timeout(5).compress(False).emit("d", 4, ack=lambda *args: None)
        socket.compress(False).compress(True).emit("e", 5)
        self.assertEqual(
            self.flags(peer),
            [('2["a",1]', True), ('2["b",2]', False), ('2["c",3]', False), ('20["d",4]', False), ('2["e",5]', True)],
        )

    def test_binary_attachments_follow_their_packet(self) -> None:
        self.sockets[0].compress(False).emit("bin", b"\x01\x02")
        self.assertEqual(
            self.flags(self.peers[0]), [('51-["bin",{"_placeholder":true,"num":0}]', False), (b"\x01\x02", False)]
        )

    def test_broadcasts(self) -> None:
        self.server.compress(False).emit("all", 1)
        self.server.emit("all", 2)
        self.server.of("/").compress(False).to(self.sockets[1].id).emit("one", 3)
        self.sockets[0].broadcast.compress(False).emit("others", 4)
        self.server.timeout(5).compress(False).emit("acked", 5, ack=lambda *args: None)
        self.assertEqual(
            self.flags(self.peers[0]), [('2["all",1]', False), ('2["all",2]', True), ('20["acked",5]', False)]
        )
        self.assertEqual(
            self.flags(self.peers[1]),
            [
                ('2["all",1]', False),
                ('2["all",2]', True),
                ('2["one",3]', False),
                ('2["others",4]', False),
                ('20["acked",5]', False),
            ],
        )


class CompressFlagWithRecoveryTests(CompressFlagTests):
    """With connection state recovery, a socket's emit goes through the adapter (to be kept): the flag too."""

    recovery = StateRecovery()

    def test_socket_emit(self) -> None:
        socket, peer = self.sockets[0], self.peers[0]
        socket.compress(False).emit("b", 2)
        socket.emit("a", 1)
        [(first, plain), (second, compressed)] = self.flags(peer)
        self.assertEqual((json.loads(first[1:])[:2], plain), (["b", 2], False))
        self.assertEqual((json.loads(second[1:])[:2], compressed), (["a", 1], True))

    def test_binary_attachments_follow_their_packet(self) -> None:
        self.sockets[0].compress(False).emit("bin", b"\x01\x02")
        [(head, head_flag), (attachment, attachment_flag)] = self.flags(self.peers[0])
        assert isinstance(head, str) and head.startswith('51-["bin",{"_placeholder":true,"num":0},')  # then the offset
        self.assertEqual((head_flag, attachment, attachment_flag), (False, b"\x01\x02", False))

    def test_broadcasts(self) -> None:
        self.server.compress(False).emit("all", 1)
        self.server.emit("all", 2)
        for peer in self.peers:
            self.assertEqual([compress for _, compress in self.flags(peer)], [False, True])


def setup(server: Server) -> None:
    @server.on("connection")
    def connected(socket: Socket) -> None:
        socket.on("big", lambda: socket.emit("big", BIG))
        socket.on("big plain", lambda: socket.compress(False).emit("big", BIG))
        socket.on("broadcast plain", lambda: server.compress(False).emit("big", BIG))


@pytest_twisted.ensureDeferred
async def test_compress_flag_decides_over_http(realtime: Realtime) -> None:
    """Over real polling: a big emit is gzipped, unless sent with ``compress(False)``, as in Node."""
    running = await realtime.start_server(setup)
    peer = PollingPeer(running.url)
    await peer.open()
    expected = b'42["big","' + BIG.encode() + b'"]'
    for event, encoding in [("big", b"gzip"), ("big plain", None), ("broadcast plain", None), ("big", b"gzip")]:
        assert await peer.post(f'42["{event}"]') == "ok"
        _, headers, body = await raw_request("GET", f"{peer.base}&sid={peer.sid}", {"Accept-Encoding": "gzip"})
        assert headers.getRawHeaders(b"content-encoding", [None])[0] == encoding, event
        assert (gzip.decompress(body) if encoding else body) == expected


@pytest.mark.skipif(NO_BOUNDED_INFLATE is not None, reason=str(NO_BOUNDED_INFLATE))
@pytest.mark.parametrize("mode", ["websocket", "upgrade"])
@pytest_twisted.ensureDeferred
async def test_node_client_with_per_message_deflate(realtime: Realtime, mode: str) -> None:
    """Node's socket.io-client (permessage-deflate on by default) against ``--per-message-deflate``:
    messages from 1024 bytes on are compressed both ways, unless sent with ``compress(false)``."""
    running = await realtime.start_server(install, options=EngineIOOptions(per_message_deflate=True))
    report = await node_peer("compress_client.js", running.url, mode)
    assert "error" not in report, report["error"]
    assert (report["transport"], report["extensions"]) == ("websocket", "permessage-deflate")
    steps = {name: (value["ok"], value["inflated"], value["deflated"]) for name, value in report.items()
             if isinstance(value, dict)}
    assert steps == {
        "bigText": (True, 1, 1),
        "smallText": (True, 0, 0),
        "bigBinary": (True, 1, 1),  # the attachment; its placeholder packet is small
        "serverCompressFalse": (True, 0, 1),
        "clientCompressFalse": (True, 1, 0),
        "broadcast": (True, 1, 1),
    }


@pytest_twisted.ensureDeferred
async def test_node_client_without_per_message_deflate(realtime: Realtime) -> None:
    """Off by default, as in Node: the client's offer is declined and nothing is compressed."""
    running = await realtime.start_server(install)
    report = await node_peer("compress_client.js", running.url, "websocket")
    assert "error" not in report, report["error"]
    assert report["extensions"] == ""
    assert all(value["ok"] and value["inflated"] == value["deflated"] == 0
               for value in report.values() if isinstance(value, dict))
