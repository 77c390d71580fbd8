"""The link to Redis: two connections (publish and subscribe) that reconnect by themselves, and heartbeats.

One :class:`RedisLink` per process holds two Redis connections through
``txredisapi`` and reconnects by itself, subscribing again to every channel
and pattern; listeners hear :class:`RedisUp` / :class:`RedisDown` as it comes
and goes. txrealtime nodes also exchange heartbeats on ``{key}-nodes#`` so
each knows which of its peers are alive (:meth:`RedisLink.nodes`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import txredisapi
from twisted.internet.defer import Deferred, DeferredList, fail, gatherResults, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..._logging import gate
from ..._observers import Observers
from ..._reactor import cancel, default_reactor, now
from .wire import NodeMessage, WireError, decode_node_message, encode, new_id, nodes_channel

__all__ = ["RedisDown", "RedisLink", "RedisUnavailable", "RedisURL", "RedisUp"]

log = Logger(observer=gate)


class RedisUnavailable(ConnectionError):
    """Redis cannot be reached right now; only this node was acted upon."""


@dataclass(frozen=True, slots=True)
class RedisUp:
    """The link to Redis is (again) connected and subscribed."""


@dataclass(frozen=True, slots=True)
class RedisDown:
    """The link to Redis was lost; the link reconnects by itself."""

    reason: str
    """Why, for the log."""


@dataclass(frozen=True)
class RedisURL:
    """``redis://[user:password@]host[:port][/db]`` (``rediss://`` for TLS)."""

    host: str = "127.0.0.1"
    """The server's host name or address."""
    port: int = 6379
    """Its port."""
    db: int | None = None
    """The database number (``SELECT``), if given."""
    username: str | None = None
    """The user (Redis 6 ACL), if given."""
    password: str | None = None
    """The password (``AUTH``), if given."""
    tls: bool = False
    """Whether to connect over TLS (``rediss://``)."""

    @classmethod
    def parse(cls, url: str) -> RedisURL:
        """``redis://[user:password@]host[:port][/db]`` (``rediss://``: TLS); ``ValueError`` if malformed."""
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
        """A link to the Redis at ``url``, not connected until :meth:`start`.

        :param url: ``redis://[user:password@]host[:port][/db]``, ``rediss://`` for TLS.
        :param key: The channels' prefix (the ``key`` option of ``@socket.io/redis-adapter``).
        :param requests_timeout: Seconds a request to the other servers (``fetch_sockets``...) waits for their answers.
        :param heartbeat_interval: Seconds between two heartbeats to the other servers.
        :param heartbeat_timeout: Seconds without a heartbeat after which another server counts as gone.
        :param reconnect_max_delay: The longest wait between two reconnection attempts.
        :param reactor: The reactor it connects with; the global one if not given.
        """
        reactor = default_reactor(reactor)
        self.url = RedisURL.parse(url)
        """Where Redis is."""
        self.key = key
        """The channels' prefix."""
        self.requests_timeout = requests_timeout
        """Seconds a request to the other servers waits for their answers."""
        self.heartbeat_interval = heartbeat_interval
        """Seconds between two heartbeats to the other servers."""
        self.heartbeat_timeout = heartbeat_timeout
        """Seconds without a heartbeat after which a server counts as gone."""
        self.reconnect_max_delay = reconnect_max_delay
        """The longest wait between two reconnection attempts."""
        self.reactor = reactor
        """The reactor it connects with."""
        self.uid = new_id()
        """This process's id among the cluster's servers."""
        self.undelivered = 0
        """Messages not published because Redis was unreachable (each was delivered locally only)."""
        self.requests_timed_out = 0
        """Requests to the other nodes (``fetch_sockets``, ``server_side_emit`` with acks, ...) that some
        node did not answer within ``requests_timeout``."""
        self.losses = 0
        """Times the link went down after being up."""
        self._channels: dict[str, list[Callable[[str, bytes], object]]] = {}
        self._patterns: dict[str, list[Callable[[str, bytes], object]]] = {}
        self._pub: Any = None
        self._sub: Any = None
        self._factories: list[_Factory] = []
        self._subscribed = False
        self._started = False
        self._stopped = False
        self._heartbeat: Any = None
        self._nodes: dict[str, float] = {}
        self._listeners: Observers[RedisUp | RedisDown] = Observers("Redis link")
        self.nodes_channel = nodes_channel(key)
        """The channel the heartbeats go on."""

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Connect (and keep reconnecting) to Redis."""
        if self._started:
            return
        self._started = True
        self._stopped = False
        self.subscribe(self.nodes_channel, self._on_node_message)
        for protocol in (_Publisher, _Subscriber):
            factory = _Factory(self, protocol, self.url)
            self._factories.append(factory)
            factory.startConnecting(self._endpoint())
        self._beat()

    def stop(self) -> Deferred[Any]:
        """Say goodbye to the other nodes and close both connections.

        The connections close once Redis has answered the goodbye (or after
        ``requests_timeout``). Redis answers in order, so every message
        published before it has been answered too: none is reported lost. From
        now on :attr:`connected` is false and :meth:`publish` sends nothing.
        """
        if not self._started:
            return succeed(None)
        answered: Deferred[None] = succeed(None)
        if self.connected:
            answered = self._send(self.nodes_channel, encode(NodeMessage(uid=self.uid, kind="leave")))
        self._started = False
        self._stopped = True
        self._heartbeat = cancel(self._heartbeat)
        factories, self._factories = self._factories, []

        def close(_: object) -> Deferred[Any]:
            return DeferredList([f.disconnect() for f in factories], consumeErrors=True)

        return _answered_within(answered, self.requests_timeout, self.reactor).addCallback(close)

    def _endpoint(self) -> Any:
        endpoint = HostnameEndpoint(self.reactor, self.url.host, self.url.port, timeout=10)
        if self.url.tls:
            return wrapClientTLS(optionsForClientTLS(self.url.host), cast(Any, endpoint))
        return endpoint

    @property
    def connected(self) -> bool:
        """Whether the link is started (not stopped), both connections are up and subscriptions are in place."""
        return self._started and self._pub is not None and self._sub is not None and self._subscribed

    def subscribe_events(self, listener: Callable[[RedisUp | RedisDown], object]) -> Callable[[], None]:
        """Call ``listener`` with :class:`RedisUp` / :class:`RedisDown` as the link comes and goes; returns a
        function that unsubscribes it."""
        return self._listeners.subscribe(listener)

    def _fire(self, event: RedisUp | RedisDown) -> None:
        self._listeners.publish(event)

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
        was_up = self.connected  # false once stopped: closing is not a loss
        if protocol is self._sub:
            self._sub = None
            self._subscribed = False
        elif protocol is self._pub:
            self._pub = None
        else:
            return
        if was_up:
            self.losses += 1
            log.error(
                "Redis link {uid} lost ({reason}): broadcasts reach this node only until it reconnects",
                uid=self.uid,
                reason=reason,
            )
            self._fire(RedisDown(reason))

    # -- pub/sub -------------------------------------------------------------------

    def subscribe(self, channel: str, handler: Callable[[str, bytes], object]) -> None:
        """Call ``handler(channel, message)`` for each message on ``channel``, across reconnections."""
        first = channel not in self._channels
        self._channels.setdefault(channel, []).append(handler)
        if first and self._sub is not None:
            self._sub.subscribe(channel)

    def psubscribe(self, pattern: str, handler: Callable[[str, bytes], object]) -> None:
        """Call ``handler(channel, message)`` for each message on a channel matching the glob ``pattern``."""
        first = pattern not in self._patterns
        self._patterns.setdefault(pattern, []).append(handler)
        if first and self._sub is not None:
            self._sub.psubscribe(pattern)

    def unsubscribe(self, channel: str, handler: Callable[[str, bytes], object]) -> None:
        """Stop calling ``handler`` for ``channel`` (Redis is told once no handler is left)."""
        handlers = self._channels.get(channel, [])
        if handler in handlers:
            handlers.remove(handler)
        if not handlers and channel in self._channels:
            del self._channels[channel]
            if self._sub is not None:
                self._sub.unsubscribe(channel)

    def punsubscribe(self, pattern: str, handler: Callable[[str, bytes], object]) -> None:
        """Stop calling ``handler`` for ``pattern`` (Redis is told once no handler is left)."""
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
            if self._stopped:
                log.info("Redis link stopped: message for {channel} not sent to other nodes", channel=channel)
            else:
                log.warn("Redis unavailable: message for {channel} not sent to other nodes", channel=channel)
            return False
        self._send(channel, message)
        return True

    def send(self, channel: str, message: bytes) -> Deferred[int]:
        """Publish, for callers that wait for Redis: fires with how many subscribers received ``message``
        (Redis's answer to ``PUBLISH``), or fails with :class:`RedisUnavailable` if the link is not connected,
        or with Redis's error; either failure is counted in :attr:`undelivered`."""
        if not self.connected:
            self.undelivered += 1
            return fail(RedisUnavailable(f"Redis is unreachable: message for {channel} not sent"))

        def failed(failure: Failure) -> Failure:
            self.undelivered += 1
            return failure

        return cast(Deferred[int], self._pub.publish(channel, message).addCallbacks(int, failed))

    def _send(self, channel: str, message: bytes) -> Deferred[None]:
        """Publish; the result fires (with ``None``) once Redis answered or the publish failed (logged)."""

        def failed(failure: Failure) -> None:
            log.error(
                "Redis publish to {channel} failed: {error}", channel=channel, error=failure.getErrorMessage()
            )

        return self.send(channel, message).addCallbacks(lambda _: None, failed)

    def when_connected(self) -> Deferred[None]:
        """Fire once the link is :attr:`connected` (at once if it is): for a process that publishes only,
        such as a :class:`txrealtime.emitter.TwistedEmitter`, to wait for Redis after :meth:`start`.
        Cancelling the result stops waiting."""
        if self.connected:
            return succeed(None)
        unsubscribe: Callable[[], None] = lambda: None  # noqa: E731 (replaced below)
        ready: Deferred[None] = Deferred(lambda _: unsubscribe())

        def up(event: RedisUp | RedisDown) -> None:
            if isinstance(event, RedisUp) and not ready.called:
                unsubscribe()
                ready.callback(None)

        unsubscribe = self.subscribe_events(up)
        return ready

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
            self._send(self.nodes_channel, encode(NodeMessage(uid=self.uid)))

    def _on_node_message(self, channel: str, message: bytes) -> None:
        try:
            node = decode_node_message(message)
        except WireError:
            return
        uid = node.uid
        if uid == self.uid:
            return
        if node.kind == "leave":
            if self._nodes.pop(uid, None) is not None:
                log.info("Redis link: node {uid} left", uid=uid)
        else:
            if uid not in self._nodes:
                log.info("Redis link: node {uid} joined", uid=uid)
                self._send_heartbeat()  # let the newcomer know about us without waiting
            self._nodes[uid] = self._now()


def _answered_within(answered: Deferred[None], timeout: float, reactor: Any) -> Deferred[None]:
    """Fire when ``answered`` does, or after ``timeout`` seconds (with a warning), whichever comes first."""
    done: Deferred[None] = Deferred()

    def give_up() -> None:
        log.warn("Redis did not answer the goodbye within {timeout}s: closing anyway", timeout=timeout)
        done.callback(None)

    timer = reactor.callLater(timeout, give_up)

    def fire(_: object) -> None:
        if not done.called:
            timer.cancel()
            done.callback(None)

    answered.addBoth(fire)
    return done
