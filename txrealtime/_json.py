"""The JSON codec of Socket.IO packets: compiled (the ``json`` extra) where installed, the standard library else.

Both ways the text and the values are those of ``JSON.stringify`` and ``JSON.parse``
(:mod:`txrealtime._js`'s rules): compact, UTF-8 text as it is, a lone surrogate
escaped, ``NaN`` and infinities refused, integers of any size, keys in order.
The compiled libraries take the common case and hand everything else to the
standard library, whose answer (value or error) is the one given:

- :func:`dumps` with orjson: what orjson refuses (integers beyond 64 bits,
  non-string keys, lone surrogates, other types) and any text holding ``null``
  (orjson writes ``NaN`` and infinities as ``null``, which must be refused) are
  written by :func:`txrealtime._js.stringify`; dates and dataclasses go through
  its ``default`` as there.
- :func:`loads` with msgspec (which keeps integers of any size, where orjson
  makes floats of those beyond 64 bits): what msgspec refuses (lone surrogate
  escapes, numbers out of range, invalid JSON) is parsed by the standard library.

``TXREALTIME_JSON=stdlib`` forces the standard library, for comparison or if in doubt.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._js import json_default, stringify

__all__ = ["CODEC", "JSON_ENV", "STDLIB", "Codec", "compiled", "dumps", "loads"]

JSON_ENV = "TXREALTIME_JSON"
"""The environment variable that forces the standard library (``stdlib``) when set to it."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError("number out of range")
    return value


_STRICT = json.JSONDecoder(parse_float=_finite_float, parse_constant=_reject_constant)
"""``JSON.parse``'s rules: ``NaN``, ``Infinity`` and numbers that overflow to infinity are refused."""



@dataclass(frozen=True, slots=True)
class Codec:
    """A JSON codec: :attr:`dumps` writes ``data`` as ``JSON.stringify`` would (``TypeError`` for values JSON
    cannot carry, ``ValueError`` for ``NaN`` and infinities); :attr:`loads` parses ``text`` as strictly as
    ``JSON.parse`` (``ValueError``, or ``RecursionError`` for absurd nesting, for what it refuses)."""

    name: str
    dumps: Callable[[Any], str]
    loads: Callable[[str], Any]


STDLIB = Codec("stdlib", stringify, _STRICT.decode)
"""The standard library's ``json`` (through :func:`txrealtime._js.stringify` and a strict decoder)."""


def compiled() -> Codec | None:
    """orjson writing and msgspec parsing, the standard library for what they refuse; ``None`` without them."""
    try:
        import msgspec
        import orjson
    except ImportError:
        return None
    encode, fallback_dumps, fallback_loads = orjson.dumps, STDLIB.dumps, STDLIB.loads
    options = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    decode = msgspec.json.Decoder().decode

    def dumps(data: Any) -> str:
        try:
            raw = encode(data, default=json_default, option=options)
        except TypeError:  # too big an integer, a key that is not a string, a lone surrogate, an unknown type
            return fallback_dumps(data)
        if b"null" in raw:  # NaN or an infinity, perhaps: the standard library refuses them
            return fallback_dumps(data)
        return raw.decode()

    def loads(text: str) -> Any:
        try:
            return decode(text)
        except (msgspec.DecodeError, RecursionError):  # out of range (a ValidationError), invalid, too deep
            return fallback_loads(text)

    return Codec("orjson+msgspec", dumps, loads)


def _choose() -> Codec:
    if os.environ.get(JSON_ENV, "").lower() == "stdlib":
        return STDLIB
    return compiled() or STDLIB


CODEC = _choose()
"""The codec in use: :func:`compiled` where orjson and msgspec are installed and ``TXREALTIME_JSON`` is not
``stdlib``, else :data:`STDLIB`."""

dumps = CODEC.dumps
"""Write ``data`` as ``JSON.stringify`` would, with :data:`CODEC`."""

loads = CODEC.loads
"""Parse ``text`` as strictly as ``JSON.parse``, with :data:`CODEC`."""
