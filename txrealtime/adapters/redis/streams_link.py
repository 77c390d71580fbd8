"""The link to Redis for the streams adapter: the classic link's two connections, and a third that reads
the stream.

A :class:`RedisStreamsLink` is a :class:`txrealtime.adapters.redis.RedisLink` (publish, subscribe,
reconnect, heartbeats, losses counted) that also adds entries to one stream (``XADD ... MAXLEN ~``) and
reads it on a connection of its own, as Node's ``@socket.io/redis-streams-adapter`` does: ``XREAD BLOCK``
in a loop, from the id of the last entry it read. When that connection comes back after an outage, the
reader goes on from that id, so a node cut off from Redis catches up on every entry still in the stream:
nothing is lost that was not trimmed meanwhile. The first read starts after the stream's last entry (as
Node's ``$``, but pinned to an id, so a reconnection before the first entry loses nothing either).

Entries go to the adapter of their namespace (:meth:`RedisStreamsLink.read_stream`), with their id: the
offset recovering clients are given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..._logging import Throttle, gate
from ..._reactor import cancel
from ...redis.client import ClientDown, ClientUp, RedisClient
from ...redis.connection import RedisUnavailable
from .link import RedisLink, _answered_within
from .streams_wire import DEFAULT_STREAM, SESSION_PREFIX, entry_id

__all__ = ["EntryHandler", "RedisStreamsLink"]

log = Logger(__name__, observer=gate)
_throttled = Throttle(log)

EntryHandler = Callable[[str, dict[bytes, bytes]], object]
"""Called with an entry's id and its fields."""


def entries_of(reply: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    """The entries of an ``XRANGE`` answer (or of one stream's part of an ``XREAD`` answer): ``(id, fields)``."""
    entries = []
    for item in reply or ():
        raw_id, flat = item[0], item[1] or []
        fields = {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}
        entries.append((raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id), fields))
    return entries


def _read_reply(reply: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    if not reply:
        return []
    streams = list(reply.values()) if isinstance(reply, dict) else [item[1] for item in reply]
    return entries_of(streams[0]) if streams else []


class RedisStreamsLink(RedisLink):
    """A process's link to Redis for :class:`txrealtime.adapters.redis.RedisStreamsAdapter`; share it between
    all namespaces (``Server(adapter=streams_adapter(link))``)."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379",
        *,
        key: str = "socket.io",
        stream_name: str = DEFAULT_STREAM,
        max_len: int = 10_000,
        read_count: int = 100,
        block_time: float = 5.0,
        session_key_prefix: str = SESSION_PREFIX,
        session_refresh: float = 5.0,
        **options: Any,
    ) -> None:
        """A link to the Redis at ``url``, not connected until :meth:`start`.

        :param url: ``redis://[user:password@]host[:port][/db]``, ``rediss://`` for TLS.
        :param key: The channels' prefix (Node's ``channelPrefix``).
        :param stream_name: The stream (Node's ``streamName``).
        :param max_len: About how many entries the stream keeps (``XADD MAXLEN ~``, Node's ``maxLen``): what
            a node cut off from Redis, or a recovering client, can still catch up on.
        :param read_count: The most entries one read takes (Node's ``readCount``).
        :param block_time: Seconds one read waits for entries (Node's ``blockTimeInMs``, in seconds).
        :param session_key_prefix: The prefix of kept sessions' keys (Node's ``sessionKeyPrefix``).
        :param session_refresh: Seconds between two writes of the sessions of connected sockets (with
            connection state recovery on): what a client recovers after its node was killed is at most this old
            (rooms are written as they change; ``data`` only then).
        :param options: :class:`txrealtime.adapters.redis.RedisLink`'s other options.
        """
        if max_len < 1 or read_count < 1 or block_time <= 0 or session_refresh <= 0:
            raise ValueError("max_len and read_count must be >= 1, block_time and session_refresh > 0")
        super().__init__(url, key=key, **options)
        self.stream_name = stream_name
        """The stream."""
        self.max_len = max_len
        """About how many entries the stream keeps."""
        self.read_count = read_count
        """The most entries one read takes."""
        self.block_time = block_time
        """Seconds one read waits for entries."""
        self.session_key_prefix = session_key_prefix
        """The prefix of kept sessions' keys."""
        self.session_refresh = session_refresh
        """Seconds between two writes of the sessions of connected sockets."""
        self.last_read: tuple[int, int] | None = None
        """The id of the last entry read (every entry up to it was handed to the adapters)."""
        self.entries_read = 0
        """Entries read from the stream."""
        self._handlers: dict[str, EntryHandler] = {}
        self._reader: RedisClient = self._pub.dedicated(name=f"txrealtime:{self.uid}:stream")
        self._reader.subscribe_events(self._reader_event)
        self._reading = False
        self._retry: Any = None
        self._waiting: list[Deferred[None]] = []
        self._pending: set[Deferred[Any]] = set()

    @property
    def connected(self) -> bool:
        """Whether the link is started, its three connections up and its subscriptions in place."""
        return super().connected and self._reader.connected

    def _start_clients(self) -> None:
        super()._start_clients()
        self._reader.start()

    def track(self, work: Deferred[Any]) -> Deferred[Any]:
        """Have :meth:`stop` wait (up to ``requests_timeout``) for ``work``, a restore half done: a session taken
        from Redis is either handed out or put back."""
        self._pending.add(work)

        def done(result: Any) -> Any:
            self._pending.discard(work)
            return result

        return work.addBoth(done)

    def stop(self) -> Deferred[Any]:
        """Wait for the restores under way (up to ``requests_timeout``), then stop as the classic link does."""
        if not self._pending:
            return super().stop()
        waiting = DeferredList(list(self._pending), consumeErrors=True).addCallback(lambda _: None)
        return _answered_within(waiting, self.requests_timeout, self.reactor).addCallback(
            lambda _: super(RedisStreamsLink, self).stop()
        )

    def _stop_clients(self) -> Deferred[Any]:
        self._retry = cancel(self._retry)
        return DeferredList([super()._stop_clients(), self._reader.stop()], consumeErrors=True)

    # -- the stream ------------------------------------------------------------------------------

    @property
    def reading(self) -> bool:
        """Whether the link is connected and knows where it reads the stream from (what it has delivered)."""
        return self.connected and self.last_read is not None

    def when_reading(self, timeout: float) -> Deferred[None]:
        """Fire once :attr:`reading` (at once if it is); fail with ``TimeoutError`` after ``timeout`` seconds."""
        if self.reading:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiting.append(waiter)

        def expire() -> None:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
                waiter.errback(TimeoutError(f"the stream was not read within {timeout} s"))

        timer = self.reactor.callLater(timeout, expire)
        return waiter.addBoth(lambda result: (cancel(timer), result)[1])

    def _state_changed(self, reason: str = "", hearing: bool | None = None) -> None:
        super()._state_changed(reason, hearing)
        self._wake()

    def _wake(self) -> None:
        if self._waiting and self.reading:
            waiting, self._waiting = self._waiting, []
            for waiter in waiting:
                waiter.callback(None)

    def read_stream(self, nsp: str, handler: EntryHandler | None) -> None:
        """Hand each entry of namespace ``nsp`` to ``handler`` (``None``: stop)."""
        if handler is None:
            self._handlers.pop(nsp, None)
        else:
            self._handlers[nsp] = handler

    def _reader_event(self, event: ClientUp | ClientDown) -> None:
        self._state_changed(event.reason if isinstance(event, ClientDown) else "", None)
        if isinstance(event, ClientUp) and not self._reading:
            self._poll()

    def _poll(self) -> None:
        self._retry = None
        if not self._started or not self._reader.connected:
            self._reading = False
            return
        self._reading = True
        if self.last_read is None:
            d = self._reader.execute("XREVRANGE", self.stream_name, "+", "-", "COUNT", 1)
            d.addCallback(self._start_after)
        else:
            d = self._read()
        d.addCallbacks(lambda _: self._poll(), self._read_failed)

    def _start_after(self, reply: Any) -> Deferred[None]:
        last = entries_of(reply)
        self.last_read = (entry_id(last[0][0]) if last else None) or (0, 0)
        self._wake()
        return self._read()

    def _read(self) -> Deferred[None]:
        offset = f"{self.last_read[0]}-{self.last_read[1]}" if self.last_read else "$"
        d = self._reader.execute(
            "XREAD", "COUNT", self.read_count, "BLOCK", int(self.block_time * 1000), "STREAMS", self.stream_name,
            offset, timeout=self.block_time + 10.0,
        )
        return d.addCallback(self._entries)

    def _entries(self, reply: Any) -> None:
        for raw_id, fields in _read_reply(reply):
            parsed = entry_id(raw_id)
            if parsed is None:
                continue
            self.last_read = parsed
            self.entries_read += 1
            nsp = fields.get(b"nsp")
            handler = self._handlers.get(nsp.decode("utf-8", "replace")) if isinstance(nsp, bytes) else None
            if handler is not None:
                try:
                    handler(raw_id, fields)
                except Exception:
                    log.failure("Handling stream entry {id} failed", id=raw_id)

    def _read_failed(self, failure: Failure) -> None:
        self._reading = False
        if failure.check(RedisUnavailable) and not self._reader.connected:
            return  # the reader's ClientUp starts reading again, from the last entry read
        if self._started:
            _throttled.warn("Reading the stream failed ({error}): again in 1 s", error=failure.getErrorMessage())
            self._reading = True
            self._retry = self.reactor.callLater(1.0, self._poll)

    # -- commands --------------------------------------------------------------------------------

    def command(self, *args: bytes | str | int | float) -> Deferred[Any]:
        """Send one command on the publishing connection (answers come in order); fails with
        :class:`txrealtime.redis.connection.RedisUnavailable` while the link is not connected."""
        if not self._started or not self._pub.connected:
            return fail(RedisUnavailable("Redis is unreachable"))
        return self._pub.execute(*args)

    def add(self, fields: list[tuple[str, str]]) -> Deferred[str]:
        """Add an entry to the stream (trimmed to about :attr:`max_len` entries); fires with its id, or fails
        (counted in :attr:`RedisLink.undelivered`)."""
        flat = [part for pair in fields for part in pair]
        if not self._can_publish(self.stream_name):
            self.outage.dropped(why="stopped" if self._stopped else "unreachable")
            return fail(RedisUnavailable("Redis is unreachable: entry not added"))
        d = self._pub.execute("XADD", self.stream_name, "MAXLEN", "~", self.max_len, "*", *flat)
        return d.addCallbacks(lambda reply: reply.decode() if isinstance(reply, bytes) else str(reply),
                              self._unconfirmed)

    def entries(self, start: str, end: str, count: int) -> Deferred[list[tuple[str, dict[bytes, bytes]]]]:
        """Up to ``count`` entries from ``start`` to ``end`` (``XRANGE``, both included)."""
        return self.command("XRANGE", self.stream_name, start, end, "COUNT", count).addCallback(entries_of)
