"""Rooms of one namespace shared through Redis, as Node's ``@socket.io/redis-adapter`` (v8) shares them.

Each namespace gets a :class:`RedisAdapter` on the process's
:class:`~txrealtime.adapters.redis.RedisLink`, using the channels and message
layout of the Node adapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import msgpack
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ...socketio.adapter import Adapter, BroadcastFlags, BroadcastOptions
from ...socketio.packets import Packet, PacketType
from .link import RedisLink, _uid

__all__ = ["RedisAdapter", "RemoteSocket", "redis_adapter"]

log = Logger()

# Request types of @socket.io/redis-adapter.
SOCKETS, ALL_ROOMS, REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT, REMOTE_FETCH = range(6)
SERVER_SIDE_EMIT, BROADCAST, BROADCAST_CLIENT_COUNT, BROADCAST_ACK = range(6, 10)

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
        from ...socketio.operator import BroadcastOperator

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
