"""One connection to a Redis server: commands pipelined, a ``Deferred`` per reply, pub/sub pushes.

:class:`RedisProtocol` writes each command at once (RESP, :mod:`txrealtime.redis.resp`) and keeps a queue of
what it waits for: Redis answers in order, so each reply settles the oldest entry. Subscription commands
(``SUBSCRIBE``, ``PSUBSCRIBE``, ``SSUBSCRIBE`` and their ``UN`` forms) are answered by one confirmation per
name instead (a push), or by one error; their entry settles once every name is confirmed. Messages
(``message``, ``pmessage``, ``smessage``) and unasked pushes (Redis Cluster unsubscribes a shard channel
whose slot moved) go to :attr:`RedisProtocol.on_push`.

:meth:`RedisProtocol.handshake` speaks RESP3 (``HELLO 3``, with ``AUTH`` and ``SETNAME``) and falls back to
RESP2 (``AUTH``) for servers older than Redis 6; then ``SELECT``. Under RESP2 a connection that has
subscribed carries subscription commands and ``PING`` only, as Redis requires; under RESP3 anything.

A health check runs every ``health_check_interval`` seconds: a reply still awaited after a whole interval
(or past the deadline a command was given) aborts the connection, and an idle connection sends ``PING`` —
so a subscriber whose server or network vanished without closing the socket is noticed within two or
three intervals, not never.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import Deferred, fail
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import Throttle, gate
from .._reactor import Clock, cancel, now
from .resp import PUSH_TYPES, ProtocolError, Reader, ReplyError, encode_command, new_reader, replies
from .url import RedisURL

__all__ = ["CONFIRMATIONS", "MESSAGES", "RedisProtocol", "RedisUnavailable", "connect"]

log = Logger(__name__, observer=gate)
_throttled = Throttle(log)

CONFIRMATIONS = frozenset(
    {b"subscribe", b"psubscribe", b"ssubscribe", b"unsubscribe", b"punsubscribe", b"sunsubscribe"}
)
"""The kinds of push that confirm a subscription command, one per name."""

MESSAGES = frozenset({b"message", b"pmessage", b"smessage"})
"""The kinds of push that carry a published message."""

_RESP2_SUBSCRIBED = frozenset({b"SUBSCRIBE", b"PSUBSCRIBE", b"SSUBSCRIBE", b"UNSUBSCRIBE", b"PUNSUBSCRIBE",
                               b"SUNSUBSCRIBE", b"PING", b"QUIT", b"RESET"})


class RedisUnavailable(ConnectionError):
    """Redis cannot be reached right now (not connected, or the connection closed before the answer)."""


class _Waiting:
    """A command awaiting its reply, or a subscription command awaiting its confirmations."""

    __slots__ = ("confirm", "deadline", "names", "result")

    def __init__(self, result: Deferred[Any], confirm: bytes | None, names: list[bytes], deadline: float | None):
        self.result = result
        self.confirm = confirm
        self.names = names
        self.deadline = deadline


def _name(args: tuple[Any, ...]) -> bytes:
    first = args[0]
    return (first.encode() if isinstance(first, str) else bytes(first)).upper()


class RedisProtocol(Protocol):
    """One Redis connection. Its owner sets :attr:`on_push` and :attr:`on_lost`, then calls :meth:`handshake`."""

    def __init__(self, clock: Clock, health_check_interval: float = 5.0, reader: Reader | None = None) -> None:
        """A connection not made yet (Twisted calls ``makeConnection``).

        :param clock: The reactor, or a ``Clock``, that times the health check.
        :param health_check_interval: Seconds between two health checks.
        :param reader: The RESP reader (hiredis's when installed, if not given).
        """
        self.clock = clock
        """What times the health check."""
        self.health_check_interval = health_check_interval
        """Seconds between two health checks."""
        self.resp = 3
        """The protocol version in use: 3, or 2 after falling back."""
        self.server: dict[Any, Any] = {}
        """What ``HELLO`` told about the server (``version``, ``mode``: ``standalone`` or ``cluster`` ...)."""
        self.on_push: Callable[[list[Any]], object] | None = None
        """Called with every message and every push that confirms nothing this connection asked for."""
        self.on_lost: Callable[[RedisProtocol, str], object] | None = None
        """Called once the connection closed, with why."""
        self.closed = False
        """Whether the connection closed (or is closing): commands fail at once."""
        self._reader = reader if reader is not None else new_reader()
        self._waiting: deque[_Waiting] = deque()
        self._subscriber = False
        self._checked: _Waiting | None = None
        self._timer: Any = None
        self._transport: Any = None
        self._write: Callable[[bytes], object] = self._not_connected

    # -- the connection ---------------------------------------------------------------------

    def connectionMade(self) -> None:
        self._transport = cast(Any, self.transport)
        self._write = self._transport.write
        self._timer = self.clock.callLater(self.health_check_interval, self._check)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed = True
        self._timer = cancel(self._timer)
        why = reason.getErrorMessage()
        waiting, self._waiting = self._waiting, deque()
        for entry in waiting:
            entry.result.errback(RedisUnavailable(f"the connection to Redis closed before the answer ({why})"))
        if self.on_lost is not None:
            self.on_lost(self, why)

    @staticmethod
    def _not_connected(data: bytes) -> None:
        raise RedisUnavailable("not connected yet")

    def abort(self, why: str) -> None:
        """Close the connection at once (pending commands fail), logging why."""
        if not self.closed:
            _throttled.info("Redis connection to {peer} aborted: {why}", peer=self._peer(), why=why)
            self.closed = True
            self._transport.abortConnection()

    def _peer(self) -> str:
        peer = self._transport.getPeer()
        return f"{peer.host}:{peer.port}" if hasattr(peer, "port") else str(peer)

    def close(self) -> None:
        """Close the connection once what was written is sent (pending commands fail)."""
        self._transport.loseConnection()

    def _check(self) -> None:
        self._timer = self.clock.callLater(self.health_check_interval, self._check)
        head = self._waiting[0] if self._waiting else None
        if head is None:
            self._checked = None
            self.execute("PING").addErrback(lambda _: None)
            return
        if head.deadline is None:
            late = head is self._checked
        else:
            late = now(self.clock) > head.deadline
        self._checked = head
        if late:
            self.abort(f"no answer within {self.health_check_interval:g} s")

    # -- commands -------------------------------------------------------------------------------

    def execute(self, *args: bytes | str | int | float, timeout: float | None = None) -> Deferred[Any]:
        """Send one command; the result fires with its reply, or fails with :class:`ReplyError` (Redis's
        error) or :class:`RedisUnavailable` (the connection closed first).

        ``timeout`` (seconds) replaces the health check's patience for this command: a blocking command
        (``XREAD BLOCK 5000``) gives its own time plus a margin; ``math.inf`` waits for ever.
        """
        if self.closed:
            return fail(RedisUnavailable("the connection to Redis is closed"))
        if self.resp == 2 and self._subscriber and _name(args) not in _RESP2_SUBSCRIBED:
            return fail(ValueError("a RESP2 connection that subscribed only takes subscription commands"))
        result: Deferred[Any] = Deferred()
        deadline = None if timeout is None else now(self.clock) + timeout
        self._waiting.append(_Waiting(result, None, [], deadline))
        self._write(encode_command(args))
        return result

    def subscription(self, kind: str, names: list[bytes]) -> Deferred[None]:
        """Send ``kind`` (``subscribe``, ``psubscribe``, ``ssubscribe``, or an ``un`` form) for ``names`` (at
        least one); the result fires once Redis confirmed every one, or fails with its error."""
        if self.closed:
            return fail(RedisUnavailable("the connection to Redis is closed"))
        if not names:
            raise ValueError("subscribe to at least one name")
        self._subscriber = True
        result: Deferred[None] = Deferred()
        self._waiting.append(_Waiting(result, kind.lower().encode(), list(names), None))
        self._write(encode_command([kind.upper(), *names]))
        return result

    # -- replies ------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        try:
            for reply in replies(self._reader, data):
                if self.closed:
                    return
                if type(reply) in PUSH_TYPES or (
                    self.resp == 2 and self._subscriber and type(reply) is list and reply and reply[0] in _KINDS
                ):
                    self._push(reply)
                else:
                    self._reply(reply)
        except ProtocolError as e:
            self.abort(f"what Redis sent is not RESP ({e})")

    def _reply(self, reply: Any) -> None:
        if not self._waiting:
            self.abort("a reply to no command")
            return
        head = self._waiting[0]
        if head.confirm is not None and not isinstance(reply, ReplyError):
            self.abort("a reply where subscription confirmations were expected")
            return
        self._waiting.popleft()
        if isinstance(reply, ReplyError):
            head.result.errback(reply)
        else:
            head.result.callback(reply)

    def _push(self, push: list[Any]) -> None:
        kind = push[0] if push else None
        if kind in CONFIRMATIONS and self._waiting:
            head = self._waiting[0]
            name = push[1] if len(push) > 1 else None
            if head.confirm == kind and name in head.names:
                head.names.remove(name)
                if not head.names:
                    self._waiting.popleft()
                    head.result.callback(None)
                return
            if head.confirm == kind and name is None and kind.startswith(b"un"):
                return  # "unsubscribe" from nothing: Redis confirms with a null name
        if self.on_push is not None:
            self.on_push(push)

    # -- the handshake --------------------------------------------------------------------------

    async def handshake(self, url: RedisURL, name: str | None = None) -> None:
        """Log in and choose the protocol: ``HELLO 3`` (RESP3), or RESP2 where the server predates it;
        then ``SELECT`` the URL's database. Raises Redis's error (wrong password ...)."""
        hello: list[bytes | str | int | float] = ["HELLO", 3]
        if url.password is not None:
            hello += ["AUTH", url.username or "default", url.password]
        if name:
            hello += ["SETNAME", name]
        try:
            reply = await self.execute(*hello)
        except ReplyError as e:
            if e.code != "NOPROTO" and "unknown command" not in e.message.lower():
                raise
            self.resp = 2
            if url.password is not None:
                user = [url.username] if url.username else []
                await self.execute("AUTH", *user, url.password)
            if name:
                await self.execute("CLIENT", "SETNAME", name)
        else:
            self.server = reply if isinstance(reply, dict) else {}
        if url.db:
            await self.execute("SELECT", url.db)


_KINDS = CONFIRMATIONS | MESSAGES


class _OneShot(Factory):
    noisy = False

    def __init__(self, clock: Clock, health_check_interval: float) -> None:
        self.clock = clock
        self.health_check_interval = health_check_interval

    def buildProtocol(self, addr: object) -> RedisProtocol:
        return RedisProtocol(self.clock, self.health_check_interval)


async def connect(
    url: RedisURL, reactor: Any, *, name: str | None = None, timeout: float = 10.0, health_check_interval: float = 5.0
) -> RedisProtocol:
    """A new connection to ``url``, handshake done; the connection is closed again if the handshake fails.
    Nothing reconnects it: :class:`txrealtime.redis.client.RedisClient` does that."""
    protocol: RedisProtocol = await url.endpoint(reactor, timeout).connect(_OneShot(reactor, health_check_interval))
    try:
        await protocol.handshake(url, name)
    except BaseException:
        protocol.abort("handshake failed")
        raise
    return protocol
