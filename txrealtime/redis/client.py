"""A client of one Redis server that reconnects by itself and keeps its subscriptions.

:class:`RedisClient` holds one :class:`txrealtime.redis.connection.RedisProtocol` at a time. When it
closes, the client connects again at once, then after growing delays (0.1 s doubling up to
``reconnect_max_delay``, ±20 % jitter so that many nodes do not all knock at once); a connection counts
once its handshake is done and every subscription the client holds is confirmed on it. Listeners hear
:class:`ClientUp` and :class:`ClientDown`; an outage is logged once when it starts and once when it
ends, however many attempts fail in between.

Commands fail fast while there is no connection (:class:`txrealtime.redis.connection.RedisUnavailable`):
nothing is queued for later, so the caller decides what a command that could not be sent means. A
blocking command (``XREAD BLOCK``) would hold up every command behind it: run it on a client of its own,
:meth:`RedisClient.dedicated`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import gate
from .._observers import Observers, first
from .._reactor import cancel, default_reactor
from .connection import RedisProtocol, RedisUnavailable, connect
from .resp import ReplyError
from .url import RedisURL

__all__ = ["ClientDown", "ClientUp", "MessageHandler", "RedisClient"]

log = Logger(__name__, observer=gate)

MessageHandler = Callable[[bytes, bytes, "bytes | None"], object]
"""Called with the channel, the message and the pattern (``None`` unless it matched a ``PSUBSCRIBE``)."""

_KINDS = ("subscribe", "psubscribe", "ssubscribe")
_BATCH = 500


@dataclass(frozen=True, slots=True)
class ClientUp:
    """The client is connected, logged in and subscribed."""

    address: str
    """The server's ``host:port``."""


@dataclass(frozen=True, slots=True)
class ClientDown:
    """The client's connection closed (or could not be made); it reconnects by itself."""

    address: str
    """The server's ``host:port``."""
    reason: str
    """Why, for the log."""


def _chunks(kind: str, names: list[bytes]) -> list[list[bytes]]:
    # A shard channel at a time: in a cluster, one SSUBSCRIBE takes the channels of one slot only.
    size = 1 if kind == "ssubscribe" else _BATCH
    return [names[i : i + size] for i in range(0, len(names), size)]


class RedisClient:
    """One Redis server, reconnecting; :meth:`start` it, :meth:`stop` it.

    ``on_message(channel, message, pattern)`` hears every published message this client subscribed to
    (``subscribe``, ``psubscribe``, ``ssubscribe``); ``on_push`` every other push Redis sends unasked (in a
    cluster, the ``sunsubscribe`` of a shard channel whose slot moved); ``on_refused(kind, names, error)``
    every subscription Redis refused.
    """

    def __init__(
        self,
        url: str | RedisURL = "redis://127.0.0.1:6379",
        *,
        reactor: Any = None,
        name: str | None = None,
        reconnect_max_delay: float = 5.0,
        connect_timeout: float = 10.0,
        health_check_interval: float = 5.0,
        on_message: MessageHandler | None = None,
        on_push: Callable[[list[Any]], object] | None = None,
        on_refused: Callable[[str, list[bytes], Exception], object] | None = None,
    ) -> None:
        """A client of the server at ``url``, not connected until :meth:`start`.

        :param url: ``redis://[user:password@]host[:port][/db]`` (``rediss://`` for TLS), or a :class:`RedisURL`.
        :param reactor: The reactor it connects with; the global one if not given.
        :param name: The connection's name on the server (``CLIENT SETNAME``).
        :param reconnect_max_delay: The longest wait between two reconnection attempts.
        :param connect_timeout: Seconds a connection attempt may take.
        :param health_check_interval: Seconds between two health checks of the connection.
        :param on_message: Called with ``(channel, message, pattern)`` for every message subscribed to.
        :param on_push: Called with every other push Redis sends unasked.
        :param on_refused: Called with ``(kind, names, error)`` when Redis refuses a subscription.
        """
        self.url = url if isinstance(url, RedisURL) else RedisURL.parse(url)
        """Where the server is."""
        self.reactor = default_reactor(reactor)
        """The reactor it connects with."""
        self.name = name
        """The connection's name on the server, if any."""
        self.reconnect_max_delay = reconnect_max_delay
        """The longest wait between two reconnection attempts."""
        self.connect_timeout = connect_timeout
        """Seconds a connection attempt may take."""
        self.health_check_interval = health_check_interval
        """Seconds between two health checks of the connection."""
        self.on_message = on_message
        """Called with ``(channel, message, pattern)`` for every message subscribed to."""
        self.on_push = on_push
        """Called with every other push Redis sends unasked."""
        self.on_refused = on_refused
        """Called with the kind, the names and the error when Redis refuses a subscription (they are no longer
        held); unset, a warning is logged."""
        self.protocol: RedisProtocol | None = None
        """The connection, once ready (handshake done, subscriptions confirmed)."""
        self._subscriptions: dict[str, dict[bytes, None]] = {kind: {} for kind in _KINDS}
        self._events: Observers[ClientUp | ClientDown] = Observers(f"Redis client {self.url.address}")
        self._running = False
        self._attempt: Deferred[Any] | None = None
        self._retry: Any = None
        self._failures = 0
        self._down_since: str | None = None
        self._connecting: RedisProtocol | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is ready (commands are sent at once)."""
        return self.protocol is not None

    def start(self) -> None:
        """Connect, and keep reconnecting until :meth:`stop` (idempotent)."""
        if not self._running:
            self._running = True
            self._connect()

    def stop(self) -> Deferred[None]:
        """Close the connection and stop reconnecting; fires once it is closed. Pending commands fail."""
        self._running = False
        self._retry = cancel(self._retry)
        if self._attempt is not None:
            self._attempt.cancel()
        closing = [p for p in (self.protocol, self._connecting) if p is not None and not p.closed]
        waits: list[Deferred[None]] = []
        for protocol in closing:
            gone: Deferred[None] = Deferred()
            protocol.on_lost = lambda p, why, gone=gone: gone.callback(None)
            protocol.close()
            waits.append(gone)
        self._lost_ready()
        self._connecting = None
        return DeferredList(waits).addCallback(lambda _: None) if waits else succeed(None)

    def subscribe_events(self, listener: Callable[[ClientUp | ClientDown], object]) -> Callable[[], None]:
        """Call ``listener`` with :class:`ClientUp` / :class:`ClientDown`; returns a function that unsubscribes
        it."""
        return self._events.subscribe(listener)

    def when_connected(self) -> Deferred[None]:
        """Fire once connected (at once if it is); cancelling the result stops waiting."""
        if self.connected:
            return succeed(None)
        return first(self.subscribe_events, lambda event: isinstance(event, ClientUp))

    def dedicated(self, **changes: Any) -> RedisClient:
        """A new client of the same server with the same settings (``changes`` override them), and no
        subscriptions: for blocking commands, which would hold up the others. The caller starts and stops it."""
        settings: dict[str, Any] = {
            "reactor": self.reactor, "name": self.name, "reconnect_max_delay": self.reconnect_max_delay,
            "connect_timeout": self.connect_timeout, "health_check_interval": self.health_check_interval,
        }
        settings.update(changes)
        return RedisClient(self.url, **settings)

    def _connect(self) -> None:
        self._retry = None
        attempt = ensureDeferred(connect(
            self.url, self.reactor, name=self.name, timeout=self.connect_timeout,
            health_check_interval=self.health_check_interval,
        ))
        self._attempt = attempt
        attempt.addCallback(self._connected).addErrback(self._failed)

    def _connected(self, protocol: RedisProtocol) -> Deferred[None]:
        self._attempt = None
        self._connecting = protocol
        protocol.on_lost = self._lost
        protocol.on_push = self._push
        return ensureDeferred(self._subscribe_all(protocol))

    async def _subscribe_all(self, protocol: RedisProtocol) -> None:
        subscribing = []
        for kind in _KINDS:
            names = list(self._subscriptions[kind])
            for chunk in _chunks(kind, names):
                subscribing.append((kind, chunk, protocol.subscription(kind, chunk)))
        for kind, chunk, result in subscribing:
            try:
                await result
            except ReplyError as e:  # refused (in a cluster: MOVED, the slot is served elsewhere now)
                self._refused(kind, chunk, e)
        if protocol.closed:
            raise RedisUnavailable("the connection closed while subscribing")
        if not self._running:
            return
        self._connecting = None
        self.protocol = protocol
        if self._down_since is not None:
            log.info("Redis {address} reachable again after {attempts} failed attempts", address=self.url.address,
                     attempts=self._failures)
        self._failures = 0
        self._down_since = None
        self._events.publish(ClientUp(self.url.address))

    def _failed(self, failure: Failure) -> None:
        self._attempt = None
        protocol, self._connecting = self._connecting, None
        if protocol is not None and not protocol.closed:
            protocol.on_lost = None
            protocol.abort(f"not ready: {failure.getErrorMessage()}")
        if not self._running:
            return
        self._failures += 1
        reason = failure.getErrorMessage()
        if self._down_since is None:  # never connected yet: the first failure is news, the others are not
            self._down_since = reason
            log.warn(
                "Cannot reach Redis {address} ({reason}); retrying every {delay:g} s at most",
                address=self.url.address, reason=reason, delay=self.reconnect_max_delay,
            )
            self._events.publish(ClientDown(self.url.address, reason))
        self._schedule()

    def _schedule(self) -> None:
        delay = min(self.reconnect_max_delay, 0.1 * 2 ** (self._failures - 1))
        delay *= random.uniform(0.8, 1.2)
        self._retry = self.reactor.callLater(delay, self._connect)

    def _lost(self, protocol: RedisProtocol, why: str) -> None:
        if protocol is self._connecting:
            return  # _failed sees the handshake fail
        if protocol is not self.protocol:
            return
        self._lost_ready()
        self._down_since = why
        log.info("Redis {address}: connection lost ({why}), reconnecting", address=self.url.address, why=why)
        self._events.publish(ClientDown(self.url.address, why))
        if self._running:
            self._connect()

    def _lost_ready(self) -> None:
        self.protocol = None

    # -- commands ---------------------------------------------------------------------------------

    def execute(self, *args: bytes | str | int | float, timeout: float | None = None) -> Deferred[Any]:
        """Send one command (see :meth:`txrealtime.redis.connection.RedisProtocol.execute`); fails with
        :class:`txrealtime.redis.connection.RedisUnavailable` at once while not connected."""
        protocol = self.protocol
        if protocol is None:
            return fail(RedisUnavailable(f"not connected to Redis {self.url.address}"))
        return protocol.execute(*args, timeout=timeout)

    # -- subscriptions ----------------------------------------------------------------------------

    def subscribed(self, kind: str = "subscribe") -> list[bytes]:
        """The names this client holds for ``kind`` (``subscribe``, ``psubscribe`` or ``ssubscribe``)."""
        return list(self._subscriptions[kind])

    def subscribe(self, kind: str, names: Iterable[bytes | str]) -> Deferred[None]:
        """Hold ``names`` for ``kind`` from now on, across reconnections; the result fires once the current
        connection confirmed them (failing with ``RedisUnavailable`` while there is none: they are subscribed
        on the next)."""
        return self._change(kind, names, True)

    def unsubscribe(self, kind: str, names: Iterable[bytes | str]) -> Deferred[None]:
        """Stop holding ``names`` for ``kind`` (``subscribe``, ``psubscribe`` or ``ssubscribe``)."""
        return self._change(kind, names, False)

    def _change(self, kind: str, names: Iterable[bytes | str], add: bool) -> Deferred[None]:
        held = self._subscriptions[kind]
        changed = []
        for name in names:
            raw = name.encode() if isinstance(name, str) else name
            if (raw in held) != add:
                changed.append(raw)
                if add:
                    held[raw] = None
                else:
                    del held[raw]
        if not changed:
            return succeed(None)
        protocol = self.protocol
        if protocol is None:
            return fail(RedisUnavailable(f"not connected to Redis {self.url.address}"))
        command = kind if add else "un" + kind
        sent = []
        for chunk in _chunks(kind, changed):
            result = protocol.subscription(command, chunk)
            if add:
                result.addErrback(self._subscribe_failed, kind, chunk)
            sent.append(result)
        if len(sent) == 1:
            return sent[0]
        return DeferredList(sent, fireOnOneErrback=True, consumeErrors=True).addCallback(lambda _: None)

    def _subscribe_failed(self, failure: Failure, kind: str, names: list[bytes]) -> Failure:
        if failure.check(ReplyError):
            self._refused(kind, names, failure.value)
        return failure

    def _refused(self, kind: str, names: list[bytes], error: Any) -> None:
        self.forget(kind, names)
        if self.on_refused is not None:
            self.on_refused(kind, names, error)
        else:
            log.warn("Redis {address} refused to {kind} {count} names: {error}", address=self.url.address, kind=kind,
                     count=len(names), error=str(error))

    def forget(self, kind: str, names: Iterable[bytes]) -> None:
        """Stop holding ``names`` without telling Redis (which unsubscribed them already, or never subscribed
        them)."""
        held = self._subscriptions[kind]
        for name in names:
            held.pop(name, None)

    def _push(self, push: list[Any]) -> None:
        kind = push[0]
        on_message = self.on_message
        if kind == b"message" or kind == b"smessage":
            if on_message is not None and len(push) >= 3:
                on_message(push[1], push[2], None)
        elif kind == b"pmessage":
            if on_message is not None and len(push) >= 4:
                on_message(push[2], push[3], push[1])
        elif self.on_push is not None:
            self.on_push(push)
