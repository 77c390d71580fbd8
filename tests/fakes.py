"""In-memory stand-ins for tests: an Engine.IO transport that records, a raw Socket.IO peer over it, and an
Engine.IO endpoint behind a real ``twisted.web`` Site on in-memory connections and a ``task.Clock``."""

from __future__ import annotations

import json
from typing import Any, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import IResource, Resource

from tests.memhttp import MemoryHTTP, Response
from txrealtime._autobahn import bounded_inflate
from txrealtime.engineio import (
    CloseReason,
    EngineIOOptions,
    EngineIOResource,
    Handshake,
    SessionClosed,
    SessionEvent,
    SessionManager,
)
from txrealtime.engineio.packets import Packet as EIOPacket
from txrealtime.engineio.packets import PacketType as EIOType
from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.protocol.parser import JSON, DecoderLimits, Parser

NO_BOUNDED_INFLATE: str | None = (
    None
    if bounded_inflate()
    else "this Autobahn does not bound inflation (26.7 and later do): per_message_deflate is refused"
)
"""Why permessage-deflate tests skip on this Autobahn (the lowest-versions pass), or ``None`` where they run."""

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

    def __init__(
        self, manager: SessionManager, name: str = "websocket", parser: Parser = JSON, protocol: int = 4,
        handshake: Handshake = HANDSHAKE,
    ) -> None:
        self.transport = FakeTransport(name)
        self.session = manager.open_session(self.transport, handshake, protocol=protocol)
        self.encoder = parser.encoder()
        self.decoder = parser.decoder(DecoderLimits())
        self._seen = 1  # the Engine.IO OPEN packet

    def send(self, *messages: str | bytes) -> None:
        for message in messages:
            self.session.receive(EIOPacket(EIOType.MESSAGE, message), self.transport)

    def send_packet(self, packet: Packet) -> None:
        self.send(*self.encoder.encode(packet))

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


BASE = "/engine.io/?EIO=4&transport=polling"


class PollingTestCase(SynchronousTestCase):
    options = EngineIOOptions(max_payload=1000)

    def setUp(self) -> None:
        self.clock = Clock()
        self.manager = SessionManager(self.options, reactor=self.clock)
        self.events: list[SessionEvent] = []
        self.manager.subscribe(self.events.append)
        root = Resource()
        root.putChild(b"engine.io", cast(IResource, EngineIOResource(self.manager)))
        self.http = MemoryHTTP(cast(IResource, root))

    def handshake(self) -> str:
        response = self.http.request("GET", BASE).result()
        self.assertEqual(response.status, 200)
        self.assertTrue(response.body.startswith(b"0{"))
        sid: str = json.loads(response.body[1:])["sid"]
        return sid

    def post(self, sid: str, body: bytes, headers: dict[str, str] | None = None) -> Response:
        return self.http.request("POST", f"{BASE}&sid={sid}", body, headers).result()

    def assertError(self, response: Response, code: int, message: str, status: int = 400) -> None:
        self.assertEqual(response.status, status)
        self.assertEqual(response.headers["content-type"], "application/json")
        self.assertEqual(json.loads(response.body), {"code": code, "message": message})

    def closed(self, sid: str) -> CloseReason | None:
        for event in self.events:
            if isinstance(event, SessionClosed) and event.sid == sid:
                return event.reason
        return None


class MemoryBus:
    """Publish/subscribe between in-memory links on one ``task.Clock``: what Redis is to ``RedisLink``.

    A message published is delivered on the next turn of the clock (:meth:`flush` runs them all), in order.
    """

    def __init__(self, clock: Clock, key: str = "socket.io") -> None:
        self.clock = clock
        self.key = key
        self.links: list[MemoryLink] = []
        self.published: list[tuple[str, bytes]] = []
        """Every message published, in order."""
        self._queue: list[tuple[str, bytes]] = []

    def link(self, uid: str) -> MemoryLink:
        """A new link on the bus, named ``uid``."""
        link = MemoryLink(self, uid)
        self.links.append(link)
        return link

    def publish(self, channel: str, message: bytes) -> None:
        self.published.append((channel, message))
        self._queue.append((channel, message))
        self.clock.callLater(0, self._deliver)

    def _deliver(self) -> None:
        if not self._queue:
            return
        channel, message = self._queue.pop(0)
        for link in list(self.links):
            if link.connected:
                for handler in list(link.channels.get(channel, [])):
                    handler(channel, message)

    def flush(self) -> None:
        """Deliver every message, and those their delivery publishes."""
        while self._queue:
            self.clock.advance(0)


class MemoryLink:
    """One process's link on a :class:`MemoryBus` (a ``txrealtime.adapters.pubsub.PubSubLink``, channels only)."""

    requests_timeout = 5.0
    requests_timed_out = 0

    def __init__(self, bus: MemoryBus, uid: str) -> None:
        self.bus = bus
        self.uid = uid
        self.key = bus.key
        self.reactor = bus.clock
        self.channels: dict[str, list[Any]] = {}
        self.up = True
        """Whether the link reaches the bus (``False``: an outage; the node stays alive to the others)."""

    def start(self) -> None:
        pass

    @property
    def connected(self) -> bool:
        return self.up and self in self.bus.links

    def nodes(self) -> list[str]:
        return sorted(link.uid for link in self.bus.links)

    def subscribe(self, channel: str, handler: Any) -> None:
        self.channels.setdefault(channel, []).append(handler)

    def unsubscribe(self, channel: str, handler: Any) -> None:
        self.channels.get(channel, []).remove(handler)

    def psubscribe(self, pattern: str, handler: Any) -> None:
        raise NotImplementedError

    def punsubscribe(self, pattern: str, handler: Any) -> None:
        raise NotImplementedError

    def publish(self, channel: str, message: bytes) -> bool:
        if not self.connected:
            return False
        self.bus.publish(channel, message)
        return True

    def numsub(self, channel: str) -> Deferred[int]:
        return succeed(sum(1 for link in self.bus.links if link.channels.get(channel)))

    def die(self) -> None:
        """The process is gone: off the bus at once, no goodbye."""
        self.bus.links.remove(self)
