"""Any node serves any session: requests for a session held by another node are served through the link.

A :class:`Forwarder` sits between a node's
:class:`txrealtime.engineio.EngineIOResource` and the
:class:`txrealtime.adapters.pubsub.PubSubLink` its adapter shares with the
other nodes (Redis, or the master of ``--workers``). It is the resource's
``elsewhere``: the resource hands it only the requests naming a sid its
manager does not hold, so a request that reaches the session's own node
costs nothing new.

Finding the owner: sids this node makes end with ``~`` and its link's uid
(the manager's ``sid_tag``), so the owner of such a sid is read from it; a
tag naming a node that is not alive (the link's heartbeats), or this one,
is answered "Session ID unknown" at once. A sid without a tag (from an
application's ``generate_id`` hook) is looked up: every live node answers
whether it holds it, and the sid is unknown as soon as all said no, else
after ``timeout`` (at most ``max_lookups`` lookups at a time).

Serving: a polling request is sent to the owner, which replays it through
its own resource (:mod:`txrealtime.forwarding.http`); a WebSocket upgrade is
decided by the owner, and the connection stays here, relayed packet by
packet (:mod:`txrealtime.forwarding.relay`).

Failures: every ``timeout`` seconds the nodes this one forwards to or
relays for are checked (alive on the link, subscribed to their channel); a
node that is gone fails its requests ("Session ID unknown"), closes the
connections relayed for it here, and closes the sessions here whose
connection it held (transport error). While the link is down, requests for
other nodes' sessions are answered "Session ID unknown" at once.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from autobahn.websocket.types import ConnectionDeny
from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import Request
from twisted.web.server import NOT_DONE_YET

from .._logging import Throttle, gate
from .._reactor import DelayedCall, cancel, default_reactor
from ..adapters.pubsub import PubSubLink
from ..engineio.elsewhere import RelayedSocket
from ..engineio.errors import SessionError
from ..engineio.events import CloseReason, Handshake, requested_protocol
from ..engineio.packets import Packet
from ..engineio.polling import error_response, handshake_from_request, parse_query
from ..engineio.resource import EngineIOResource, check_protocol
from ..engineio.upgrade import handshake_answer, probe_upgrade
from ..protocol.acks import Pending
from .http import Peer, ReplayedRequest, answer, forwardable, request_message, response_message
from .relay import RemoteTransport, SocketRelay
from .wire import (
    Cancel,
    Closed,
    Ended,
    Lookup,
    Message,
    Outgoing,
    Owner,
    Packets,
    Response,
    Upgrade,
    WireError,
    decode,
    decode_headers,
    decode_packets,
    encode,
    encode_headers,
    lookup_channel,
    node_channel,
    tag_of,
    valid_uid,
)
from .wire import Request as RequestMessage

__all__ = ["Forwarder"]

log = Logger(__name__, observer=gate)
noisy = Throttle(log)
rare = Throttle(log, burst=1)
"""For the line a link outage would repeat for every request."""

_DECLINE = b"decline"


@dataclass
class _Outbound:
    """A request of this node's client, sent to the owner, awaiting its answer."""

    owner: str
    request: Request | None = None
    socket: RelayedSocket | None = None
    answered: Deferred[Any] | None = None


@dataclass
class _Lookup:
    """A lookup of an untagged sid: who said no so far."""

    found: Deferred[str | None]
    asked: set[str]
    said_no: set[str] = field(default_factory=set)


class Forwarder:
    """Serves through ``link`` the requests of ``resource`` for sessions of other nodes, and theirs for here.

    ``timeout`` is Node's ``responseTimeout``: how long a lookup or an upgrade
    waits for the other nodes, and how often the nodes in use are checked.
    """

    def __init__(
        self, resource: EngineIOResource, link: PubSubLink, timeout: float = 1.0, max_lookups: int = 256,
        reactor: Any = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.resource = resource
        self.manager = resource.manager
        self.link = link
        self.timeout = timeout
        self.max_lookups = max_lookups
        self.reactor: Any = default_reactor(reactor if reactor is not None else getattr(link, "reactor", None))
        self.uid = link.uid
        self.tags = False
        """Whether sids made here carry this node's tag (no ``generate_id`` hook, and a uid that can)."""
        self.forwarded = 0
        """Requests and upgrades this node sent to their session's owner."""
        self.served = 0
        """Requests and upgrades of other nodes this node served."""
        self._ids = itertools.count(1)
        self._outbound: Pending[int, _Outbound] = Pending(self.reactor)
        self._lookups: Pending[int, _Lookup] = Pending(self.reactor)
        self._replays: dict[tuple[str, int], ReplayedRequest] = {}
        self._remotes: dict[tuple[str, int], RemoteTransport] = {}
        self._relays: dict[int, SocketRelay] = {}
        self._channel = node_channel(link.key, self.uid)
        self._lookup_channel = lookup_channel(link.key)
        self._watch: DelayedCall | None = None
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe, become the resource's ``elsewhere`` and tag the sids made here (idempotent)."""
        if self._started:
            return
        self._started = True
        self.tags = self.manager.options.generate_id is None and valid_uid(self.uid)
        if self.tags:
            self.manager.sid_tag = "~" + self.uid
        self.link.subscribe(self._channel, self._received)
        self.link.subscribe(self._lookup_channel, self._received)
        self.resource.elsewhere = self
        self._watch = self.reactor.callLater(self.timeout, self._check_nodes)

    def stop(self) -> None:
        """Stop serving other nodes and forwarding to them; what is in flight ends as if they were gone."""
        if not self._started:
            return
        self._started = False
        if self.resource.elsewhere is self:
            self.resource.elsewhere = None
        self.link.unsubscribe(self._channel, self._received)
        self.link.unsubscribe(self._lookup_channel, self._received)
        self._watch = cancel(self._watch)
        self._gone(None, "this node stops forwarding")

    # -- Elsewhere: requests for sessions this node does not hold -------------------------------------

    def poll(self, request: Request, sid: str) -> object:
        """Send a polling request to the node holding ``sid`` and answer with what it answers."""
        if isinstance(request, ReplayedRequest):
            raise SessionError(SessionError.UNKNOWN_SID, details={"sid": sid})  # never forwarded twice
        owner = self._owner(sid)
        if owner is None:
            raise SessionError(SessionError.UNKNOWN_SID, details={"sid": sid})
        id = next(self._ids)
        entry = _Outbound("", request=request)

        def found(uid: str | None) -> None:
            if entry.request is None:
                return  # the client left during the lookup
            if uid is None:
                self._unknown(entry, sid)
                return
            entry.owner = uid
            opts = self.manager.options
            wait = opts.ping_timeout + self.timeout + (opts.ping_interval if request.method == b"GET" else 0.0)
            self._outbound.add(id, entry, wait, lambda _: self._timed_out(id, entry))
            self.forwarded += 1
            if not self._send(uid, request_message(self.uid, id, sid, request)):
                self._outbound.take(id)
                self._unknown(entry, sid)

        def left(_: Failure) -> None:
            entry.request = None
            if self._outbound.take(id) is not None:
                self._send(entry.owner, Cancel(self.uid, id))

        request.notifyFinish().addErrback(left)
        if isinstance(owner, str):
            found(owner)
        else:
            owner.addCallback(found)
        return NOT_DONE_YET

    def upgrade(self, socket: RelayedSocket, sid: str, handshake: Handshake) -> Deferred[Any]:
        """Ask the node holding ``sid`` to take this WebSocket as its session's upgrade; relay if it does."""
        id = next(self._ids)
        entry = _Outbound("", socket=socket, answered=Deferred())
        answered = entry.answered
        assert answered is not None

        def found(uid: str | None) -> Deferred[Any]:
            if uid is None:
                error = SessionError(SessionError.UNKNOWN_SID, details={"sid": sid})
                self.manager.refused(error, handshake, "GET", upgrade=True)
                return fail(error)
            entry.owner = uid
            self._outbound.add(id, entry, self.timeout, lambda _: self._timed_out(id, entry))
            self.forwarded += 1
            headers = encode_headers(forwardable(list(handshake.headers.items())))
            message = Upgrade(self.uid, id, sid, handshake.url, headers, handshake.address, int(handshake.secure))
            if not self._send(uid, message):
                self._outbound.take(id)
                return found(None)
            return answered

        owner = self._owner(sid)
        return owner.addCallback(found) if isinstance(owner, Deferred) else found(owner)

    # -- finding the owner ---------------------------------------------------------------------------

    def _owner(self, sid: str) -> str | None | Deferred[str | None]:
        """The uid of the node holding ``sid`` (never this one), or ``None`` if no live node does: known at
        once from a tag, else once the other nodes answered a lookup."""
        if not self.link.connected:
            rare.info("Forwarding: the link to the other nodes is down: requests for their sessions are "
                      "answered 'Session ID unknown' until it is back")
            return None
        if self.tags:
            tag = tag_of(sid)
            if tag is not None:
                return tag if tag != self.uid and tag in self.link.nodes() else None
        others = set(self.link.nodes()) - {self.uid}
        if not others:
            return None
        if len(self._lookups) >= self.max_lookups:
            noisy.info("Forwarding: {limit} lookups under way: a request for an unknown sid refused at once",
                       limit=self.max_lookups)
            return None
        id = next(self._ids)
        lookup = _Lookup(Deferred(), others)
        self._lookups.add(id, lookup, self.timeout, lambda entry: entry.found.callback(None))
        if not self.link.publish(self._lookup_channel, encode(Lookup(self.uid, id, sid))):
            self._lookups.take(id)
            return None
        return lookup.found

    def _owner_answered(self, message: Owner) -> None:
        lookup = self._lookups.get(message.id)
        if lookup is None:
            return
        if message.owned:
            self._lookups.take(message.id)
            lookup.found.callback(message.origin)
            return
        lookup.said_no.add(message.origin)
        if lookup.asked <= lookup.said_no:
            self._lookups.take(message.id)
            lookup.found.callback(None)

    # -- messages from the other nodes ---------------------------------------------------------------

    def _send(self, uid: str, message: Message) -> bool:
        return self.link.publish(node_channel(self.link.key, uid), encode(message))

    def _received(self, channel: str, data: bytes) -> None:
        try:
            message = decode(data)
        except WireError as e:
            noisy.info("Forwarding: a message on {channel} that does not follow the grammar: {error}",
                       channel=channel, error=str(e))
            return
        if message.origin == self.uid:
            return  # our own lookup, heard on the channel every node hears
        try:
            self._dispatch(message)
        except Exception:
            log.failure("Forwarding: handling a {kind} from node {node} failed", kind=type(message).__name__,
                        node=message.origin)

    def _dispatch(self, message: Message) -> None:
        if isinstance(message, Packets):
            self._from_client(message)
        elif isinstance(message, Outgoing):
            self._to_client(message)
        elif isinstance(message, RequestMessage):
            self._serve(message)
        elif isinstance(message, Response):
            self._answered(message)
        elif isinstance(message, Closed):
            remote = self._remotes.get((message.origin, message.id))
            if remote is not None:
                remote.lost(_reason_of(message.reason), message.description)
        elif isinstance(message, Ended):
            relay = self._relays.get(message.id)
            if relay is not None and relay.owner == message.origin:
                relay.end(message.description)
        elif isinstance(message, Cancel):
            replay = self._replays.pop((message.origin, message.id), None)
            if replay is not None:
                replay.connectionLost()
            remote = self._remotes.get((message.origin, message.id))
            if remote is not None:  # an upgrade whose answer came too late: its probe ends
                remote.lost(CloseReason.TRANSPORT_CLOSE, "upgrade given up by the node holding the connection")
        elif isinstance(message, Upgrade):
            self._serve_upgrade(message)
        elif isinstance(message, Lookup):
            owned = self.manager.for_poll(message.sid) is not None
            self._send(message.origin, Owner(self.uid, message.id, 1 if owned else 0))
        else:
            self._owner_answered(message)

    # -- owner side ---------------------------------------------------------------------------------

    def _serve(self, message: RequestMessage) -> None:
        """Replay a request of another node's client through our resource; send the answer back."""
        key = (message.origin, message.id)
        self.served += 1

        def answered(replay: ReplayedRequest) -> None:
            self._replays.pop(key, None)
            self._send(message.origin, response_message(self.uid, replay, message.id))

        replay = ReplayedRequest(message, answered)
        self._replays[key] = replay
        try:
            result = self.resource.render(replay)
        except Exception:
            log.failure("Forwarding: serving a request of node {node} failed", node=message.origin)
            replay.setResponseCode(500)
            result = b""
        if result is not NOT_DONE_YET and not replay.finished and not replay.lost:
            replay.write(result if isinstance(result, bytes) else b"")
            replay.finish()

    def _serve_upgrade(self, message: Upgrade) -> None:
        """Decide an upgrade whose connection another node holds; on success, relay through it."""
        self.served += 1
        try:
            pairs = decode_headers(message.headers)
        except WireError:
            pairs = []
        query = parse_query(message.uri.encode("latin-1"))
        handshake = Handshake.of_request(pairs, query, Peer(message.address), bool(message.secure), message.uri)
        remote = RemoteTransport(self._send, self.uid, message.origin, message.id, self._forget_remote)
        try:
            try:
                check_protocol(self.manager.get(message.sid), message.sid, requested_protocol(query))
            except SessionError as e:
                self.manager.refused(e, handshake, "GET", upgrade=True)
                raise
            session, headers = probe_upgrade(self.manager, message.sid, remote, lambda: handshake)
        except SessionError as e:
            self._send(message.origin, Response(self.uid, message.id, e.status, b"", e.body()))
            return
        if session is None:
            self._send(message.origin, Response(self.uid, message.id, 101, encode_headers(headers), _DECLINE))
            return
        remote.session = session
        self._remotes[(message.origin, message.id)] = remote
        self._send(message.origin, Response(self.uid, message.id, 101, encode_headers(headers), b""))

    def _forget_remote(self, remote: RemoteTransport) -> None:
        self._remotes.pop((remote.node, remote.id), None)

    # -- receiver side ------------------------------------------------------------------------------

    def _answered(self, message: Response) -> None:
        entry = self._outbound.take(message.id)
        if entry is None:
            return
        if entry.request is not None:
            request, entry.request = entry.request, None
            answer(request, message)
            return
        socket, deferred = entry.socket, entry.answered
        if socket is None or deferred is None:
            return
        if message.status != 101:
            deferred.errback(_refusal(message.status, message.body))
            return
        try:
            headers = decode_headers(message.headers)
        except WireError:
            headers = []
        if message.body == _DECLINE:
            socket.decline()
        else:
            relay = SocketRelay(self._send, self.uid, entry.owner, message.id, socket,
                                self.manager.options.max_buffer, self._forget_relay)
            self._relays[message.id] = relay
            socket.relay = relay
        deferred.callback(handshake_answer(headers))

    def _forget_relay(self, relay: SocketRelay) -> None:
        self._relays.pop(relay.id, None)

    def _from_client(self, message: Packets) -> None:
        """Packets a relayed client sent, for a session here."""
        remote = self._remotes.get((message.origin, message.id))
        packets = self._packets_of(message)
        if remote is not None and packets is not None:
            remote.receive(packets)

    def _to_client(self, message: Outgoing) -> None:
        """Packets of a session on another node, for the client whose connection is relayed here."""
        relay = self._relays.get(message.id)
        packets = self._packets_of(message)
        if relay is not None and relay.owner == message.origin and packets is not None:
            relay.deliver(packets)

    @staticmethod
    def _packets_of(message: Packets | Outgoing) -> list[Packet] | None:
        try:
            return decode_packets(message.packets)
        except WireError as e:
            noisy.info("Forwarding: bad packets from node {node}: {error}", node=message.origin, error=str(e))
            return None

    def _unknown(self, entry: _Outbound, sid: str | None) -> None:
        """Answer a request whose owner was not found, or is gone, as the resource answers an unknown sid."""
        request, entry.request = entry.request, None
        if request is None:
            return
        error = SessionError(SessionError.UNKNOWN_SID, details={"sid": sid} if sid is not None else {})
        self.manager.refused(error, handshake_from_request(request), request.method.decode("latin-1"))
        body = error_response(request, error, error.status)
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()

    def _timed_out(self, id: int, entry: _Outbound) -> None:
        """The owner did not answer in time: the client gets an error, the owner a cancel."""
        self._send(entry.owner, Cancel(self.uid, id))
        noisy.info("Forwarding: node {node} did not answer in time", node=entry.owner)
        if entry.request is not None:
            request, entry.request = entry.request, None
            request.setResponseCode(504)
            request.setHeader(b"content-type", b"text/plain")
            request.setHeader(b"content-length", b"0")
            request.finish()
        elif entry.answered is not None:
            entry.answered.errback(ConnectionDeny(504, "the node holding the session did not answer"))

    # -- failure -----------------------------------------------------------------------------------

    def _peers(self) -> set[str]:
        """The nodes with something in flight with this one."""
        peers = {entry.owner for entry in self._outbound.values()}
        peers.update(relay.owner for relay in self._relays.values())
        peers.update(node for node, _ in self._remotes)
        peers.update(node for node, _ in self._replays)
        peers.discard("")
        return peers

    def _check_nodes(self) -> None:
        """Every ``timeout``: end what is in flight with nodes that are gone."""
        self._watch = self.reactor.callLater(self.timeout, self._check_nodes)
        peers = self._peers()
        if not peers:
            return
        if not self.link.connected:
            self._gone(None, "the link to the other nodes is down")
            return
        alive = set(self.link.nodes())
        for node in peers:
            if node not in alive:
                self._gone(node, f"node {node} left")
                continue

            def counted(subscribers: int, node: str = node) -> None:
                if subscribers == 0:
                    self._gone(node, f"node {node} left")

            self.link.numsub(node_channel(self.link.key, node)).addCallbacks(counted, lambda _: None)

    def _gone(self, node: str | None, why: str) -> None:
        """End everything in flight with ``node`` (every node: ``None``)."""
        mine = (lambda uid: True) if node is None else (lambda uid: uid == node)
        ended = 0
        for id in self._outbound.keys():
            entry = self._outbound.get(id)
            if entry is None or not mine(entry.owner):
                continue
            self._outbound.take(id)
            ended += 1
            if entry.request is not None:
                self._unknown(entry, None)
            elif entry.answered is not None:
                entry.answered.errback(SessionError(SessionError.UNKNOWN_SID))
        for relay in [r for r in self._relays.values() if mine(r.owner)]:
            ended += 1
            relay.end(why)
        for remote in [r for r in self._remotes.values() if mine(r.node)]:
            ended += 1
            remote.lost(CloseReason.TRANSPORT_ERROR, why)
        for key in [k for k in self._replays if mine(k[0])]:
            ended += 1
            self._replays.pop(key).connectionLost()
        if ended:
            log.info("Forwarding: {why}: {count} requests and connections ended", why=why, count=ended)


def _reason_of(text: str) -> CloseReason:
    """The close reason a message names (``transport error`` if it names none)."""
    try:
        return CloseReason(text)
    except ValueError:
        return CloseReason.TRANSPORT_ERROR


def _refusal(status: int, body: bytes) -> Exception:
    """What the owner's refusal of an upgrade is: the :class:`SessionError` its Engine.IO error body names
    (answered here as the owner would answer it), else a denial with its status."""
    try:
        error = json.loads(body)
        code, message = error["code"], error["message"]
        if code in SessionError.MESSAGES and isinstance(message, str):
            return SessionError(code, answer=message)
    except (ValueError, KeyError, TypeError):
        pass
    return ConnectionDeny(status, body.decode("utf-8", "replace")[:200])
