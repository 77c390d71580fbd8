"""One Redis connection on a Clock and a StringTransport: the exact bytes, pipelining, pushes, the health check."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from txrealtime.redis.connection import RedisProtocol, RedisUnavailable
from txrealtime.redis.resp import PureReader, ReplyError
from txrealtime.redis.url import RedisURL


class Wire(StringTransport):
    """A transport that tells the protocol when it is aborted or closed, as a real one does."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.protocol: RedisProtocol | None = None

    def abortConnection(self) -> None:
        super().loseConnection()  # type: ignore[no-untyped-call]
        assert self.protocol is not None
        self.protocol.connectionLost(Failure(ConnectionLost("aborted")))

    def loseConnection(self) -> None:
        super().loseConnection()  # type: ignore[no-untyped-call]
        assert self.protocol is not None
        self.protocol.connectionLost(Failure(ConnectionLost("closed")))


def connected(pure: bool = False, interval: float = 5.0) -> tuple[RedisProtocol, Wire, Clock]:
    clock = Clock()
    protocol = RedisProtocol(clock, interval, reader=PureReader() if pure else None)
    wire = Wire()
    wire.protocol = protocol
    protocol.makeConnection(wire)  # type: ignore[no-untyped-call]
    return protocol, wire, clock


def results(d: Deferred[Any]) -> list[Any]:
    seen: list[Any] = []
    d.addBoth(seen.append)
    return seen


def take(wire: Wire) -> bytes:
    data: bytes = wire.value()
    wire.clear()
    return data


@pytest.mark.parametrize("pure", [False, True], ids=["hiredis", "pure"])
def test_pipelined_commands_are_answered_in_order(pure: bool) -> None:
    protocol, wire, _ = connected(pure)
    first, second, third = (results(protocol.execute(*c)) for c in (["SET", "k", "v"], ["GET", "k"], ["NOPE"]))
    assert take(wire) == (
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nNOPE\r\n"
    )
    protocol.dataReceived(b"+OK\r\n$1\r")  # the second reply arrives in two pieces
    assert first == [b"OK"] and second == []
    protocol.dataReceived(b"\nv\r\n-ERR unknown command 'NOPE'\r\n")
    assert second == [b"v"]
    [error] = third
    assert isinstance(error, Failure) and isinstance(error.value, ReplyError) and error.value.code == "ERR"


@pytest.mark.parametrize("pure", [False, True], ids=["hiredis", "pure"])
def test_subscriptions_confirm_per_name_and_messages_go_to_on_push(pure: bool) -> None:
    protocol, wire, _ = connected(pure)
    pushes: list[list[Any]] = []
    protocol.on_push = pushes.append
    subscribed = results(protocol.subscription("subscribe", [b"a", b"b"]))
    ping = results(protocol.execute("PING"))
    assert take(wire) == b"*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$4\r\nPING\r\n"
    protocol.dataReceived(b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
    assert subscribed == []
    # A message may arrive between the confirmations; a reply goes to the command it answers.
    protocol.dataReceived(b">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n")
    protocol.dataReceived(b">3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n+PONG\r\n")
    assert subscribed == [None] and ping == [b"PONG"]
    # An unasked unsubscribe (Redis Cluster moving a shard channel's slot) goes to on_push too.
    protocol.dataReceived(b">3\r\n$12\r\nsunsubscribe\r\n$1\r\nx\r\n:0\r\n")
    assert pushes == [[b"message", b"a", b"hi"], [b"sunsubscribe", b"x", 0]]


def test_a_refused_subscription_fails_its_command_only() -> None:
    protocol, wire, _ = connected()
    refused = results(protocol.subscription("ssubscribe", [b"s"]))
    after = results(protocol.execute("PING"))
    protocol.dataReceived(b"-MOVED 1 127.0.0.1:7001\r\n+PONG\r\n")
    assert isinstance(refused[0], Failure) and isinstance(refused[0].value, ReplyError)
    assert refused[0].value.code == "MOVED"
    assert after == [b"PONG"]


def test_resp2_subscriber_reads_arrays_as_pushes_and_refuses_other_commands() -> None:
    protocol, wire, _ = connected()
    protocol.resp = 2
    pushes: list[list[Any]] = []
    protocol.on_push = pushes.append
    subscribed = results(protocol.subscription("psubscribe", [b"p*"]))
    protocol.dataReceived(b"*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:1\r\n")
    protocol.dataReceived(b"*4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npx\r\n$1\r\nm\r\n")
    assert subscribed == [None] and pushes == [[b"pmessage", b"p*", b"px", b"m"]]
    ping = results(protocol.execute("PING"))
    protocol.dataReceived(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
    assert ping == [[b"pong", b""]]
    [refused] = results(protocol.execute("GET", "k"))
    assert isinstance(refused, Failure) and refused.check(ValueError)


def test_handshake_resp3_with_password_name_and_database() -> None:
    protocol, wire, _ = connected()
    done = results(ensureDeferred(protocol.handshake(RedisURL.parse("redis://u:p%40ss@h/3"), "node-1")))
    assert take(wire) == (
        b"*7\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$4\r\np@ss\r\n$7\r\nSETNAME\r\n$6\r\nnode-1\r\n"
    )
    protocol.dataReceived(b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n")
    assert take(wire) == b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"
    protocol.dataReceived(b"+OK\r\n")
    assert done == [None] and protocol.resp == 3 and protocol.server[b"proto"] == 3


def test_handshake_falls_back_to_resp2_before_redis_6() -> None:
    protocol, wire, _ = connected()
    done = results(ensureDeferred(protocol.handshake(RedisURL.parse("redis://:secret@h"))))
    take(wire)
    protocol.dataReceived(b"-ERR unknown command 'HELLO'\r\n")
    assert take(wire) == b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n"
    protocol.dataReceived(b"+OK\r\n")
    assert done == [None] and protocol.resp == 2


def test_wrong_password_fails_the_handshake() -> None:
    protocol, wire, _ = connected()
    done = results(ensureDeferred(protocol.handshake(RedisURL.parse("redis://:wrong@h"))))
    protocol.dataReceived(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
    [failure] = done
    assert isinstance(failure, Failure) and isinstance(failure.value, ReplyError)
    assert failure.value.code == "WRONGPASS"


def test_garbage_closes_the_connection_and_fails_what_waits() -> None:
    protocol, wire, _ = connected()
    lost: list[str] = []
    protocol.on_lost = lambda p, why: lost.append(why)
    waiting = results(protocol.execute("GET", "k"))
    protocol.dataReceived(b"?what\r\n")
    assert protocol.closed and len(lost) == 1
    assert isinstance(waiting[0], Failure) and waiting[0].check(RedisUnavailable)
    assert results(protocol.execute("PING"))[0].check(RedisUnavailable)


def test_a_reply_to_nothing_closes_the_connection() -> None:
    protocol, wire, _ = connected()
    protocol.dataReceived(b"+OK\r\n")
    assert protocol.closed


def test_health_check_pings_when_idle_and_aborts_when_unanswered() -> None:
    protocol, wire, clock = connected(interval=2.0)
    clock.advance(2.0)
    assert take(wire) == b"*1\r\n$4\r\nPING\r\n"  # idle: a ping
    protocol.dataReceived(b"+PONG\r\n")
    clock.advance(2.0)
    assert take(wire) == b"*1\r\n$4\r\nPING\r\n"
    clock.advance(2.0)  # the ping still waits after a whole interval: the server is gone
    assert not protocol.closed
    clock.advance(2.0)
    assert protocol.closed


def test_a_command_may_wait_longer_than_the_health_check() -> None:
    protocol, wire, clock = connected(interval=1.0)
    blocked = results(protocol.execute("XREAD", "BLOCK", 5000, "STREAMS", "s", "$", timeout=6.0))
    clock.advance(5.0)
    assert not protocol.closed
    protocol.dataReceived(b"_\r\n")
    assert blocked == [None]
    late = results(protocol.execute("XREAD", "BLOCK", 5000, "STREAMS", "s", "$", timeout=6.0))
    clock.pump([1.0] * 7)
    assert protocol.closed and late[0].check(RedisUnavailable)
