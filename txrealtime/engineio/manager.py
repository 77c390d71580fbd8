"""The factory-level session manager: owns every Engine.IO session.

Transports (HTTP long-polling, WebSocket) hand the manager the packets they
decode and the connections they lose; the manager runs heartbeats, upgrades
and closing, and tells subscribers what happened through typed events. It
knows transports only through the small :class:`Transport` protocol.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from typing import Protocol

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import Throttle, gate
from .._observers import Observers
from .._reactor import default_reactor, now
from .events import (
    CloseReason,
    Drained,
    Handshake,
    MessageReceived,
    PacketCreated,
    PacketEvent,
    PacketReceived,
    RequestRefused,
    SessionClosed,
    SessionEvent,
    SessionOpened,
    SessionUpgraded,
)
from .options import EngineIOOptions
from .packets import Packet, PacketType

__all__ = ["Session", "SessionError", "SessionManager", "SessionState", "Transport"]

log = Logger(observer=gate)
noisy = Throttle(log)

_ERRORS = frozenset({CloseReason.PARSE_ERROR, CloseReason.TRANSPORT_ERROR})

Subscriber = Callable[[SessionEvent], object]
PacketSubscriber = Callable[[PacketEvent], object]

_SID_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))
"""What a sid from ``generate_id`` may hold: it travels in URLs, JSON and (with the cookie option) a header."""


def _bad_header(text: str) -> bool:
    return not isinstance(text, str) or "\r" in text or "\n" in text or "\0" in text


class DelayedCall(Protocol):
    """The part of ``DelayedCall`` the manager uses."""

    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class Clock(Protocol):
    """The part of ``IReactorTime`` the manager uses (a reactor, or ``task.Clock``)."""

    def callLater(self, delay: float, callable: Callable[..., object], *args: object) -> DelayedCall: ...


class Transport(Protocol):
    """What the manager needs from a transport bound to one session."""

    name: str

    @property
    def writable(self) -> bool:
        """Whether :meth:`send` may be called now."""

    def send(self, packets: list[Packet]) -> None:
        """Write packets to the client."""

    def close(self) -> None:
        """Close the connection; must not call back into the session."""


class SessionError(Exception):
    """A request names a session it may not use; ``code`` is Engine.IO's error code."""

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5

    MESSAGES = {
        0: "Transport unknown",
        1: "Session ID unknown",
        2: "Bad handshake method",
        3: "Bad request",
        4: "Forbidden",
        5: "Unsupported protocol version",
    }

    def __init__(self, code: int, context: str = "", details: Mapping[str, str] | None = None) -> None:
        super().__init__(self.MESSAGES[code] + (f": {context}" if context else ""))
        self.code = code
        self.context = context
        """A description for the log."""
        if details is None:
            details = {"message": context} if code == self.FORBIDDEN and context else {}
        self.details = details
        """What went wrong under the keys of Node's ``connection_error`` context (``sid``, ``name``, ...)."""

    @property
    def status(self) -> int:
        """The HTTP status of the answer: 403 for ``FORBIDDEN``, else 400."""
        return 403 if self.code == self.FORBIDDEN else 400

    def body(self) -> bytes:
        """The JSON error body Engine.IO servers answer with."""
        return json.dumps({"code": self.code, "message": self.MESSAGES[self.code]}).encode()


def _id_error(why: str) -> SessionError:
    return SessionError(SessionError.BAD_REQUEST, why, {"name": "ID_GENERATION_ERROR"})


class SessionState(Enum):
    OPEN = "open"
    CLOSED = "closed"


class Session:
    """One Engine.IO session. Created only by :class:`SessionManager`."""

    def __init__(
        self,
        manager: SessionManager,
        sid: str,
        transport: Transport,
        handshake: Handshake,
    ) -> None:
        self.sid = sid
        self.handshake = handshake
        self.transport = transport
        self.state = SessionState.OPEN
        self._manager = manager
        self._buffer: list[Packet] = []
        self._buffered = 0
        self._tokens = manager.options.max_packets_per_second or 0.0
        self._tokens_at = manager._now()
        self._probe: Transport | None = None
        self._ping_timer: DelayedCall | None = None
        self._pong_timer: DelayedCall | None = None
        self._upgrade_timer: DelayedCall | None = None
        self._release_timer: DelayedCall | None = None

    def __repr__(self) -> str:
        return f"<Session {self.sid} {self.transport.name} {self.state.value}>"

    @property
    def closed(self) -> bool:
        return self.state is SessionState.CLOSED

    @property
    def upgrading(self) -> bool:
        return self._probe is not None

    # -- for applications ------------------------------------------------

    def send(self, data: str | bytes) -> bool:
        """Queue a message for the client; ``False`` if the session is closed."""
        return self.send_many([data])

    def send_many(self, messages: list[str | bytes]) -> bool:
        """Queue several messages at once, so polling delivers them together.

        ``False`` if the session is closed, or was just closed because the
        client does not read and its queue went over ``max_buffer``.
        """
        if self.closed:
            return False
        size = sum(len(m) for m in messages)
        if self._buffered + size > self._manager.options.max_buffer and not self.transport.writable:
            self._overflow()
            return False
        packets = [Packet(PacketType.MESSAGE, m) for m in messages]
        self._buffer.extend(packets)
        self._buffered += size
        if self._manager._tracing:
            self._created(packets)
        self.flush()
        return True

    @property
    def buffered_bytes(self) -> int:
        """Bytes of messages queued for the client and not yet written."""
        return self._buffered

    def close(self, reason: CloseReason = CloseReason.FORCED_CLOSE, description: str = "") -> None:
        """Close the session, telling the client with a CLOSE packet."""
        self._close(reason, description, notify=True)

    def response_headers(
        self, request: Handshake | Callable[[], Handshake], initial: bool = False
    ) -> list[tuple[str, str]]:
        """The headers the application adds to a response of this session: see
        :meth:`SessionManager.response_headers`."""
        return self._manager.response_headers(request, self.sid, initial)

    # -- for transports --------------------------------------------------

    @property
    def pending(self) -> bool:
        """Whether packets wait to be written."""
        return bool(self._buffer)

    def flush(self) -> None:
        """Write buffered packets if the current transport can take them."""
        if self._buffer and self.transport.writable:
            packets, self._buffer = self._buffer, []
            buffered, self._buffered = self._buffered, 0
            try:
                self.transport.send(packets)
            except BaseException:
                # Transports fail before taking anything: keep the packets for the next try.
                self._buffer[:0] = packets
                self._buffered += buffered
                raise
            if self.closed:
                self._manager._forget(self)
            elif self._manager._tracing:
                self._manager._packet_subscribers.publish(Drained(self.sid))

    def receive(self, packet: Packet, via: Transport) -> None:
        """Handle a packet a transport decoded."""
        if self.closed:
            return
        if via is self._probe:
            self._receive_probe(packet, via)
        elif via is self.transport:
            if self._manager.options.max_packets_per_second is not None and not self.within_rate():
                return
            if self._manager._tracing:
                self._manager._packet_subscribers.publish(PacketReceived(self.sid, packet))
                if self.closed:
                    return
            self._receive(packet)

    def within_rate(self) -> bool:
        """Count one packet from the client (or a WebSocket ping or pong) against ``max_packets_per_second``.

        ``False`` if it is one too many: the session is then closed ("transport error").
        """
        rate = self._manager.options.max_packets_per_second
        if rate is None or self._take_token():
            return True
        self._close(CloseReason.TRANSPORT_ERROR, f"rate limit: more than {rate:g} packets/s", notify=True)
        return False

    def _take_token(self) -> bool:
        rate = self._manager.options.max_packets_per_second or 0.0
        now = self._manager._now()
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _overflow(self) -> None:
        """The client stopped reading: drop what waits and cut the connection."""
        limit = self._manager.options.max_buffer
        self._buffer = []
        self._buffered = 0
        abort = getattr(self.transport, "abort", None)
        self._close(CloseReason.TRANSPORT_ERROR, f"outgoing buffer over {limit} bytes (client not reading)", False)
        if abort is not None:
            abort()

    def transport_closed(self, transport: Transport, reason: CloseReason, description: str = "") -> None:
        """A transport lost its connection or failed."""
        if transport is self._probe:
            self._end_probe(close=False)
        elif transport is self.transport and not self.closed:
            self._close(reason, description, notify=False)

    def protocol_error(self, transport: Transport, reason: CloseReason, description: str, linger: bool = True) -> None:
        """A transport received input it cannot accept: close the session.

        A poll parked now gets the CLOSE packet; with ``linger``, so does the
        next one, else the session is forgotten at once (a later request for
        its sid is answered "Session ID unknown", as Node's engine.io does
        after a body that is not a valid payload).
        """
        if transport is self._probe:
            log.info("Upgrade of {sid} aborted: {description}", sid=self.sid, description=description)
            self._end_probe(close=True)
        elif transport is self.transport:
            self._close(reason, description, notify=True, linger=linger)

    # -- internals -------------------------------------------------------

    def _receive(self, packet: Packet) -> None:
        ptype = packet.type
        if ptype is PacketType.MESSAGE:
            self._manager._emit(MessageReceived(self.sid, packet.data))
        elif ptype is PacketType.PONG:
            self._cancel("_pong_timer")
            self._schedule_ping()
        elif ptype is PacketType.CLOSE:
            self._close(CloseReason.TRANSPORT_CLOSE, "client sent close", notify=False)
        elif ptype is PacketType.NOOP:
            pass
        elif ptype is PacketType.PING:
            self._close(CloseReason.TRANSPORT_ERROR, "invalid heartbeat direction", notify=True)
        else:
            self._close(CloseReason.PARSE_ERROR, f"unexpected {ptype.name} packet", notify=True)

    def _receive_probe(self, packet: Packet, probe: Transport) -> None:
        if packet.type is PacketType.PING and packet.data == "probe":
            probe.send([Packet(PacketType.PONG, "probe")])
            # The client pauses polling once its pending poll returns; that poll
            # may be one it sent before it saw the probe's answer, so keep
            # releasing whatever poll is parked until the upgrade completes.
            self._release_poll()
        elif packet.type is PacketType.UPGRADE:
            self._finish_upgrade(probe)
        else:
            log.info("Upgrade of {sid} aborted: unexpected {type} packet", sid=self.sid, type=packet.type.name)
            self._end_probe(close=True)

    RELEASE_INTERVAL = 0.1
    """Seconds between NOOPs that release a parked poll during an upgrade (as Node's engine.io does)."""

    def _release_poll(self) -> None:
        self._release_timer = None
        if self.closed or self._probe is None:
            return
        if self.transport.writable and not self._buffer:
            self._buffer.append(Packet(PacketType.NOOP))
            self.flush()
        self._release_timer = self._manager.reactor.callLater(self.RELEASE_INTERVAL, self._release_poll)

    def _finish_upgrade(self, probe: Transport) -> None:
        self._cancel("_upgrade_timer")
        self._cancel("_release_timer")
        old = self.transport
        self._probe = None
        self.transport = probe
        if old.writable:
            old.send([Packet(PacketType.NOOP)])
        old.close()
        # NOOPs queued for the old transport have no use on the new one.
        self._buffer = [p for p in self._buffer if p.type is not PacketType.NOOP]
        self._manager._emit(SessionUpgraded(self.sid, old.name, probe.name))
        self.flush()

    def _end_probe(self, close: bool) -> None:
        probe, self._probe = self._probe, None
        self._cancel("_upgrade_timer")
        self._cancel("_release_timer")
        if close and probe is not None:
            probe.close()

    def _start_probe(self, probe: Transport) -> None:
        self._probe = probe
        self._upgrade_timer = self._manager.reactor.callLater(
            self._manager.options.upgrade_timeout, self._upgrade_timed_out
        )

    def _upgrade_timed_out(self) -> None:
        self._upgrade_timer = None
        log.info("Upgrade of {sid} timed out", sid=self.sid)
        self._end_probe(close=True)

    def _schedule_ping(self) -> None:
        self._cancel("_ping_timer")
        self._ping_timer = self._manager.reactor.callLater(self._manager.options.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        # Arm the timer first: a synchronous transport may deliver the PONG inside flush().
        self._pong_timer = self._manager.reactor.callLater(self._manager.options.ping_timeout, self._ping_timed_out)
        self._buffer.append(Packet(PacketType.PING))
        if self._manager._tracing:
            self._created(self._buffer[-1:])
        self.flush()

    def _ping_timed_out(self) -> None:
        self._pong_timer = None
        self._close(CloseReason.PING_TIMEOUT, "no pong", notify=False)

    def _cancel(self, name: str) -> None:
        call: DelayedCall | None = getattr(self, name)
        if call is not None:
            if call.active():
                call.cancel()
            setattr(self, name, None)

    def _created(self, packets: list[Packet]) -> None:
        publish = self._manager._packet_subscribers.publish
        for packet in packets:
            publish(PacketCreated(self.sid, packet))

    def _close(self, reason: CloseReason, description: str, notify: bool, linger: bool = True) -> None:
        if self.closed:
            return
        self.state = SessionState.CLOSED
        self._manager._released(self)
        for timer in ("_ping_timer", "_pong_timer", "_upgrade_timer", "_release_timer"):
            self._cancel(timer)
        self._end_probe(close=True)
        self._buffer = [Packet(PacketType.CLOSE)] if notify else []
        self.flush()
        if not linger:
            self._buffer = []
        if self._buffer:
            # A polling client picks the CLOSE packet up on its next GET.
            self._manager._linger(self)
        else:
            self.transport.close()
            self._manager._forget(self)
        # Errors at info level (throttled: a flood of bad clients makes a few lines); the rest is routine.
        emit = noisy.info if reason in _ERRORS else log.debug
        emit("Session {sid} closed: {reason} ({description})", sid=self.sid, reason=reason.value,
             description=description)
        self._manager._emit(SessionClosed(self.sid, reason, description))

    def _drop(self) -> None:
        """Give up on delivering the final CLOSE packet."""
        self._buffer = []
        self.transport.close()


class SessionManager:
    """Owns every Engine.IO session of one endpoint and emits :data:`SessionEvent` values."""

    def __init__(self, options: EngineIOOptions | None = None, reactor: Clock | None = None) -> None:
        self.options = options or EngineIOOptions()
        self.reactor: Clock = default_reactor(reactor)
        self._sessions: dict[str, Session] = {}
        self._lingering: dict[str, tuple[Session, DelayedCall]] = {}
        self._subscribers: Observers[SessionEvent] = Observers("Session manager")
        self._packet_subscribers: Observers[PacketEvent] = Observers("Session manager (packets)")
        self._tracing = False
        """Whether anyone subscribed with :meth:`subscribe_packets` (a plain flag: read once per packet)."""
        self._per_address: dict[str, int] = {}
        self.accepting = True
        """``False`` once :meth:`shutdown` ran: new sessions are refused."""

    # -- observing -------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every event; returns a function that unsubscribes."""
        return self._subscribers.subscribe(callback)

    def subscribe_packets(self, callback: PacketSubscriber) -> Callable[[], None]:
        """Call ``callback`` with every :class:`PacketReceived`, :class:`PacketCreated` and :class:`Drained`
        event of every session; returns a function that unsubscribes.

        Node's per-socket ``packet``, ``packetCreate`` and ``drain`` events. They
        come several per message, so they are built only while someone subscribed
        here; :meth:`subscribe` callbacks never see them.
        """
        unsubscribe = self._packet_subscribers.subscribe(callback)
        self._tracing = True

        def undo() -> None:
            unsubscribe()
            self._tracing = len(self._packet_subscribers) > 0

        return undo

    def _emit(self, event: SessionEvent) -> None:
        self._subscribers.publish(event)

    def refused(self, error: SessionError, request: Handshake, method: str) -> None:
        """Tell subscribers that ``request`` was answered with ``error`` (Node's engine ``connection_error``)."""
        self._emit(
            RequestRefused(
                error.code, SessionError.MESSAGES[error.code], dict(error.details), request, method, error.status
            )
        )

    # -- hooks -----------------------------------------------------------

    def generate_sid(self, request: Handshake) -> Deferred[str]:
        """The sid of a session about to open for ``request``: from the ``generate_id`` hook, else random.

        Fails with :class:`SessionError` (bad request, ``ID_GENERATION_ERROR``) if
        the hook fails or returns an id that is not printable ASCII or in use.
        """
        hook = self.options.generate_id
        if hook is None:
            return succeed(self.new_sid())

        def check(sid: object) -> str:
            if not isinstance(sid, str) or not _SID_CHARS.issuperset(sid) or not 0 < len(sid) <= 256:
                raise _id_error(f"generate_id returned {type(sid).__name__} that is not a valid sid")
            if sid in self._sessions or sid in self._lingering:
                raise _id_error("generate_id returned a sid in use")
            return sid

        def failed(failure: Failure) -> Failure:
            if failure.check(SessionError):
                return failure
            log.failure("generate_id failed", failure)
            return Failure(_id_error(f"generate_id failed: {type(failure.value).__name__}"))

        return maybeDeferred(hook, request).addCallback(check).addErrback(failed)

    def response_headers(
        self, request: Handshake | Callable[[], Handshake], sid: str, initial: bool = False
    ) -> list[tuple[str, str]]:
        """The headers the application adds to a response of session ``sid``, as ``(name, value)`` pairs.

        On the response that opens the session (``initial``): the cookie, then
        what ``initial_headers`` returns; on every response, what ``headers``
        returns. ``request`` (or a function building it, called only if a hook
        runs) describes the request answered. A hook that fails is logged and
        adds nothing; a name or value that is not text or holds a line break is
        left out.
        """
        opts = self.options
        if not initial and opts.headers is None:
            return []
        out: list[tuple[str, str]] = []
        if initial and opts.cookie is not None:
            out.append(("Set-Cookie", opts.cookie.header(sid)))
        described: Handshake | None = None
        for hook in (opts.initial_headers if initial else None, opts.headers):
            if hook is None:
                continue
            if described is None:
                described = request if isinstance(request, Handshake) else request()
            try:
                added = [
                    (name, one)
                    for name, value in (hook(described, sid) or {}).items()
                    for one in ([value] if isinstance(value, str) else value)
                ]
            except Exception:
                log.failure("A headers hook failed")
                continue
            for name, one in added:
                if _bad_header(name) or _bad_header(one):
                    noisy.info("A header from a headers hook left out: not text, or a line break")
                else:
                    out.append((name, one))
        return out

    # -- sessions --------------------------------------------------------

    @property
    def sessions(self) -> Mapping[str, Session]:
        """Open sessions by sid (read-only view)."""
        return self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def get(self, sid: str) -> Session | None:
        """The open session with this sid, if any."""
        return self._sessions.get(sid)

    def for_poll(self, sid: str) -> Session | None:
        """The session a polling GET should be served by, closed ones with a final packet included."""
        session = self._sessions.get(sid)
        if session is None and sid in self._lingering:
            session = self._lingering[sid][0]
        return session

    def send(self, sid: str, data: str | bytes) -> bool:
        """Send a message to one session; ``False`` if there is no such open session."""
        session = self._sessions.get(sid)
        return session.send(data) if session is not None else False

    def close(self, sid: str, reason: CloseReason = CloseReason.FORCED_CLOSE) -> None:
        """Close one session, if it is open."""
        session = self._sessions.get(sid)
        if session is not None:
            session.close(reason)

    def _now(self) -> float:
        return now(self.reactor)

    def new_sid(self) -> str:
        """An unguessable session id not in use."""
        sid = secrets.token_urlsafe(15)
        while sid in self._sessions or sid in self._lingering:
            sid = secrets.token_urlsafe(15)
        return sid

    def check_origin(self, origin: str | None) -> None:
        """Raise :class:`SessionError` (forbidden) if a request's ``Origin`` header is not allowed."""
        allowed = self.options.allowed_origins
        if allowed is not None and origin is not None and origin not in allowed:
            raise SessionError(SessionError.FORBIDDEN, f"origin {origin!r} not allowed")

    def admit(self, handshake: Handshake) -> Deferred[None]:
        """Decide whether a new session may open: origin, sessions per address, ``allow_request``.

        Fails with :class:`SessionError` (forbidden) when it may not.
        """
        try:
            if not self.accepting:
                raise SessionError(SessionError.FORBIDDEN, "server shutting down")
            self.check_origin(handshake.headers.get("origin"))
            limit = self.options.max_sessions_per_ip
            if limit is not None and self._per_address.get(handshake.address, 0) >= limit:
                raise SessionError(SessionError.FORBIDDEN, f"more than {limit} sessions from {handshake.address}")
        except SessionError:
            return fail()
        hook = self.options.allow_request
        if hook is None:
            return succeed(None)

        def decided(verdict: object) -> None:
            if verdict is not True:
                why = verdict if isinstance(verdict, str) else "refused by allow_request"
                raise SessionError(SessionError.FORBIDDEN, why)

        def failed(failure: Failure) -> Failure:
            if not failure.check(SessionError):
                log.failure("allow_request failed", failure)
                return Failure(SessionError(SessionError.FORBIDDEN, "allow_request failed"))
            return failure

        return maybeDeferred(hook, handshake).addCallback(decided).addErrback(failed)

    def open_session(self, transport: Transport, handshake: Handshake, sid: str | None = None) -> Session:
        """Create a session on ``transport`` and queue its OPEN packet."""
        if sid is None or sid in self._sessions or sid in self._lingering:
            sid = self.new_sid()
        session = Session(self, sid, transport, handshake)
        self._sessions[sid] = session
        self._per_address[handshake.address] = self._per_address.get(handshake.address, 0) + 1
        opts = self.options
        open_data = json.dumps(
            {
                "sid": sid,
                "upgrades": opts.upgrades_from(transport.name),
                "pingInterval": int(opts.ping_interval * 1000),
                "pingTimeout": int(opts.ping_timeout * 1000),
                "maxPayload": opts.max_payload,
            },
            separators=(",", ":"),
        )
        session._buffer.append(Packet(PacketType.OPEN, open_data))
        if self._tracing:
            session._created(session._buffer[-1:])
        session._schedule_ping()
        self._emit(SessionOpened(sid, transport.name, handshake))
        session.flush()
        return session

    def probe(self, sid: str, transport: Transport) -> Session:
        """Attach ``transport`` to session ``sid`` as an upgrade candidate.

        Raises :class:`SessionError` if the upgrade is not allowed.
        """
        session = self._sessions.get(sid)
        if session is None:
            raise SessionError(SessionError.UNKNOWN_SID, details={"sid": sid})
        current = session.transport.name
        if transport.name not in self.options.upgrades_from(current):
            raise SessionError(
                SessionError.BAD_REQUEST,
                f"cannot upgrade {current} to {transport.name}",
                {"name": "UPGRADE_NOT_ALLOWED", "transport": transport.name, "previousTransport": current},
            )
        if session.upgrading:
            raise SessionError(SessionError.BAD_REQUEST, "upgrade already in progress", {"name": "UPGRADE_IN_PROGRESS"})
        session._start_probe(transport)
        return session

    @property
    def drained(self) -> bool:
        """No session is open and no final CLOSE packet waits for its poll."""
        return not self._sessions and not self._lingering

    def shutdown(self, drop_lingering: bool = False) -> None:
        """Close every session with :attr:`CloseReason.SERVER_SHUTDOWN` and refuse new ones.

        Polling clients collect their CLOSE packet with their next poll; with
        ``drop_lingering`` those not yet collected are given up at once.
        """
        self.accepting = False
        for session in list(self._sessions.values()):
            session.close(CloseReason.SERVER_SHUTDOWN)
        if drop_lingering:
            for sid in list(self._lingering):
                self._end_linger(sid)

    # -- internals -------------------------------------------------------

    def _released(self, session: Session) -> None:
        address = session.handshake.address
        left = self._per_address.get(address, 0) - 1
        if left > 0:
            self._per_address[address] = left
        else:
            self._per_address.pop(address, None)

    def _forget(self, session: Session) -> None:
        if self._sessions.get(session.sid) is session:
            del self._sessions[session.sid]
        entry = self._lingering.pop(session.sid, None)
        if entry is not None:
            if entry[1].active():
                entry[1].cancel()
            session.transport.close()

    def _linger(self, session: Session) -> None:
        self._sessions.pop(session.sid, None)
        call = self.reactor.callLater(self.options.ping_timeout, self._end_linger, session.sid)
        self._lingering[session.sid] = (session, call)

    def _end_linger(self, sid: str) -> None:
        entry = self._lingering.pop(sid, None)
        if entry is not None:
            if entry[1].active():
                entry[1].cancel()
            entry[0]._drop()
