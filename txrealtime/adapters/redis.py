"""Scale-out through Redis pub/sub, wire-compatible with Node's ``@socket.io/redis-adapter`` (v8).

One :class:`RedisLink` per process holds two Redis connections (publish and
subscribe, through ``txredisapi``) and reconnects by itself. Each namespace
gets a :class:`RedisAdapter` using the channels and message layout of the
Node adapter, so txrealtime nodes, Node ``socket.io`` nodes and
``@socket.io/redis-emitter`` senders sharing one Redis reach each other's
clients:

- broadcasts: MessagePack ``[uid, packet, opts]`` on ``{key}#{nsp}#`` (or
  ``{key}#{nsp}#{room}#`` for a single room);
- requests (fetch_sockets, sockets_join/leave, disconnect_sockets,
  server_side_emit, broadcast acks): ``{key}-request#{nsp}#``, answered on
  ``{key}-response#{nsp}#``;
- the number of servers: ``PUBSUB NUMSUB`` of the request channel.

txrealtime nodes also exchange heartbeats on ``{key}-nodes#`` so each knows
which of its peers are alive (:meth:`RedisLink.nodes`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import msgpack
import txredisapi
from twisted.internet.defer import Deferred, DeferredList, fail, gatherResults, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._reactor import default_reactor, now
from ..socketio.adapter import Adapter, BroadcastFlags, BroadcastOptions
from ..socketio.packets import Packet, PacketType

__all__ = [
    "RedisAdapter",
    "RedisDown",
    "RedisLink",
    "RedisUnavailable",
    "RedisUp",
    "RemoteSocket",
    "redis_adapter",
]

log = Logger()

# Request types of @socket.io/redis-adapter.
SOCKETS, ALL_ROOMS, REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT, REMOTE_FETCH = range(6)
SERVER_SIDE_EMIT, BROADCAST, BROADCAST_CLIENT_COUNT, BROADCAST_ACK = range(6, 10)


class RedisUnavailable(ConnectionError):
    """Redis cannot be reached right now; only this node was acted upon."""


@dataclass(frozen=True, slots=True)
class RedisUp:
    """The link to Redis is (again) connected and subscribed."""


@dataclass(frozen=True, slots=True)
class RedisDown:
    """The link to Redis was lost; the link reconnects by itself."""

    reason: str


def _uid() -> str:
    return secrets.token_hex(3)


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


# Strings may hold lone surrogates (JSON lets clients send them): they cross between Python
# nodes as they are, and Node's decoder reads them as U+FFFD, so packing never fails.


def _unpack(message: bytes) -> Any:
    # notepack.io writes JavaScript's `undefined` as an extension of type 0.
    return msgpack.unpackb(
        message, raw=False, ext_hook=lambda code, data: None, strict_map_key=False, unicode_errors="surrogatepass"
    )


def _pack(value: Any) -> bytes:
    return cast(bytes, msgpack.packb(value, use_bin_type=True, unicode_errors="surrogatepass"))


def _decode_request(message: bytes) -> Any:
    return json.loads(message) if message[:1] == b"{" else _unpack(message)


@dataclass(frozen=True)
class RedisURL:
    """``redis://[user:password@]host[:port][/db]`` (``rediss://`` for TLS)."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int | None = None
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> RedisURL:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"not a redis:// URL: {url!r}")
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError(f"the database in {url!r} must be a number")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=int(db) if db else None,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "rediss",
        )


class _Subscriber(txredisapi.SubscriberProtocol):  # type: ignore[misc]
    link: RedisLink

    def messageReceived(self, pattern: bytes | None, channel: bytes, message: bytes) -> None:
        self.link._message(pattern, channel, message)

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        self.link._lost(self, reason.getErrorMessage())


class _Publisher(txredisapi.RedisProtocol):  # type: ignore[misc]
    link: RedisLink

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        self.link._lost(self, reason.getErrorMessage())


class _Factory(txredisapi.RedisFactory):  # type: ignore[misc]
    """A one-connection txredisapi factory that tells the link when its connection is ready."""

    def __init__(self, link: RedisLink, protocol: type, url: RedisURL) -> None:
        super().__init__(
            None, url.db, 1, isLazy=True, charset=None, password=url.password, convertNumbers=False,
            username=url.username,
        )
        self.protocol = protocol
        self.link = link
        self.maxDelay = link.reconnect_max_delay
        self.initialDelay = min(1.0, link.reconnect_max_delay)

    def buildProtocol(self, addr: object) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.link = self.link
        protocol.whenConnected().addCallback(self.link._ready)
        return protocol


class RedisLink:
    """A process's connections to one Redis: publish, subscribe, reconnect, heartbeats.

    Share one link between all namespaces (``Server(adapter=redis_adapter(link))``).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379",
        *,
        key: str = "socket.io",
        requests_timeout: float = 5.0,
        heartbeat_interval: float = 5.0,
        heartbeat_timeout: float = 15.0,
        reconnect_max_delay: float = 5.0,
        reactor: Any = None,
    ) -> None:
        reactor = default_reactor(reactor)
        self.url = RedisURL.parse(url)
        self.key = key
        self.requests_timeout = requests_timeout
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.reconnect_max_delay = reconnect_max_delay
        self.reactor = reactor
        self.uid = _uid()
        self.undelivered = 0
        """Messages not published because Redis was unreachable (each was delivered locally only)."""
        self._channels: dict[str, list[Callable[[str, bytes], object]]] = {}
        self._patterns: dict[str, list[Callable[[str, bytes], object]]] = {}
        self._pub: Any = None
        self._sub: Any = None
        self._factories: list[_Factory] = []
        self._subscribed = False
        self._started = False
        self._heartbeat: Any = None
        self._nodes: dict[str, float] = {}
        self._listeners: list[Callable[[RedisUp | RedisDown], object]] = []
        self.nodes_channel = f"{key}-nodes#"

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Connect (and keep reconnecting) to Redis."""
        if self._started:
            return
        self._started = True
        self.subscribe(self.nodes_channel, self._on_node_message)
        for protocol in (_Publisher, _Subscriber):
            factory = _Factory(self, protocol, self.url)
            self._factories.append(factory)
            factory.startConnecting(self._endpoint())
        self._beat()

    def stop(self) -> Deferred[Any]:
        """Say goodbye to the other nodes and close both connections."""
        if not self._started:
            return succeed(None)
        self._started = False
        if self._heartbeat is not None and self._heartbeat.active():
            self._heartbeat.cancel()
        self._heartbeat = None
        if self.connected:
            self._send(self.nodes_channel, json.dumps({"uid": self.uid, "type": "leave"}).encode())
        factories, self._factories = self._factories, []
        return DeferredList([f.disconnect() for f in factories], consumeErrors=True)

    def _endpoint(self) -> Any:
        endpoint = HostnameEndpoint(self.reactor, self.url.host, self.url.port, timeout=10)
        if self.url.tls:
            return wrapClientTLS(optionsForClientTLS(self.url.host), cast(Any, endpoint))
        return endpoint

    @property
    def connected(self) -> bool:
        """Whether both connections are up and subscriptions are in place."""
        return self._pub is not None and self._sub is not None and self._subscribed

    def subscribe_events(self, listener: Callable[[RedisUp | RedisDown], object]) -> None:
        """Call ``listener`` with :class:`RedisUp` / :class:`RedisDown` as the link comes and goes."""
        self._listeners.append(listener)

    def _fire(self, event: RedisUp | RedisDown) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.failure("Redis link listener failed")

    def _ready(self, protocol: Any) -> None:
        if isinstance(protocol, _Subscriber):
            self._sub = protocol
            self._subscribed = False
            subscribing = []
            if self._channels:
                subscribing.append(protocol.subscribe(list(self._channels)))
            if self._patterns:
                subscribing.append(protocol.psubscribe(list(self._patterns)))
            gatherResults(subscribing, consumeErrors=True).addCallbacks(
                lambda _: self._subscriptions_ready(protocol),
                lambda f: log.failure("Redis subscription failed", f),
            )
        else:
            self._pub = protocol
            self._check_up()

    def _subscriptions_ready(self, protocol: Any) -> None:
        if self._sub is protocol:
            self._subscribed = True
            self._check_up()

    def _check_up(self) -> None:
        if self.connected:
            log.info(
                "Redis link {uid} connected to {host}:{port}", uid=self.uid, host=self.url.host, port=self.url.port
            )
            self._fire(RedisUp())
            self._send_heartbeat()

    def _lost(self, protocol: Any, reason: str) -> None:
        was_up = self.connected
        if protocol is self._sub:
            self._sub = None
            self._subscribed = False
        elif protocol is self._pub:
            self._pub = None
        else:
            return
        if was_up and self._started:
            log.error(
                "Redis link {uid} lost ({reason}): broadcasts reach this node only until it reconnects",
                uid=self.uid,
                reason=reason,
            )
            self._fire(RedisDown(reason))

    # -- pub/sub -------------------------------------------------------------------

    def subscribe(self, channel: str, handler: Callable[[str, bytes], object]) -> None:
        first = channel not in self._channels
        self._channels.setdefault(channel, []).append(handler)
        if first and self._sub is not None:
            self._sub.subscribe(channel)

    def psubscribe(self, pattern: str, handler: Callable[[str, bytes], object]) -> None:
        first = pattern not in self._patterns
        self._patterns.setdefault(pattern, []).append(handler)
        if first and self._sub is not None:
            self._sub.psubscribe(pattern)

    def unsubscribe(self, channel: str, handler: Callable[[str, bytes], object]) -> None:
        handlers = self._channels.get(channel, [])
        if handler in handlers:
            handlers.remove(handler)
        if not handlers and channel in self._channels:
            del self._channels[channel]
            if self._sub is not None:
                self._sub.unsubscribe(channel)

    def punsubscribe(self, pattern: str, handler: Callable[[str, bytes], object]) -> None:
        handlers = self._patterns.get(pattern, [])
        if handler in handlers:
            handlers.remove(handler)
        if not handlers and pattern in self._patterns:
            del self._patterns[pattern]
            if self._sub is not None:
                self._sub.punsubscribe(pattern)

    def publish(self, channel: str, message: bytes) -> bool:
        """Publish if Redis is reachable; ``False`` (and counted in :attr:`undelivered`) if not."""
        if not self.connected:
            self.undelivered += 1
            log.warn("Redis unavailable: message for {channel} not sent to other nodes", channel=channel)
            return False
        self._send(channel, message)
        return True

    def _send(self, channel: str, message: bytes) -> None:
        def failed(failure: Failure) -> None:
            self.undelivered += 1
            log.error(
                "Redis publish to {channel} failed: {error}", channel=channel, error=failure.getErrorMessage()
            )

        self._pub.publish(channel, message).addErrback(failed)

    def numsub(self, channel: str) -> Deferred[int]:
        """How many connections subscribe to ``channel`` (``PUBSUB NUMSUB``)."""
        if not self.connected:
            return fail(RedisUnavailable("Redis is unreachable"))
        d = self._pub.execute_command("PUBSUB", "NUMSUB", channel)
        return cast(Deferred[int], d.addCallback(lambda reply: int(reply[1])))

    def _message(self, pattern: bytes | None, channel: bytes, message: bytes) -> None:
        name = channel.decode("utf-8", "replace")
        if pattern is not None:
            handlers = self._patterns.get(pattern.decode("utf-8", "replace"), [])
        else:
            handlers = self._channels.get(name, [])
        for handler in list(handlers):
            try:
                handler(name, message)
            except Exception:
                log.failure("Handling a Redis message on {channel} failed", channel=name)

    # -- heartbeats --------------------------------------------------------------------

    def nodes(self) -> list[str]:
        """Uids of the txrealtime nodes heard from within ``heartbeat_timeout`` (this one included)."""
        now = self._now()
        for uid, seen in list(self._nodes.items()):
            if now - seen > self.heartbeat_timeout:
                del self._nodes[uid]
                log.info("Redis link: node {uid} stopped sending heartbeats and is forgotten", uid=uid)
        return sorted({self.uid, *self._nodes})

    def _now(self) -> float:
        return now(self.reactor)

    def _beat(self) -> None:
        self._heartbeat = self.reactor.callLater(self.heartbeat_interval, self._beat)
        self._send_heartbeat()
        self.nodes()

    def _send_heartbeat(self) -> None:
        if self.connected:
            self._send(self.nodes_channel, json.dumps({"uid": self.uid, "type": "heartbeat"}).encode())

    def _on_node_message(self, channel: str, message: bytes) -> None:
        try:
            body = json.loads(message)
            uid, kind = str(body["uid"]), body["type"]
        except (ValueError, KeyError, TypeError):
            return
        if uid == self.uid:
            return
        if kind == "leave":
            if self._nodes.pop(uid, None) is not None:
                log.info("Redis link: node {uid} left", uid=uid)
        else:
            if uid not in self._nodes:
                log.info("Redis link: node {uid} joined", uid=uid)
                self._send_heartbeat()  # let the newcomer know about us without waiting
            self._nodes[uid] = self._now()


@dataclass
class RemoteSocket:
    """A socket found by ``fetch_sockets`` on another node: its details and the same operations."""

    adapter: RedisAdapter
    id: str
    handshake: dict[str, Any]
    rooms: set[str]
    data: Any = field(default_factory=dict)

    def _only_me(self) -> BroadcastOptions:
        return BroadcastOptions(rooms=frozenset({self.id}))

    def emit(self, event: str, *args: Any) -> bool:
        from ..socketio.operator import BroadcastOperator

        return BroadcastOperator(self.adapter, frozenset({self.id})).emit(event, *args)

    def join(self, rooms: str | Iterable[str]) -> None:
        self.adapter.add_sockets(self._only_me(), [rooms] if isinstance(rooms, str) else rooms)

    def leave(self, room: str) -> None:
        self.adapter.del_sockets(self._only_me(), [room])

    def disconnect(self, close: bool = False) -> None:
        self.adapter.disconnect_sockets(self._only_me(), close)


@dataclass
class _Request:
    type: int
    expected: int
    result: Deferred[Any]
    timer: Any
    replies: int = 0
    items: list[Any] = field(default_factory=list)


class RedisAdapter(Adapter):
    """Rooms of one namespace, with broadcasts and requests shared through Redis."""

    def __init__(self, namespace: Any, link: RedisLink) -> None:
        super().__init__(namespace)
        self.link = link
        self.uid = _uid()
        name = namespace.name
        self.channel = f"{link.key}#{name}#"
        self.request_channel = f"{link.key}-request#{name}#"
        self.response_channel = f"{link.key}-response#{name}#"
        self.specific_response_channel = f"{self.response_channel}{self.uid}#"
        self._pattern = _escape_glob(self.channel) + "*"
        self._requests: dict[str, _Request] = {}
        self._ack_requests: dict[str, tuple[Callable[[int], object], Callable[[list[Any]], object]]] = {}
        link.psubscribe(self._pattern, self._on_broadcast)
        link.subscribe(self.request_channel, self._on_request)
        link.subscribe(self.response_channel, self._on_response)
        link.subscribe(self.specific_response_channel, self._on_response)

    def close(self) -> None:
        self.link.punsubscribe(self._pattern, self._on_broadcast)
        self.link.unsubscribe(self.request_channel, self._on_request)
        self.link.unsubscribe(self.response_channel, self._on_response)
        self.link.unsubscribe(self.specific_response_channel, self._on_response)
        for request in list(self._requests.values()):
            if request.timer.active():
                request.timer.cancel()
        self._requests.clear()

    # -- wire helpers --------------------------------------------------------------------

    def _packet_body(self, packet: Packet) -> dict[str, Any]:
        body: dict[str, Any] = {"type": int(PacketType.EVENT), "data": packet.data, "nsp": self.namespace.name}
        if packet.id is not None:
            body["id"] = packet.id
        return body

    @staticmethod
    def _opts_body(opts: BroadcastOptions, flags: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {"rooms": sorted(opts.rooms), "except": sorted(opts.except_)}
        if flags:
            raw: dict[str, Any] = {}
            if opts.flags.volatile:
                raw["volatile"] = True
            if opts.flags.timeout is not None:
                raw["timeout"] = int(opts.flags.timeout * 1000)
            body["flags"] = raw
        return body

    @staticmethod
    def _opts_from(body: Any) -> BroadcastOptions:
        body = body if isinstance(body, dict) else {}
        flags = body.get("flags") or {}
        return BroadcastOptions(
            rooms=frozenset(str(r) for r in body.get("rooms") or ()),
            except_=frozenset(str(r) for r in body.get("except") or ()),
            flags=BroadcastFlags(volatile=bool(flags.get("volatile")) if isinstance(flags, dict) else False),
        )

    def _publish_json(self, channel: str, body: dict[str, Any]) -> bool:
        return self.link.publish(channel, json.dumps(body, separators=(",", ":")).encode())

    # -- broadcasting ------------------------------------------------------------------------

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> bool:
        super().broadcast(packet, opts)
        if opts.flags.local:
            return True
        channel = self.channel
        if len(opts.rooms) == 1:
            channel += next(iter(opts.rooms)) + "#"
        return self.link.publish(channel, _pack([self.uid, self._packet_body(packet), self._opts_body(opts)]))

    def _on_broadcast(self, channel: str, message: bytes) -> None:
        room = channel[len(self.channel) : -1]
        if room and room not in self.rooms:
            return
        try:
            uid, body, raw_opts = _unpack(message)
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            log.warn("Ignoring a malformed broadcast on {channel}: {error}", channel=channel, error=str(e))
            return
        if uid == self.uid or not isinstance(body, dict):
            return
        if body.get("nsp", "/") != self.namespace.name:
            return
        data = body.get("data")
        if body.get("type") not in (PacketType.EVENT, PacketType.BINARY_EVENT):
            return
        if not isinstance(data, list) or not data:
            return
        Adapter.broadcast(self, Packet(PacketType.EVENT, self.namespace.name, data), self._opts_from(raw_opts))

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], object],
        ack: Callable[[list[Any]], object],
    ) -> None:
        if not opts.flags.local:
            request_id = _uid()
            request = {
                "uid": self.uid,
                "requestId": request_id,
                "type": BROADCAST,
                "packet": self._packet_body(packet),
                "opts": self._opts_body(opts),
            }
            if self.link.publish(self.request_channel, _pack(request)):
                self._ack_requests[request_id] = (client_count, ack)
                self.link.reactor.callLater(
                    opts.flags.timeout or self.link.requests_timeout, self._ack_requests.pop, request_id, None
                )
        super().broadcast_with_ack(packet, opts, client_count, ack)

    def server_count(self) -> Deferred[int]:
        def unreachable(failure: Failure) -> int:
            log.warn("Counting servers failed ({error}): counting this one only", error=failure.getErrorMessage())
            return 1

        return self.link.numsub(self.request_channel).addErrback(unreachable)

    # -- requests to every node ------------------------------------------------------------------

    def _ask(self, kind: int, body: dict[str, Any], local: list[Any], counts_self: bool = True) -> Deferred[list[Any]]:
        """Publish a request and gather one reply from every other server.

        ``local`` is this server's own share of the answer (``counts_self``) or
        nothing (a server-side emit is not answered by its sender).
        """

        def publish(servers: int) -> Deferred[list[Any]]:
            others = servers - 1
            if others <= 0:
                return succeed(local)
            request_id = _uid()
            result: Deferred[list[Any]] = Deferred()

            def timed_out() -> None:
                request = self._requests.pop(request_id, None)
                if request is not None and not result.called:
                    got = request.replies
                    result.errback(TimeoutError(f"only {got} of {others} other servers answered in time"))

            timer = self.link.reactor.callLater(self.link.requests_timeout, timed_out)
            self._requests[request_id] = _Request(kind, others, result, timer, 0, list(local))
            self._publish_json(self.request_channel, {"uid": self.uid, "requestId": request_id, "type": kind, **body})
            return result

        return self.link.numsub(self.request_channel).addCallback(publish)

    def fetch_sockets(self, opts: BroadcastOptions) -> Deferred[list[Any]]:
        local: list[Any] = list(self._matching(opts))
        if opts.flags.local:
            return succeed(local)
        return self._ask(REMOTE_FETCH, {"opts": self._opts_body(opts, flags=False)}, local)

    def all_rooms(self) -> Deferred[set[str]]:
        """Every room of this namespace, across all nodes."""
        d = self._ask(ALL_ROOMS, {}, list(self.rooms))
        return d.addCallback(set)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().add_sockets(opts, rooms)
        if not opts.flags.local:
            body = {"uid": self.uid, "type": REMOTE_JOIN, "opts": self._opts_body(opts, False), "rooms": rooms}
            self._publish_json(self.request_channel, body)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        super().del_sockets(opts, rooms)
        if not opts.flags.local:
            body = {"uid": self.uid, "type": REMOTE_LEAVE, "opts": self._opts_body(opts, False), "rooms": rooms}
            self._publish_json(self.request_channel, body)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        super().disconnect_sockets(opts, close)
        if not opts.flags.local:
            body = {"uid": self.uid, "type": REMOTE_DISCONNECT, "opts": self._opts_body(opts, False), "close": close}
            self._publish_json(self.request_channel, body)

    def server_side_emit(self, data: list[Any]) -> bool:
        return self._publish_json(self.request_channel, {"uid": self.uid, "type": SERVER_SIDE_EMIT, "data": data})

    def server_side_emit_with_ack(self, data: list[Any]) -> Deferred[list[Any]]:
        return self._ask(SERVER_SIDE_EMIT, {"data": data}, [], counts_self=False)

    # -- answering other nodes -------------------------------------------------------------------

    def _respond(self, body: dict[str, Any], raw: bytes | None = None) -> None:
        if raw is not None:
            self.link.publish(self.response_channel, raw)
        else:
            self._publish_json(self.response_channel, body)

    def _on_request(self, channel: str, message: bytes) -> None:
        try:
            request = _decode_request(message)
            kind = request["type"]
        except (ValueError, TypeError, KeyError, msgpack.UnpackException):
            log.warn("Ignoring a malformed request on {channel}", channel=channel)
            return
        if not isinstance(request, dict):
            return
        request_id = request.get("requestId")
        mine = request.get("uid") == self.uid or request_id in self._requests or request_id in self._ack_requests
        if mine:
            return
        opts = self._opts_from(request.get("opts"))
        if kind == SOCKETS:
            sockets = Adapter.sockets(self, [str(r) for r in request.get("rooms") or ()])
            self._respond({"requestId": request_id, "sockets": sorted(sockets)})
        elif kind == ALL_ROOMS:
            self._respond({"requestId": request_id, "rooms": sorted(self.rooms)})
        elif kind in (REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT):
            self._remote_membership(kind, request, opts)
        elif kind == REMOTE_FETCH:
            found = [self._describe(s) for s in self._matching(opts)]
            self._respond({"requestId": request_id, "sockets": found})
        elif kind == SERVER_SIDE_EMIT:
            data = request.get("data")
            if not isinstance(data, list):
                return
            if request_id is None:
                self.namespace._on_server_side_emit(data)
            else:
                answered: list[bool] = []

                def ack(value: Any) -> None:
                    if not answered:
                        answered.append(True)
                        self._respond({"type": SERVER_SIDE_EMIT, "requestId": request_id, "data": value})

                self.namespace._on_server_side_emit(data, ack)
        elif kind == BROADCAST:
            body = request.get("packet")
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                return
            packet = Packet(PacketType.EVENT, self.namespace.name, body["data"])

            def count(n: int) -> None:
                self._respond({"type": BROADCAST_CLIENT_COUNT, "requestId": request_id, "clientCount": n})

            def answer(args: list[Any]) -> None:
                value = args[0] if args else None
                self._respond({}, _pack({"type": BROADCAST_ACK, "requestId": request_id, "packet": value}))

            Adapter.broadcast_with_ack(self, packet, opts, count, answer)

    def _remote_membership(self, kind: int, request: dict[str, Any], opts: BroadcastOptions) -> None:
        if request.get("opts") is not None:
            if kind == REMOTE_JOIN:
                Adapter.add_sockets(self, opts, [str(r) for r in request.get("rooms") or ()])
            elif kind == REMOTE_LEAVE:
                Adapter.del_sockets(self, opts, [str(r) for r in request.get("rooms") or ()])
            else:
                Adapter.disconnect_sockets(self, opts, bool(request.get("close")))
            return
        # The older single-socket form: {"sid", "room"}.
        socket = self.namespace.sockets.get(str(request.get("sid")))
        if socket is None:
            return
        if kind == REMOTE_JOIN:
            socket.join(str(request.get("room")))
        elif kind == REMOTE_LEAVE:
            socket.leave(str(request.get("room")))
        else:
            socket.disconnect(bool(request.get("close")))
        self._respond({"requestId": request.get("requestId")})

    @staticmethod
    def _describe(socket: Any) -> dict[str, Any]:
        hs = socket.handshake
        return {
            "id": socket.id,
            "handshake": {
                "headers": dict(hs.headers),
                "time": hs.time,
                "address": hs.address,
                "xdomain": hs.xdomain,
                "secure": hs.secure,
                "issued": hs.issued,
                "url": hs.url,
                "query": dict(hs.query),
                "auth": hs.auth,
            },
            "rooms": sorted(socket.rooms),
            "data": socket.data,
        }

    def _on_response(self, channel: str, message: bytes) -> None:
        try:
            response = _decode_request(message)
        except (ValueError, TypeError, msgpack.UnpackException):
            log.warn("Ignoring a malformed response on {channel}", channel=channel)
            return
        if not isinstance(response, dict):
            return
        request_id = response.get("requestId")
        if not isinstance(request_id, str):
            return
        acks = self._ack_requests.get(request_id)
        if acks is not None:
            if response.get("type") == BROADCAST_CLIENT_COUNT:
                acks[0](int(response.get("clientCount") or 0))
            elif response.get("type") == BROADCAST_ACK:
                acks[1]([response.get("packet")])
            return
        request = self._requests.get(request_id)
        if request is None:
            return
        if request.type == REMOTE_FETCH:
            request.items.extend(self._remote(s) for s in response.get("sockets") or () if isinstance(s, dict))
        elif request.type == ALL_ROOMS:
            request.items.extend(response.get("rooms") or ())
        elif request.type == SOCKETS:
            request.items.extend(response.get("sockets") or ())
        elif request.type == SERVER_SIDE_EMIT:
            request.items.append(response.get("data"))
        request.replies += 1
        if request.replies >= request.expected:
            del self._requests[request_id]
            if request.timer.active():
                request.timer.cancel()
            request.result.callback(request.items)

    def _remote(self, body: dict[str, Any]) -> RemoteSocket:
        handshake = body.get("handshake")
        return RemoteSocket(
            self,
            str(body.get("id")),
            handshake if isinstance(handshake, dict) else {},
            set(body.get("rooms") or ()),
            body.get("data") if body.get("data") is not None else {},
        )


def redis_adapter(link: RedisLink) -> Callable[[Any], RedisAdapter]:
    """An adapter factory for :class:`~txrealtime.socketio.Server`: ``Server(adapter=redis_adapter(link))``.

    Starts the link if it is not started yet.
    """
    link.start()
    return lambda namespace: RedisAdapter(namespace, link)
