"""The shared socket core on its own: wire messages in, wire messages out, time on a task.Clock, no reactor."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from collections.abc import Iterator
from typing import Any, cast

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, globalLogPublisher

from txrealtime.protocol.acks import NO_ACK, node_callbacks
from txrealtime.protocol.dispatch import Role, SocketCore
from txrealtime.protocol.errors import AckTimeout
from txrealtime.protocol.handlers import CatchAll, EventEmitter
from txrealtime.protocol.packets import Decoder, Packet, PacketType, encode


class End(EventEmitter, CatchAll):
    """One end of a conversation: handlers, a core, and the wire messages its core sent."""

    def __init__(self, role: Role, namespace: str = "/chat") -> None:
        EventEmitter.__init__(self)
        CatchAll.__init__(self)
        self.clock = Clock()
        self.sent: list[str | bytes] = []
        self.connected = True
        self.timeouts: list[None] = []
        timeouts = self.timeouts
        self.core = SocketCore(role, namespace, self.clock, sid="s1", timed_out=lambda: timeouts.append(None))
        self._decoder = Decoder()

    def send_packet(self, packet: Packet) -> None:
        self.sent.extend(encode(packet))

    def hear(self, *messages: str | bytes) -> PacketType | None:
        """Feed the peer's wire messages; run an EVENT as a socket driver does."""
        result = None
        for message in messages:
            packet = self._decoder.feed(message)
            if packet is None:
                continue
            result = self.core.receive(packet)
            if result is PacketType.EVENT:
                self.core.notify_any(self._any, packet.event, packet.args)
                self.core.dispatch(self, packet.event, packet.args, packet.id)
        return result


@pytest.fixture
def failures() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []

    def watch(event: dict[str, Any]) -> None:
        if "log_failure" in event:
            events.append(event)

    globalLogPublisher.addObserver(cast(ILogObserver, watch))
    yield events
    globalLogPublisher.removeObserver(cast(ILogObserver, watch))


@pytest.mark.parametrize("role", list(Role))
def test_the_first_handler_answers_with_its_value(role: Role) -> None:
    end = End(role)
    end.on("add", lambda a, b: a + b)
    end.on("add", lambda a, b: "ignored")
    end.hear('2/chat,7["add",1,2]')
    assert end.sent == ["3/chat,7[3]"]


@pytest.mark.parametrize(
    "result, wire",
    [((1, "two"), ['3/chat,4[1,"two"]']), (None, ["3/chat,4[]"]), ([1, 2], ["3/chat,4[[1,2]]"]), (NO_ACK, [])],
)
def test_a_return_value_is_the_answer(result: Any, wire: list[str]) -> None:
    end = End(Role.SERVER)
    end.on("q", lambda: result)
    end.hear('2/chat,4["q"]')
    assert end.sent == wire


def test_an_event_without_ack_id_answers_nothing() -> None:
    end = End(Role.CLIENT)
    seen: list[Any] = []

    def handler(x: Any) -> str:
        seen.append(x)
        return "answer"

    end.on("q", handler)
    end.hear('2/chat,["q",{"a":1}]')
    assert (seen, end.sent) == ([{"a": 1}], [])


def test_the_ack_keyword_answers_once_and_only_for_the_first_handler() -> None:
    end = End(Role.SERVER)
    acks: list[Any] = []

    def first(x: int, *, ack: Any) -> str:
        ack(x, "b")
        ack("again")
        return "not an answer"

    def second(x: int, *, ack: Any) -> None:
        acks.append(ack)

    end.on("e", first)
    end.on("e", second)
    end.hear('2/chat,9["e",5]')
    assert (end.sent, acks) == (['3/chat,9[5,"b"]'], [None])


def test_an_async_handler_answers_when_it_fires() -> None:
    end = End(Role.CLIENT)
    later: Deferred[str] = Deferred()
    end.on("slow", lambda: later)
    end.hear('2/chat,1["slow"]')
    assert end.sent == []
    later.callback("done")
    assert end.sent == ['3/chat,1["done"]']


def test_a_failing_handler_answers_nothing_and_is_logged(failures: list[dict[str, Any]]) -> None:
    end = End(Role.SERVER)
    ran: list[str] = []

    def broken() -> None:
        raise ValueError("boom")

    failed: Deferred[str] = Deferred()
    end.on("e", broken)
    end.on("e", lambda: ran.append("second"))
    end.on("f", lambda: failed)
    end.hear('2/chat,1["e"]', '2/chat,2["f"]')
    failed.errback(KeyError("gone"))
    assert (end.sent, ran) == ([], ["second"])
    assert [(f["log_format"], f["event"], type(f["log_failure"].value)) for f in failures] == [
        ("Socket {sid} in {namespace}: handler of {event!r} failed", "e", ValueError),
        ("Socket {sid} in {namespace}: handler of {event!r} failed", "f", KeyError),
    ]


def test_no_answer_and_no_handler_while_disconnected_or_for_drain() -> None:
    end = End(Role.CLIENT)
    ran: list[str] = []
    end.on("e", lambda: ran.append("e"))
    end.on("drain", lambda: ran.append("drain"))
    end.hear('2/chat,1["drain"]')
    end.connected = False
    end.hear('2/chat,2["e"]')
    end.core.answer(end, "late", 3)
    assert (ran, end.sent) == ([], [])


def test_catch_all_listeners_see_every_incoming_and_outgoing_event() -> None:
    end = End(Role.SERVER)
    seen: list[tuple[Any, ...]] = []
    end.on_any(lambda *a: seen.append(("in", *a)))
    end.on_any_outgoing(lambda *a: seen.append(("out", *a)))
    end.hear('2/chat,["x",1]')
    packet = end.core.event("y", (2,))
    end.core.notify_outgoing(end._any_outgoing, packet)
    end.core.notify_outgoing(end._any_outgoing, Packet(PacketType.ACK, "/chat", [3], 1))
    assert seen == [("in", "x", 1), ("out", "y", 2)]
    assert encode(packet) == ['2/chat,["y",2]']


@pytest.mark.parametrize("role", list(Role))
def test_an_ack_runs_its_callback_once_and_unknown_ids_are_counted(role: Role) -> None:
    end = End(role)
    answers: list[list[Any]] = []
    ack_id = end.core.acks.register(answers.append)
    assert encode(end.core.event("q", ("a",), ack_id)) == ['2/chat,0["q","a"]']
    end.hear('3/chat,0["x",{"y":null}]')
    end.hear('3/chat,0["again"]')
    end.hear('3/chat,99[]')
    assert (answers, end.core.unknown_acks, end.sent) == ([["x", {"y": None}]], 2, [])


def test_node_style_callbacks_time_out_on_the_clock() -> None:
    end = End(Role.CLIENT)
    calls: list[tuple[Any, ...]] = []
    first = end.core.acks.register(*node_callbacks(lambda *a: calls.append(a)), timeout=5)
    second = end.core.acks.register(*node_callbacks(lambda *a: calls.append(a)), timeout=5)
    end.clock.advance(4.9)
    end.hear(f'3/chat,{first}["ok",null]')
    end.clock.advance(0.1)
    end.hear(f'3/chat,{second}["late"]')
    assert [(type(c[0]).__name__, *c[1:]) if c[0] is not None else c for c in calls] == [
        (None, "ok", None),
        ("AckTimeout",),
    ]
    assert isinstance(calls[1][0], AckTimeout)
    assert (len(end.timeouts), end.core.unknown_acks, len(end.core.acks)) == (1, 1, 0)


def test_the_roles_differ_in_what_the_peer_may_send_and_in_its_disconnect() -> None:
    server, client = End(Role.SERVER), End(Role.CLIENT)
    assert server.hear('0/chat,{"sid":"x"}') is None
    assert client.hear('0/chat,{"sid":"x"}') is PacketType.CONNECT
    assert server.hear('4/chat,{"message":"no"}') is None
    assert client.hear('4/chat,{"message":"no"}') is PacketType.CONNECT_ERROR
    assert (server.hear("1/chat,"), client.hear("1/chat,")) == (PacketType.DISCONNECT, PacketType.DISCONNECT)
    assert (Role.SERVER.peer_disconnect, Role.CLIENT.peer_disconnect) == (
        "client namespace disconnect",
        "io server disconnect",
    )


def test_binary_answers_go_out_with_their_attachments() -> None:
    end = End(Role.CLIENT, "/")
    end.on("blob", lambda data: data[::-1])
    end.hear('51-2["blob",{"_placeholder":true,"num":0}]', b"\x01\x02")
    assert end.sent == ['61-2[{"_placeholder":true,"num":0}]', b"\x02\x01"]


def test_a_socket_is_freed_without_the_cycle_collector() -> None:
    gc.disable()
    try:
        end = End(Role.SERVER)
        end.on("e", lambda: "answer")
        end.hear('2/chat,1["e"]')
        assert end.sent == ['3/chat,1["answer"]']
        ref = weakref.ref(end)
        del end
        assert ref() is None
    finally:
        gc.enable()


def test_the_protocol_package_imports_no_reactor_and_neither_role() -> None:
    script = (
        "import sys\n"
        "import txrealtime.protocol.dispatch, txrealtime.protocol.parser, txrealtime.protocol.msgpack\n"
        "print(sorted(m for m in sys.modules if m == 'twisted.internet.reactor'\n"
        "             or m.startswith(('txrealtime.socketio', 'txrealtime.client', 'txrealtime.engineio'))))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout == "[]\n"
