"""Engine.IO server settings shared by the session manager and the transports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from twisted.web.http import Request

    from .events import Handshake

__all__ = [
    "CookieOptions",
    "EngineIOOptions",
    "HeadersHook",
    "HttpCompression",
    "IdHook",
    "Middleware",
    "OriginCheck",
    "PerMessageDeflate",
    "TRANSPORTS",
]

HeadersHook: TypeAlias = "Callable[[Handshake, str], Mapping[str, str | Sequence[str]] | None]"
"""Called with the request answered and the session's sid; returns headers to add (a sequence
of values for a header sent several times, e.g. ``Set-Cookie``), or ``None``."""

IdHook: TypeAlias = "Callable[[Handshake], str | Awaitable[str]]"
"""Called with the request that opens a session; returns its sid, or a Deferred or coroutine of it."""

Middleware: TypeAlias = "Callable[[Request], object]"
"""Run with the ``twisted.web`` request of every Engine.IO HTTP request (polls, POSTs, handshakes and the
WebSocket upgrade), before the request is looked at (Node's ``engine.use``). It may add headers with
``request.setHeader`` (on an upgrade they go with the 101), or answer the request itself (write and
``request.finish()``), which ends it there; it may return a Deferred or coroutine to take its time. One
that raises or fails answers 400 (``Bad request``, Node's ``MIDDLEWARE_FAILURE``)."""

OriginCheck: TypeAlias = "Callable[[str | None], bool | Awaitable[bool]]"
"""Called with a request's ``Origin`` header (``None`` if it has none); ``True`` (or a Deferred or coroutine
of it) to let that origin read the answers (Node's ``cors.origin`` as a function)."""

TRANSPORTS = ("polling", "websocket")

CORS_METHODS = ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE")
"""The methods a preflight is told by default (the default of Node's ``cors`` package)."""


@dataclass(frozen=True)
class CookieOptions:
    """The cookie holding the session id, for load balancers that stick by cookie."""

    name: str = "io"
    """The cookie's name (Node's default: ``io``)."""
    path: str = "/"
    """Its ``Path``."""
    http_only: bool = True
    """Whether it is ``HttpOnly`` (scripts cannot read it)."""
    same_site: str = "Lax"
    """``Strict``, ``Lax`` or ``None``."""
    secure: bool = False
    """Whether it is ``Secure`` (sent over HTTPS only)."""

    def header(self, sid: str) -> str:
        """The ``Set-Cookie`` header value for ``sid``."""
        parts = [f"{self.name}={sid}", f"Path={self.path}"]
        if self.http_only:
            parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        if self.same_site:
            parts.append(f"SameSite={self.same_site}")
        return "; ".join(parts)


@dataclass(frozen=True)
class PerMessageDeflate:
    """permessage-deflate (RFC 7692) on WebSocket connections, with the parameters of Node's ``ws``.

    Only messages of at least ``threshold`` bytes, from packets sent with
    ``compress`` true (the default), are compressed; smaller ones go plain.
    """

    threshold: int = 1024
    """Smallest message, in bytes, that is compressed (Node's ``threshold``)."""
    server_no_context_takeover: bool = False
    """Compress each message on its own, and tell the client so. Costs some ratio, saves the
    compressor kept per connection (see docs/engineio.md), and lets a broadcast compress its
    frame once for every such connection instead of once per client."""
    client_no_context_takeover: bool = False
    """Ask clients to compress each message on their own, so that the server keeps no
    decompressor window per connection between messages."""
    server_max_window_bits: int | None = None
    """LZ77 window of the server's compressor, 9 to 15 (``None``: 15, or less if the client asks)."""
    client_max_window_bits: int | None = None
    """Ask clients that allow it to compress with a window of at most this many bits (9 to 15)."""
    mem_level: int | None = None
    """zlib ``memLevel`` of the server's compressor, 1 to 9 (``None``: zlib's 8)."""

    def __post_init__(self) -> None:
        if self.threshold < 0:
            raise ValueError("per_message_deflate threshold must be >= 0")
        for name in ("server_max_window_bits", "client_max_window_bits"):
            bits = getattr(self, name)
            if bits is not None and not 9 <= bits <= 15:
                raise ValueError(f"per_message_deflate {name} must be from 9 to 15")
        if self.mem_level is not None and not 1 <= self.mem_level <= 9:
            raise ValueError("per_message_deflate mem_level must be from 1 to 9")


@dataclass(frozen=True)
class HttpCompression:
    """gzip or deflate on polling responses, as the client's ``Accept-Encoding`` allows (Node's ``httpCompression``)."""

    threshold: int = 1024
    """Smallest response body, in bytes, that is compressed."""
    level: int = -1
    """zlib compression level, 0 to 9 (-1: zlib's default, 6, as Node's)."""

    def __post_init__(self) -> None:
        if self.threshold < 0:
            raise ValueError("http_compression threshold must be >= 0")
        if not -1 <= self.level <= 9:
            raise ValueError("http_compression level must be from -1 to 9")


@dataclass(frozen=True)
class EngineIOOptions:
    """Settings of one Engine.IO endpoint; every field has Engine.IO's default."""

    ping_interval: float = 25.0
    """Seconds between the server's pings."""
    ping_timeout: float = 20.0
    """Seconds to wait for a pong before closing the session."""
    max_payload: int = 1_000_000
    """Largest polling POST body or WebSocket message accepted, in bytes."""
    upgrade_timeout: float = 10.0
    """Seconds a polling session may take to finish an upgrade to WebSocket."""
    transports: Sequence[str] = TRANSPORTS
    """Transports clients may use."""
    allow_upgrades: bool = True
    """Whether polling sessions may upgrade to WebSocket."""
    cors_allowed_origins: Sequence[str] | str | OriginCheck | None = None
    """``None``: no CORS headers (same origin only); ``"*"``: any origin may read
    the answers, sent as ``Access-Control-Allow-Origin: *`` without credentials;
    a list of allowed origins, each reflected when it asks; or an :data:`OriginCheck`
    function deciding per origin (Node's ``cors.origin``)."""
    cors_credentials: bool = True
    """Send ``Access-Control-Allow-Credentials: true`` with CORS responses to a
    listed origin (never with ``"*"``)."""
    allowed_origins: Sequence[str] | None = None
    """If set, a list: requests carrying an ``Origin`` header not in it are refused
    (403; 400 on a WebSocket upgrade, as Node refuses one), on both transports; requests without one
    (non-browser clients) pass."""
    allow_request: Callable[[Handshake], Any] | None = None
    """Called with the :class:`Handshake` of every new session, on both transports;
    return (or fire a Deferred with) ``True`` to accept, ``False`` or a reason
    string to refuse with 403 (400 on a WebSocket upgrade), the reason as the answer's message (as Node's
    ``allowRequest`` message)."""
    max_buffer: int = 4_000_000
    """Largest amount of outgoing data, in bytes, queued for a client that does not
    read; beyond it the session is closed ("transport error")."""
    high_water_mark: int | None = None
    """Outgoing bytes queued for a client above which emits return ``False``, ``volatile`` emits and broadcasts
    skip it, and a ``drain`` event follows once the queue is written out (Node's stream ``highWaterMark``).
    ``None``: a quarter of ``max_buffer`` (1,000,000 bytes by default)."""
    max_packets_per_second: float | None = None
    """If set, a session sending more packets than this (over one second's burst)
    is closed ("transport error")."""
    max_sessions_per_ip: int | None = None
    """If set, handshakes from an address that already has this many sessions are
    refused (403; 400 on a WebSocket upgrade)."""
    cookie: CookieOptions | None = None
    """If set, the handshake sets a cookie holding the session id."""
    initial_headers: HeadersHook | None = None
    """Headers to add to the response that opens a session: the handshake GET's,
    or the 101 of a WebSocket opened without a sid (Node's ``initial_headers``)."""
    headers: HeadersHook | None = None
    """Headers to add to every response of a session: each poll's and POST's, and
    the 101 of its WebSocket handshakes, the first included (Node's ``headers``)."""
    allow_eio3: bool = False
    """Also serve Engine.IO protocol v3 clients (``socket.io-client`` 2.x, Socket.IO protocol v4),
    as Node's ``allowEIO3``; without it their handshake is refused (400, ``Unsupported protocol version``)."""
    generate_id: IdHook | None = None
    """Makes the sid of each new session, on both transports (Node's ``generateId``);
    a failure, or an id that is empty, in use or not printable ASCII, refuses the
    handshake with 400 (``Bad request``). Default: 20 random URL-safe characters."""
    per_message_deflate: PerMessageDeflate | bool = False
    """permessage-deflate on WebSocket connections: off by default, as in Node; ``True`` for
    :class:`PerMessageDeflate`'s defaults (threshold 1024 bytes), or a :class:`PerMessageDeflate`."""
    http_compression: HttpCompression | bool = True
    """gzip/deflate of polling responses: on by default, as in Node (threshold 1024 bytes);
    ``False`` to turn it off, or an :class:`HttpCompression`."""

    cors_methods: Sequence[str] = CORS_METHODS
    """The methods a CORS preflight is answered with (``Access-Control-Allow-Methods``, Node's ``cors.methods``)."""
    cors_allowed_headers: Sequence[str] | None = None
    """The request headers a preflight allows (``Access-Control-Allow-Headers``); ``None``: those it asks for
    (Node's ``cors.allowedHeaders``)."""
    cors_exposed_headers: Sequence[str] | None = None
    """Response headers scripts may read (``Access-Control-Expose-Headers``, Node's ``cors.exposedHeaders``)."""
    cors_max_age: int | None = None
    """Seconds a browser may cache a preflight's answer (``Access-Control-Max-Age``, Node's ``cors.maxAge``)."""
    add_trailing_slash: bool = True
    """Serve the endpoint's path with its trailing slash only (``/engine.io/``), as Node's ``addTrailingSlash``;
    ``False`` serves ``/engine.io`` too."""
    initial_packet: str | bytes | None = None
    """A message sent to each new session right after its OPEN packet (Node's ``initialPacket``)."""
    middleware: Sequence[Middleware] = ()
    """Run in order on every Engine.IO HTTP request, after CORS (Node's ``engine.use``): see :data:`Middleware`."""

    def __post_init__(self) -> None:
        if isinstance(self.allowed_origins, (str, bytes)):
            raise TypeError(f"allowed_origins must be a list of origins, e.g. [{self.allowed_origins!r}], not a string")
        cors = self.cors_allowed_origins
        for name in ("cors_methods", "cors_allowed_headers", "cors_exposed_headers"):
            if isinstance(getattr(self, name), (str, bytes)):
                raise TypeError(f"{name} must be a list, e.g. [{getattr(self, name)!r}], not a string")
        if self.cors_max_age is not None and self.cors_max_age < 0:
            raise ValueError("cors_max_age must be >= 0")
        if not all(callable(step) for step in self.middleware):
            raise TypeError("middleware must be a list of callables taking the request")
        if isinstance(cors, (str, bytes)) and cors != "*":
            raise TypeError(f'cors_allowed_origins must be "*" or a list of origins, e.g. [{cors!r}], not a string')
        unknown = set(self.transports) - set(TRANSPORTS)
        if unknown or not self.transports:
            raise ValueError(f"transports must be a non-empty subset of {TRANSPORTS}")
        if self.ping_interval <= 0 or self.ping_timeout <= 0 or self.upgrade_timeout <= 0:
            raise ValueError("ping_interval, ping_timeout and upgrade_timeout must be > 0")
        if self.max_payload <= 0:
            raise ValueError("max_payload must be > 0")
        if self.max_buffer < self.max_payload:
            raise ValueError("max_buffer must be at least max_payload")
        if self.high_water_mark is not None and not 0 <= self.high_water_mark <= self.max_buffer:
            raise ValueError("high_water_mark must be from 0 to max_buffer")
        if self.max_packets_per_second is not None and self.max_packets_per_second <= 0:
            raise ValueError("max_packets_per_second must be > 0")
        if self.max_sessions_per_ip is not None and self.max_sessions_per_ip <= 0:
            raise ValueError("max_sessions_per_ip must be > 0")
        if not isinstance(self.per_message_deflate, (bool, PerMessageDeflate)):
            raise TypeError("per_message_deflate must be a bool or a PerMessageDeflate")
        if not isinstance(self.http_compression, (bool, HttpCompression)):
            raise TypeError("http_compression must be a bool or an HttpCompression")

    @property
    def drain_mark(self) -> int:
        """The high-water mark in force, in bytes (see :attr:`high_water_mark`)."""
        return self.max_buffer // 4 if self.high_water_mark is None else self.high_water_mark

    @property
    def websocket_compression(self) -> PerMessageDeflate | None:
        """The permessage-deflate settings in force, ``None`` when it is off."""
        value = self.per_message_deflate
        return (PerMessageDeflate() if value else None) if isinstance(value, bool) else value

    @property
    def polling_compression(self) -> HttpCompression | None:
        """The HTTP compression settings in force, ``None`` when it is off."""
        value = self.http_compression
        return (HttpCompression() if value else None) if isinstance(value, bool) else value

    def upgrades_from(self, transport: str) -> list[str]:
        """The upgrades offered to a session that opened on ``transport``."""
        if transport == "polling" and self.allow_upgrades and "websocket" in self.transports:
            return ["websocket"]
        return []
