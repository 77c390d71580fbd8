"""Length-prefixed frames of typed fields, for the messages between txrealtime processes: a pure codec.

Grammar (sizes are big-endian ``u32``)::

    body   = kind:u8 *field
    field  = size:u32 octets[size]

A frame is a frozen dataclass with a ``KIND`` class variable; its fields,
in declaration order, are ``int`` (ASCII decimal digits, no sign, no leading
zero, at most 20 digits), ``str`` (UTF-8) or ``bytes`` (anything). The
cluster channel (:mod:`txrealtime.cluster.wire`) and the forwarding messages
(:mod:`txrealtime.forwarding.wire`) are such frames.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

__all__ = ["FrameCodec"]

F = TypeVar("F")

_SIZE = struct.Struct(">I")


class FrameCodec(Generic[F]):
    """Encodes and decodes the frames of the dataclasses ``classes``; ``error`` is raised for bad input."""

    def __init__(self, classes: Iterable[type[Any]], error: type[ValueError], max_size: int) -> None:
        self._kinds: dict[int, type[Any]] = {cls.KIND: cls for cls in classes}
        self._fields: dict[type[Any], tuple[tuple[str, str], ...]] = {
            cls: tuple((f.name, str(f.type)) for f in dataclasses.fields(cls)) for cls in self._kinds.values()
        }
        self._error = error
        self.max_size = max_size
        """Largest body :meth:`decode` accepts."""

    def encode(self, frame: F) -> bytes:
        """The body of ``frame``."""
        parts = [bytes((type(frame).KIND,))]  # type: ignore[attr-defined]
        for name, kind in self._fields[type(frame)]:
            value = getattr(frame, name)
            if kind == "int":
                if value < 0:
                    raise ValueError(f"{type(frame).__name__}.{name} must be >= 0")
                raw = str(value).encode()
            elif kind == "str":
                raw = value.encode("utf-8")
            else:
                raw = bytes(value)
            parts.append(_SIZE.pack(len(raw)))
            parts.append(raw)
        return b"".join(parts)

    def decode(self, body: bytes) -> F:
        """The frame whose body is ``body``; the codec's error if it does not follow the grammar."""
        error = self._error
        if not body:
            raise error("empty frame")
        if len(body) > self.max_size:
            raise error(f"frame of {len(body)} bytes is larger than {self.max_size}")
        cls = self._kinds.get(body[0])
        if cls is None:
            raise error(f"unknown frame kind {body[0]}")
        values: list[object] = []
        offset = 1
        for name, kind in self._fields[cls]:
            if offset + 4 > len(body):
                raise error(f"{cls.__name__}: missing field {name}")
            (size,) = _SIZE.unpack_from(body, offset)
            offset += 4
            if offset + size > len(body):
                raise error(f"{cls.__name__}.{name}: {size} bytes announced, {len(body) - offset} left")
            raw = body[offset : offset + size]
            offset += size
            values.append(self._value(cls, name, kind, raw))
        if offset != len(body):
            raise error(f"{cls.__name__}: {len(body) - offset} bytes after the last field")
        return cls(*values)  # type: ignore[no-any-return]

    def _value(self, cls: type, name: str, kind: str, raw: bytes) -> object:
        if kind == "int":
            if not raw or not raw.isdigit() or (len(raw) > 1 and raw[0] == 0x30) or len(raw) > 20:
                raise self._error(f"{cls.__name__}.{name}: not a number: {raw[:20]!r}")
            return int(raw)
        if kind == "str":
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise self._error(f"{cls.__name__}.{name}: not UTF-8 ({e.reason})") from None
        return raw
