"""One Engine.IO session: its queue, heartbeats, upgrade and closing, seen from its transports.

The protocol revision is the session's, chosen by its handshake
(:attr:`Session.protocol`): in v4 the server pings and the client must
answer within ``ping_timeout``; in v3 the client pings, the server answers
with a PONG and closes the session when no ping came for ``ping_interval +
ping_timeout``. Transports frame packets for the session's revision.

A :class:`Session` knows its transport only through the :class:`Transport`
Protocol and its manager only through :class:`SessionHost` (both in
:mod:`txrealtime.engineio.interfaces`, re-exported here), so it can be
driven by fakes and a ``task.Clock``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from twisted.logger import Logger

from .._logging import Throttle, gate
from .._reactor import DelayedCall
from .events import (
    CloseReason,
    Drained,
    Handshake,
    MessageReceived,
    PacketCreated,
    PacketReceived,
    SessionClosed,
    SessionUpgraded,
)
from .interfaces import SessionHost, Transport
from .packets import Packet, PacketType, UncompressedPacket
from .stats import count

__all__ = ["Session", "SessionHost", "SessionState", "Transport"]

log = Logger(__name__, observer=gate)
noisy = Throttle(log)

_ERRORS = frozenset({CloseReason.PARSE_ERROR, CloseReason.TRANSPORT_ERROR})


class SessionState(Enum):
    OPEN = "open"
    CLOSED = "closed"


class Session:
    """One Engine.IO session. Created only by :class:`SessionManager`."""

    def __init__(
        self,
        manager: SessionHost[Session],
        sid: str,
        transport: Transport,
        handshake: Handshake,
        protocol: int = 4,
    ) -> None:
        """A session, open.

        :param manager: The manager that opened it.
        :param sid: Its session id.
        :param transport: The transport it opened on (polling or WebSocket).
        :param handshake: The request that opened it.
        :param protocol: The Engine.IO protocol revision its client speaks (3 or 4).
        """
        self.sid = sid
        """The session id."""
        self.handshake = handshake
        """The request that opened the session."""
        self.transport = transport
        """The transport in use (it changes on upgrade)."""
        self.state = SessionState.OPEN
        """Open, closing or closed."""
        self.protocol = protocol
        """The Engine.IO protocol revision (3 or 4) its client speaks."""
        self._manager = manager
        self._buffer: list[Packet] = []
        self._buffered = 0
        self._mark = manager.options.drain_mark
        self._needs_drain = False
        self._pong_queued = False
        """v3: a PONG waits in the queue (the client has not read since its last ping was answered)."""
        self._tokens = manager.options.max_packets_per_second or 0.0
        self._tokens_at = manager.now()
        self._probe: Transport | None = None
        self._ping_timer: DelayedCall | None = None
        self._pong_timer: DelayedCall | None = None
        self._upgrade_timer: DelayedCall | None = None
        self._release_timer: DelayedCall | None = None
        self.receiver: Callable[[str | bytes], object] | None = None
        """Called with each message from the client, directly (the Socket.IO connection's decoder), before
        any :class:`MessageReceived` event; what it raises is logged."""
        self.on_drain: Callable[[], object] | None = None
        """Called when the queue, having gone over the high-water mark (:attr:`needs_drain`), is written out
        (the Socket.IO connection's ``drain``); what it raises is logged."""

    def __repr__(self) -> str:
        return f"<Session {self.sid} {self.transport.name} {self.state.value}>"

    @property
    def closed(self) -> bool:
        """Whether the session is closed."""
        return self.state is SessionState.CLOSED

    @property
    def upgrading(self) -> bool:
        """Whether a WebSocket is probing to take over from polling."""
        return self._probe is not None

    # -- for applications ------------------------------------------------

    def send(self, data: str | bytes, compress: bool = True) -> bool:
        """Queue a message for the client; ``False`` if the session is closed."""
        return self.send_many([data], compress)

    def send_many(self, messages: list[str | bytes], compress: bool = True) -> bool:
        """Queue several messages at once, so polling delivers them together.

        With ``compress`` false the transports send them uncompressed whatever
        their size (Node's ``compress(false)``). ``False`` if the session is
        closed, or was just closed because the client does not read and its
        queue went over ``max_buffer``.
        """
        if self.closed:
            return False
        make = Packet if compress else UncompressedPacket
        return self._queue([make(PacketType.MESSAGE, m) for m in messages], sum(len(m) for m in messages))

    def _queue(self, packets: list[Packet], size: int) -> bool:
        """Queue packets of ``size`` bytes, whatever made them, and write them if the transport can take them.

        The one place a session's queue grows (but its OPEN and CLOSE packets): beyond
        ``max_buffer`` for a client that does not read, the session is closed instead.
        """
        if self._buffered + size > self._manager.options.max_buffer and not self.transport.writable:
            self._overflow()
            return False
        self._buffer.extend(packets)
        self._buffered += size
        if self._manager.tracing:
            self._created(packets)
        self.flush()
        if self._buffered > self._mark:
            self._needs_drain = True
        return True

    def _control(self, ptype: PacketType, data: str = "") -> bool:
        """Queue a PING, PONG or NOOP, counted as its type character and data."""
        return self._queue([Packet(ptype, data)], 1 + len(data))

    @property
    def buffered_bytes(self) -> int:
        """Bytes of messages queued for the client and not yet written."""
        return self._buffered

    @property
    def needs_drain(self) -> bool:
        """Whether the queue went over the high-water mark and was not written out since (Node's
        ``writableNeedDrain``): write no more until :attr:`on_drain` is called."""
        return self._needs_drain

    def close(self, reason: CloseReason = CloseReason.FORCED_CLOSE, description: str = "") -> None:
        """Close the session, telling the client with a CLOSE packet."""
        self._close(reason, description, notify=True)

    def response_headers(
        self, request: Handshake | Callable[[], Handshake], initial: bool = False
    ) -> list[tuple[str, str]]:
        """The headers the application adds to a response of this session: see
        :meth:`txrealtime.engineio.manager.SessionManager.response_headers`."""
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
            self._pong_queued = False
            stats = self._manager.stats
            stats.packets_sent += len(packets)
            if buffered > stats.buffer_high_water:
                stats.buffer_high_water = buffered
            if self.closed:
                self._manager.forget(self)
                return
            if self._manager.tracing:
                self._manager.trace(Drained(self.sid))
            if self._needs_drain:
                self._drained()

    def _drained(self) -> None:
        self._needs_drain = False
        on_drain = self.on_drain
        if on_drain is not None:
            try:
                on_drain()
            except Exception:
                log.failure("Session {sid}: drain callback failed", sid=self.sid)

    def receive(self, packet: Packet, via: Transport) -> None:
        """Handle a packet a transport decoded."""
        if self.closed:
            return
        self._manager.stats.packets_received += 1
        if via is self._probe:
            self._receive_probe(packet, via)
        elif via is self.transport:
            if self._manager.options.max_packets_per_second is not None and not self.within_rate():
                return
            if self._manager.tracing:
                self._manager.trace(PacketReceived(self.sid, packet))
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
        now = self._manager.now()
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _overflow(self) -> None:
        """The client stopped reading: drop what waits and cut the connection."""
        limit = self._manager.options.max_buffer
        stats = self._manager.stats
        stats.buffer_high_water = max(stats.buffer_high_water, self._buffered)
        self._buffer = []
        self._buffered = 0
        self._needs_drain = False
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
            receiver = self.receiver
            if receiver is not None:
                try:
                    receiver(packet.data)
                except Exception:
                    log.failure("Session {sid}: message receiver failed", sid=self.sid)
            if self._manager.message_subscribers:
                self._manager.publish(MessageReceived(self.sid, packet.data))
        elif ptype is PacketType.PONG and self.protocol != 3:
            self._cancel("_pong_timer")
            self._schedule_ping()
        elif ptype is PacketType.PING and self.protocol == 3:
            # A client that has not taken the PONG of its last ping is not reading: its pings
            # neither queue more PONGs nor keep the session alive (see docs/security.md).
            if not self._pong_queued:
                self._expect_ping()
                self._pong_queued = True
                self._control(PacketType.PONG)
        elif ptype is PacketType.CLOSE:
            self._close(CloseReason.TRANSPORT_CLOSE, "client sent close", notify=False)
        elif ptype is PacketType.NOOP:
            pass
        elif ptype in (PacketType.PING, PacketType.PONG):
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
            self._control(PacketType.NOOP)
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
        kept = [p for p in self._buffer if p.type is not PacketType.NOOP]
        self._buffered -= len(self._buffer) - len(kept)  # a NOOP counts one byte
        self._buffer = kept
        count(self._manager.stats.upgraded, (old.name, probe.name))
        self._manager.publish(SessionUpgraded(self.sid, old.name, probe.name))
        self.flush()

    def _end_probe(self, close: bool) -> None:
        probe, self._probe = self._probe, None
        self._cancel("_upgrade_timer")
        self._cancel("_release_timer")
        if close and probe is not None:
            probe.close()

    def start_probe(self, probe: Transport) -> None:
        """Try ``probe`` as the session's next transport (called by the manager once the upgrade is allowed)."""
        self._probe = probe
        self._upgrade_timer = self._manager.reactor.callLater(
            self._manager.options.upgrade_timeout, self._upgrade_timed_out
        )

    def _upgrade_timed_out(self) -> None:
        self._upgrade_timer = None
        log.info("Upgrade of {sid} timed out", sid=self.sid)
        self._end_probe(close=True)

    def _start_heartbeat(self) -> None:
        """Arm the heartbeat of a session just opened: the first ping (v4), or the wait for one (v3)."""
        if self.protocol == 3:
            self._expect_ping()
        else:
            self._schedule_ping()

    def _expect_ping(self) -> None:
        """v3: close the session unless the client pings within ``ping_interval + ping_timeout`` (as Node)."""
        self._cancel("_pong_timer")
        opts = self._manager.options
        self._pong_timer = self._manager.reactor.callLater(opts.ping_interval + opts.ping_timeout,
                                                           self._ping_timed_out)

    def _schedule_ping(self) -> None:
        self._cancel("_ping_timer")
        self._ping_timer = self._manager.reactor.callLater(self._manager.options.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        # Arm the timer first: a synchronous transport may deliver the PONG inside flush().
        self._pong_timer = self._manager.reactor.callLater(self._manager.options.ping_timeout, self._ping_timed_out)
        self._control(PacketType.PING)

    def _ping_timed_out(self) -> None:
        self._pong_timer = None
        self._close(CloseReason.PING_TIMEOUT, "no ping" if self.protocol == 3 else "no pong", notify=False)

    def _cancel(self, name: str) -> None:
        call: DelayedCall | None = getattr(self, name)
        if call is not None:
            if call.active():
                call.cancel()
            setattr(self, name, None)

    def start(self, packets: list[Packet]) -> None:
        """Queue the session's first ``packets`` (its OPEN, Node's ``initialPacket``) and arm its heartbeat:
        called by the manager once, when it opened the session."""
        self._buffer.extend(packets)
        if self._manager.tracing:
            self._created(packets)
        self._start_heartbeat()

    def _created(self, packets: list[Packet]) -> None:
        trace = self._manager.trace
        for packet in packets:
            trace(PacketCreated(self.sid, packet))

    def _close(self, reason: CloseReason, description: str, notify: bool, linger: bool = True) -> None:
        if self.closed:
            return
        self.state = SessionState.CLOSED
        count(self._manager.stats.closed, (self.transport.name, reason))
        self._manager.released(self)
        for timer in ("_ping_timer", "_pong_timer", "_upgrade_timer", "_release_timer"):
            self._cancel(timer)
        self._end_probe(close=True)
        self._buffer = [Packet(PacketType.CLOSE)] if notify else []
        self.flush()
        if not linger:
            self._buffer = []
        if self._buffer:
            # A polling client picks the CLOSE packet up on its next GET.
            self._manager.linger(self)
        else:
            self.transport.close()
            self._manager.forget(self)
        # Errors at info level (throttled: a flood of bad clients makes a few lines); the rest is routine.
        emit = noisy.info if reason in _ERRORS else log.debug
        emit("Session {sid} closed: {reason} ({description})", sid=self.sid, reason=reason.value,
             description=description)
        self._manager.publish(SessionClosed(self.sid, reason, description))

    def drop(self) -> None:
        """Give up on delivering the final CLOSE packet."""
        self._buffer = []
        self.transport.close()
