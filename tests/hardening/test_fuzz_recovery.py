"""Recovery offsets and CONNECT payloads asking for a kept session, fuzzed.

- The offset codec (``format_offset``/``parse_offset``): every position round-trips; any other text,
  mutated offsets included, parses as nothing or as the one position it spells canonically.
- Whole conversations on a fake clock: CONNECTs with random and mutated ``{pid, offset}`` against a server
  holding a kept session. None may fail or disturb another client; the session is handed out only for its
  own pid with a usable offset, and stays kept otherwise.
- A live server with recovery on gets the JSON fuzz of ``test_fuzz`` with CONNECT templates carrying
  ``pid`` and ``offset``, and so does one on the msgpack parser (offsets as MessagePack strings, integers,
  maps, binary): only the sessions that sent bad input close.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import threads
from twisted.internet.task import Clock

from tests.fakes import Peer
from tests.hardening.test_fuzz import (
    TEMPLATES,
    json_bodies,
    msgpack_bodies,
    msgpack_frame,
    mutate,
    mutate_bytes,
    mutation,
    run_fuzz,
    text_frame,
)
from tests.socketio.app import install
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionManager
from txrealtime.protocol.msgpack import MsgpackDecoder
from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio import Server, Socket
from txrealtime.socketio.recovery import StateRecovery, format_offset, parse_offset

T = PacketType
PREFIX = "0a1b2c3d"


@given(st.integers(0, 16**16 - 1))
def test_offsets_round_trip(position: int) -> None:
    assert parse_offset(PREFIX, format_offset(PREFIX, position)) == position


@given(st.one_of(st.text(max_size=40),
                 st.builds(mutate, st.builds(format_offset, st.just(PREFIX), st.integers(0, 2**64)),
                           st.lists(mutation, max_size=3))))
def test_only_canonical_offsets_parse(text: str) -> None:
    position = parse_offset(PREFIX, text)
    assert position is None or format_offset(PREFIX, position) == text


def mutated_offsets(good: str) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.just(good),
        st.builds(mutate, st.just(good), st.lists(mutation, min_size=1, max_size=3)),
        st.text(max_size=30),
        st.none(),
        st.integers(),
        st.lists(st.just(good), max_size=2),
        st.dictionaries(st.text(max_size=5), st.just(good), max_size=2),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_connects_asking_for_a_kept_session(data: st.DataObject) -> None:
    clock = Clock()
    server = Server(SessionManager(EngineIOOptions(ping_interval=1000, ping_timeout=1000), reactor=clock),
                    connection_state_recovery=StateRecovery(max_disconnection_duration=60))
    server.on("connection", lambda socket: socket.join("r"))
    bystander = Peer(server.manager)
    bystander.connect()
    away = Peer(server.manager)
    away.send_packet(Packet(T.CONNECT, "/"))
    reply = away.packets()[0].data
    server.to("r").emit("seen", 1)
    good = away.packets()[0].args[-1]
    away.session.close(CloseReason.TRANSPORT_CLOSE)
    server.to("r").emit("missed", 2)
    log = server.sockets.adapter.recovery
    assert log is not None
    restored = False

    for auth in data.draw(st.lists(st.one_of(
        st.fixed_dictionaries({"pid": st.one_of(st.just(reply["pid"]), st.text(max_size=25), st.integers())},
                              optional={"offset": mutated_offsets(good), "token": st.text(max_size=5)}),
        st.builds(lambda pid, offset: {"pid": pid, "offset": offset},
                  st.builds(mutate, st.just(reply["pid"]), st.lists(mutation, min_size=1, max_size=2)),
                  st.just(good)),
        st.one_of(st.none(), st.text(max_size=10), st.lists(st.integers(), max_size=2)),
    ), min_size=1, max_size=4)):
        peer = Peer(server.manager)
        peer.send_packet(Packet(T.CONNECT, "/", auth))
        if not isinstance(auth, dict):
            # None: a plain CONNECT; anything else is no CONNECT payload, and that client is closed.
            assert peer.closed is (auth is not None) and log.sessions == int(not restored)
            continue
        offset = auth.get("offset")
        usable = offset is None or isinstance(offset, str) and parse_offset(log.prefix, offset) is not None
        restoring = not restored and auth.get("pid") == reply["pid"] and usable
        answer, *rest = peer.packets()
        assert answer.type is T.CONNECT and not peer.closed
        assert (answer.data == reply) is restoring, (auth, answer.data)
        if restoring:
            # Without an offset, everything since the socket joined (the client says it got nothing).
            assert [p.event for p in rest] == (["seen", "missed"] if offset is None else ["missed"])
            restored = True
        else:
            assert rest == []
        assert log.sessions == int(not restored)
    server.emit("still fine", 3)
    assert [p.event for p in bystander.packets()] == ["seen", "missed", "still fine"]


RECOVERY_TEMPLATES = [
    '40{"pid":"oHNbKV7l2SRnJjrFiKBo","offset":"0a1b2c3d-1f"}',
    '40{"pid":"oHNbKV7l2SRnJjrFiKBo"}',
    '40{"pid":["x"],"offset":{"o":1}}',
    '40/admin,{"token":"s3cret","pid":"p","offset":"' + "f" * 40 + '"}',
    '42["ack","0a1b2c3d-1"]',
]
recovery_frame = st.one_of(st.builds(mutate, st.sampled_from(RECOVERY_TEMPLATES), st.lists(mutation, max_size=3)),
                           text_frame, st.builds(mutate, st.sampled_from(TEMPLATES), st.lists(mutation, max_size=2)))


@pytest_twisted.ensureDeferred
async def test_fuzzed_packets_with_recovery_on(realtime: Realtime, logged_failures: list[dict[str, Any]]) -> None:
    running = await realtime.start_server(install, options=EngineIOOptions(ping_interval=60, ping_timeout=60),
                                          connection_state_recovery=StateRecovery())

    @running.server.on("connection")
    def chatter(socket: Socket) -> None:
        socket.emit("hello", json.dumps(socket.handshake.auth)[:50])  # every socket gets an offset

    examples = await threads.deferToThread(run_fuzz, running.url, recovery_frame, json_bodies,
                                           examples_each=(100, 0, 40))
    assert examples >= 140
    assert [e["log_failure"].getTraceback() for e in logged_failures] == []


MSGPACK_RECOVERY_TEMPLATES = [
    msgpack.packb({"type": 0, "data": auth, "nsp": nsp}, unicode_errors="surrogatepass") for auth, nsp in [
        ({"pid": "oHNbKV7l2SRnJjrFiKBo", "offset": "0a1b2c3d-1f"}, "/"),
        ({"pid": "oHNbKV7l2SRnJjrFiKBo"}, "/"),
        ({"pid": "oHNbKV7l2SRnJjrFiKBo", "offset": 31}, "/"),
        ({"pid": b"oHNbKV7l2SRnJjrFiKBo", "offset": b"0a1b2c3d-1f"}, "/"),
        ({"pid": ["x"], "offset": {"o": 1}}, "/"),
        ({"pid": "p", "offset": "0a1b2c3d-" + "f" * 40, "token": "s3cret"}, "/admin"),
        ({"pid": "p\ud800", "offset": "0a1b2c3d-\udfff"}, "/"),
    ]
]
recovery_msgpack_frame = st.one_of(
    st.builds(mutate_bytes, st.sampled_from(MSGPACK_RECOVERY_TEMPLATES),
              st.lists(st.tuples(st.integers(0, 80), st.sampled_from(["insert", "delete", "replace"]),
                                 st.integers(0, 255)), max_size=3)),
    msgpack_frame,
)


@pytest_twisted.ensureDeferred
async def test_fuzzed_msgpack_packets_with_recovery_on(
    realtime: Realtime, logged_failures: list[dict[str, Any]]
) -> None:
    running = await realtime.start_server(install, options=EngineIOOptions(ping_interval=60, ping_timeout=60),
                                          connection_state_recovery=StateRecovery(), parser="msgpack")

    @running.server.on("connection")
    def chatter(socket: Socket) -> None:
        socket.emit("hello", 1)  # every socket gets an offset

    examples = await threads.deferToThread(run_fuzz, running.url, recovery_msgpack_frame, msgpack_bodies,
                                           MsgpackDecoder, "msgpack", (80, 0, 30))
    assert examples >= 110
    assert [e["log_failure"].getTraceback() for e in logged_failures] == []
