"""The factory-level session manager: owns every Engine.IO session (each a :class:`Session`).

Transports (HTTP long-polling, WebSocket) hand the manager the packets they
decode and the connections they lose; the manager runs heartbeats, upgrades
and closing, and tells subscribers what happened through typed events. It
knows transports only through the small :class:`Transport` protocol.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator, Mapping

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import Throttle, gate
from .._observers import Observers
from .._reactor import Clock, DelayedCall, default_reactor, now
from .errors import SessionError, id_error
from .events import (
    CloseReason,
    Handshake,
    PacketEvent,
    RequestRefused,
    SessionEvent,
    SessionOpened,
)
from .interfaces import Transport
from .options import EngineIOOptions
from .packets import Packet, PacketType
from .session import Session, SessionState
from .stats import EngineStats, count

__all__ = [
    "PACKETS_PER_TURN",
    "TURN_SECONDS",
    "Clock",
    "DelayedCall",
    "Session",
    "SessionError",
    "SessionManager",
    "SessionState",
    "Transport",
]

log = Logger(__name__, observer=gate)
noisy = Throttle(log)

PACKETS_PER_TURN = 100
"""Packets one connection hands its session per reactor turn, whatever its transport (a
polling POST's body, a WebSocket read): about a millisecond of work for tiny Socket.IO
events; the rest waits for the next turn, other connections served in between
(measured in bench/README.md)."""

TURN_SECONDS = 0.001
"""Reactor time after which one connection stops handing packets on in this turn, even short
of :data:`PACKETS_PER_TURN` (packets that cost more than tiny events, e.g. namespace joins),
on the reactor's clock: a ``task.Clock`` never runs out."""

_ERRORS = frozenset({CloseReason.PARSE_ERROR, CloseReason.TRANSPORT_ERROR})

Subscriber = Callable[[SessionEvent], object]
PacketSubscriber = Callable[[PacketEvent], object]

_SID_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))
"""What a sid from ``generate_id`` may hold: it travels in URLs, JSON and (with the cookie option) a header."""


def _bad_header(text: str) -> bool:
    return not isinstance(text, str) or "\r" in text or "\n" in text or "\0" in text


class SessionManager:
    """Owns every Engine.IO session of one endpoint and emits :data:`SessionEvent` values."""

    def __init__(self, options: EngineIOOptions | None = None, reactor: Clock | None = None) -> None:
        """A manager with no session yet.

        :param options: Its settings (heartbeats, limits, CORS, origins,
            compression...); the defaults, Node's, if not given.
        :param reactor: The clock its timers run on; the global reactor if not given.
        """
        self.options = options or EngineIOOptions()
        """The settings in force (a frozen dataclass: replace it whole to change them)."""
        self.reactor: Clock = default_reactor(reactor)
        """The clock every timer of its sessions runs on."""
        self._sessions: dict[str, Session] = {}
        self._lingering: dict[str, tuple[Session, DelayedCall]] = {}
        self._subscribers: Observers[SessionEvent] = Observers("Session manager")
        self._packet_subscribers: Observers[PacketEvent] = Observers("Session manager (packets)")
        self.message_subscribers = 0
        """How many subscribers want :class:`MessageReceived` events (built only when some do)."""
        self.tracing = False
        """Whether anyone subscribed with :meth:`subscribe_packets` (a plain flag: read once per packet)."""
        self._per_address: dict[str, int] = {}
        self.accepting = True
        """``False`` once :meth:`shutdown` ran: new sessions are refused."""
        self.stats = EngineStats()
        """Running totals (packets, bytes, sessions opened and closed, refusals), read by :mod:`txrealtime.metrics`."""
        self.sid_tag = ""
        """Appended to every sid this manager makes itself (not those of a ``generate_id`` hook): ``~`` and the
        name of this node, so that another node finds the session's owner from the sid alone (set by
        :mod:`txrealtime.forwarding`)."""

    # -- observing -------------------------------------------------------

    def subscribe(self, callback: Subscriber, messages: bool = True) -> Callable[[], None]:
        """Call ``callback`` with every event; returns a function that unsubscribes.

        With ``messages`` false the subscriber does not need :class:`MessageReceived` (it takes
        messages from :attr:`Session.receiver`, as the Socket.IO server does): while every
        subscriber says so, no such event is built. It may still see some when others asked for them.
        """
        unsubscribe = self._subscribers.subscribe(callback)
        if not messages:
            return unsubscribe
        self.message_subscribers += 1
        done = False

        def undo() -> None:
            nonlocal done
            unsubscribe()
            if not done:
                done = True
                self.message_subscribers -= 1

        return undo

    def subscribe_packets(self, callback: PacketSubscriber) -> Callable[[], None]:
        """Call ``callback`` with every :class:`PacketReceived`, :class:`PacketCreated` and :class:`Drained`
        event of every session; returns a function that unsubscribes.

        Node's per-socket ``packet``, ``packetCreate`` and ``drain`` events. They
        come several per message, so they are built only while someone subscribed
        here; :meth:`subscribe` callbacks never see them.
        """
        unsubscribe = self._packet_subscribers.subscribe(callback)
        self.tracing = True

        def undo() -> None:
            unsubscribe()
            self.tracing = len(self._packet_subscribers) > 0

        return undo

    def publish(self, event: SessionEvent) -> None:
        """Hand ``event`` to the :meth:`subscribe` callbacks (the sessions report through here)."""
        self._subscribers.publish(event)

    def trace(self, event: PacketEvent) -> None:
        """Hand a packet event to the :meth:`subscribe_packets` callbacks (sessions call it while
        :attr:`tracing`)."""
        self._packet_subscribers.publish(event)

    def refused(self, error: SessionError, request: Handshake, method: str, upgrade: bool = False) -> None:
        """Tell subscribers that ``request`` (a WebSocket ``upgrade``, or not) was answered with ``error``
        (Node's engine ``connection_error``)."""
        count(self.stats.refused, error.code)
        status = 400 if upgrade else error.status
        self.publish(
            RequestRefused(error.code, SessionError.MESSAGES[error.code], dict(error.details), request, method, status)
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
                raise id_error(f"generate_id returned {type(sid).__name__} that is not a valid sid")
            if sid in self._sessions or sid in self._lingering:
                raise id_error("generate_id returned a sid in use")
            return sid

        def failed(failure: Failure) -> Failure:
            if failure.check(SessionError):
                return failure
            log.failure("generate_id failed", failure)
            return Failure(id_error(f"generate_id failed: {type(failure.value).__name__}"))

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

    def send(self, sid: str, data: str | bytes, compress: bool = True) -> bool:
        """Send a message to one session; ``False`` if there is no such open session."""
        session = self._sessions.get(sid)
        return session.send(data, compress) if session is not None else False

    def close(self, sid: str, reason: CloseReason = CloseReason.FORCED_CLOSE) -> None:
        """Close one session, if it is open."""
        session = self._sessions.get(sid)
        if session is not None:
            session.close(reason)

    def now(self) -> float:
        """Seconds on :attr:`reactor`'s clock."""
        return now(self.reactor)

    def new_sid(self) -> str:
        """An unguessable session id not in use."""
        sid = secrets.token_urlsafe(15) + self.sid_tag
        while sid in self._sessions or sid in self._lingering:
            sid = secrets.token_urlsafe(15) + self.sid_tag
        return sid

    def check_origin(self, origin: str | None) -> None:
        """Raise :class:`SessionError` (forbidden) if a request's ``Origin`` header is not allowed."""
        allowed = self.options.allowed_origins
        if allowed is not None and origin is not None and origin not in allowed:
            raise SessionError(SessionError.FORBIDDEN, f"origin {origin!r} not allowed")

    def check_admission(self, handshake: Handshake) -> None:
        """Raise :class:`SessionError` (forbidden) if a new session may not open: shutting down, origin,
        sessions per address (what :meth:`admit` decides before ``allow_request``)."""
        if not self.accepting:
            raise SessionError(SessionError.FORBIDDEN, "server shutting down")
        self.check_origin(handshake.headers.get("origin"))
        limit = self.options.max_sessions_per_ip
        if limit is not None and self._per_address.get(handshake.address, 0) >= limit:
            raise SessionError(SessionError.FORBIDDEN, f"more than {limit} sessions from {handshake.address}")

    def admit(self, handshake: Handshake) -> Deferred[None]:
        """Decide whether a new session may open: origin, sessions per address, ``allow_request``.

        Fails with :class:`SessionError` (forbidden) when it may not.
        """
        try:
            self.check_admission(handshake)
        except SessionError:
            return fail()
        hook = self.options.allow_request
        if hook is None:
            return succeed(None)

        def decided(verdict: object) -> None:
            if verdict is not True:
                # A reason is the client's answer too, as Node's allowRequest message: {"code":4,"message":reason}.
                reason = verdict if isinstance(verdict, str) else None
                why = "refused by allow_request" if reason is None else reason
                raise SessionError(SessionError.FORBIDDEN, why, answer=reason)

        def failed(failure: Failure) -> Failure:
            if not failure.check(SessionError):
                log.failure("allow_request failed", failure)
                return Failure(SessionError(SessionError.FORBIDDEN, "allow_request failed"))
            return failure

        return maybeDeferred(hook, handshake).addCallback(decided).addErrback(failed)

    def open_session(
        self, transport: Transport, handshake: Handshake, sid: str | None = None, protocol: int = 4
    ) -> Session:
        """Create a session speaking Engine.IO ``protocol`` (3 or 4) on ``transport`` and queue its OPEN packet."""
        if sid is None or sid in self._sessions or sid in self._lingering:
            sid = self.new_sid()
        session = Session(self, sid, transport, handshake, protocol)
        self._sessions[sid] = session
        self._per_address[handshake.address] = self._per_address.get(handshake.address, 0) + 1
        count(self.stats.opened, transport.name)
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
        first = [Packet(PacketType.OPEN, open_data)]
        if opts.initial_packet is not None:  # Node's initialPacket: a message right after the OPEN packet
            first.append(Packet(PacketType.MESSAGE, opts.initial_packet))
        session.start(first)
        self.publish(SessionOpened(sid, transport.name, handshake))
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
        session.start_probe(transport)
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

    def released(self, session: Session) -> None:
        """``session`` closed: it no longer counts against its client's address (called by the session)."""
        address = session.handshake.address
        left = self._per_address.get(address, 0) - 1
        if left > 0:
            self._per_address[address] = left
        else:
            self._per_address.pop(address, None)

    def forget(self, session: Session) -> None:
        """``session`` is over for good: drop it, and its lingering entry (called by the session)."""
        if self._sessions.get(session.sid) is session:
            del self._sessions[session.sid]
        entry = self._lingering.pop(session.sid, None)
        if entry is not None:
            if entry[1].active():
                entry[1].cancel()
            session.transport.close()

    def linger(self, session: Session) -> None:
        """Keep closed ``session`` until its polling client collects the CLOSE packet, or for ``ping_timeout``
        (called by the session)."""
        self._sessions.pop(session.sid, None)
        call = self.reactor.callLater(self.options.ping_timeout, self._end_linger, session.sid)
        self._lingering[session.sid] = (session, call)

    def _end_linger(self, sid: str) -> None:
        entry = self._lingering.pop(sid, None)
        if entry is not None:
            if entry[1].active():
                entry[1].cancel()
            entry[0].drop()
