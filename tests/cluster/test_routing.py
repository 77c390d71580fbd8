"""Which worker gets a connection, and the master's pub/sub table."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from txrealtime.cluster.hub import Delivery, Hub, glob_match
from txrealtime.cluster.routing import Balancer, first_line, sid_of, worker_of, worker_sid


def test_a_sid_names_its_worker() -> None:
    assert worker_sid(3, "Zx_-9") == "3.Zx_-9"
    assert worker_of("3.Zx_-9") == 3
    assert worker_of("12.a.b") == 12
    for foreign in ["Zx_-9", ".abc", "3.", "03.abc", "x.abc", "１.abc", "1234567.abc"]:
        assert worker_of(foreign) is None, foreign


@given(st.integers(0, 999_999), st.text(min_size=1))
def test_worker_of_inverts_worker_sid(index: int, sid: str) -> None:
    assert worker_of(worker_sid(index, sid)) == index


def test_first_line() -> None:
    assert first_line(b"GET / HTTP/1.1\r\nHost: x\r\n") == b"GET / HTTP/1.1"
    assert first_line(b"GET / HTTP/1.1\nHost") == b"GET / HTTP/1.1"
    assert first_line(b"GET / HTTP/1.1\r") is None


@pytest.mark.parametrize(
    ("line", "sid"),
    [
        (b"GET /socket.io/?EIO=4&transport=polling&sid=1.abc HTTP/1.1", "1.abc"),
        (b"POST /socket.io/?sid=0.a%2Fb&EIO=4 HTTP/1.1", "0.a/b"),
        (b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1", None),
        (b"GET /socket.io/?xsid=1.abc HTTP/1.1", None),
        (b"GET /socket.io/?sid=1.abc", None),
        (b"GET /\xff?sid=1.abc HTTP/1.1", None),
        (b"GET /?sid= HTTP/1.1", ""),
    ],
)
def test_sid_of_a_request_line(line: bytes, sid: str | None) -> None:
    assert sid_of(line) == sid


def test_the_owner_gets_its_sessions_requests() -> None:
    balancer = Balancer()
    line = b"GET /socket.io/?EIO=4&transport=polling&sid=1.abc HTTP/1.1"
    assert [balancer.choose(line, [0, 1, 2], [0, 9, 0]) for _ in range(3)] == [1, 1, 1]


def test_new_sessions_go_to_the_least_loaded_round_robin_on_ties() -> None:
    balancer = Balancer()
    line = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1"
    assert balancer.choose(line, [0, 1, 2], [5, 2, 3]) == 1
    assert [balancer.choose(line, [0, 1, 2], [1, 1, 1]) for _ in range(4)] == [1, 2, 0, 1]


def test_a_down_owner_sends_its_sessions_elsewhere_and_no_worker_means_none() -> None:
    balancer = Balancer()
    line = b"GET /socket.io/?EIO=4&transport=polling&sid=1.abc HTTP/1.1"
    assert balancer.choose(line, [0, 2], [4, 0, 1]) == 2
    assert balancer.choose(line, [], [0, 0, 0]) is None


@pytest.mark.parametrize(
    ("pattern", "channel", "matches"),
    [
        ("socket.io#/#*", "socket.io#/#", True),
        ("socket.io#/#*", "socket.io#/#room#", True),
        ("socket.io#/#*", "socket.io#/chat#", False),
        ("h?llo", "hello", True),
        ("h[ae]llo", "hallo", True),
        ("h[^e]llo", "hello", False),
        ("h\\*llo", "h*llo", True),
        ("h\\*llo", "hello", False),
        ("a[b", "a[b", True),
    ],
)
def test_redis_globs(pattern: str, channel: str, matches: bool) -> None:
    assert glob_match(pattern, channel) is matches


@given(st.text(alphabet="ab*?", max_size=6), st.text(alphabet="ab", max_size=6))
def test_globs_without_brackets_or_escapes_match_as_fnmatch_does(pattern: str, channel: str) -> None:
    assert glob_match(pattern, channel) == fnmatch.fnmatchcase(channel, pattern)


def test_the_hub_delivers_as_redis_does() -> None:
    hub: Hub[str] = Hub()
    hub.subscribe("w0", "req")
    hub.subscribe("w1", "req")
    hub.psubscribe("w1", "b#*")
    hub.subscribe("w1", "b#x")
    assert hub.numsub("req") == 2
    assert hub.numsub("b#x") == 1
    assert sorted(hub.publish("req", b"m"), key=lambda d: d.worker) == [
        Delivery("w0", "", "req", b"m"), Delivery("w1", "", "req", b"m")
    ]
    # A worker subscribed to a channel and to a matching pattern hears the message once for each.
    assert sorted(hub.publish("b#x", b"m"), key=lambda d: d.pattern) == [
        Delivery("w1", "", "b#x", b"m"), Delivery("w1", "b#*", "b#x", b"m")
    ]
    hub.unsubscribe("w0", "req")
    hub.punsubscribe("w1", "b#*")
    assert hub.publish("b#y", b"m") == []
    hub.forget("w1")
    assert hub.numsub("req") == 0
    assert hub.publish("req", b"m") == []
