"""The one module that touches private names of Twisted and Autobahn: each fast path, its probe, its fallback.

Every other module uses public APIs plus the functions here. At import each fast path checks that what it
relies on is there and behaves (for the TCP write, a probe connection on a socket pair: its bytes, and
Twisted's own buffer seen as such); one whose check fails is off, its public fallback is used, and one log
line names it and why. ``TXREALTIME_FAST_PATHS=0`` in the environment turns every fast path off.
:data:`fast` holds the switches, :data:`why_off` the reasons. The fast paths (public fallback in brackets):

- ``tcp_write``: send at once on an idle plain TCP connection, as libuv does (``transport.write``, sent
  on the reactor's next turn).
- ``response_head``: a response's head goes out with its body in one write (a write of its own).
- ``release_upgraded``: twisted.web's channel and request freed without the garbage collector once a
  WebSocket took their connection (the collector).
- ``ws_config``: a WebSocket connection copies its factory's options without Autobahn's debug
  ``pformat`` of all of them (Autobahn's copy).
- ``ws_handshake``: the upgrade request twisted.web parsed is handed to the WebSocket as it is, not
  written out and parsed again (Autobahn's parse).
- ``ws_debug``: Autobahn's debug lines name their function and values only when written (it formats
  them for every connection, whatever the log level).
- ``ws_frames``: complete masked frames read directly while Autobahn's parser holds nothing (its parser).
- ``ws_release``: the inflater and the ``is_closed`` cycle dropped after use (kept until collected).
- ``c_http_parser``: :class:`txrealtime.llhttp.LlhttpChannel`, which drives twisted.web's
  ``HTTPChannel`` request state itself, is what ``auto`` picks (twisted.web's own parser); llhttp.py is
  the one module besides this one that uses twisted.web's private names, checked here.

Internals needed whatever the switch (checked and reported the same way; without them behaviour
changes): ``form_skip`` (no ``email``-package parse of a POST body no resource reads as a form: the
endpoints parse their JSONP forms themselves), ``ws_timers`` (Autobahn's
batched timers replaced by cancellable ones), ``ws_buffer`` (Autobahn's read buffer, for the read
slicing), ``exit_signal`` (a clean stop exits 0 under twistd) and ``keep_socket`` (a socket handed to a
worker is closed without a shutdown).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Sequence
from functools import partial
from types import SimpleNamespace
from typing import Any, TypeVar, cast
from urllib import parse

from autobahn.websocket import protocol as _ab
from autobahn.websocket.compress import PerMessageDeflate
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet import interfaces, tcp
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.http_headers import Headers

from ._logging import gate
from ._reactor import Clock, DelayedCall, cancel

__all__ = ["DirectTimer", "ENV", "autobahn_buffered", "cancel_timers", "close_without_shutdown",
    "config_attrs", "copy_config", "deflate_extension", "direct_timers", "fast", "fast_handshake",
    "forget_closed", "forget_exit_signal", "forwards_writes", "frame_boundary", "release_inflater",
    "release_upgraded", "response_head", "skip_form_parsing", "why_off", "write",
    "write_sequence"]

log = Logger(__name__, observer=gate)

ENV = "TXREALTIME_FAST_PATHS"
"""The environment variable that turns every fast path off when ``0``."""

FAST_PATHS = ("tcp_write", "response_head", "release_upgraded", "ws_config", "ws_handshake", "ws_debug",
              "ws_frames", "ws_release", "c_http_parser")
"""The fast paths, each with a public fallback."""

NEEDS = ("form_skip", "ws_timers", "ws_buffer", "exit_signal", "keep_socket")
"""Internals used whatever the switch (no public way to do the same)."""


class _Switches(SimpleNamespace):
    """One boolean attribute per name of :data:`FAST_PATHS` and :data:`NEEDS`: on (usable) or off."""

    tcp_write = response_head = form_skip = release_upgraded = False
    ws_config = ws_handshake = ws_debug = ws_frames = ws_release = c_http_parser = False
    ws_timers = ws_buffer = exit_signal = keep_socket = False


fast = _Switches()
"""Which fast paths (and needed internals) are on, as set at import."""

why_off: dict[str, str] = {}
"""For each fast path or needed internal that is off: why."""


def _names(function: Any) -> frozenset[str]:
    """The global and attribute names ``function``'s code uses (what a probe looks for)."""
    return frozenset(getattr(function, "__code__", SimpleNamespace(co_names=())).co_names)


def _missing(function: Any, *names: str) -> str | None:
    """``None`` if ``function`` uses every one of ``names``, else which it does not."""
    gone = [name for name in names if name not in _names(function)]
    if not gone:
        return None
    return f"{getattr(function, '__qualname__', function)} no longer uses {', '.join(gone)}"


# -- TCP: write at once when nothing waits in Twisted's buffer (tcp.Connection internals) ------------

_DIRECT: frozenset[type] = frozenset({tcp.Server, tcp.Client})
"""Transport classes written to directly: exactly these, not subclasses (UNIX sockets subclass them)."""

_FORWARDING: set[type] = {ProtocolWrapper}
"""Wrapper classes whose ``write`` only forwards to their own ``transport``."""

T = TypeVar("T", bound=type)


def forwards_writes(cls: T) -> T:
    """Class decorator: ``cls`` (a protocol wrapper) writes what it is given to its ``transport`` unchanged."""
    _FORWARDING.add(cls)
    return cls


def _direct(transport: Any) -> Any:
    """The TCP connection ``transport`` writes to, if it can be written to at once now; else ``None``."""
    if not fast.tcp_write:
        return None
    kind = type(transport)
    if kind in _FORWARDING:
        transport = transport.transport
        kind = type(transport)
    if (
        kind in _DIRECT
        and not transport._tempDataLen
        and not transport.dataBuffer
        and transport.connected
        and not transport.TLS
        and not transport.disconnecting
        and not transport._aborting
        and not transport._writeDisconnected
        # A pull producer is asked for more only once Twisted's buffer drains (doWrite): leave it to Twisted.
        and (transport.producer is None or transport.streamingProducer)
    ):
        return transport
    return None


def write(transport: Any, data: bytes) -> None:
    """``transport.write(data)``, sending at once what the kernel takes when nothing is buffered; Twisted
    gets the rest, with its buffering, producer pauses and error handling. Plain TCP only (through wrappers
    registered with :func:`forwards_writes`); anything else is written to as usual."""
    connection = _direct(transport)
    if connection is None:
        transport.write(data)
    else:
        _send(connection, transport, data)


def write_sequence(transport: Any, chunks: Sequence[bytes]) -> None:
    """``transport.writeSequence(chunks)``, sent at once like :func:`write`."""
    connection = _direct(transport)
    if connection is None:
        transport.writeSequence(chunks)
    else:
        _send(connection, transport, chunks[0] if len(chunks) == 1 else b"".join(chunks))


def _send(connection: Any, transport: Any, data: bytes) -> None:
    """Send ``data`` on ``connection`` (which :func:`_direct` found idle); the rest goes to ``transport.write``."""
    if type(data) is bytes and data:  # other types: Twisted refuses them as usual
        try:
            sent = connection.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # a broken connection: Twisted's own write meets the error and closes it as usual
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


def _probe_tcp_write() -> str | None:
    """Write through a ``tcp.Server`` on a socket pair: idle, the bytes go at once; after a ``write``
    Twisted buffers, the connection is not idle (else a later Twisted's new buffer would reorder bytes)."""
    ours, theirs = socket.socketpair()
    try:
        ours.setblocking(False)
        theirs.setblocking(False)
        port = SimpleNamespace(_realPortNumber=0)
        nothing = SimpleNamespace(addReader=id, addWriter=id, removeReader=id, removeWriter=id)  # never in a reactor
        connection: Any = tcp.Server(ours, Protocol(), ("127.0.0.1", 1), port, 0, nothing)  # type: ignore[arg-type]
        connection.TLS = False
        if _direct(connection) is not connection:
            return "an idle tcp.Server is not seen as idle"
        write(connection, b"probe")
        if theirs.recv(64) != b"probe":
            return "a write at once did not reach the socket"
        connection.write(b"buffered")
        if _direct(connection) is not None:
            return "a write Twisted buffered is not seen in its buffer attributes"
        connection.doWrite()
        if theirs.recv(64) != b"buffered" or _direct(connection) is not connection:
            return "Twisted's buffer, once written, does not look empty"
        return None
    finally:
        ours.close()
        theirs.close()


# -- twisted.web: the response head with its body, forms, the request line, the upgraded channel ------


def response_head(head: list[bytes], version: bytes, code: bytes, reason: bytes, headers: Headers) -> None:
    """Add to ``head`` what twisted.web's ``HTTPChannel.writeHeaders`` would write for this response."""
    head += (version, b" ", code, b" ", reason, b"\r\n")
    for name, values in headers.getAllRawHeaders():
        for value in values:
            head += (name, b": ", value, b"\r\n")
    head.append(b"\r\n")


def _probe_response_head() -> str | None:
    """What :func:`response_head` builds is what twisted.web's ``writeHeaders`` writes."""
    written: list[bytes] = []
    channel = SimpleNamespace(transport=SimpleNamespace(writeSequence=written.extend, write=written.append))
    headers = Headers({b"Content-Type": [b"text/plain"], b"X-Twice": [b"1", b"2"]})
    cast(Any, http.HTTPChannel).writeHeaders(channel, b"HTTP/1.1", b"200", b"OK", headers)
    ours: list[bytes] = []
    response_head(ours, b"HTTP/1.1", b"200", b"OK", headers)
    return None if b"".join(written) == b"".join(ours) else "twisted.web's writeHeaders writes another head"


def skip_form_parsing(request: http.Request) -> None:
    """Tell twisted.web not to parse ``request``'s body as a form (its ``email``-package parse)."""
    if fast.form_skip:
        cast(Any, request)._parsePOSTFormSubmission = False


def release_upgraded(request: http.Request) -> None:
    """Let reference counting free twisted.web's channel and request once a WebSocket took their connection
    (they hold only each other then: a cycle, about 2.5 KB, only an older generation's collection finds)."""
    if fast.release_upgraded:
        requests: list[http.Request] = getattr(request.channel, "requests", [])
        if request in requests:
            requests.remove(request)


# -- Autobahn ------------------------------------------------------------------------------------------


def config_attrs() -> list[str]:
    """``CONFIG_ATTRS`` for a WebSocket server protocol class: empty, so that Autobahn's ``_connectionMade``
    copies (and ``pformat``-logs) nothing, when :func:`copy_config` copies the factory's options instead."""
    return [] if fast.ws_config else list(_ab.WebSocketServerProtocol.CONFIG_ATTRS)


_CONFIG = tuple(_ab.WebSocketServerProtocol.CONFIG_ATTRS)


def copy_config(protocol: Any) -> None:
    """What Autobahn's ``_connectionMade`` does with ``CONFIG_ATTRS`` (options set on the instance win)."""
    if fast.ws_config:
        factory = protocol.factory
        for name in _CONFIG:
            if not hasattr(protocol, name):
                setattr(protocol, name, getattr(factory, name))


class DirectTimer:
    """Autobahn's timer hook, one ``callLater`` per timeout.

    Autobahn batches its timeouts into 200 ms buckets whose DelayedCalls
    outlive the connections they served; cancelling a timeout here really
    cancels it, so a stopped server leaves no pending call behind.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def call_later(self, delay: float, func: Callable[..., object], *args: Any, **kwargs: Any) -> DelayedCall:
        """``func(*args, **kwargs)`` after ``delay`` seconds."""
        return self.clock.callLater(delay, lambda: func(*args, **kwargs))


def direct_timers(factory: Any, clock: Clock) -> None:
    """Give an Autobahn factory (server or client) cancellable timers: :class:`DirectTimer`."""
    if fast.ws_timers:
        factory._batched_timer = DirectTimer(clock)


_AUTOBAHN_TIMERS = (
    "openHandshakeTimeoutCall",
    "closeHandshakeTimeoutCall",
    "serverConnectionDropTimeoutCall",
    "autoPingTimeoutCall",
    "autoPingPendingCall",
)


def cancel_timers(protocol: Any) -> None:
    """Cancel the timeouts Autobahn leaves behind when a connection ends mid-handshake."""
    for name in _AUTOBAHN_TIMERS:
        call = getattr(protocol, name, None)
        if call is not None and hasattr(call, "active"):
            cancel(call)
        setattr(protocol, name, None)


def deflate_extension(protocol: Any) -> Any:
    """The permessage-deflate state an open connection negotiated, or ``None``."""
    extension = getattr(protocol, "_perMessageCompress", None)
    if extension is None:
        for candidate in getattr(protocol, "websocket_extensions_in_use", None) or ():
            if isinstance(candidate, PerMessageDeflate):
                return candidate
    return extension


def release_inflater(extension: Any) -> None:
    """After a message, drop the server's inflater when the client compresses without context
    takeover: Autobahn makes a new one for each message anyway, but keeps the last (~44 KiB)."""
    if fast.ws_release and extension is not None and extension.client_no_context_takeover:
        extension._decompressor = None


def forget_closed(protocol: Any) -> None:
    """Break the cycle Autobahn leaves in ``is_closed`` (resolved with the protocol), once it is closed."""
    if fast.ws_release:
        protocol.is_closed = None


def frame_boundary(protocol: Any) -> bool:
    """Whether Autobahn's parser holds nothing (no bytes, no frame, no message begun): frames may be
    read directly. Always false with ``ws_frames`` off."""
    return fast.ws_frames and not protocol.data and protocol.current_frame is None and not protocol.inside_message


def autobahn_buffered(protocol: Any) -> bool:
    """Whether Autobahn's parser holds bytes not parsed yet."""
    return bool(protocol.data)


_TARGET_INVALID = re.compile(rb"[\x00-\x20\x7f#]")
_VALUE_INVALID = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/")


def _has(header: str | None, token: str) -> bool:
    return header is not None and any(part.strip().lower() == token for part in header.split(","))


def fast_handshake(protocol: Any, request: http.Request) -> bool:
    """Answer the WebSocket handshake of ``protocol`` (fed Autobahn's rebuilt copy of ``request``) from the
    request twisted.web parsed, without Autobahn parsing it again.

    Only a request Autobahn would accept as it is (every check of its
    ``processHandshake`` made here on the same values); for anything else,
    or with ``ws_handshake`` off, nothing is done and false is returned:
    Autobahn's own parse answers it.
    """
    if not fast.ws_handshake or request.method != b"GET" or request.clientproto != b"HTTP/1.1":
        return False
    end = protocol.data.find(b"\r\n\r\n")
    uri = request.uri
    if end < 0 or _TARGET_INVALID.search(uri):
        return False
    # As Autobahn sees them: twisted.web's values joined with "," (its rebuilt request), stripped.
    headers: dict[str, str] = {}
    for name, values in request.requestHeaders.getAllRawHeaders():
        value = b",".join(values)
        if not _TOKEN.fullmatch(name) or _VALUE_INVALID.search(value):
            return False
        headers[name.decode("latin-1").lower()] = value.decode("latin-1").strip(" \t")
    factory = protocol.factory
    host = headers.get("host")
    if (
        host is None
        or protocol.maxConnections > 0
        or ("x-forwarded-for" in headers and protocol.trustXForwardedFor)
        or headers.get("sec-websocket-version") != "13"
        or 13 not in protocol.versions
        or not _has(headers.get("upgrade"), "websocket")
        or not _has(headers.get("connection"), "upgrade")
    ):
        return False
    host = host.strip()
    if ":" in host and not host.endswith("]"):
        hostname, port = host.rsplit(":", 1)
        if factory.externalPort or not port.strip().isdigit():
            return False
        host = hostname
    protocols: list[str] = []
    if "sec-websocket-protocol" in headers:
        protocols = [p.strip() for p in headers["sec-websocket-protocol"].split(",")]
        if len(set(protocols)) != len(protocols):
            return False
    origin = headers.get("origin", "").strip()
    if "origin" in headers:
        try:
            triple = _ab._url_to_origin(origin)
        except ValueError:
            return False
        if not (triple == "null" and factory.allowNullOrigin) and not _ab._is_same_origin(
            triple, "https" if factory.isSecure else "http", factory.externalPort or factory.port,
            protocol.allowedOriginsPatterns,
        ):
            return False
    key = headers.get("sec-websocket-key", "").strip()
    if len(key) != 24 or key[-2:] != "==" or not _KEY_CHARS.issuperset(key[:-2]):
        return False
    extensions = protocol._parseExtensionsHeader(headers["sec-websocket-extensions"]) \
        if "sec-websocket-extensions" in headers else []
    target = uri.decode("latin-1")
    parts = parse.urlparse(target)
    params = parse.parse_qs(parts.query)
    protocol.http_request_data = protocol.data[: end + 4]
    protocol.data = protocol.data[end + 4 :]
    protocol.http_status_line = f"GET {target} HTTP/1.1"
    protocol.http_headers = headers
    protocol.http_request_uri = target
    protocol.http_request_path = parts.path
    protocol.http_request_params = params
    protocol.http_request_host = host
    protocol.websocket_version = 13
    protocol.websocket_protocols = protocols
    protocol.websocket_origin = origin
    protocol.websocket_extensions = extensions
    protocol._wskey = key
    connection = ConnectionRequest(protocol.peer, headers, host, parts.path, params, 13, origin, protocols,
                                   extensions)
    try:
        answer = protocol.onConnect(connection)
    except Exception:
        _handshake_failed(protocol, Failure())
        return True
    if isinstance(answer, Deferred):
        answer.addCallbacks(protocol.succeedHandshake, partial(_handshake_failed, protocol))
    else:
        protocol.succeedHandshake(answer)
    return True


def _handshake_failed(protocol: Any, failure: Failure) -> None:
    """As Autobahn answers an ``onConnect`` that raised: its status for a ``ConnectionDeny``, else 500."""
    error = failure.value
    if isinstance(error, ConnectionDeny):
        protocol.failHandshake(error.reason, error.code)
        return
    log.failure("Unexpected exception in onConnect", failure)
    protocol.failHandshake(f"Internal server error: {error}", ConnectionDeny.INTERNAL_SERVER_ERROR)


class _Later:
    """A value formatted only when a log line is written: ``function(*args)``."""

    __slots__ = ("args", "function")

    def __init__(self, function: Callable[..., object], args: tuple[object, ...]) -> None:
        self.function, self.args = function, args

    def __str__(self) -> str:
        return str(self.function(*self.args))

    def __format__(self, spec: str) -> str:
        return format(self.function(*self.args), spec)


def _later(function: Callable[..., object]) -> Callable[..., _Later]:
    def later(*args: object) -> _Later:
        return _Later(function, args)

    return later


def _debug_modules() -> list[Any]:
    from autobahn.twisted import websocket

    return [_ab, websocket]


def _probe_debug() -> str | None:
    """Autobahn's modules call ``hltype``/``hlval`` for log lines only (``tests/test_compat.py`` checks
    their source): they get lazy ones, which format as the real ones."""
    for module in _debug_modules():
        for name in ("hltype", "hlval"):
            if not callable(getattr(module, name, None)):
                return f"{module.__name__} has no {name}"
    real: tuple[Callable[..., Any], Callable[..., Any]] = (cast(Any, _ab).hltype, cast(Any, _ab).hlval)
    if format(_later(real[0])(_probe_debug)) != real[0](_probe_debug) or str(_later(real[1])(7)) != real[1](7):
        return "a lazy hltype or hlval formats otherwise"
    for module in _debug_modules():
        module.hltype, module.hlval = _later(real[0]), _later(real[1])
    return None


# -- processes --------------------------------------------------------------------------------------------


def forget_exit_signal(reactor: object) -> None:
    """Forget the signal that stopped ``reactor``: twistd would re-raise it once the reactor stopped
    (status -15 for SIGTERM), and a clean stop is a success."""
    capturing = getattr(interfaces, "_ISupportsExitSignalCapturing", None)
    if fast.exit_signal and capturing is not None and capturing.providedBy(reactor):
        reactor._exitSignal = None  # type: ignore[attr-defined]


def close_without_shutdown(transport: Any) -> None:
    """Close this process's copy of a TCP connection's socket without shutting the connection down
    (another process holds it), as Twisted does for the sockets of adopted ports."""
    if fast.keep_socket:
        transport._shouldShutdown = False
    transport.loseConnection()


# -- the probes ---------------------------------------------------------------------------------------------


def _probes() -> dict[str, Callable[[], str | None]]:
    server = _ab.WebSocketServerProtocol
    base = _ab.WebSocketProtocol
    return {
        "tcp_write": _probe_tcp_write,
        "response_head": _probe_response_head,
        "form_skip": lambda: _missing(http.Request.requestReceived, "_parsePOSTFormSubmission"),
        "release_upgraded": lambda: _missing(http.HTTPChannel.requestDone, "requests"),
        "ws_config": lambda: _missing(base._connectionMade, "CONFIG_ATTRS"),
        "ws_handshake": lambda: (
            _missing(server.processHandshake, "http_request_uri", "http_request_path", "http_request_params",
                     "http_request_host", "websocket_version", "websocket_protocols", "websocket_origin",
                     "websocket_extensions", "_wskey", "_parseExtensionsHeader", "failHandshake",
                     "succeedHandshake", "_url_to_origin", "_is_same_origin")
            or _missing(server.succeedHandshake, "_wskey", "websocket_extensions", "data", "consumeData")
        ),
        "ws_debug": _probe_debug,
        "ws_frames": lambda: _missing(base.processData, "data", "current_frame", "inside_message"),
        "ws_release": lambda: (
            _missing(PerMessageDeflate.start_decompress_message, "_decompressor")
            or (None if "is_closed" in _names(base._connectionLost) | _names(base.__init__)
                | _names(_twisted_adapter().connectionLost) else "Autobahn no longer keeps is_closed")
        ),
        "ws_timers": lambda: _missing(server.succeedHandshake, "_batched_timer"),
        "ws_buffer": lambda: _missing(base._dataReceived, "data", "consumeData"),
        "exit_signal": lambda: (
            None if "_exitSignal" in getattr(interfaces, "_ISupportsExitSignalCapturing", SimpleNamespace(
                names=lambda: ())).names() else "Twisted has no _ISupportsExitSignalCapturing._exitSignal"
        ),
        "keep_socket": lambda: _missing(tcp.Connection._closeSocket, "_shouldShutdown"),
        "c_http_parser": lambda: (
            _missing(http.HTTPChannel.allHeadersReceived, "requests", "length")
            or _missing(http.HTTPChannel.allContentReceived, "_command", "_path", "_version", "_handlingRequest")
            or _missing(http.HTTPChannel.requestDone, "_handlingRequest", "requests")
        ),
    }


def _twisted_adapter() -> Any:
    from autobahn.twisted.websocket import WebSocketAdapterProtocol

    return WebSocketAdapterProtocol


def _check() -> None:
    """Set :data:`fast` and :data:`why_off` from the probes (and :data:`ENV`); log in one line what is off."""
    forced = os.environ.get(ENV, "").strip() == "0"
    for name, probe in _probes().items():
        if forced and name in FAST_PATHS:
            why_off[name] = f"{ENV}=0"
            continue
        setattr(fast, name, True)  # as the probe runs: it goes through the path it checks
        try:
            reason = probe()
        except Exception as e:  # a probe meeting a renamed or removed name: that path is off
            reason = f"{type(e).__name__}: {e}"
        if reason is not None:
            setattr(fast, name, False)
            why_off[name] = reason
    if forced:
        log.info("txrealtime fast paths off ({env}=0)", env=ENV)
    found = "; ".join(f"{name}: {reason}" for name, reason in why_off.items() if not forced or name not in FAST_PATHS)
    if found:
        log.warn("txrealtime fast paths off, public paths used instead ({found})", found=found)


_check()
