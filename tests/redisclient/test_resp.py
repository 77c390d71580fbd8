"""The RESP codec without a server: hiredis against the pure reader, round trips, fuzzing, key slots."""

from __future__ import annotations

import math
from typing import Any

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from txrealtime.redis.resp import (
    NOT_ENOUGH,
    PUSH_TYPES,
    ProtocolError,
    PureReader,
    Push,
    Reader,
    ReplyError,
    encode_command,
    encode_command_pure,
    hiredis_reader,
    replies,
)
from txrealtime.redis.slots import SlotMap, crc16, key_slot, parse_redirect

READERS = {"pure": PureReader, "hiredis": hiredis_reader}


# -- a generator of replies, and the bytes that carry them -----------------------------------------


def _line(kind: bytes, text: bytes) -> bytes:
    return kind + text + b"\r\n"


def _bulk(kind: bytes, data: bytes) -> bytes:
    return b"%s%d\r\n%s\r\n" % (kind, len(data), data)


simple_text = st.binary(max_size=20).filter(lambda b: b"\r" not in b and b"\n" not in b)
floats = st.floats(allow_nan=False, allow_infinity=True)

scalars: st.SearchStrategy[tuple[bytes, Any]] = st.one_of(
    simple_text.map(lambda t: (_line(b"+", t), t)),
    st.text(max_size=20).filter(lambda t: "\r" not in t and "\n" not in t).map(
        lambda t: (_line(b"-", t.encode()), ReplyError(t))
    ),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: (_line(b":", b"%d" % n), n)),
    st.binary(max_size=40).map(lambda b: (_bulk(b"$", b), b)),
    st.just((b"$-1\r\n", None)),
    st.just((b"*-1\r\n", None)),
    st.just((b"_\r\n", None)),
    st.booleans().map(lambda v: (b"#t\r\n" if v else b"#f\r\n", v)),
    floats.map(lambda f: (_line(b",", repr(f).encode()), f)),
    st.integers(-(10**30), 10**30).map(lambda n: (_line(b"(", b"%d" % n), b"%d" % n)),
    st.binary(max_size=20).map(lambda b: (_bulk(b"=", b"txt:" + b), b)),
)


def _aggregate(kind: bytes, wrap: Any, children: list[tuple[bytes, Any]]) -> tuple[bytes, Any]:
    return b"%s%d\r\n" % (kind, len(children)) + b"".join(c[0] for c in children), wrap([c[1] for c in children])


def _map(pairs: list[tuple[tuple[bytes, Any], tuple[bytes, Any]]]) -> tuple[bytes, Any]:
    data = b"%%%d\r\n" % len(pairs) + b"".join(k[0] + v[0] for k, v in pairs)
    return data, {k[1]: v[1] for k, v in pairs}


hashable_keys = st.one_of(
    simple_text.map(lambda t: (_line(b"+", t), t)),
    st.integers(-1000, 1000).map(lambda n: (_line(b":", b"%d" % n), n)),
)

values: st.SearchStrategy[tuple[bytes, Any]] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda c: _aggregate(b"*", list, c)),
        st.lists(inner, max_size=4).map(lambda c: _aggregate(b"~", list, c)),
        st.lists(st.tuples(hashable_keys, inner), max_size=3, unique_by=lambda kv: kv[0][1]).map(_map),
    ),
    max_leaves=12,
)
pushes = st.lists(values, min_size=1, max_size=4).map(lambda c: _aggregate(b">", Push, c))


def same(a: Any, b: Any) -> bool:
    """Equality that counts NaN equal to itself and tells pushes from lists and bools from ints."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if (type(a) in PUSH_TYPES) != (type(b) in PUSH_TYPES) or type(a) is bool and type(b) is not bool:
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(type(a) is type(b) and a == b) or (type(a) in PUSH_TYPES and a == b)


def read_all(reader: Reader, data: bytes, chunk: int | None = None) -> list[Any]:
    if chunk is None:
        return list(replies(reader, data))
    out: list[Any] = []
    for i in range(0, len(data), chunk):
        out.extend(replies(reader, data[i : i + chunk]))
    return out


@given(replies_=st.lists(st.one_of(values, pushes), min_size=1, max_size=5), chunk=st.integers(1, 30))
def test_round_trip_whole_and_in_pieces(replies_: list[tuple[bytes, Any]], chunk: int) -> None:
    data = b"".join(r[0] for r in replies_)
    expected = [r[1] for r in replies_]
    for make in READERS.values():
        for got in (read_all(make(), data), read_all(make(), data, chunk)):
            assert len(got) == len(expected)
            assert all(same(g, e) for g, e in zip(got, expected, strict=True))


@settings(max_examples=300)
@given(st.lists(st.one_of(values, pushes), min_size=1, max_size=4), st.data())
def test_pure_and_hiredis_agree_on_mutated_input(replies_: list[tuple[bytes, Any]], data: st.DataObject) -> None:
    """Mutated RESP: both readers give the same replies, or both fail with ProtocolError; neither hangs."""
    raw = bytearray(b"".join(r[0] for r in replies_))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.sampled_from(b"\r\n*$:+-%~>_#,(=!|0123456789-abc"))
        if op == "insert":
            raw[position:position] = bytes([byte])
        elif position < len(raw):
            raw[position : position + 1] = b"" if op == "delete" else bytes([byte])
    results: list[tuple[str, list[Any] | None]] = []
    for make in READERS.values():
        try:
            results.append(("ok", read_all(make(), bytes(raw))))
        except ProtocolError:
            results.append(("error", None))
    (kind_a, a), (kind_b, b) = results
    if b"|" in raw:
        return  # attributes: hiredis hands them over as replies of their own, the pure reader refuses them
    assert kind_a == kind_b, (bytes(raw), results)
    if kind_a == "ok":
        assert a is not None and b is not None
        assert len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True)), bytes(raw)


@pytest.mark.parametrize("make", READERS.values(), ids=READERS.keys())
@pytest.mark.parametrize(
    "data",
    [
        b"?\r\n", b":1x\r\n", b":-0\r\n", b":9223372036854775808\r\n", b"$-2\r\n", b"$2\r\nabc\r\n\r\n",
        b"+a\rb\r\n", b"#x\r\n", b"_1\r\n", b",1e999\r\n", b",2e-324\r\n", b",+1\r\n", b",Infinity\r\n",
        b"(1-2\r\n", b"=3\r\nabc\r\n", b"!3\r\nerr\r\n", b"%1\r\n*0\r\n:1\r\n", b"%1\r\n%0\r\n:1\r\n",
        b"*1\r\n" * 1025 + b":1\r\n", b"," + b"1" * 326 + b"\r\n",
    ],
)
def test_malformed_input_is_a_protocol_error(make: Any, data: bytes) -> None:
    with pytest.raises(ProtocolError):
        read_all(make(), data)


@pytest.mark.parametrize("make", READERS.values(), ids=READERS.keys())
def test_incomplete_input_waits(make: Any) -> None:
    reader = make()
    for piece in (b"*2\r\n$5\r\nhel", b"lo\r\n", b":1\r"):
        reader.feed(piece)
        assert reader.gets() is NOT_ENOUGH
    reader.feed(b"\n#f\r\n")
    assert reader.gets() == [b"hello", 1]
    assert reader.gets() is False  # the boolean, not "no reply yet"
    assert reader.gets() is NOT_ENOUGH


def test_deep_nesting_within_the_limit_is_read_without_recursion() -> None:
    reply = read_all(PureReader(), b"*1\r\n" * 1024 + b":1\r\n")[0]
    for _ in range(1024):
        reply = reply[0]
    assert reply == 1


def test_a_huge_bulk_length_is_refused_not_awaited() -> None:
    with pytest.raises(ProtocolError):
        read_all(PureReader(), b"$999999999999\r\n")


def test_reply_errors() -> None:
    [error] = read_all(hiredis_reader(), b"-MOVED 3999 127.0.0.1:6381\r\n")
    assert isinstance(error, ReplyError) and error.code == "MOVED" and error.message == "MOVED 3999 127.0.0.1:6381"
    assert read_all(PureReader(), b"-ERR \xff\r\n") == [ReplyError("ERR \ufffd")]


# -- commands ---------------------------------------------------------------------------------------


def test_command_bytes() -> None:
    assert encode_command(["PUBLISH", "ch", b"\x00\xff"]) == b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\n\x00\xff\r\n"
    assert encode_command(["SELECT", 2, 1.5]) == b"*3\r\n$6\r\nSELECT\r\n$1\r\n2\r\n$3\r\n1.5\r\n"
    # A lone surrogate is written as U+FFFD, as Node's Buffer.from(string) writes it.
    assert encode_command(["x\ud800"]) == b"*1\r\n$4\r\nx\xef\xbf\xbd\r\n"
    with pytest.raises(TypeError):
        encode_command(["SET", True])


@given(st.lists(st.one_of(st.binary(max_size=30), st.text(max_size=30), st.integers(), st.floats()), min_size=1,
                max_size=6))
def test_commands_as_hiredis_packs_them(args: list[bytes | str | int | float]) -> None:
    assert encode_command(args) == encode_command_pure(args)
    if any(isinstance(a, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in a) for a in args):
        return  # hiredis refuses lone surrogates; encode_command writes U+FFFD
    assert encode_command_pure(args) == hiredis.pack_command(tuple(args))  # type: ignore[arg-type]
    assert read_all(PureReader(), encode_command(args)) == [
        [a if isinstance(a, bytes) else repr(a).encode() if isinstance(a, float) else str(a).encode() for a in args]
    ]


# -- key slots, the slot map, redirections ---------------------------------------------------------


def test_key_slots_as_redis_computes_them() -> None:
    assert crc16(b"123456789") == 0x31C3  # the CRC-16/XMODEM check value
    # CLUSTER KEYSLOT answers on a real cluster (tests/redisclient/test_cluster.py checks more against one).
    assert key_slot("foo") == 12182
    assert key_slot("bar") == 5061
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers") == key_slot("user1000")
    assert key_slot("foo{}{bar}") == key_slot("foo{}{bar}")  # an empty tag: the whole key is hashed
    assert key_slot("foo{}{bar}") != key_slot("bar")
    assert key_slot("foo{{bar}}zap") == key_slot("{bar")
    assert key_slot("socket.io#/#") == key_slot(b"socket.io#/#")


def test_slot_map_from_shards_and_slots() -> None:
    shards = [
        {b"slots": [0, 5460], b"nodes": [{b"ip": b"10.0.0.1", b"port": 7000, b"endpoint": b"10.0.0.1",
                                          b"role": b"master", b"health": b"online"}]},
        [b"slots", [5461, 10922, 10923, 16383], b"nodes", [
            [b"ip", b"10.0.0.2", b"port", 7001, b"endpoint", b"?", b"role", b"master", b"health", b"online"],
            [b"ip", b"10.0.0.3", b"port", 7002, b"endpoint", b"10.0.0.3", b"role", b"replica", b"health", b"online"],
        ]],
    ]
    slots = SlotMap.from_shards(shards, ("seed", 7005))
    assert slots.complete
    assert slots.owner(0) == ("10.0.0.1", 7000)
    assert slots.owner(16383) == ("seed", 7001)  # "?": the address of the node that answered
    assert slots.masters() == [("10.0.0.1", 7000), ("seed", 7001)]
    legacy = SlotMap.from_slots([[0, 16383, [b"", 7000, b"id"]]], ("seed", 7005))
    assert legacy.owner(100) == ("seed", 7000)
    legacy.move(100, ("other", 1))
    assert legacy.owner(100) == ("other", 1) and legacy.masters() == [("seed", 7000), ("other", 1)]
    assert not SlotMap([(0, 10, ("a", 1))]).complete


def test_redirections() -> None:
    full = "MOVED 3999 127.0.0.1:6381"
    assert parse_redirect(full, ("h", 1)) == parse_redirect(full, ("x", 2))  # a full address: who answered is moot
    moved = parse_redirect("MOVED 3999 :6381", ("10.1.1.1", 7000))
    assert moved is not None and (moved.kind, moved.slot, moved.address) == ("MOVED", 3999, ("10.1.1.1", 6381))
    ask = parse_redirect("ASK 1 [::1]:7000", ("h", 1))
    assert ask is not None and (ask.kind, ask.address) == ("ASK", ("::1", 7000))
    for message in ("ERR x", "MOVED x h:1", "MOVED 99999 h:1", "MOVED 1 h", "ASK 1 h:p"):
        assert parse_redirect(message, ("h", 1)) is None


@given(st.binary(max_size=60))
def test_slot_map_and_redirect_readers_never_crash_on_junk(junk: bytes) -> None:
    parse_redirect(junk.decode("utf-8", "replace"), ("h", 1))
    for reader in (SlotMap.from_shards, SlotMap.from_slots):
        try:
            reader(read_all(PureReader(), junk) if junk.endswith(b"\r\n") else [junk], ("h", 1))
        except (ValueError, TypeError, KeyError, IndexError, ProtocolError):
            pass
