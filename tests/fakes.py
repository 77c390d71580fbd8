"""In-memory stand-ins for tests: an Engine.IO transport that records, and a raw Socket.IO peer over it."""

from __future__ import annotations

from typing import Any

from txrealtime.engineio import Handshake, SessionManager
from txrealtime.engineio.packets import Packet as EIOPacket
from txrealtime.engineio.packets import PacketType as EIOType
from txrealtime.socketio.packets import Decoder, Packet, PacketType, encode

HANDSHAKE = Handshake(headers={}, query={}, address="127.0.0.1", secure=False, url="/")


class FakeTransport:
    """Records what the session writes; ``writable`` is set by the test."""

    def __init__(self, name: str = "polling", writable: bool = True) -> None:
        self.name = name
        self.writable = writable
        self.sent: list[EIOPacket] = []
        self.closed = False

    def send(self, packets: list[EIOPacket]) -> None:
        assert self.writable
        self.sent.extend(packets)

    def close(self) -> None:
        self.closed = True

    def types(self) -> list[EIOType]:
        return [p.type for p in self.sent]


class Peer:
    """One in-memory Engine.IO session speaking raw Socket.IO packets."""

    def __init__(self, manager: SessionManager, name: str = "websocket") -> None:
        self.transport = FakeTransport(name)
        self.session = manager.open_session(self.transport, HANDSHAKE)
        self.decoder = Decoder()
        self._seen = 1  # the Engine.IO OPEN packet

    def send(self, *messages: str | bytes) -> None:
        for message in messages:
            self.session.receive(EIOPacket(EIOType.MESSAGE, message), self.transport)

    def send_packet(self, packet: Packet) -> None:
        self.send(*encode(packet))

    def packets(self) -> list[Packet]:
        """Socket.IO packets received since the last call."""
        new, self._seen = self.transport.sent[self._seen :], len(self.transport.sent)
        out = []
        for p in new:
            if p.type is EIOType.MESSAGE:
                decoded = self.decoder.feed(p.data)
                if decoded is not None:
                    out.append(decoded)
        return out

    def connect(self, namespace: str = "/", auth: Any = None) -> str:
        self.send_packet(Packet(PacketType.CONNECT, namespace, auth))
        [reply] = self.packets()
        assert reply.type is PacketType.CONNECT and reply.namespace == namespace, reply
        return str(reply.data["sid"])

    @property
    def closed(self) -> bool:
        return self.session.closed
