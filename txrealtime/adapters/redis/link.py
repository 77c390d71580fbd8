"""The link to Redis: two connections (publish and subscribe) that reconnect by themselves, and heartbeats.

One :class:`RedisLink` per process holds two :class:`txrealtime.redis.RedisClient` connections to one Redis
(txrealtime's own client: RESP3, hiredis's parser) and reconnects by itself, subscribing again to every
channel and pattern; listeners hear :class:`RedisUp` / :class:`RedisDown` as it comes and goes.
txrealtime nodes also exchange heartbeats on ``{key}-nodes#`` so each knows which of its peers are alive
(:meth:`RedisLink.nodes`).

What it could not carry is never silent: every message not handed to Redis is counted in
:attr:`RedisLink.undelivered` and an outage is logged once when it starts and once, with that count, when
it ends (:class:`txrealtime.adapters.losses.Outage`); the spans during which this node could not receive are
counted in :attr:`RedisLink.deafness`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..._logging import Throttle, gate, name_for_log
from ..._observers import Observers, first
from ..._reactor import cancel, default_reactor, now
from ...redis.client import ClientDown, ClientUp, RedisClient
from ...redis.connection import RedisUnavailable
from ...redis.url import RedisURL
from ..losses import Deafness, Outage
from ..pubsub import Handler, Subscriptions
from .wire import NodeMessage, WireError, decode_node_message, encode, new_id, nodes_channel

__all__ = ["MAX_NODES", "BaseRedisLink", "RedisDown", "RedisLink", "RedisUnavailable", "RedisURL", "RedisUp",
           "numsub_count"]

log = Logger(__name__, observer=gate)
_throttled = Throttle(log)

MAX_NODES = 1000
"""The most txrealtime nodes a link keeps track of; heartbeats from more are ignored (with a throttled warning)."""


@dataclass(frozen=True, slots=True)
class RedisUp:
    """The link to Redis is (again) connected and subscribed."""


@dataclass(frozen=True, slots=True)
class RedisDown:
    """The link to Redis was lost; the link reconnects by itself."""

    reason: str
    """Why, for the log."""


class BaseRedisLink:
    """What the classic and the sharded links share: lifecycle and events, publishing with every loss counted,
    heartbeats between txrealtime nodes. A subclass provides the connections (:meth:`_start_clients`,
    :meth:`_stop_clients`, :attr:`connected`), the commands (:meth:`_publish_command`, :meth:`numsub`) and
    the subscriptions (:meth:`_tell`, :meth:`_untell`), and calls :meth:`_state_changed` as they come and go."""

    channel_kind = "subscribe"
    """How this link subscribes to a channel (``subscribe``, or ``ssubscribe`` for shard channels)."""

    def __init__(
        self,
        url: str,
        *,
        key: str,
        requests_timeout: float,
        heartbeat_interval: float,
        heartbeat_timeout: float,
        reconnect_max_delay: float,
        reactor: Any,
    ) -> None:
        """The parts both links share (see :class:`RedisLink` for the parameters)."""
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
        self.reactor = default_reactor(reactor)
        """The reactor it connects with."""
        self.uid = new_id()
        """This process's id among the cluster's servers."""
        self.requests_timed_out = 0
        """Requests to the other nodes (``fetch_sockets``, ``server_side_emit`` with acks, ...) that some
        node did not answer within ``requests_timeout``."""
        self.losses = 0
        """Times the link went down after being up."""
        self.outage = Outage(f"Redis link {self.uid}", log, self._now)
        """Messages not sent to the other nodes, and the log lines of each outage."""
        self.deafness = Deafness(self._now)
        """Spans during which this node's subscriptions were down: what others published then never arrived."""
        self.missed = 0
        """Broadcasts from other txrealtime nodes that never arrived here, as their sequence numbers tell
        (:mod:`txrealtime.adapters.sequence`)."""
        self.refused = 0
        """Broadcasts and requests refused before anyone got them: their payload cannot be carried to the other
        nodes (an error was raised to the code that emitted)."""
        self.malformed = 0
        """Messages from Redis ignored because they are not well-formed (logged, throttled)."""
        self.nodes_channel = nodes_channel(key)
        """The channel the heartbeats go on."""
        self._subscriptions = Subscriptions(self._tell, self._untell, self.channel_kind)
        self._started = False
        self._stopped = False
        self._up = False
        self._heartbeat: Any = None
        self._nodes: dict[str, float] = {}
        self._listeners: Observers[RedisUp | RedisDown] = Observers("Redis link")

    @property
    def undelivered(self) -> int:
        """Messages not published because Redis was unreachable or did not confirm them (each was delivered
        locally only)."""
        return self.outage.undelivered

    # -- what a subclass provides ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the link is started (not stopped), its connections are up and its subscriptions in place."""
        raise NotImplementedError

    def _start_clients(self) -> None:
        raise NotImplementedError

    def _stop_clients(self) -> Deferred[Any]:
        raise NotImplementedError

    def _publish_command(self, channel: str, message: bytes) -> Deferred[Any]:
        raise NotImplementedError

    def numsub(self, channel: str) -> Deferred[int]:
        """How many connections subscribe to ``channel``."""
        raise NotImplementedError

    def _tell(self, kind: str, name: str) -> None:
        raise NotImplementedError

    def _untell(self, kind: str, name: str) -> None:
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Connect (and keep reconnecting) to Redis."""
        if self._started:
            return
        self._started = True
        self._stopped = False
        self.subscribe(self.nodes_channel, self._on_node_message)
        self._start_clients()
        self._beat()

    def stop(self) -> Deferred[Any]:
        """Say goodbye to the other nodes and close the connections.

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
        self._set_up(False, "stopped")
        self.outage.close()
        return _answered_within(answered, self.requests_timeout, self.reactor).addCallback(
            lambda _: self._stop_clients()
        )

    def subscribe_events(self, listener: Callable[[RedisUp | RedisDown], object]) -> Callable[[], None]:
        """Call ``listener`` with :class:`RedisUp` / :class:`RedisDown` as the link comes and goes; returns a
        function that unsubscribes it."""
        return self._listeners.subscribe(listener)

    def _state_changed(self, reason: str = "", hearing: bool | None = None) -> None:
        """The connections changed: ``hearing`` says whether the subscriptions were lost (``False``) or are all
        in place again (``True``); ``None`` if they did not change."""
        if hearing is False and self._up:
            self.deafness.deaf()  # not before the link was first up: nothing was heard yet to be missed
        elif hearing:
            self.deafness.hearing()
        self._set_up(self.connected, reason)

    def _set_up(self, up: bool, reason: str) -> None:
        if up == self._up:
            return
        self._up = up
        if up:
            log.info("Redis link {uid} connected to {address}", uid=self.uid, address=self.url.address)
            self.outage.back()
            self._listeners.publish(RedisUp())
            self._send_heartbeat()
        elif not self._stopped:  # closing is not a loss
            self.losses += 1
            self.outage.lost(reason)
            self._listeners.publish(RedisDown(reason))

    def when_connected(self) -> Deferred[None]:
        """Fire once the link is :attr:`connected` (at once if it is): for a process that publishes only,
        such as a :class:`txrealtime.emitter.TwistedEmitter`, to wait for Redis after :meth:`start`.
        Cancelling the result stops waiting."""
        if self.connected:
            return succeed(None)
        return first(self.subscribe_events, lambda event: isinstance(event, RedisUp))

    # -- pub/sub -------------------------------------------------------------------

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler(channel, message)`` for each message on ``channel``, across reconnections."""
        self._subscriptions.add(self.channel_kind, channel, handler)

    def unsubscribe(self, channel: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``channel`` (Redis is told once no handler is left)."""
        self._subscriptions.remove(self.channel_kind, channel, handler)

    def _can_publish(self, channel: str) -> bool:
        """Whether a publication on ``channel`` can go out now."""
        return self.connected

    def publish(self, channel: str, message: bytes) -> bool:
        """Publish if Redis is reachable; ``False`` (and counted in :attr:`undelivered`) if not."""
        if not self._can_publish(channel):
            self.outage.dropped(why="stopped" if self._stopped else "unreachable")
            return False
        self._publish_command(channel, message).addErrback(self._unconfirmed_quietly)
        return True

    def send(self, channel: str, message: bytes) -> Deferred[int]:
        """Publish, for callers that wait for Redis: fires with how many subscribers received ``message``
        (Redis's answer), or fails with :class:`RedisUnavailable` if the link is not connected, or with
        Redis's error; either failure is counted in :attr:`undelivered`."""
        if not self._can_publish(channel):
            self.outage.dropped(why="stopped" if self._stopped else "unreachable")
            return fail(RedisUnavailable(f"Redis is unreachable: message for {name_for_log(channel)} not sent"))
        return self._publish_command(channel, message).addCallbacks(int, self._unconfirmed)

    def _unconfirmed(self, failure: Failure) -> Failure:
        """A publish Redis did not confirm: lost with the connection (counted in the outage), or refused."""
        self.outage.dropped(why="not confirming")
        if not failure.check(RedisUnavailable):
            _throttled.warn("Redis refused a publish: {error}", error=failure.getErrorMessage())
        return failure

    def _unconfirmed_quietly(self, failure: Failure) -> None:
        self._unconfirmed(failure)

    def _send(self, channel: str, message: bytes) -> Deferred[None]:
        """Publish; the result fires (with ``None``) once Redis answered or the publish failed (counted)."""
        return self.send(channel, message).addCallbacks(lambda _: None, lambda _: None)

    def _message(self, channel: bytes, message: bytes, pattern: bytes | None) -> None:
        self._subscriptions.deliver(channel, message, pattern)

    # -- heartbeats --------------------------------------------------------------------

    def nodes(self) -> list[str]:
        """Uids of the txrealtime nodes heard from within ``heartbeat_timeout`` (this one included)."""
        now = self._now()
        for uid, seen in list(self._nodes.items()):
            if now - seen > self.heartbeat_timeout:
                del self._nodes[uid]
                _throttled.info("Redis link: node {uid} stopped sending heartbeats and is forgotten", uid=uid)
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
            self.malformed += 1
            _throttled.warn("Ignoring a malformed heartbeat on {channel}", channel=channel)
            return
        uid = node.uid
        if uid == self.uid:
            return
        if node.kind == "leave":
            if self._nodes.pop(uid, None) is not None:
                _throttled.info("Redis link: node {uid} left", uid=uid)
        elif uid in self._nodes:
            self._nodes[uid] = self._now()
        elif len(self._nodes) >= MAX_NODES:
            _throttled.warn("Redis link: ignoring node {uid}: {count} nodes known already", uid=uid,
                            count=len(self._nodes))
        else:
            _throttled.info("Redis link: node {uid} joined", uid=uid)
            self._nodes[uid] = self._now()
            self._send_heartbeat()  # let the newcomer know about us without waiting


class RedisLink(BaseRedisLink):
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
        health_check_interval: float = 5.0,
        reactor: Any = None,
    ) -> None:
        """A link to the Redis at ``url``, not connected until :meth:`start`.

        :param url: ``redis://[user:password@]host[:port][/db]``, ``rediss://`` for TLS.
        :param key: The channels' prefix (the ``key`` option of ``@socket.io/redis-adapter``).
        :param requests_timeout: Seconds a request to the other servers (``fetch_sockets``...) waits for their answers.
        :param heartbeat_interval: Seconds between two heartbeats to the other servers.
        :param heartbeat_timeout: Seconds without a heartbeat after which another server counts as gone.
        :param reconnect_max_delay: The longest wait between two reconnection attempts.
        :param health_check_interval: Seconds between two health checks of each connection (a reply missing for
            a whole interval closes it; an idle one pings).
        :param reactor: The reactor it connects with; the global one if not given.
        """
        super().__init__(
            url, key=key, requests_timeout=requests_timeout, heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout, reconnect_max_delay=reconnect_max_delay, reactor=reactor,
        )
        settings: dict[str, Any] = {
            "reactor": self.reactor, "reconnect_max_delay": reconnect_max_delay,
            "health_check_interval": health_check_interval,
        }
        self._pub = RedisClient(self.url, name=f"txrealtime:{self.uid}:pub", **settings)
        self._sub = RedisClient(self.url, name=f"txrealtime:{self.uid}:sub", on_message=self._message, **settings)
        self._pub.subscribe_events(lambda event: self._client_event(event, None))
        self._sub.subscribe_events(lambda event: self._client_event(event, isinstance(event, ClientUp)))

    @property
    def connected(self) -> bool:
        """Whether the link is started (not stopped), both connections are up and subscriptions are in place."""
        return self._started and self._pub.connected and self._sub.connected

    def _start_clients(self) -> None:
        self._pub.start()
        self._sub.start()

    def _stop_clients(self) -> Deferred[Any]:
        return DeferredList([self._pub.stop(), self._sub.stop()], consumeErrors=True)

    def _client_event(self, event: ClientUp | ClientDown, hearing: bool | None) -> None:
        self._state_changed(event.reason if isinstance(event, ClientDown) else "", hearing)

    def psubscribe(self, pattern: str, handler: Handler) -> None:
        """Call ``handler(channel, message)`` for each message on a channel matching the glob ``pattern``."""
        self._subscriptions.add("psubscribe", pattern, handler)

    def punsubscribe(self, pattern: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``pattern`` (Redis is told once no handler is left)."""
        self._subscriptions.remove("psubscribe", pattern, handler)

    def _tell(self, kind: str, name: str) -> None:
        self._sub.subscribe(kind, [name]).addErrback(lambda _: None)  # held: subscribed on every connection

    def _untell(self, kind: str, name: str) -> None:
        self._sub.unsubscribe(kind, [name]).addErrback(lambda _: None)

    def _publish_command(self, channel: str, message: bytes) -> Deferred[Any]:
        return self._pub.execute("PUBLISH", channel, message)

    def numsub(self, channel: str) -> Deferred[int]:
        """How many connections subscribe to ``channel`` (``PUBSUB NUMSUB``)."""
        if not self.connected:
            return fail(RedisUnavailable("Redis is unreachable"))
        return self._pub.execute("PUBSUB", "NUMSUB", channel).addCallback(numsub_count)


def numsub_count(reply: Any) -> int:
    """The count in ``PUBSUB NUMSUB``'s answer: ``[channel, count]`` (RESP2) or ``{channel: count}`` (RESP3)."""
    values = list(reply.values()) if isinstance(reply, dict) else reply[1::2]
    return int(values[0]) if values else 0


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
