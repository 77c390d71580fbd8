"""ClusterLink: the classic adapter's link over the master's relay, on a Clock with an in-memory master."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock

from txrealtime.adapters.classic import ClassicAdapter, classic_adapter
from txrealtime.cluster.hub import Hub
from txrealtime.cluster.link import ClusterLink, ClusterUnavailable
from txrealtime.cluster.wire import (
    Frame,
    Members,
    Message,
    NumSub,
    NumSubReply,
    PSubscribe,
    Publish,
    PUnsubscribe,
    Subscribe,
    Unsubscribe,
    decode,
    encode,
)
from txrealtime.engineio import SessionManager
from txrealtime.socketio import Server


class Recorder:
    """A channel that keeps what the link sends."""

    def __init__(self) -> None:
        self.sent: list[Frame] = []

    def send(self, frame: Frame) -> bool:
        self.sent.append(decode(encode(frame)))
        return True


class Master:
    """The master's relay in memory: each link's frames go through the same :class:`Hub`."""

    def __init__(self) -> None:
        self.hub: Hub[ClusterLink] = Hub()

    def join(self, link: ClusterLink) -> None:
        master = self

        class Channel:
            def send(self, frame: Frame) -> bool:
                master.received(link, decode(encode(frame)))
                return True

        link.attach(Channel())

    def received(self, link: ClusterLink, frame: Frame) -> None:
        if isinstance(frame, Subscribe):
            self.hub.subscribe(link, frame.channel)
        elif isinstance(frame, Unsubscribe):
            self.hub.unsubscribe(link, frame.channel)
        elif isinstance(frame, PSubscribe):
            self.hub.psubscribe(link, frame.pattern)
        elif isinstance(frame, PUnsubscribe):
            self.hub.punsubscribe(link, frame.pattern)
        elif isinstance(frame, NumSub):
            link.deliver(NumSubReply(frame.id, self.hub.numsub(frame.channel)))
        elif isinstance(frame, Publish):
            for d in self.hub.publish(frame.channel, frame.message):
                d.worker.deliver(Message(d.pattern, d.channel, d.message))


def test_subscriptions_are_sent_once_per_name_and_again_on_attach() -> None:
    link = ClusterLink(reactor=Clock())
    heard: list[tuple[str, bytes]] = []

    def first(channel: str, message: bytes) -> None:
        heard.append((channel, message))

    def second(channel: str, message: bytes) -> None:
        heard.append(("second", message))

    link.subscribe("a", first)  # before the channel is up: sent on attach
    channel = Recorder()
    link.attach(channel)
    link.subscribe("a", second)
    link.psubscribe("p*", first)
    assert channel.sent == [Subscribe("a"), PSubscribe("p*")]
    link.deliver(Message("", "a", b"1"))
    link.deliver(Message("p*", "pq", b"2"))
    link.deliver(Message("", "zzz", b"3"))
    assert heard == [("a", b"1"), ("second", b"1"), ("pq", b"2")]
    link.unsubscribe("a", first)
    link.unsubscribe("a", second)
    link.punsubscribe("p*", first)
    assert channel.sent[2:] == [Unsubscribe("a"), PUnsubscribe("p*")]


def test_a_failing_handler_does_not_stop_the_others() -> None:
    link = ClusterLink(Recorder(), reactor=Clock())
    heard: list[bytes] = []

    def broken(channel: str, message: bytes) -> None:
        raise RuntimeError("boom")

    link.subscribe("a", broken)
    link.subscribe("a", lambda channel, message: heard.append(message))
    link.deliver(Message("", "a", b"x"))
    assert heard == [b"x"]


def test_publish_without_a_master_is_counted_undelivered() -> None:
    link = ClusterLink(reactor=Clock())
    assert link.publish("a", b"x") is False
    assert link.undelivered == 1
    channel = Recorder()
    link.attach(channel)
    assert link.publish("a", b"x") is True
    assert channel.sent == [Publish("a", b"x")]


def test_numsub_is_answered_times_out_or_fails_with_the_channel() -> None:
    clock = Clock()
    channel = Recorder()
    link = ClusterLink(channel, requests_timeout=5.0, reactor=clock)
    results: list[Any] = []
    link.numsub("a").addBoth(results.append)
    (ask,) = channel.sent
    assert isinstance(ask, NumSub) and ask.channel == "a"
    link.deliver(NumSubReply(ask.id, 3))
    link.deliver(NumSubReply(ask.id, 4))  # a late duplicate changes nothing
    assert results == [3]

    link.numsub("a").addErrback(lambda f: results.append(f.type))
    clock.advance(5.0)
    assert results[1] is TimeoutError

    link.numsub("a").addErrback(lambda f: results.append(f.type))
    link.detach()
    assert results[2] is ClusterUnavailable
    link.numsub("a").addErrback(lambda f: results.append(f.type))
    assert results[3] is ClusterUnavailable
    assert clock.getDelayedCalls() == []


def test_two_servers_share_server_side_emits_through_the_relay() -> None:
    clock = Clock()
    master = Master()
    servers = []
    for name in ("w0", "w1", "w2"):
        link = ClusterLink(reactor=clock)
        master.join(link)
        server = Server(SessionManager(reactor=clock), adapter=classic_adapter(link))
        server.on("who", lambda *args, name=name: f"{name} got {list(args)}")
        servers.append(server)
    answers: list[Any] = []
    servers[0].server_side_emit_with_ack("who", 1).addCallback(answers.append)
    assert answers == [["w1 got [1]", "w2 got [1]"]] or answers == [["w2 got [1]", "w1 got [1]"]]
    counted: list[int] = []
    servers[1].of("/").adapter.server_count().addCallback(counted.append)
    assert counted == [3]
    for server in servers:
        server.close()
    assert clock.getDelayedCalls() == []



def test_the_redis_names_of_the_classic_adapter_still_import() -> None:
    from txrealtime.adapters import redis
    from txrealtime.adapters.redis import adapter as old_module

    assert redis.RedisAdapter is old_module.RedisAdapter and issubclass(redis.RedisAdapter, ClassicAdapter)
    assert redis.redis_adapter is old_module.redis_adapter
    clock = Clock()
    link = ClusterLink(reactor=clock)
    Master().join(link)
    servers = [Server(SessionManager(reactor=clock), adapter=make(link))
               for make in (redis.redis_adapter, classic_adapter)]
    assert [type(server.sockets.adapter) for server in servers] == [redis.RedisAdapter, ClassicAdapter]
    for server in servers:
        server.close()
    assert clock.getDelayedCalls() == []

@pytest.mark.parametrize("name", ["subscribe", "psubscribe"])
def test_start_is_idempotent(name: str) -> None:
    recorder = Recorder()
    link = ClusterLink(recorder, reactor=Clock())
    link.start()
    getattr(link, name)("x", lambda channel, message: None)
    sent = list(recorder.sent)
    link.start()
    assert recorder.sent == sent  # starting again sends nothing: the subscription is not repeated
    assert len(sent) == 1 and isinstance(sent[0], Subscribe if name == "subscribe" else PSubscribe)


def test_the_workers_alive_are_those_the_master_names() -> None:
    link = ClusterLink(reactor=Clock(), index=2)
    assert (link.uid, link.connected, link.nodes()) == ("w2", False, ["w2"])
    link.attach(Recorder())
    link.deliver(Members("0,1,2"))
    assert (link.connected, link.nodes()) == (True, ["w0", "w1", "w2"])
    link.deliver(Members("x"))  # malformed: logged, the list kept
    assert link.nodes() == ["w0", "w1", "w2"]
    link.detach()
    assert (link.connected, link.nodes()) == (False, ["w2"])
