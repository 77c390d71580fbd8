"""How values travel as JavaScript writes them, in one place: ``JSON.stringify`` and ``Date``.

JSON (Socket.IO packets, the Redis adapter's JSON requests) is written as
``JSON.stringify`` writes it: compact, UTF-8 text as it is, a lone surrogate
escaped (``\\ud800``); ``NaN`` and infinities are refused (``ValueError``:
``JSON.parse`` would refuse what Python writes for them). A ``datetime``
is written as ``Date.prototype.toJSON`` writes it, the UTC instant to the
millisecond (``2026-11-29T05:06:07.891Z``); a ``date`` as ``YYYY-MM-DD``.
MessagePack (the Redis adapter's broadcasts and the emitter's): an aware
``datetime`` is the timestamp extension (type -1), which ``notepack.io``
reads as a ``Date``; a naive ``datetime`` is local time there too, and a
``date`` is its ``YYYY-MM-DD`` string, as in JSON.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

__all__ = ["json_default", "msgpack_default", "stringify"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def stringify(data: Any) -> str:
    """``JSON.stringify(data)``; ``TypeError`` for values JSON cannot carry, ``ValueError`` for ``NaN``."""
    text = _ENCODER.encode(data)
    if not text.isascii():
        # A lone surrogate cannot be written as UTF-8: escape it, as JSON.stringify does.
        text = _SURROGATE.sub(_escape_surrogate, text)
    return text


def json_default(value: Any) -> Any:
    """The JSON stand-in for a ``datetime`` or ``date``; ``TypeError`` for any other value JSON cannot carry."""
    if isinstance(value, datetime.datetime):
        utc = value.astimezone(datetime.UTC)  # a naive value is local time
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} values cannot be sent (not JSON-serializable)")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=json_default)
"""One encoder for every call: ``json.dumps`` with these options would build a new one each time."""


def msgpack_default(value: Any) -> Any:
    """What MessagePack writes instead of a naive ``datetime`` (the aware local time) or a ``date`` (its ISO
    string); ``TypeError`` for any other value MessagePack cannot carry (aware ``datetime`` values never get here)."""
    if isinstance(value, datetime.datetime):
        return value.astimezone()
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} values cannot be sent (not MessagePack-serializable)")
