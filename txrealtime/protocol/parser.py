"""Socket.IO parsers: how packets become Engine.IO messages and back (Node's ``parser`` option).

A :class:`Parser` gives an :class:`Encoder`, made once per server or client
and shared by all its connections (so a broadcast is encoded once), and a
:class:`Decoder` for each connection, which may keep state between messages
(the JSON parser's binary attachments). Two come with txrealtime, named
``"json"`` (:data:`JSON`, the default: :mod:`txrealtime.protocol.packets`)
and ``"msgpack"`` (Node's ``socket.io-msgpack-parser``:
:mod:`txrealtime.protocol.msgpack`, which needs the ``msgpack`` extra). Both
ends of a connection must use the same parser; a message the decoder cannot
read raises :class:`txrealtime.protocol.packets.DecodeError` and closes that
one session with ``parse error``.

This module is shared by the server and the client: it imports neither.
"""

from __future__ import annotations

from typing import Protocol

from .packets import Decoder as JSONDecoder
from .packets import DecoderLimits, Packet, encode

__all__ = ["JSON", "Decoder", "DecoderLimits", "Encoder", "JSONParser", "Parser", "resolve"]


class Encoder(Protocol):
    """Turns a packet into the Engine.IO messages (text or binary) that carry it."""

    def encode(self, packet: Packet) -> list[str | bytes]:
        """The messages for ``packet``; ``TypeError`` for values the format cannot carry."""


class Decoder(Protocol):
    """One connection's decoder: Engine.IO messages in, complete packets out."""

    @property
    def pending(self) -> bool:
        """Whether a packet is waiting for more messages (binary attachments)."""

    def feed(self, message: str | bytes) -> Packet | None:
        """Take one message; return the packet it completes, or ``None`` while more are expected.

        Raises :class:`txrealtime.protocol.packets.DecodeError` for anything that
        is not a valid packet (the session is then closed).
        """

    def reset(self) -> None:
        """Drop any partial packet (the connection closed)."""


class Parser(Protocol):
    """A wire format for Socket.IO packets: an encoder, and a decoder per connection."""

    def encoder(self) -> Encoder:
        """A new encoder (one serves every connection of a server or client)."""

    def decoder(self, limits: DecoderLimits) -> Decoder:
        """A new decoder for one connection."""


class _JSONEncoder:
    @staticmethod
    def encode(packet: Packet) -> list[str | bytes]:
        return encode(packet)


class JSONParser:
    """Socket.IO's default format: a text message, then one binary message per attachment."""

    name = "json"

    def encoder(self) -> Encoder:
        return _JSONEncoder()

    def decoder(self, limits: DecoderLimits) -> Decoder:
        return JSONDecoder(limits.max_attachments, max_bytes=limits.max_bytes, max_depth=limits.max_depth)

    def __repr__(self) -> str:
        return "<JSON parser>"


JSON = JSONParser()
"""The default parser (Node's ``socket.io-parser``)."""

NAMES = ("json", "msgpack")
"""The parsers :func:`resolve` knows by name."""


def resolve(parser: str | Parser) -> Parser:
    """The parser ``parser`` names (``"json"`` or ``"msgpack"``), or ``parser`` itself.

    ``ValueError`` for an unknown name; ``ImportError`` (saying what to
    install) for ``"msgpack"`` without the ``msgpack`` package.
    """
    if not isinstance(parser, str):
        return parser
    if parser == "json":
        return JSON
    if parser == "msgpack":
        from .msgpack import MSGPACK

        return MSGPACK
    raise ValueError(f"unknown parser {parser!r} (expected one of {', '.join(NAMES)}, or a Parser)")
