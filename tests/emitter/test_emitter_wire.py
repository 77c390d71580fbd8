"""The emitter's messages without a redis-server: Node's ``@socket.io/redis-emitter`` bytes, the API, fuzzing."""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

from tests.servers import RedisServer, node_peer
from txrealtime.adapters.redis import RedisUnavailable, wire
from txrealtime.adapters.redis import requests as rq
from txrealtime.adapters.redis.requests import DisconnectRequest, JoinRequest, LeaveRequest, ServerSideEmitRequest
from txrealtime.adapters.redis.wire import Broadcast, WireFlags, WireOptions, WirePacket
from txrealtime.emitter import Emitter, EmitterOperator, TwistedEmitter

FIXTURE = Path(__file__).parent.parent / "adapters" / "fixtures" / "node_redis_adapter.json"


class Recorder:
    """A stand-in for ``redis.Redis``: records what is published, answers with a subscriber count."""

    def __init__(self, answer: int = 3) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.answer = answer

    def publish(self, channel: str, message: bytes) -> int:
        self.published.append((channel, message))
        return self.answer


def date(ms: int) -> datetime.datetime:
    return datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(milliseconds=ms)


def to_python(value: Any) -> Any:
    """The Python value a call description stands for (``$bytes`` and ``$date`` as the Node script reads them)."""
    if isinstance(value, list):
        return [to_python(v) for v in value]
    if isinstance(value, dict):
        if "$bytes" in value:
            return bytes(value["$bytes"])
        if "$date" in value:
            return date(value["$date"])
        return {k: to_python(v) for k, v in value.items()}
    return value


@dataclass
class Call:
    """One call on an emitter, as both the Node script and :func:`run` read it."""

    method: str
    args: list[Any]
    chain: list[list[Any]] = field(default_factory=list)
    nsp: str | None = None
    key: str | None = None

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "args": self.args, "chain": self.chain}
        if self.nsp is not None:
            out["nsp"] = self.nsp
        if self.key is not None:
            out["key"] = self.key
        return out


METHODS = {
    "emit": "emit",
    "socketsJoin": "sockets_join",
    "socketsLeave": "sockets_leave",
    "disconnectSockets": "disconnect_sockets",
    "serverSideEmit": "server_side_emit",
    "to": "to",
    "in": "in_",
    "except": "except_",
    "compress": "compress",
}


def run(call: Call) -> list[tuple[str, bytes]]:
    """What the Python emitter publishes for ``call``."""
    recorder = Recorder()
    emitter = Emitter(recorder) if call.key is None else Emitter(recorder, key=call.key)
    target: Any = emitter if call.nsp is None else emitter.of(call.nsp)
    for method, *args in call.chain:
        target = target.volatile if method == "volatile" else getattr(target, METHODS[method])(*to_python(args))
    assert getattr(target, METHODS[call.method])(*to_python(call.args)) == 3
    return recorder.published


LONG = "x" * 40
LONGER = "y" * 300
CALLS = [
    Call("emit", ["plain"]),
    Call("emit", ["values", 0, 1, 127, 128, 255, 256, 65535, 65536, 2**32, 2**40, -1, -32, -33, -128, -129, -(2**40)]),
    Call("emit", ["floats", 1.5, -0.25, 1e-300, None, True, False, "", "é😀", LONG, LONGER]),
    Call("emit", ["nested", {"a": [1, {"b": None}], "c": {}}, [], list(range(20)), {str(i): i for i in range(20)}]),
    Call(
        "emit",
        ["binary", {"$bytes": [0, 255]}, {"deep": [{"$bytes": [i % 256 for i in range(300)]}]}, {"$bytes": []}],
        chain=[["to", "r"]],
    ),
    Call("emit", ["dates", {"$date": 1795926828716}, {"$date": 1795926828000}, {"$date": -1500}, {"$date": 0}]),
    Call("emit", ["one room"], chain=[["to", "room1"]]),
    Call("emit", ["room and except"], chain=[["to", "room1"], ["except", ["room3", "room4"]]]),
    Call("emit", ["rooms"], chain=[["in", ["a", "b"]], ["to", "a"], ["to", ["c", "b"]]]),
    Call("emit", ["except only"], chain=[["except", "a"], ["except", ["b", "a"]]]),
    Call("emit", ["volatile"], chain=[["volatile"]]),
    Call("emit", ["uncompressed"], chain=[["to", "r"], ["compress", False]]),
    Call("emit", ["both flags"], chain=[["volatile"], ["compress", True]]),
    Call("emit", ["in chat"], nsp="chat"),
    Call("emit", ["in admin"], nsp="/admin", chain=[["to", "r"]]),
    Call("emit", ["other key"], key="myapp", chain=[["to", "r"]]),
    Call("emit", ["unicode room"], chain=[["to", "salle é"]]),
    Call("socketsJoin", [["x", "y"]], chain=[["in", "room1"], ["except", "room3"]]),
    Call("socketsJoin", ["z"]),
    Call("socketsLeave", ["z"], nsp="/chat", chain=[["to", ["a", "b"]]]),
    Call("socketsLeave", [["é", "w"]], key="myapp"),
    Call("disconnectSockets", [], chain=[["in", "nobody"]]),
    Call("disconnectSockets", [True], nsp="/chat", chain=[["except", "vip"]]),
    Call("disconnectSockets", [False], chain=[["in", "a"]]),
    Call("serverSideEmit", ["hello", 1, "two", {"three": [3.5, None]}, "é😀", "\ud800"]),
    Call("serverSideEmit", ["at", {"$date": 1795926828716}], nsp="/chat", key="myapp"),
]


@pytest_twisted.ensureDeferred
async def test_the_same_bytes_as_nodes_emitter() -> None:
    report = await node_peer("redis_emitter_bytes.js", json.dumps([c.spec() for c in CALLS]))
    assert len(report) == len(CALLS)
    for call, published in zip(CALLS, report, strict=True):
        expected = [(channel, base64.b64decode(message)) for channel, message in published]
        assert run(call) == expected, call


def test_the_same_bytes_as_the_captured_node_emitter() -> None:
    # What Node's emitter published to a real Redis in tests/interop/capture_redis_adapter.js.
    report = json.loads(FIXTURE.read_text())
    messages = [m for m in report["messages"] if m["step"].startswith("emitter")]
    captured = [(m["channel"], base64.b64decode(m["base64"])) for m in messages]
    recorder = Recorder()
    emitter = Emitter(recorder)
    emitter.to("room1").except_("room3").emit("emitted", {"ok": True}, b"\x09")
    emitter.in_("room1").sockets_join("z")
    emitter.sockets_leave(["z"])
    emitter.server_side_emit("hello", "from emitter")
    emitter.in_("nobody").disconnect_sockets()
    assert recorder.published == captured


def test_what_the_adapter_reads_back() -> None:
    recorder = Recorder()
    emitter = Emitter(recorder, key="k").of("/chat")
    emitter.to(["a", "b"]).except_("c").volatile.emit("ev", b"\x01", date(5))
    emitter.in_("a").sockets_join(["x"])
    emitter.except_("c").sockets_leave("x")
    emitter.disconnect_sockets(close=True)
    emitter.server_side_emit("note", {"n": 1})
    [(c1, m1), (c2, m2), (c3, m3), (c4, m4), (c5, m5)] = recorder.published
    assert (c1, c2, c3, c4, c5) == ("k#/chat#",) + ("k-request#/chat#",) * 4
    assert wire.decode_broadcast(m1) == Broadcast(
        uid="emitter",
        packet=WirePacket(data=["ev", b"\x01", date(5)], nsp="/chat"),
        opts=WireOptions(rooms=("a", "b"), except_=("c",), flags=WireFlags(volatile=True)),
    )
    assert rq.decode_request(m2) == JoinRequest(opts=WireOptions(rooms=("a",)), rooms=("x",))
    assert rq.decode_request(m3) == LeaveRequest(opts=WireOptions(except_=("c",)), rooms=("x",))
    assert rq.decode_request(m4) == DisconnectRequest(opts=WireOptions(), close=True)
    assert rq.decode_request(m5) == ServerSideEmitRequest(uid="emitter", data=["note", {"n": 1}])


def test_operators_are_immutable_and_namespaces_separate() -> None:
    recorder = Recorder()
    emitter = Emitter(recorder)
    room = emitter.to("a")
    assert isinstance(room, EmitterOperator)
    narrower = room.except_("b").volatile.compress(False)
    assert (room.rooms, room.except_rooms) == (("a",), ())
    assert (narrower.rooms, narrower.except_rooms, narrower.nsp) == (("a",), ("b",), "/")
    chat = emitter.of("chat")
    assert (emitter.nsp, chat.nsp, chat.key, chat.uid) == ("/", "/chat", "socket.io", "emitter")
    assert isinstance(chat, Emitter) and chat.redis is recorder
    room.emit("once")
    assert [c for c, _ in recorder.published] == ["socket.io#/#a#"]


def test_refusals_publish_nothing() -> None:
    recorder = Recorder()
    emitter = Emitter(recorder)
    for reserved in ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"):
        with pytest.raises(ValueError, match="reserved"):
            emitter.to("r").emit(reserved)
    with pytest.raises(TypeError, match="event names"):
        emitter.emit(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="acknowledgements"):
        emitter.server_side_emit("ask", 1, lambda answer: None)
    with pytest.raises(TypeError):
        emitter.server_side_emit("binary", b"\x00")  # JSON cannot carry it
    with pytest.raises(ValueError):
        emitter.server_side_emit("nan", float("nan"))  # JSON.parse could not read it
    with pytest.raises(TypeError):
        emitter.emit("object", object())
    with pytest.raises(TypeError, match="room names"):
        emitter.to([1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="namespace"):
        emitter.of(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key"):
        Emitter(recorder, key="")
    assert recorder.published == []


def test_naive_datetimes_are_local_time_and_dates_iso_strings() -> None:
    recorder = Recorder()
    naive = datetime.datetime(2026, 11, 29, 5, 6, 7, 891000)
    Emitter(recorder).emit("when", naive, datetime.date(2026, 11, 29))
    [(_, message)] = recorder.published
    assert wire.decode_broadcast(message).packet.data == ["when", naive.astimezone(), "2026-11-29"]


def test_redis_errors_reach_the_caller() -> None:
    class Down:
        def publish(self, channel: str, message: bytes) -> int:
            raise ConnectionError("Redis is down")

    with pytest.raises(ConnectionError, match="down"):
        Emitter(Down()).emit("lost")


def test_a_url_needs_redis_py(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"txrealtime\[emitter\]"):
        Emitter("redis://127.0.0.1:1")


def clients_become(watcher: Any, count: int) -> bool:
    """Whether Redis lists ``count`` clients within 10 s: it drops a closed connection once it reads the close,
    which a loaded machine may delay."""
    for _ in range(1000):
        if len(watcher.client_list()) == count:
            return True
        time.sleep(0.01)
    return False


def test_an_emitter_made_from_a_url_closes_its_client(redis_server: RedisServer) -> None:
    import redis

    watcher = redis.Redis.from_url(redis_server.url)
    try:
        assert len(watcher.client_list()) == 1
        with Emitter(redis_server.url, key="k") as emitter:
            assert isinstance(emitter.redis, redis.Redis) and emitter.key == "k"
            assert emitter.emit("nobody listens") == 0
            assert len(watcher.client_list()) == 2
        assert clients_become(watcher, 1)
        given = redis.Redis.from_url(redis_server.url)
        with Emitter(given) as emitter:
            assert emitter.emit("nobody listens") == 0
        assert len(watcher.client_list()) == 2  # a client given to it is not the emitter's to close
        given.close()
    finally:
        watcher.close()


def test_an_asyncio_client_is_refused() -> None:
    class AsyncioRedis:
        async def publish(self, channel: str, message: bytes) -> int:
            return 1

    with pytest.raises(TypeError, match="asyncio"):
        Emitter(AsyncioRedis()).emit("ev")


def test_importing_the_emitter_installs_no_reactor() -> None:
    code = (
        "import sys, txrealtime.emitter, txrealtime.adapters.redis.wire, txrealtime.adapters.redis.requests\n"
        "print(sorted(m for m in ('twisted.internet.reactor', 'txrealtime.redis.client', 'redis') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


class FakeLink:
    """What :class:`TwistedEmitter` uses of a :class:`txrealtime.adapters.redis.RedisLink`."""

    key = "linked"

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.published: list[tuple[str, bytes]] = []

    def send(self, channel: str, message: bytes) -> Deferred[int]:
        if not self.up:
            return fail(RedisUnavailable("down"))
        self.published.append((channel, message))
        return succeed(2)


def test_the_twisted_emitter_publishes_through_the_link_the_same_bytes() -> None:
    link = FakeLink()
    emitter = TwistedEmitter(link)  # type: ignore[arg-type]
    recorder = Recorder()
    results = [
        emitter.to("r").emit("ev", b"\x00"),
        emitter.of("/chat").sockets_join("x"),
        emitter.server_side_emit("note"),
    ]
    sync = Emitter(recorder, key="linked")
    sync.to("r").emit("ev", b"\x00")
    sync.of("/chat").sockets_join("x")
    sync.server_side_emit("note")
    assert link.published == recorder.published
    assert [r.result for r in results] == [2, 2, 2]
    assert TwistedEmitter(link, key="other").key == "other"  # type: ignore[arg-type]

    down = TwistedEmitter(FakeLink(up=False))  # type: ignore[arg-type]
    failure = down.emit("lost")
    caught: list[Failure] = []
    failure.addErrback(caught.append)
    assert caught[0].check(RedisUnavailable)


# -- fuzzing --------------------------------------------------------------------------------------------------

names = st.text(max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
values = st.recursive(
    json_values | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    names.filter(lambda e: e not in ("connect", "connect_error", "disconnect", "disconnecting", "newListener",
                                     "removeListener")),
    st.lists(values, max_size=4),
    st.lists(names, max_size=3),
    st.lists(names, max_size=3),
    names,
    st.lists(json_values, max_size=3),
)
def test_fuzz_the_adapter_reads_what_the_emitter_writes(
    event: str, args: list[Any], rooms: list[str], except_rooms: list[str], nsp: str, data: list[Any]
) -> None:
    recorder = Recorder()
    emitter = Emitter(recorder).of(nsp)
    target = emitter.to(rooms).except_(except_rooms)
    target.emit(event, *args)
    target.sockets_join(rooms)
    target.disconnect_sockets()
    emitter.server_side_emit(event, *data)
    [(channel, broadcast), (_, join), (_, disconnect), (_, side)] = recorder.published
    unique_rooms, unique_except = tuple(dict.fromkeys(rooms)), tuple(dict.fromkeys(except_rooms))
    selection = WireOptions(rooms=unique_rooms, except_=unique_except)
    decoded = wire.decode_broadcast(broadcast)
    assert decoded.uid == "emitter" and decoded.packet == WirePacket(data=[event, *args], nsp=emitter.nsp)
    assert (decoded.opts.rooms, decoded.opts.except_) == (unique_rooms, unique_except)
    assert channel == wire.Channels("socket.io", emitter.nsp).for_rooms(unique_rooms)
    assert rq.decode_request(join) == JoinRequest(opts=selection, rooms=tuple(rooms))
    assert rq.decode_request(disconnect) == DisconnectRequest(opts=selection)
    decoded_side = rq.decode_request(side)
    assert isinstance(decoded_side, ServerSideEmitRequest) and decoded_side.uid == "emitter"
    assert json.dumps(decoded_side.data) == json.dumps([event, *data])
