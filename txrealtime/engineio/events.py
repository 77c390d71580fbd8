"""Typed events emitted by the session manager, and the data they carry."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qsl

from .packets import Packet

__all__ = [
    "CloseReason",
    "Drained",
    "Handshake",
    "MessageReceived",
    "PacketCreated",
    "PacketEvent",
    "PacketReceived",
    "RequestRefused",
    "SessionClosed",
    "SessionEvent",
    "SessionOpened",
    "SessionUpgraded",
    "requested_protocol",
]


class CloseReason(StrEnum):
    """Why a session closed. Values are Engine.IO's reason strings."""

    TRANSPORT_CLOSE = "transport close"
    """The client closed the connection or sent a CLOSE packet."""
    TRANSPORT_ERROR = "transport error"
    """The transport failed: overlapping polls, an oversize payload, a dropped poll."""
    PING_TIMEOUT = "ping timeout"
    """The client did not answer a ping within ``ping_timeout``."""
    PARSE_ERROR = "parse error"
    """The client sent bytes that are not a valid packet."""
    FORCED_CLOSE = "forced close"
    """The server application closed the session."""
    SERVER_SHUTDOWN = "server shutting down"
    """The server is stopping."""


def parse_query(uri: bytes) -> dict[str, str]:
    """The query parameters of a request URI, first value of each."""
    query = uri.partition(b"?")[2].partition(b"#")[0]
    params: dict[str, str] = {}
    for part in query.split(b"&"):
        if not part:
            continue
        if b"%" in part or b"+" in part:
            # Escapes: as urllib decodes them (UTF-8, with replacement characters).
            for name, text in parse_qsl(part.decode("latin-1"), keep_blank_values=True):
                params.setdefault(name, text)
            continue
        key, _, value = part.partition(b"=")
        params.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    return params


def requested_protocol(query: Mapping[str, str]) -> int:
    """The Engine.IO protocol revision a request's query asks for: 4 with ``EIO=4``, else 3 (as Node decides)."""
    return 4 if query.get("EIO") == "4" else 3


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a client's request said about it: the first one of a session, or one that was refused."""

    headers: Mapping[str, str]
    """Request headers, names lower-cased."""
    query: Mapping[str, str]
    """Query string parameters (first value of each)."""
    address: str
    """The client's IP address."""
    secure: bool
    """Whether the connection is TLS."""
    url: str
    """The request path and query."""
    issued: float = field(default=0.0)
    """When the session opened, in seconds since the epoch."""

    @property
    def protocol(self) -> int:
        """The Engine.IO protocol revision asked for: 4 with ``EIO=4``, else 3 (as Node's engine.io decides)."""
        return requested_protocol(self.query)


    @classmethod
    def of_request(
        cls, headers: Iterable[tuple[str, str]], query: Mapping[str, str], peer: object, secure: bool, url: str
    ) -> Handshake:
        """The handshake of a request arriving now: header names lower-cased, the peer's host as address."""
        return cls(
            headers={name.lower(): value for name, value in headers},
            query=dict(query),
            address=str(getattr(peer, "host", peer)),
            secure=secure,
            url=url,
            issued=time.time(),
        )


@dataclass(frozen=True, slots=True)
class SessionOpened:
    """A client opened a session (its handshake was accepted)."""
    sid: str
    """The new session's id."""
    transport: str
    """The transport it opened on (``polling`` or ``websocket``)."""
    handshake: Handshake
    """The request that opened it."""


@dataclass(frozen=True, slots=True)
class SessionUpgraded:
    """A session moved from polling to WebSocket."""
    sid: str
    """The session's id."""
    from_transport: str
    """The transport it left (``polling``)."""
    to_transport: str
    """The transport it is on now (``websocket``)."""


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message from a session's client (published only to subscribers that asked for messages)."""
    sid: str
    """The session's id."""
    data: str | bytes = field(repr=False)
    """The client's message; left out of ``repr`` so that no log line carries a payload."""


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """A session closed, for ``reason``."""
    sid: str
    """The session's id."""
    reason: CloseReason
    """Why, as Engine.IO says it."""
    description: str = ""
    """More about why, for the log."""


@dataclass(frozen=True, slots=True)
class RequestRefused:
    """A request refused before it reached a session: Node's engine ``connection_error``.

    Published for every polling request and WebSocket handshake answered with
    an Engine.IO error: unknown transport, unknown sid, bad handshake method,
    bad request, forbidden (origin, ``allow_request``, sessions per address,
    shutting down), unsupported protocol version. Errors inside a session (a
    malformed body, overlapping polls) close it instead: see :class:`SessionClosed`.
    """

    code: int
    """Engine.IO's error code (``SessionError.UNKNOWN_TRANSPORT`` ... ``UNSUPPORTED_PROTOCOL_VERSION``)."""
    message: str
    """Engine.IO's message for ``code``, e.g. ``"Session ID unknown"``."""
    context: Mapping[str, str]
    """What went wrong, under Node's keys: ``transport``, ``sid``, ``method``, ``protocol``,
    ``name`` (e.g. ``TRANSPORT_MISMATCH``), ``message`` (why a request is forbidden)."""
    request: Handshake
    """The refused request's headers, query, address and URL (never its body)."""
    method: str
    """The HTTP method."""
    status: int
    """The HTTP status answered: 400, or 403 for ``FORBIDDEN`` (400 whatever the code for a WebSocket
    upgrade, as Node's engine.io answers one)."""


@dataclass(frozen=True, slots=True)
class PacketReceived:
    """A packet arrived from the client (Node's socket ``packet`` event); see ``SessionManager.subscribe_packets``."""

    sid: str
    """The session's id."""
    packet: Packet = field(repr=False)
    """The packet, as decoded."""


@dataclass(frozen=True, slots=True)
class PacketCreated:
    """An OPEN, MESSAGE, PING (v4) or PONG (v3) packet was queued for the client (Node's socket ``packetCreate``)."""

    sid: str
    """The session's id."""
    packet: Packet = field(repr=False)
    """The packet, as it will be encoded."""


@dataclass(frozen=True, slots=True)
class Drained:
    """The session's outgoing buffer was written to its transport (Node's socket ``drain``)."""

    sid: str
    """The session's id."""


SessionEvent = SessionOpened | SessionUpgraded | MessageReceived | SessionClosed | RequestRefused
"""What ``SessionManager.subscribe`` callbacks receive."""

PacketEvent = PacketReceived | PacketCreated | Drained
"""What ``SessionManager.subscribe_packets`` callbacks receive: one or more per packet, so opt-in."""
