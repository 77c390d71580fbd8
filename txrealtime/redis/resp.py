"""RESP, the Redis protocol (RESP2 and RESP3): commands out, replies in; no I/O.

A command is an array of bulk strings (``str`` arguments are UTF-8, lone surrogates written as U+FFFD as
Node's ``Buffer.from`` writes them; ``int`` and ``float`` as their decimal text)::

    command   = "*" count CRLF *( "$" length CRLF bytes CRLF )

A reply is one of these, by its first byte (what it reads as on the right)::

    reply     = simple / error / integer / bulk / array / null / boolean / double / bignum
              / verbatim / map / set / push
    simple    = "+" text CRLF                   bytes (no CR or LF in text)
    error     = "-" text CRLF                   ReplyError(text) (no CR or LF), returned, not raised
    integer   = ":" ["-"] digits CRLF           int, 64-bit signed, no leading zero, no "-0"
    bulk      = "$" length CRLF bytes CRLF      bytes; "$-1" CRLF is None (the two bytes after the
                                                string are skipped unread, as hiredis skips them)
    array     = "*" count CRLF count*reply      list; "*-1" CRLF is None
    null      = "_" CRLF                        None
    boolean   = "#" ("t" / "f") CRLF            True / False
    double    = "," number CRLF                 float: "inf", "-inf", "nan", "-nan" (any case) or a
                                                decimal such as -1.5e3 (finite, not rounded to 0)
    bignum    = "(" ["-"] *digit CRLF           bytes: its digits, as hiredis gives them
    verbatim  = "=" length CRLF fmt ":" bytes CRLF   bytes, the three-letter fmt dropped
    map       = "%" count CRLF count*(reply reply)   dict (keys must be hashable: no map or list keys)
    set       = "~" count CRLF count*reply      list
    push      = ">" count CRLF count*reply      Push (a list) outside the request/reply order:
                                                pub/sub messages, subscription confirmations

Counts and lengths are ``0`` or digits without a leading zero; ``-1`` makes any aggregate ``None``.
Blob errors (``!``) and attributes (``|``), which Redis 7 never sends, are protocol errors (hiredis
3.5 hands an attribute over as replies of their own, out of step with the commands: the connection
cannot be used after either). Bulk strings above 512 MB (Redis's own ``proto-max-bulk-len``), doubles
longer than 325 characters and nesting deeper than 1,024 aggregates are protocol errors too.

Two readers implement this grammar with the same results: :func:`hiredis_reader`, hiredis's C parser
(``hiredis`` 3.x, the one redis-py uses; the ``redis`` extra installs it), and :class:`PureReader`, the
fallback when hiredis is missing and the reference the tests compare hiredis with. :func:`new_reader`
picks hiredis when it is importable. Both are fed bytes as they arrive (``feed``) and give one whole
reply at a time (``gets``), or :data:`NOT_ENOUGH` while it is incomplete; :func:`replies` drains one,
raising :class:`ProtocolError` for anything that is not RESP.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

__all__ = [
    "MAX_BULK",
    "NOT_ENOUGH",
    "ProtocolError",
    "Push",
    "PUSH_TYPES",
    "PureReader",
    "Reader",
    "ReplyError",
    "argument",
    "encode_command",
    "encode_command_pure",
    "has_hiredis",
    "hiredis_reader",
    "new_reader",
    "replies",
]

MAX_BULK = 512 * 1024 * 1024
"""The longest bulk string read (Redis's ``proto-max-bulk-len``)."""

_MAX_DEPTH = 1024
_MAX_DOUBLE = 325


class ProtocolError(Exception):
    """The bytes are not RESP: the connection they came on cannot be read any further."""


class ReplyError(Exception):
    """An error reply (``-ERR ...``, ``-MOVED 3999 127.0.0.1:7001``), returned by the readers and raised by
    the connection to the command's caller."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.args == self.args

    def __hash__(self) -> int:
        return hash(self.args)

    @property
    def message(self) -> str:
        """The error's text."""
        return str(self.args[0]) if self.args else ""

    @property
    def code(self) -> str:
        """Its first word (``ERR``, ``MOVED``, ``ASK``, ``WRONGPASS`` ...)."""
        return self.message.split(" ", 1)[0]


class Push(list[Any]):
    """A push reply (``>``), as :class:`PureReader` gives it."""


class _NotEnough:
    def __repr__(self) -> str:
        return "NOT_ENOUGH"


NOT_ENOUGH: Any = _NotEnough()
"""What ``gets()`` returns while the next reply is incomplete."""


class Reader(Protocol):
    """What both readers offer."""

    def feed(self, data: bytes, /) -> None:
        """Append bytes as they arrive."""

    def gets(self) -> Any:
        """The next whole reply, or :data:`NOT_ENOUGH`."""


# -- encoding ---------------------------------------------------------------------------------


def _text(value: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:  # lone surrogates: U+FFFD each, as Node's Buffer.from(string) writes them
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def argument(value: bytes | str | int | float) -> bytes:
    """One argument's bytes as :func:`encode_command` writes them."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a Redis argument is bytes, str, int or float, not {type(value).__name__}")
    return repr(value).encode()


def encode_command(args: Sequence[bytes | str | int | float]) -> bytes:
    """One command as RESP: ``encode_command(["PUBLISH", "ch", b"msg"])`` (hiredis's ``pack_command`` when
    installed, as fast as it gets; the same bytes either way)."""
    if _pack is not None and args:
        try:
            command: bytes = _pack(args if type(args) is tuple else tuple(args))
            return command
        except (TypeError, UnicodeEncodeError):  # a bool, or a lone surrogate: this module's rules
            pass
    return encode_command_pure(args)


def encode_command_pure(args: Sequence[bytes | str | int | float]) -> bytes:
    """:func:`encode_command` without hiredis."""
    if not args:
        raise ValueError("a command has at least its name")
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = argument(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


# -- the pure reader --------------------------------------------------------------------------

_INTEGER = re.compile(rb"-?(?:0|[1-9][0-9]*)")
_LENGTH = re.compile(rb"-1|0|[1-9][0-9]*")
_DECIMAL = re.compile(rb"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_MANTISSA_DIGITS = re.compile(rb"[1-9]")
_BIGNUM = re.compile(rb"-?[0-9]*")
_AGGREGATES = frozenset(b"*%~>")
_TYPES = frozenset(b"+-:$*_#,(=%~>")
_INT64 = 1 << 63


class _Incomplete(Exception):
    def __init__(self, need: int = 0) -> None:
        self.need = need


def _integer(line: bytes) -> int:
    if _INTEGER.fullmatch(line) is None or line == b"-0":
        raise ProtocolError("bad integer")
    value = int(line)
    if not -_INT64 <= value < _INT64:
        raise ProtocolError("integer out of range")
    return value


def _length(line: bytes, what: str) -> int:
    if _LENGTH.fullmatch(line) is None:
        raise ProtocolError(f"bad {what} length")
    return int(line)


def _double(line: bytes) -> float:
    if len(line) > _MAX_DOUBLE:
        raise ProtocolError("double too long")
    low = line.lower()
    if low in (b"inf", b"-inf"):
        return float(low)
    if low in (b"nan", b"-nan"):
        return math.nan
    if _DECIMAL.fullmatch(line) is None:
        raise ProtocolError("bad double")
    value = float(line)
    mantissa = re.split(rb"[eE]", line, maxsplit=1)[0]
    if not math.isfinite(value) or (value == 0 and _MANTISSA_DIGITS.search(mantissa)):
        raise ProtocolError("double out of range")
    return value


class _Frame:
    __slots__ = ("items", "kind", "remaining")

    def __init__(self, kind: int, remaining: int) -> None:
        self.kind = kind
        self.remaining = remaining
        self.items: list[Any] = []

    def finish(self) -> Any:
        if self.kind == 0x3E:  # ">"
            return Push(self.items)
        if self.kind == 0x25:  # "%"
            items = self.items
            result: dict[Any, Any] = {}
            for i in range(0, len(items), 2):
                result[items[i]] = items[i + 1]
            return result
        return self.items


class PureReader:
    """The grammar above in Python: an iterative parser (no recursion, whatever the nesting), fed
    incrementally. A reply still arriving is parsed again from its start on the next ``gets()`` once
    enough bytes for its next part are in."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._need = 0

    def feed(self, data: bytes, /) -> None:
        """Append bytes as they arrive."""
        self._buffer += data

    def gets(self) -> Any:
        """The next whole reply, or :data:`NOT_ENOUGH`; :class:`ProtocolError` if the bytes are not RESP."""
        if len(self._buffer) < self._need:
            return NOT_ENOUGH
        try:
            value, end = self._parse()
        except _Incomplete as e:
            self._need = e.need
            return NOT_ENOUGH
        del self._buffer[:end]
        self._need = 0
        return value

    def _parse(self) -> tuple[Any, int]:
        buffer = self._buffer
        pos = 0
        stack: list[_Frame] = []
        while True:
            if pos >= len(buffer):
                raise _Incomplete(pos + 1)
            kind = buffer[pos]
            if kind not in _TYPES:  # refused at once, as hiredis does, before the line is complete
                raise ProtocolError(f"unknown reply type byte {bytes([kind])!r}")
            end = buffer.find(b"\r\n", pos)
            if end < 0:
                raise _Incomplete(len(buffer) + 1)
            line = bytes(buffer[pos + 1 : end])
            pos = end + 2
            value: Any
            if kind in _AGGREGATES:
                count = _length(line, "aggregate")
                if count == -1:
                    value = None
                elif count == 0:
                    value = _Frame(kind, 0).finish()
                else:
                    if len(stack) >= _MAX_DEPTH:
                        raise ProtocolError("nested too deep")
                    if stack and stack[-1].kind == 0x25 and not len(stack[-1].items) % 2:
                        raise ProtocolError("a map key is a map or a list")  # at once, as hiredis
                    stack.append(_Frame(kind, count * 2 if kind == 0x25 else count))
                    continue
            elif kind == 0x24 or kind == 0x3D:  # "$" bulk, "=" verbatim
                length = _length(line, "bulk")
                if length == -1:
                    value = None
                else:
                    if length > MAX_BULK:
                        raise ProtocolError("bulk string too long")
                    if len(buffer) < pos + length + 2:
                        raise _Incomplete(pos + length + 2)
                    value = bytes(buffer[pos : pos + length])
                    pos += length + 2
                    if kind == 0x3D:
                        if length < 4 or value[3:4] != b":":
                            raise ProtocolError("verbatim string without its format")
                        value = value[4:]
            elif kind == 0x2B or kind == 0x2D:  # "+", "-"
                if b"\r" in line or b"\n" in line:
                    raise ProtocolError("CR or LF in a simple string")
                value = line if kind == 0x2B else ReplyError(line.decode("utf-8", "replace"))
            elif kind == 0x3A:  # ":"
                value = _integer(line)
            elif kind == 0x5F:  # "_"
                if line:
                    raise ProtocolError("bad null")
                value = None
            elif kind == 0x23:  # "#"
                if line not in (b"t", b"f"):
                    raise ProtocolError("bad boolean")
                value = line == b"t"
            elif kind == 0x2C:  # ","
                value = _double(line)
            elif kind == 0x28:  # "("
                if _BIGNUM.fullmatch(line) is None:
                    raise ProtocolError("bad big number")
                value = line
            else:
                raise ProtocolError(f"unknown reply type byte {bytes([kind])!r}")
            while True:
                if not stack:
                    return value, pos
                frame = stack[-1]
                if frame.kind == 0x25 and not len(frame.items) % 2:  # a map's key: refused at once, as by hiredis
                    try:
                        hash(value)
                    except TypeError:
                        raise ProtocolError("a map key is a map or a list") from None
                frame.items.append(value)
                frame.remaining -= 1
                if frame.remaining:
                    break
                stack.pop()
                value = frame.finish()


# -- hiredis ----------------------------------------------------------------------------------

_hiredis: Any
try:
    import hiredis as _hiredis
except ImportError:  # the pure reader serves
    _hiredis = None

_pack: Any = None if _hiredis is None else _hiredis.pack_command

PUSH_TYPES: tuple[type, ...] = (Push,) if _hiredis is None else (Push, _hiredis.PushNotification)
"""The types a push reply has, whichever reader read it."""


def has_hiredis() -> bool:
    """Whether hiredis is importable (``pip install 'txrealtime[redis]'`` installs it)."""
    return _hiredis is not None


def hiredis_reader() -> Reader:
    """hiredis's reader, giving this module's :class:`ReplyError` and :class:`ProtocolError`."""
    if _hiredis is None:
        raise ImportError("hiredis is not installed")
    reader: Reader = _hiredis.Reader(protocolError=ProtocolError, replyError=ReplyError, notEnoughData=NOT_ENOUGH)
    return reader


def new_reader() -> Reader:
    """hiredis's reader if hiredis is installed, else a :class:`PureReader`."""
    return hiredis_reader() if _hiredis is not None else PureReader()


def replies(reader: Reader, data: bytes = b"") -> Iterable[Any]:
    """Feed ``data`` and yield every whole reply now in; :class:`ProtocolError` for bytes that are not RESP
    (also where hiredis raises something else, as for a list used as a map key)."""
    if data:
        reader.feed(data)
    while True:
        try:
            reply = reader.gets()
        except ProtocolError:
            raise
        except Exception as e:  # hiredis: TypeError for an unhashable map key, and the like
            raise ProtocolError(f"not RESP ({type(e).__name__})") from None
        if reply is NOT_ENOUGH:
            return
        yield reply
