"""The compiled JSON codec (orjson + msgspec, the ``json`` extra) against the standard library's, and both against
Node's ``JSON.parse``/``JSON.stringify``: the same text for the same values, the same values or the same refusal
for the same text."""

from __future__ import annotations

import datetime
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from txrealtime import _json

FAST = _json.compiled()
needs_fast = pytest.mark.skipif(FAST is None, reason="orjson or msgspec not installed (the json extra)")

SCALARS = (
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats() | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4),
    max_leaves=20,
)
JUNK = st.text(alphabet=st.sampled_from(list('[]{}",:0123456789.eE+-truefalsnNaIiy \t\n\r\\u\ufeff\xa0d\x00\x1f')),
               max_size=24)


def outcome(function: Any, value: Any) -> tuple[str, Any]:
    try:
        return "value", function(value)
    except (TypeError, ValueError, RecursionError) as e:  # the class that callers catch, not its subclass
        return "refused", next(c.__name__ for c in (TypeError, ValueError, RecursionError) if isinstance(e, c))


def same_number_text(a: str, b: str) -> bool:
    """The same JSON, but for how a float's exponent is written (``1e-09`` or ``1e-9``: both read alike)."""
    return repr(json.loads(a)) == repr(json.loads(b))


@needs_fast
@settings(max_examples=400, suppress_health_check=list(HealthCheck), deadline=None)
@given(VALUES)
def test_dumps_as_the_standard_library(value: Any) -> None:
    assert FAST is not None
    fast, slow = outcome(FAST.dumps, value), outcome(_json.STDLIB.dumps, value)
    assert fast[0] == slow[0], (value, fast, slow)
    if fast[0] == "value":
        assert fast[1] == slow[1] or same_number_text(fast[1], slow[1]), (value, fast, slow)


@needs_fast
@settings(max_examples=400, suppress_health_check=list(HealthCheck), deadline=None)
@given(VALUES)
def test_loads_as_the_standard_library(value: Any) -> None:
    assert FAST is not None
    try:
        text = json.dumps(value, ensure_ascii=False)
    except ValueError:  # a surrogate-free check is not the point here
        return
    assert repr(outcome(FAST.loads, text)) == repr(outcome(_json.STDLIB.loads, text)), text


@needs_fast
@settings(max_examples=400, suppress_health_check=list(HealthCheck), deadline=None)
@given(JUNK)
def test_loads_junk_as_the_standard_library(text: str) -> None:
    assert FAST is not None
    assert repr(outcome(FAST.loads, text)) == repr(outcome(_json.STDLIB.loads, text)), text


@dataclass
class Point:
    x: int


CASES: list[tuple[Any, tuple[str, Any]]] = [
    (["a", {"b": 1, "a": [True, None]}], ("value", '["a",{"b":1,"a":[true,null]}]')),  # key order, compact
    ({"é": "€😀\u2028"}, ("value", '{"é":"€😀\u2028"}')),  # UTF-8 as it is, U+2028 too (as JSON.stringify)
    (["\ud800x"], ("value", '["\\ud800x"]')),  # a lone surrogate, escaped
    ([2**70, -(2**64)], ("value", "[1180591620717411303424,-18446744073709551616]")),
    ({1: "one"}, ("value", '{"1":"one"}')),
    ([float("nan")], ("refused", "ValueError")),
    ({"x": [math.inf]}, ("refused", "ValueError")),
    ([None, "null"], ("value", '[null,"null"]')),
    (datetime.datetime(2026, 11, 29, 5, 6, 7, 891234, tzinfo=datetime.UTC), ("value", '"2026-11-29T05:06:07.891Z"')),
    (datetime.date(2026, 11, 29), ("value", '"2026-11-29"')),
    (Point(1), ("refused", "TypeError")),
    ({1, 2}, ("refused", "TypeError")),
    (b"bytes", ("refused", "TypeError")),
]


@pytest.mark.parametrize("codec", ["stdlib", "compiled"])
@pytest.mark.parametrize(("value", "expected"), CASES)
def test_dumps_cases(codec: str, value: Any, expected: tuple[str, Any]) -> None:
    chosen = _json.STDLIB if codec == "stdlib" else FAST
    if chosen is None:
        pytest.skip("orjson or msgspec not installed")
    assert outcome(chosen.dumps, value) == expected


LOADS_CASES: list[tuple[str, tuple[str, Any]]] = [
    ('["\\ud800"]', ("value", ["\ud800"])),
    ("[18446744073709551617]", ("value", [18446744073709551617])),
    ("1e400", ("refused", "ValueError")),
    ("[NaN]", ("refused", "ValueError")),
    ("[Infinity]", ("refused", "ValueError")),
    ('{"a":1,"a":2}', ("value", {"a": 2})),
    ("[1,]", ("refused", "ValueError")),
    ('"\x01"', ("refused", "ValueError")),
]


@pytest.mark.parametrize("codec", ["stdlib", "compiled"])
@pytest.mark.parametrize(("text", "expected"), LOADS_CASES)
def test_loads_cases(codec: str, text: str, expected: tuple[str, Any]) -> None:
    chosen = _json.STDLIB if codec == "stdlib" else FAST
    if chosen is None:
        pytest.skip("orjson or msgspec not installed")
    assert outcome(chosen.loads, text) == expected


NODE_SCRIPT = r"""
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
for (const line of lines) {
  const text = JSON.parse(line);  // each line: our text, as a JSON string
  let out;
  try { out = ["value", JSON.stringify(JSON.parse(text))]; } catch (e) { out = ["refused", e.name]; }
  process.stdout.write(JSON.stringify(out) + "\n");
}
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_node_reads_what_we_write_and_we_read_what_it_writes() -> None:
    """Node parses every text the codec in use writes to the same value (and writes back the same text, floats
    aside), and the codec in use reads Node's text back to the value it started from."""
    values = [value for value, (kind, _) in CASES if kind == "value" and not beyond_doubles(value)] + [
        {"n": 2**53 - 1, "f": 0.1, "big": 1e300, "tiny": 5e-324, "neg": -0.5}, ["\x00\x1f\x7f", "\\", '"'],
        {"nested": [[[[{}]]], []]},
    ]
    texts = [_json.dumps(v) for v in values]
    done = subprocess.run(
        ["node", "-e", NODE_SCRIPT], input="".join(json.dumps(t) + "\n" for t in texts), capture_output=True,
        text=True, timeout=60, check=True,
    )
    answers = [json.loads(line) for line in done.stdout.split("\n") if line]  # not splitlines: U+2028
    assert len(answers) == len(texts), done.stderr
    for value, text, (kind, node_text) in zip(values, texts, answers, strict=True):
        assert kind == "value", (value, text)
        assert _json.loads(node_text) == _json.loads(text), (value, text, node_text)
        if not has_float(value):  # Python and JavaScript write some floats differently (1e+16, 10000000000000000)
            assert node_text == text, (value, text, node_text)


def beyond_doubles(value: Any) -> bool:
    """Whether ``value`` holds integers JavaScript cannot hold exactly (Node reads them as the nearest double)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) > 2**53
    if isinstance(value, dict):
        return any(beyond_doubles(v) for v in value.values())
    return isinstance(value, list) and any(beyond_doubles(v) for v in value)


def has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(has_float(v) for v in value.values())
    return isinstance(value, list) and any(has_float(v) for v in value)


def test_stdlib_forced_by_the_environment() -> None:
    code = "from txrealtime import _json; print(_json.CODEC.name)"
    env = dict(os.environ, TXREALTIME_JSON="stdlib")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.strip() == "stdlib"
    env.pop("TXREALTIME_JSON")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.strip() == ("orjson+msgspec" if FAST is not None else "stdlib")
