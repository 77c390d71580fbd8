"""Hostile Socket.IO input, round three (issue 23): each test fails on the code before its fix.

- 8. Decoding amplification: a megabyte of empty maps or objects (or of ``[0]``,
  ``undefined`` or placeholders among them) costs the decoded values and the
  message, nothing per child beside them; a MessagePack map key that is not a
  string is a parse error.
- 7. Admin logins: guesses are throttled per address (the right password too,
  once over the allowance), a bcrypt flood cannot lock the operator out, and the
  password can come from a file or the environment instead of the command line.
- 5. Metric labels: a dynamic namespace's children are counted under it and
  labels are capped, so a scrape stays small whatever names clients choose.
"""

from __future__ import annotations

import base64
import re
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import bcrypt
import msgpack
import pytest
import pytest_twisted
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent
from twisted.python import usage

from tests.fakes import HANDSHAKE, Peer
from tests.peers import PollingPeer, until
from tests.socketio.app import install
from txrealtime._logging import name_for_log
from txrealtime.admin import BasicAuth, instrument
from txrealtime.admin.service import AdminService
from txrealtime.admin.throttle import LoginThrottle
from txrealtime.engineio import CloseReason, EngineIOOptions, SessionClosed, SessionEvent, SessionManager
from txrealtime.metrics import metrics_registry
from txrealtime.protocol.msgpack import MsgpackDecoder
from txrealtime.protocol.packets import Decoder, Packet, PacketType
from txrealtime.pytest_plugin import Realtime
from txrealtime.service import Options, make_process_service
from txrealtime.socketio import Server

# -- 8. decoding amplification -----------------------------------------------------------------

COUNT = 240_000
"""Children in one message (about 300-700 KB of them)."""


def msgpack_event(children: bytes, count: int) -> bytes:
    """A msgpack EVENT ``["x", *children]`` whose ``count`` children are the bytes ``children``."""
    return b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\xdd" + (count + 1).to_bytes(4, "big") + b"\xa1x" + children


def json_feed(*messages: str | bytes) -> Callable[[], Packet | None]:
    decoder = Decoder(max_bytes=2_000_000)
    return lambda: [decoder.feed(m) for m in messages][-1]


def msgpack_feed(message: bytes) -> Callable[[], Packet | None]:
    decoder = MsgpackDecoder()
    return lambda: decoder.feed(message)


AMPLIFIERS: dict[str, tuple[Callable[[], Callable[[], Packet | None]], Any]] = {
    "json-empty-objects": (lambda: json_feed('2["x",' + ",".join(["{}"] * COUNT) + "]"), {}),
    "json-small-arrays": (lambda: json_feed('2["x",' + ",".join(["[0]"] * COUNT) + "]"), [0]),
    "json-placeholder-among-objects": (
        lambda: json_feed('51-["x",' + ",".join(["{}"] * COUNT) + ',[{"_placeholder":true,"num":0}]]', b"\x01"), {}
    ),
    "msgpack-empty-maps": (lambda: msgpack_feed(msgpack_event(b"\x80" * COUNT, COUNT)), {}),
    "msgpack-nil-arrays": (lambda: msgpack_feed(msgpack_event(b"\x91\xc0" * COUNT, COUNT)), [None]),
    "msgpack-undefined-among-maps": (
        lambda: msgpack_feed(msgpack_event(b"\x80" * COUNT + b"\x91\xd4\x00\x00", COUNT + 1)), {}
    ),
}


@pytest.mark.parametrize("case", list(AMPLIFIERS))
def test_decoding_holds_nothing_per_child(case: str) -> None:
    """Peak memory while decoding is what the decoded packet holds plus about one message: no tuple, list
    entry or copy per child (the depth check held a tuple per child beside the values: 161 MB for 1 MB)."""
    make, child = AMPLIFIERS[case]
    feed = make()  # the message is built outside the measurement
    tracemalloc.start()
    try:
        packet = feed()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert packet is not None
    args = packet.args
    assert len(args) in (COUNT, COUNT + 1) and args[0] == child
    if case == "json-placeholder-among-objects":
        assert args[-1] == [b"\x01"]
    if case == "msgpack-undefined-among-maps":
        assert args[-1] == [None]
    # The JSON decoder slices the text once (COUNT * 4 bytes at most); everything else is the values.
    assert peak - held < COUNT * 4 + 100_000, (peak - held, held)


def test_nested_undefined_and_placeholders_are_replaced_in_place() -> None:
    undefined = msgpack.ExtType(0, b"\x00")
    message = msgpack.packb({"type": 2, "nsp": "/", "data": ["x", [undefined, {"k": [undefined]}], undefined]})
    packet = MsgpackDecoder().feed(message)
    assert packet is not None and packet.data == ["x", [None, {"k": [None]}], None]
    decoder = Decoder()
    assert decoder.feed('52-["x",{"a":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]') is None
    assert decoder.feed(b"zero") is None
    packet = decoder.feed(b"one")
    assert packet is not None and packet.data == ["x", {"a": [b"one"]}, b"zero"]


def closed(events: list[SessionEvent], sid: str) -> list[tuple[CloseReason, str]]:
    return [(e.reason, e.description) for e in events if isinstance(e, SessionClosed) and e.sid == sid]


def as_body(*packets: Any) -> str:
    return "\x1e".join("b" + base64.b64encode(msgpack.packb(p)).decode() for p in packets)


@pytest.mark.parametrize("key", [b"k", msgpack.ExtType(0, b"\x01\x02")], ids=["bin", "array-buffer"])
@pytest_twisted.ensureDeferred
async def test_binary_map_keys_are_a_parse_error(realtime: Realtime, key: Any) -> None:
    """Map keys must be strings (as the module says): a binary key closes that session, the canary carries on."""
    running = await realtime.start_server(install, parser="msgpack")
    events: list[SessionEvent] = []
    running.server.manager.subscribe(events.append)
    offender = PollingPeer(running.url)
    await offender.open(None)
    assert await offender.post(as_body({"type": 0, "nsp": "/"})) == "ok"
    assert (await offender.get()).startswith("b")  # the CONNECT answer
    assert await offender.post(as_body({"type": 2, "nsp": "/", "data": ["ack", {"deep": [{key: 1}]}]})) == "ok"
    assert closed(events, offender.sid) == [(CloseReason.PARSE_ERROR, "a map key is not a string")]
    canary = await realtime.connect(running, parser="msgpack")
    assert await canary.emit_with_ack("ack", {"k": b"v"}, timeout=10) == ("got", {"k": b"v"})


# -- 7. admin logins ---------------------------------------------------------------------------------------------


def admin_peer(manager: SessionManager, address: str) -> Peer:
    return Peer(manager, handshake=replace(HANDSHAKE, address=address))


def login(peer: Peer, password: str, username: str = "admin") -> Any:
    """Send one admin CONNECT; the answer: ``"ok"``, or the refusal's message (``None`` while it is checked)."""
    peer.send_packet(Packet(PacketType.CONNECT, "/admin", {"username": username, "password": password}))
    return answer(peer)


def answer(peer: Peer) -> Any:
    for packet in peer.packets():
        if packet.namespace == "/admin" and packet.type is PacketType.CONNECT:
            return "ok"
        if packet.namespace == "/admin" and packet.type is PacketType.CONNECT_ERROR:
            return packet.data["message"]
    return None


def test_admin_password_guesses_are_throttled_per_address() -> None:
    """One connection guessing as fast as it can: ten wrong passwords, then refused without a check (the right
    password too) until its allowance refills; the operator at another address is not affected."""
    clock = Clock()
    manager = SessionManager(EngineIOOptions(ping_interval=1000, ping_timeout=1000), reactor=clock)
    server = Server(manager)
    instrument(server, auth=("admin", "right"), server_id="node-1")
    attacker = admin_peer(manager, "203.0.113.7")
    answers = [login(attacker, f"guess-{n}") for n in range(200)]
    assert answers == ["invalid credentials"] * 10 + ["too many login attempts, retry later"] * 190
    assert login(attacker, "right") == "too many login attempts, retry later"
    operator = admin_peer(manager, "198.51.100.1")
    assert login(operator, "wrong") == "invalid credentials"
    assert login(operator, "right") == "ok"
    clock.advance(6)  # one more attempt for the attacker
    assert [login(attacker, "guess"), login(attacker, "guess")] == ["invalid credentials",
                                                                  "too many login attempts, retry later"]
    clock.advance(6)
    assert login(attacker, "right") == "ok"  # a right password gives the allowance back
    assert [login(admin_peer(manager, "203.0.113.7"), "x") for _ in range(10)] == ["invalid credentials"] * 10


def test_the_addresses_remembered_are_bounded() -> None:
    """Made-up addresses (IPv6 gives plenty) cost at most ``max_addresses`` entries; one being checked stays."""
    clock = Clock()
    throttle = LoginThrottle(clock, max_addresses=100)
    assert throttle.admit("2001:db8::1") is None  # being checked
    for n in range(2, 5000):
        assert throttle.admit(f"2001:db8::{n:x}") is None
        throttle.done(f"2001:db8::{n:x}", False)
    assert len(throttle) == 100
    assert throttle.admit("2001:db8::1") == "a login from this address is being checked"


@pytest_twisted.ensureDeferred
async def test_a_bcrypt_flood_cannot_lock_the_operator_out() -> None:
    """bcrypt checks run in the thread pool, 2 at once, 32 waiting. 150 wrong logins from one address sent at
    once hold one place (the rest are refused at once); 60 addresses that have failed before fill the line,
    and the operator, who has not, takes the place of one of them and is let in."""
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(4)).decode()
    manager = SessionManager(EngineIOOptions(ping_interval=1000, ping_timeout=1000))
    server = Server(manager)
    instrumentation = instrument(server, auth=("admin", hashed), server_id="node-1")
    try:
        attacker = [admin_peer(manager, "203.0.113.7") for _ in range(150)]
        at_once = [login(peer, "wrong") for peer in attacker]
        assert at_once == [None] + ["a login from this address is being checked"] * 149
        operator = admin_peer(manager, "198.51.100.1")
        assert login(operator, "right") is None  # waiting in line
        await until(lambda: answer(operator) == "ok", "the operator to be let in")
        assert answer(attacker[0]) == "invalid credentials"

        # Sixty addresses, each with a wrong password behind it, then all at once with the operator last.
        for n in range(60):
            assert login(admin_peer(manager, f"10.0.0.{n}"), "wrong") in (None, "too many logins being checked, "
                                                                                "retry later")
        queue = instrumentation.login.queue if instrumentation.login is not None else None
        assert queue is not None
        await until(lambda: queue.running == queue.waiting == 0, "the first round to be checked")
        crowd = [admin_peer(manager, f"10.0.0.{n}") for n in range(60)]
        at_once = [login(peer, "wrong again") for peer in crowd]
        assert at_once == [None] * 34 + ["too many logins being checked, retry later"] * 26
        operator = admin_peer(manager, "198.51.100.1")
        assert login(operator, "right") is None
        assert (queue.running, queue.waiting) == (2, 32)
        await until(lambda: answer(operator) == "ok", "the operator to be let in past the crowd")
        await until(lambda: queue.running == queue.waiting == 0, "the checks to end")
        answers = [answer(peer) for peer in crowd[:34]]
        assert sorted(answers, key=str) == ["invalid credentials"] * 33 + ["too many logins being checked, retry later"]
    finally:
        instrumentation.close()


HASH = "$2b$10$GdtRguLTec.mN/llKziN.eQchJjRVv4TNepvVGP/bz8JPT.OX6Zue"


def admin_options(*args: str) -> Options:
    options = Options()
    options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1", *args])  # type: ignore[no-untyped-call]
    return options


def started_warnings(options: Options, log_events: list[dict[str, Any]]) -> list[str]:
    realtime = make_process_service(options)
    [admin] = [s for s in realtime if isinstance(s, AdminService)]
    admin.stopService()
    return [formatEvent(e) for e in log_events if e.get("log_level") is LogLevel.warn and "Admin UI" in formatEvent(e)]


def test_admin_password_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_events: list[dict[str, Any]]
) -> None:
    """The password (or its hash) need not be on the command line, where every local user sees it."""
    monkeypatch.delenv("TXREALTIME_ADMIN_PASSWORD", raising=False)
    secret = tmp_path / "admin-password"
    secret.write_text("correct horse: battery\n")
    secret.chmod(0o600)
    options = admin_options("--admin", "ops", "--admin-password-file", str(secret))
    assert options["admin-auth"] == BasicAuth("ops", "correct horse: battery")
    assert options.worker_args().count(f"--admin-password-file={secret}") == 1  # each worker reads it too
    assert not [a for a in options.worker_args() if "battery" in a]
    assert started_warnings(options, log_events) == []

    monkeypatch.setenv("TXREALTIME_ADMIN_PASSWORD", HASH)
    assert admin_options("--admin", "ops")["admin-auth"] == BasicAuth("ops", HASH)

    # The old form works, and says where the password shows.
    log_events.clear()
    options = admin_options("--admin", "ops:plain")
    assert options["admin-auth"] == BasicAuth("ops", "plain")
    [warning] = started_warnings(options, log_events)
    assert "shows in the process list" in warning and "--admin-password-file" in warning

    log_events.clear()
    secret.chmod(0o644)
    [warning] = started_warnings(admin_options("--admin", "ops", "--admin-password-file", str(secret)), log_events)
    assert "can be read by other users" in warning


@pytest.mark.parametrize(("args", "message"), [
    (["--admin", "ops"], "no password: give --admin-password-file FILE, set TXREALTIME_ADMIN_PASSWORD"),
    (["--admin-password-file", "/nonexistent"], "--admin-password-file needs --admin USER"),
    (["--admin", "ops:pw", "--admin-password-file", "/nonexistent"], "exclude each other"),
    (["--admin", "ops", "--admin-password-file", "/nonexistent/pw"], "cannot read the password file"),
])
def test_admin_password_option_errors(monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    monkeypatch.delenv("TXREALTIME_ADMIN_PASSWORD", raising=False)
    with pytest.raises(usage.UsageError, match=re.escape(message)):
        admin_options(*args)


# -- 5. namespace names as metric labels -------------------------------------------------------------------------


def sockets_by_namespace(server: Server) -> tuple[dict[str, float], int]:
    """The ``txrealtime_socketio_sockets`` samples of a scrape, by label, and the scrape's size in bytes."""
    text = generate_latest(metrics_registry(server, process=False))
    samples = {
        sample.labels["namespace"]: sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples if sample.name == "txrealtime_socketio_sockets"
    }
    return samples, len(text)


def test_namespace_labels_stay_few_and_short() -> None:
    """4,000 children of a dynamic namespace and a few 90,000-character names: the children are counted under
    their parent's name, every label is capped, and the scrape stays small, before and after the clients leave
    (it was 4.7 MB, still after every client had left)."""
    clock = Clock()
    manager = SessionManager(EngineIOOptions(ping_interval=1000, ping_timeout=1000), reactor=clock)
    server = Server(manager, max_namespaces_per_client=10_000)
    server.of(re.compile(r"/dyn-\d+"))
    server.of(lambda name, auth: name.startswith("/long-"))
    server.of("/chat")
    long_static = "/static-" + "s" * 90_000
    server.of(long_static)
    peer = Peer(manager)
    for n in range(4000):
        peer.connect(f"/dyn-{n}")
    for n in range(3):
        peer.connect(f"/long-{n}-" + "x" * 90_000)
    peer.connect(long_static)
    samples, size = sockets_by_namespace(server)
    assert {name: count for name, count in samples.items() if count} == {
        "/dyn-\\d+": 4000, "/_1": 3, name_for_log(long_static): 1,
    }
    assert set(samples) == {"/", "/chat", "/dyn-\\d+", "/_1", name_for_log(long_static)}
    assert size < 10_000
    peer.session.close()
    samples, size = sockets_by_namespace(server)
    assert samples == {"/": 0, "/chat": 0, "/dyn-\\d+": 0, "/_1": 0, name_for_log(long_static): 0}
    assert size < 10_000
