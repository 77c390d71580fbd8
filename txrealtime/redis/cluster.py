"""Redis Cluster: the slot map, a client per master, commands sent where their key lives, sharded pub/sub.

:class:`ClusterClient` discovers the cluster from any one node (``CLUSTER SHARDS``, or ``CLUSTER SLOTS``
before Redis 7; :mod:`txrealtime.redis.slots` reads them) and keeps a
:class:`txrealtime.redis.client.RedisClient` per master for commands, another per master for the shard
channels it serves, both opened as soon as the master is known. (A single Redis, not in cluster mode, is
taken as a cluster of one node serving every slot: sharded pub/sub works there too.) A command with a key
goes to the master of the key's slot:

- ``MOVED slot host:port``: the map is corrected for that slot, the whole map fetched again soon, and the
  command sent there;
- ``ASK slot host:port`` (a slot being migrated): ``ASKING`` then the command, on that node, once;
- ``TRYAGAIN`` and ``CLUSTERDOWN``: sent again after a short pause;
- a master that cannot be reached: the map is fetched again (a replica may have taken over) and the
  command retried; after ``max_redirects`` tries the error is the caller's.

Shard channels (``SSUBSCRIBE``) are held on the master of their slot. When Redis unsubscribes one (its
slot moved: Redis sends ``sunsubscribe``), refuses one (``MOVED``), or the master is lost, the map is
fetched again and the channel subscribed where it lives now. The map is also fetched every
``refresh_interval`` seconds, which notices failovers nobody told us about.

:attr:`ClusterClient.connected` is true while every master is connected and every shard channel is
subscribed where it lives; listeners hear :class:`ClusterUp` and :class:`ClusterDown` as that changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from twisted.internet.defer import Deferred, ensureDeferred, fail, gatherResults, succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import gate
from .._observers import Observers, first
from .._reactor import cancel, default_reactor
from .client import ClientDown, ClientUp, MessageHandler, RedisClient
from .connection import RedisUnavailable, connect
from .resp import ReplyError
from .slots import SLOTS, Address, SlotMap, key_slot, parse_redirect
from .url import RedisURL

__all__ = ["ClusterClient", "ClusterDown", "ClusterUp"]

log = Logger(__name__, observer=gate)

_UNREACHABLE_TRIES = 3
"""Tries of a command whose master cannot be reached (a fresh map between them: a replica may take over)."""


@dataclass(frozen=True, slots=True)
class ClusterUp:
    """Every master is connected and every shard channel subscribed where it lives."""

    masters: int
    """How many masters there are."""


@dataclass(frozen=True, slots=True)
class ClusterDown:
    """A master, or a shard channel's subscription, was lost; the client recovers by itself."""

    reason: str
    """Why, for the log."""


class ClusterClient:
    """A Redis Cluster reached through any of its nodes (``url``); :meth:`start` it, :meth:`stop` it.

    ``on_message(channel, message, None)`` hears every message of the shard channels held with
    :meth:`ssubscribe`.
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
        refresh_interval: float = 30.0,
        max_redirects: int = 16,
        on_message: MessageHandler | None = None,
    ) -> None:
        """A client of the cluster one of whose nodes is at ``url``, not connected until :meth:`start`.

        :param url: ``redis://[user:password@]host[:port]`` of any node (``rediss://`` for TLS), or a
            :class:`RedisURL`; database 0 only.
        :param reactor: The reactor it connects with; the global one if not given.
        :param name: The connections' name on the servers (``CLIENT SETNAME``).
        :param reconnect_max_delay: The longest wait between two reconnection attempts.
        :param connect_timeout: Seconds a connection attempt may take.
        :param health_check_interval: Seconds between two health checks of each connection.
        :param refresh_interval: Seconds between two readings of the slot map when nothing prompts one.
        :param max_redirects: How many times a command may be redirected or retried.
        :param on_message: Called with ``(channel, message, None)`` for every message of the shard channels held.
        """
        self.url = url if isinstance(url, RedisURL) else RedisURL.parse(url)
        """The node the cluster is discovered from (its credentials and TLS serve for every node)."""
        if self.url.db:
            raise ValueError("a Redis Cluster has database 0 only")
        self.reactor = default_reactor(reactor)
        """The reactor it connects with."""
        self.name = name
        """The connections' name on the servers, if any."""
        self.reconnect_max_delay = reconnect_max_delay
        """The longest wait between two reconnection attempts."""
        self.connect_timeout = connect_timeout
        """Seconds a connection attempt may take."""
        self.health_check_interval = health_check_interval
        """Seconds between two health checks of each connection."""
        self.refresh_interval = refresh_interval
        """Seconds between two readings of the slot map when nothing prompts one."""
        self.max_redirects = max_redirects
        """How many times a command may be redirected or retried."""
        self.on_message = on_message
        """Called with ``(channel, message, None)`` for every message of the shard channels held."""
        self.slots: SlotMap | None = None
        """The slot map in use (``None`` until the cluster answered)."""
        self.refreshes = 0
        """Times the slot map was fetched."""
        self._nodes: dict[Address, RedisClient] = {}
        self._subscribers: dict[Address, RedisClient] = {}
        self._channels: dict[bytes, Address | None] = {}
        self._events: Observers[ClusterUp | ClusterDown] = Observers("Redis Cluster client")
        self._running = False
        self._up = False
        self._refreshing: Deferred[None] | None = None
        self._current: list[Deferred[None]] = []
        self._next: list[Deferred[None]] = []
        self._moving: set[bytes] = set()
        self._timer: Any = None
        self._failures = 0

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether every master is connected and no shard channel is being moved to where it lives now."""
        if self.slots is None or not self._nodes or self._moving:
            return False
        clients = (*self._nodes.values(), *self._subscribers.values())
        return all(c.connected for c in clients)

    def reaches(self, slot: int) -> bool:
        """Whether the master of ``slot`` is connected (a command for it goes out at once)."""
        address = self.slots.owner(slot) if self.slots is not None else None
        client = self._nodes.get(address) if address is not None else None
        return client is not None and client.connected

    def masters(self) -> list[Address]:
        """The masters, as the slot map names them."""
        return self.slots.masters() if self.slots is not None else []

    def start(self) -> None:
        """Discover the cluster and connect to its masters; keep at it until :meth:`stop` (idempotent)."""
        if not self._running:
            self._running = True
            self.refresh()

    def stop(self) -> Deferred[None]:
        """Close every connection and stop reconnecting."""
        self._running = False
        self._timer = cancel(self._timer)
        clients = [*self._nodes.values(), *self._subscribers.values()]
        self._nodes, self._subscribers = {}, {}
        self._set_up(False, "stopped")
        return gatherResults([c.stop() for c in clients]).addCallback(lambda _: None)

    def subscribe_events(self, listener: Callable[[ClusterUp | ClusterDown], object]) -> Callable[[], None]:
        """Call ``listener`` with :class:`ClusterUp` / :class:`ClusterDown`; returns a function that unsubscribes
        it."""
        return self._events.subscribe(listener)

    def when_connected(self) -> Deferred[None]:
        """Fire once :attr:`connected` (at once if it is); cancelling the result stops waiting."""
        if self.connected:
            return succeed(None)
        return first(self.subscribe_events, lambda event: isinstance(event, ClusterUp))

    def _set_up(self, up: bool, reason: str = "") -> None:
        if up != self._up:
            self._up = up
            self._events.publish(ClusterUp(len(self._nodes)) if up else ClusterDown(reason))

    def _check(self, reason: str = "") -> None:
        self._set_up(self._running and self.connected, reason)

    # -- the slot map -----------------------------------------------------------------------------

    def refresh(self) -> Deferred[None]:
        """Fetch the slot map again, then connect to new masters, drop old ones and move shard channels where
        their slots live now. Fires once a map fetched after this call is in use (one fetch serves every
        caller meanwhile), or fails with why no node answered."""
        done: Deferred[None] = Deferred()
        if self._refreshing is not None:
            self._next.append(done)  # the fetch under way may have read the map before what prompted this call
            return done
        self._timer = cancel(self._timer)
        self._current = [done]
        self._refreshing = ensureDeferred(self._refresh())
        self._refreshing.addBoth(self._refreshed)
        return done

    def _refreshed(self, result: object) -> None:
        self._refreshing = None
        waiting, self._current = self._current, []
        for d in waiting:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(None)
        if not self._running:
            return
        if isinstance(result, Failure):
            self._failures += 1
            if self._failures == 1:
                log.warn("Cannot read the Redis Cluster's slot map from {url} or its masters ({error}); retrying",
                         url=self.url.address, error=result.getErrorMessage())
            delay = min(self.reconnect_max_delay, 0.1 * 2 ** (self._failures - 1))
            self._timer = self.reactor.callLater(delay, self._refresh_soon)
        else:
            self._failures = 0
            self._timer = self.reactor.callLater(self.refresh_interval, self._refresh_soon)
        if self._next:
            following, self._next = self._next, []
            self._timer = cancel(self._timer)
            self.refresh().chainDeferred(_fan_out(following))

    async def _refresh(self) -> None:
        slots = await self._discover()
        if not self._running:
            return
        self.slots = slots
        self.refreshes += 1
        masters = set(slots.masters())
        for address in masters - set(self._nodes):
            self._nodes[address] = self._client(address, subscriber=False)
        for address in set(self._nodes) - masters:
            self._nodes.pop(address).stop()
        for address in masters - set(self._subscribers):
            # Ready before any channel needs it: a new shard channel is then one round trip from subscribed.
            self._subscribers[address] = self._client(address, subscriber=True)
        self._place()
        for address in set(self._subscribers) - masters:
            self._subscribers.pop(address).stop()
        self._check("the slot map changed")

    async def _discover(self) -> SlotMap:
        errors = []
        for address, client in list(self._nodes.items()):
            if client.connected:
                try:
                    return await self._ask_map(client.execute, address)
                except Exception as e:
                    errors.append(str(e))
        for url in dict.fromkeys([self.url, *(self.url.at(*a) for a in self._nodes)]):
            try:
                protocol = await connect(url, self.reactor, name=self.name, timeout=self.connect_timeout,
                                         health_check_interval=self.health_check_interval)
            except Exception as e:
                errors.append(f"{url.address}: {e}")
                continue
            try:
                return await self._ask_map(protocol.execute, (url.host, url.port))
            except Exception as e:
                errors.append(f"{url.address}: {e}")
            finally:
                protocol.close()
        raise RedisUnavailable("; ".join(errors) or "no node to ask")

    @staticmethod
    async def _ask_map(execute: Callable[..., Deferred[Any]], address: Address) -> SlotMap:
        try:
            return SlotMap.from_shards(await execute("CLUSTER", "SHARDS"), address)
        except ReplyError as e:
            if "cluster support disabled" in e.message:  # one Redis, not a cluster: it serves every slot
                return SlotMap([(0, SLOTS - 1, address)])
            if "unknown subcommand" not in e.message.lower():
                raise
        return SlotMap.from_slots(await execute("CLUSTER", "SLOTS"), address)

    def _refresh_soon(self) -> None:
        if self._running:
            self.refresh().addErrback(lambda _: None)


    # -- node clients -----------------------------------------------------------------------------

    def _client(self, address: Address, subscriber: bool) -> RedisClient:
        client = RedisClient(
            self.url.at(*address), reactor=self.reactor, name=self.name, reconnect_max_delay=self.reconnect_max_delay,
            connect_timeout=self.connect_timeout, health_check_interval=self.health_check_interval,
            on_message=self._message if subscriber else None,
            on_push=(lambda push: self._pushed(address, push)) if subscriber else None,
            on_refused=(lambda kind, names, error: self._refused(address, names, error)) if subscriber else None,
        )
        client.subscribe_events(lambda event: self._node_event(address, client, event))
        client.start()
        return client

    def _node_event(self, address: Address, client: RedisClient, event: ClientUp | ClientDown) -> None:
        if isinstance(event, ClientDown):
            self._check(f"{event.address}: {event.reason}")
            self._refresh_soon()  # a replica may be taking over
            return
        for channel in client.subscribed("ssubscribe"):  # confirmed on the new connection
            if self._channels.get(channel) == address:
                self._moving.discard(channel)
        self._check()

    def _message(self, channel: bytes, message: bytes, pattern: bytes | None) -> None:
        if self.on_message is not None:
            self.on_message(channel, message, pattern)

    # -- commands ---------------------------------------------------------------------------------

    def execute(self, *args: bytes | str | int | float, key: bytes | str | None = None,
                timeout: float | None = None) -> Deferred[Any]:
        """Send a command to the master of ``key``'s slot (any master without a key), following redirections."""
        slot = key_slot(key) if key is not None else None
        address = self._owner(slot)
        client = self._nodes.get(address) if address is not None else None
        if client is None or not client.connected:
            return ensureDeferred(self._retry(args, slot, timeout, None))
        d: Deferred[Any] = client.execute(*args, timeout=timeout)
        d.addErrback(self._failed, args, slot, timeout, address)
        return d

    def _owner(self, slot: int | None) -> Address | None:
        if self.slots is None:
            return None
        if slot is not None:
            return self.slots.owner(slot)
        for address, client in self._nodes.items():
            if client.connected:
                return address
        return next(iter(self._nodes), None)

    def _failed(self, failure: Failure, args: tuple[Any, ...], slot: int | None, timeout: float | None,
                address: Address | None) -> Any:
        if failure.check(ReplyError, RedisUnavailable) is None:
            return failure
        return ensureDeferred(self._retry(args, slot, timeout, failure.value, address))

    async def _retry(self, args: tuple[Any, ...], slot: int | None, timeout: float | None,
                     error: BaseException | None, address: Address | None = None) -> Any:
        asking: Address | None = None
        unreachable = 0
        for attempt in range(self.max_redirects):
            if error is not None:
                asking = None
                redirect = parse_redirect(error.args[0], address) if isinstance(error, ReplyError) and address else None
                if redirect is not None and redirect.kind == "ASK":
                    asking = redirect.address
                elif redirect is not None:
                    if self.slots is not None:
                        self.slots.move(redirect.slot, redirect.address)
                    if redirect.address not in self._nodes:
                        await self._fresh_map()
                    else:
                        self._refresh_soon()
                elif isinstance(error, ReplyError) and error.code not in ("TRYAGAIN", "CLUSTERDOWN"):
                    raise error
                else:  # unreachable (a failover may be under way), or the cluster is busy: a pause, a fresh map
                    if isinstance(error, RedisUnavailable):
                        unreachable += 1
                        if unreachable >= _UNREACHABLE_TRIES:
                            raise error
                    await deferLater(self.reactor, min(1.0, 0.05 * 2**attempt), lambda: None)
                    await self._fresh_map()
            elif self.slots is None:
                await self._fresh_map()
            address = asking or self._owner(slot)
            client = self._nodes.get(address) if address is not None else None
            if client is None and address is not None and asking:
                client = self._nodes[address] = self._client(address, subscriber=False)  # dropped at the next map
            if client is None:
                error = RedisUnavailable(f"no master serves slot {slot}")
                continue
            try:
                if asking:
                    client.execute("ASKING").addErrback(lambda _: None)
                return await client.execute(*args, timeout=timeout)
            except (ReplyError, RedisUnavailable) as e:
                error = e
        assert error is not None
        raise error

    async def _fresh_map(self) -> None:
        try:
            await self.refresh()
        except Exception:  # no node answered: the command's own error says more
            pass

    def dedicated(self, key: bytes | str) -> RedisClient:
        """A new client of the master serving ``key``'s slot now, for blocking commands on that key (``XREAD
        BLOCK``): it does not follow the slot if it moves (its commands then fail with ``MOVED``; make another).
        The caller starts and stops it. ``RedisUnavailable`` while the slot map is not known."""
        address = self._owner(key_slot(key))
        if address is None:
            raise RedisUnavailable("the Redis Cluster's slot map is not known yet")
        return RedisClient(
            self.url.at(*address), reactor=self.reactor, name=self.name, reconnect_max_delay=self.reconnect_max_delay,
            connect_timeout=self.connect_timeout, health_check_interval=self.health_check_interval,
        )

    def execute_on_masters(self, *args: bytes | str | int | float) -> Deferred[list[Any]]:
        """Send a command to every master; the replies, in the order of :meth:`masters`."""
        if self.slots is None:
            return fail(RedisUnavailable("the Redis Cluster's slot map is not known yet"))
        results = []
        for address in self.masters():
            client = self._nodes.get(address)
            if client is None:
                return fail(RedisUnavailable(f"not connected to {address[0]}:{address[1]}"))
            results.append(client.execute(*args))
        return gatherResults(results, consumeErrors=True).addErrback(_first_error)

    # -- shard channels ---------------------------------------------------------------------------

    def ssubscribe(self, channels: Iterable[bytes | str]) -> None:
        """Hold ``channels`` (shard channels) from now on, on the master of each one's slot."""
        for channel in channels:
            raw = channel.encode() if isinstance(channel, str) else channel
            if raw not in self._channels:
                self._channels[raw] = None
        self._place()

    def sunsubscribe(self, channels: Iterable[bytes | str]) -> None:
        """Stop holding ``channels``."""
        for channel in channels:
            raw = channel.encode() if isinstance(channel, str) else channel
            placed = self._channels.pop(raw, None)
            self._moving.discard(raw)
            subscriber = self._subscribers.get(placed) if placed is not None else None
            if subscriber is not None:
                subscriber.unsubscribe("ssubscribe", [raw]).addErrback(lambda _: None)
        self._check()

    def shard_channels(self) -> list[bytes]:
        """The shard channels held."""
        return list(self._channels)

    def _place(self) -> None:
        """Subscribe each shard channel on the master of its slot (where the map says it lives now)."""
        slots = self.slots
        if slots is None or not self._running:
            return
        for channel, placed in list(self._channels.items()):
            owner = slots.owner(key_slot(channel))
            if owner == placed:
                continue
            old = self._subscribers.get(placed) if placed is not None else None
            if old is not None:
                self._moving.add(channel)
                old.unsubscribe("ssubscribe", [channel]).addErrback(lambda _: None)
            self._channels[channel] = owner
            if owner is None:
                continue
            subscriber = self._subscribers.get(owner)
            if subscriber is None:
                subscriber = self._subscribers[owner] = self._client(owner, subscriber=True)
            subscriber.subscribe("ssubscribe", [channel]).addCallbacks(
                self._placed, lambda _: None, callbackArgs=(channel, owner)
            )

    def _placed(self, _: object, channel: bytes, owner: Address) -> None:
        if self._channels.get(channel) == owner:
            self._moving.discard(channel)
            self._check()

    def _unplace(self, address: Address, channels: Iterable[bytes], why: str) -> None:
        subscriber = self._subscribers.get(address)
        for channel in channels:
            if self._channels.get(channel) == address:
                self._channels[channel] = None
                self._moving.add(channel)
            if subscriber is not None:
                subscriber.forget("ssubscribe", [channel])
        self._check(why)
        self._refresh_soon()

    def _pushed(self, address: Address, push: list[Any]) -> None:
        if push and push[0] == b"sunsubscribe" and len(push) > 1 and push[1] in self._channels:
            self._unplace(address, [push[1]], "Redis moved a shard channel's slot")

    def _refused(self, address: Address, names: list[bytes], error: Exception) -> None:
        redirect = parse_redirect(str(error.args[0]) if error.args else "", address)
        if redirect is not None and redirect.kind == "MOVED" and self.slots is not None:
            self.slots.move(redirect.slot, redirect.address)
        self._unplace(address, names, f"{address[0]}:{address[1]} refused a shard channel: {error}")


def _fan_out(waiting: list[Deferred[None]]) -> Deferred[None]:
    """A Deferred whose result goes to each of ``waiting``."""
    source: Deferred[None] = Deferred()

    def fire(result: object) -> None:
        for d in waiting:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(None)

    source.addBoth(fire)
    return source


def _first_error(failure: Failure) -> Failure:
    """The failure inside a ``gatherResults`` failure."""
    sub: Failure = cast(Any, failure.value).subFailure
    return sub
