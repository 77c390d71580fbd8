"""Rooms of one namespace shared through a Redis stream, as Node's ``@socket.io/redis-streams-adapter``
(0.3.1) shares them; connection state recovery across nodes.

Each namespace gets a :class:`RedisStreamsAdapter` on the process's
:class:`txrealtime.adapters.redis.RedisStreamsLink`. The logic is
:class:`txrealtime.adapters.broker.BrokerAdapter`'s; the format is
:mod:`txrealtime.adapters.redis.streams_wire`'s: broadcasts without acks, ``socketsJoin``/``socketsLeave``
and ``disconnectSockets`` are stream entries, which every node reads; the rest is published on
``{prefix}#{nsp}#`` and the answers on ``{prefix}#{nsp}#{uid}#``. The server count is ``PUBSUB NUMSUB`` of
the namespace's channel.

With connection state recovery on, a broadcast's offset is its entry's id, and every node, the sender
included, delivers it as it reads the entry: each socket gets the stream's entries in the stream's order, so
its client's last offset (the last one it got) covers everything it got. (Node's adapter delivers a node's
own broadcasts as soon as ``XADD`` answers, ahead of others' entries it has not read yet; a client that
recovers from the last offset it got then gets some packets twice.) Only before the reader knows where it
starts are a node's own entries delivered at once. A socket that leaves keeps its session in Redis
(``SET ... PX``), so its client can come back on any node: :meth:`RedisStreamsAdapter.restore_session` takes
the session (``GETDEL``: once) and reads what the client missed from the stream (``XRANGE``), up to exactly
what this node has delivered (the entries up to the last one it read), so the packets that follow reach the
rejoined socket live, none twice and none lost. An offset no longer in the stream (trimmed) restores
nothing: the client gets a new session.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..._logging import gate
from ..._reactor import cancel
from ...protocol.packets import Packet, PacketType
from ...socketio.adapter import BroadcastOptions, KeptSession, RestoredSession
from ...socketio.errors import RecoveryUnavailable
from ...socketio.recovery import with_offset
from ..broker import BrokerAdapter, options, wire_options
from ..cluster_messages import Body, ClusterMessage, Heartbeat
from .requests import (
    BroadcastAckResponse,
    ClientCountResponse,
    FetchResponse,
    Request,
    Response,
    ServerSideEmitResponse,
)
from .streams_link import RedisStreamsLink
from .streams_wire import (
    decode_entry,
    decode_published,
    decode_session,
    encode_entry,
    encode_published,
    encode_session,
    entry_id,
    format_entry_id,
    is_ephemeral,
)
from .wire import Broadcast, WireError, WireOptions

__all__ = ["RedisStreamsAdapter", "streams_adapter"]

log = Logger(__name__, observer=gate)

_RESPONSES = (FetchResponse, ServerSideEmitResponse, ClientCountResponse, BroadcastAckResponse)
_PAGE = 1000
"""Entries one ``XRANGE`` of a restore takes."""
_MAX_PAGES = 100
"""Pages a restore reads at most (Node's ``RESTORE_SESSION_MAX_XRANGE_CALLS``); beyond, nothing is restored."""


def _included(rooms: frozenset[str], opts: WireOptions) -> bool:
    """Whether a broadcast to ``opts`` was meant for a socket in ``rooms`` (Node's ``shouldIncludePacket``)."""
    return (not opts.rooms or not rooms.isdisjoint(opts.rooms)) and rooms.isdisjoint(opts.except_)


class RedisStreamsAdapter(BrokerAdapter):
    """Rooms of one namespace, shared through a Redis stream and pub/sub; sessions kept in Redis."""

    def __init__(self, namespace: Any, link: RedisStreamsLink) -> None:
        """The adapter of ``namespace`` (``streams_adapter(link)`` makes them).

        :param namespace: The namespace whose rooms these are.
        :param link: The link to Redis shared by every namespace.
        """
        super().__init__(namespace, link, uid=secrets.token_hex(8))
        self.link: RedisStreamsLink = link
        """The link to Redis shared by every namespace."""
        self.channel = f"{link.key}#{namespace.name}#"
        """The namespace's channel (requests to every node)."""
        self.response_channel = self.answers_to(self.uid)
        """Where the answers to this adapter's requests come."""
        link.subscribe(self.channel, self._on_published)
        link.subscribe(self.response_channel, self._on_published)
        link.read_stream(namespace.name, self._on_entry)
        self._live: dict[str, str] = {}
        """Socket id -> pid of the connected sockets whose session is in Redis."""
        self._kept: set[str] = set()
        self._since: dict[str, str] = {}
        """Socket id -> the last entry delivered here before it connected (where its missed packets start when
        its client got none)."""
        self._delivered = (0, 0)
        """The id of the last entry of this adapter delivered here before the reader knew where it starts."""
        self._direct: set[tuple[int, int]] = set()
        """Ids of this adapter's entries delivered at once (before the reader started), which it skips."""
        self._dirty: set[str] = set()
        self._flushing: Any = None
        self._refresh: Any = None
        self._closed = False
        self._restored: dict[str, tuple[str, bytes, Any]] = {}
        """Socket id -> pid, kept value and timer of sessions handed out whose socket is not connected yet."""
        if self.recovery is not None:
            self._refresh = link.reactor.callLater(link.session_refresh, self._refresh_all)

    def answers_to(self, uid: str) -> str:
        """The channel of the answers to adapter ``uid``'s requests."""
        return f"{self.channel}{uid}#"

    def close(self) -> None:
        """Stop reading and unsubscribe, and give up on pending requests."""
        self._closed = True
        self.link.read_stream(self.namespace.name, None)
        self._refresh = cancel(self._refresh)
        self._flushing = cancel(self._flushing)
        for sid in list(self._restored):  # handed out, never connected (shutting down): back to Redis at once
            self._check_restored(sid)
        self.link.unsubscribe(self.channel, self._on_published)
        self.link.unsubscribe(self.response_channel, self._on_published)
        super().close()

    # -- sending ----------------------------------------------------------------------------------

    def _keeps(self, packet: Packet, opts: BroadcastOptions) -> bool:
        """Whether ``packet`` gets an offset (Node's ``addOffsetIfNecessary``)."""
        return (
            self.recovery is not None and packet.type is PacketType.EVENT and packet.id is None
            and not opts.flags.volatile
        )

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> bool:
        """Add the broadcast to the stream and deliver it here: at once, or (when it gets an offset) once
        Redis gave its entry an id. ``False`` if it could not be added (counted; local sockets get it
        anyway, without an offset)."""
        if opts.flags.local:
            self.deliver(packet, self.encoder.encode(packet), opts)  # no entry, so no offset (as in Node)
            return True
        message = Broadcast(uid=self.uid, packet=self._wire_packet(packet), opts=wire_options(opts))
        try:
            fields = encode_entry(message, self.uid, self.namespace.name)
        except (TypeError, ValueError) as e:
            self._refuse("a broadcast", e)
            raise type(e)(f"this broadcast cannot be sent to the other nodes, so it was sent to no one: {e}") from e
        added = self.link.add(fields)
        sent = not added.called or not isinstance(added.result, Failure)
        if not self._keeps(packet, opts):
            added.addErrback(lambda _: None)
            self.deliver(packet, self.encoder.encode(packet), opts)
            return sent

        def added_as(offset: str) -> None:
            parsed = entry_id(offset)
            if parsed is not None and self.link.last_read is not None:
                return  # the reader delivers it here, in the stream's order (it may have already)
            if parsed is not None:  # not reading yet: where the reader starts is not known, so deliver it now
                self._delivered = max(self._delivered, parsed)
                self._direct.add(parsed)
            deliver(offset if parsed is not None else None)

        def deliver(offset: str | None) -> None:
            local = packet if offset is None else with_offset(packet, offset)
            self.deliver(local, self.encoder.encode(local), opts)

        added.addCallbacks(added_as, lambda _: deliver(None))
        return sent

    def _publish_request(self, request: Request) -> bool:
        body: Body = request  # type: ignore[assignment]
        if is_ephemeral(body):
            return self.link.publish(self.channel, encode_published(body, self.uid, self.namespace.name))
        added = self.link.add(encode_entry(body, self.uid, self.namespace.name))
        sent = not added.called or not isinstance(added.result, Failure)
        added.addErrback(lambda _: None)
        return sent

    def _publish_response(self, response: Response, request: Request) -> None:
        if request.uid is not None and isinstance(response, _RESPONSES):
            data = encode_published(response, self.uid, self.namespace.name)
            self.link.publish(self.answers_to(request.uid), data)

    def _servers(self) -> Deferred[int]:
        return self.link.numsub(self.channel)

    def _selection(self, opts: BroadcastOptions) -> WireOptions:
        return wire_options(opts)  # Node writes flags in every selection ({} when none)

    def all_rooms(self) -> Deferred[set[str]]:
        """This node's rooms: the cluster messages have no request for the others' (nor has Node's adapter)."""
        return succeed(set(self.rooms))

    # -- receiving --------------------------------------------------------------------------------

    def _on_published(self, channel: str, data: bytes) -> None:
        try:
            message = decode_published(data)
        except WireError as e:
            self._malformed("a malformed message", e)
            return
        if message is not None:
            self._dispatch(message)

    def _on_entry(self, raw_id: str, fields: dict[bytes, bytes]) -> None:
        try:
            message = decode_entry(fields)
        except WireError as e:
            self._malformed("a malformed stream entry", e)
            return
        if message is not None:
            self._dispatch(message, raw_id)
        if self._direct:  # delivered at once before the reader started: skipped, or behind where it started
            read = entry_id(raw_id)
            self._direct = {each for each in self._direct if read is None or each > read}

    def _dispatch(self, message: ClusterMessage, offset: str | None = None) -> None:
        if message.nsp != self.namespace.name:
            return
        body = message.body
        if message.uid == self.uid:
            if offset is not None and isinstance(body, Broadcast):
                self._deliver_own(body, offset)
            return
        if isinstance(body, Broadcast):
            self._deliver_entry(body, offset)
        elif isinstance(body, _RESPONSES):
            self._received_response(body)
        elif not isinstance(body, Heartbeat):
            self._received_request(body)

    def _deliver_own(self, broadcast: Broadcast, offset: str) -> None:
        """This node's own broadcast read back from the stream: those that get an offset are delivered here, so
        that each socket gets every entry in the stream's order and its client's last offset covers all it got."""
        parsed = entry_id(offset)
        if parsed is None or parsed in self._direct:
            return
        opts = options(broadcast.opts)
        if self._keeps(Packet(PacketType.EVENT, self.namespace.name, broadcast.packet.data), opts):
            self._deliver_entry(broadcast, offset)

    def _deliver_entry(self, broadcast: Broadcast, offset: str | None) -> None:
        packet = broadcast.packet
        if packet.type not in (PacketType.EVENT, PacketType.BINARY_EVENT) or not packet.data:
            return
        opts = options(broadcast.opts)
        local = Packet(PacketType.EVENT, self.namespace.name, packet.data)
        if offset is not None and self._keeps(local, opts):
            local = with_offset(local, offset)
        try:
            self.deliver(local, self.encoder.encode(local), opts)
        except (TypeError, ValueError, RecursionError) as e:
            self._malformed("a broadcast", e)

    # -- connection state recovery ----------------------------------------------------------------

    def _session_key(self, pid: str) -> str:
        return self.link.session_key_prefix + pid

    def _keep(self, session: KeptSession, replace_only: bool, live: bool = False) -> None:
        """``SET`` the session for ``max_disconnection_duration`` (and, while its socket is connected, one
        refresh interval more); with ``replace_only``, only if it is still there (``XX``): a session another
        node took (``GETDEL``) is never written back."""
        assert self.recovery is not None
        try:
            value = encode_session(session, self._since.get(session.sid))
        except (TypeError, ValueError) as e:
            log.warn("Session of socket {sid} not kept: its data cannot be written ({error})", sid=session.sid,
                     error=str(e)[:200])
            return
        seconds = self.recovery.options.max_disconnection_duration
        if live:
            seconds += self.link.session_refresh
        args: list[str | int] = ["SET", self._session_key(session.pid), value, "PX", int(seconds * 1000)]
        if replace_only:
            args.append("XX")
        self.link.command(*args).addErrback(
            lambda f: log.warn("Session of socket {sid} not kept: {error}", sid=session.sid, error=f.getErrorMessage())
        )

    def persist_session(self, session: KeptSession) -> None:
        """Keep ``session`` in Redis for ``max_disconnection_duration`` (``SET ... PX``), as Node's adapter; only
        in place of the copy kept while its socket was connected, if that is still there."""
        restored = self._restored.pop(session.sid, None)
        if restored is not None:
            cancel(restored[2])
        if self.recovery is not None:
            self._kept.add(session.sid)
            self._keep(session, replace_only=session.sid in self._live)

    # Sessions are also kept while their sockets are connected (written on joining and leaving rooms, and
    # every ``session_refresh`` seconds, for ``data``), so that a node killed without a word leaves them in
    # Redis for its clients to recover elsewhere; a socket that leaves for good takes its copy away.

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        read = self.link.last_read  # None: where this node reads from is not known yet, so neither is "since"
        if self.recovery is not None and read is not None and sid not in self.sids and sid not in self._since:
            self._since[sid] = format_entry_id(max(self._delivered, read))
        super().add_all(sid, rooms)
        self._changed(sid)

    def delete(self, sid: str, room: str) -> None:
        super().delete(sid, room)
        self._changed(sid)

    def delete_all(self, sid: str) -> None:
        super().delete_all(sid)
        self._dirty.discard(sid)
        self._since.pop(sid, None)
        pid = self._live.pop(sid, None)
        if sid in self._kept:
            self._kept.discard(sid)
        elif pid is not None:
            self.link.command("DEL", self._session_key(pid)).addErrback(lambda _: None)

    def release(self, sid: str) -> list[Any] | None:
        """Stop holding for ``sid`` (its socket is connecting): its session is written to Redis in the next turn,
        so that a recovered socket's client can recover again even if this node is killed right after."""
        held = super().release(sid)
        self._changed(sid)
        return held

    def _changed(self, sid: str) -> None:
        if self.recovery is None:
            return
        self._dirty.add(sid)
        if self._flushing is None:
            self._flushing = self.link.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        self._flushing = None
        dirty, self._dirty = self._dirty, set()
        for sid in dirty:
            socket = self.namespace.sockets.get(sid)
            pid = getattr(socket, "pid", None)
            if socket is None or pid is None:
                continue  # a socket still joining is written too: its previous node may be closing it right now
            restored = self._restored.pop(sid, None)
            if restored is not None:
                cancel(restored[2])
            session = KeptSession(sid, pid, frozenset(socket.rooms), socket.data)
            self._keep(session, replace_only=sid in self._live, live=True)
            self._live[sid] = pid

    def _refresh_all(self) -> None:
        self._refresh = self.link.reactor.callLater(self.link.session_refresh, self._refresh_all)
        if self.link.connected:
            for sid in self._live:
                self._changed(sid)

    def restore_session(self, pid: str, offset: str | None) -> Deferred[RestoredSession | None]:
        """The session kept under ``pid`` in Redis, with the broadcasts it missed after ``offset`` from the
        stream (``None``: after the last entry delivered on its node before it connected, which txrealtime
        keeps with the session); ``None`` if the offset is not in the stream any more (the session stays
        kept) or the session is not there."""
        if self.recovery is None or (offset is not None and entry_id(offset) is None):
            return succeed(None)
        restoring = Deferred.fromCoroutine(self._restore(pid, offset)).addErrback(self._restore_failed)
        return self.link.track(restoring)

    def _restore_failed(self, failure: Failure) -> Failure | None:
        if failure.check(RecoveryUnavailable):
            return failure
        if self._closed:  # Redis went away as this server stops: the session stays kept, for another node
            return Failure(RecoveryUnavailable(f"this server is shutting down ({failure.getErrorMessage()})"))
        log.warn("Restoring a session failed: {error}", error=failure.getErrorMessage())
        return None

    async def _restore(self, pid: str, offset: str | None) -> RestoredSession | None:
        # Only once this node reads the stream does it know what it has delivered (a node just started).
        starting = self.link.last_read is None
        try:
            await self.link.when_reading(self.link.requests_timeout)
        except TimeoutError as e:
            if starting:  # not yet: the client tries again (elsewhere), and its session stays kept
                raise RecoveryUnavailable(str(e)) from None
            raise
        if offset is not None and not await self.link.entries(offset, offset, 1):
            log.debug("Session not restored: offset {offset} is not in the stream", offset=offset)
            return None  # trimmed away: what the client missed cannot be known (the session stays kept)
        key = self.link.session_key_prefix + pid
        # The stream is read while the session stays in Redis (GET), and taken (GETDEL) only at the end: a node
        # that stops or loses Redis halfway leaves it there for the client's next try.
        peeked = await self.link.command("GET", key)
        if peeked is None:
            log.debug("Session not restored: not in Redis (offset {offset})", offset=offset)
            return None
        try:
            _, since = decode_session(peeked)
        except WireError as e:
            self._malformed("a kept session", e)
            return None
        if offset is None:  # the client got nothing since it connected: from what was delivered before
            offset = since
            if offset is None or (offset != "0-0" and not await self.link.entries(offset, offset, 1)):
                log.debug("Session not restored: no offset, since {since}", since=offset)
                return None
        start = entry_id(offset)
        assert start is not None
        found: list[tuple[tuple[int, int], str, Broadcast, bool]] = []
        covered = await self._read_after(start, found, pid)
        if covered is None:
            return None
        if self._closed:
            raise RecoveryUnavailable("this server is shutting down")  # the client comes back on another node
        raw = await self.link.command("GETDEL", key)
        if raw is None:
            log.debug("Session not restored: taken meanwhile (offset {offset})", offset=offset)
            return None
        assert self.recovery is not None
        ms = int(self.recovery.options.max_disconnection_duration * 1000)
        try:
            session, since_now = decode_session(raw)
            if since_now != since and offset == since:
                raise WireError("the session changed while it was read")
            # What this node read meanwhile was delivered without this socket: it is among what it missed.
            if covered < (self.link.last_read or (0, 0)) and await self._read_after(covered, found, pid) is None:
                raise WireError("too many entries to read")
            if self._closed:  # this server is shutting down: its client gets it back on another node
                raise RecoveryUnavailable("this server is shutting down")
        except BaseException:
            self.link.command("SET", key, raw, "PX", ms, "NX").addErrback(lambda _: None)  # back, for a next try
            raise
        read = self.link.last_read or (0, 0)
        missed = []
        for parsed, raw_id, broadcast, mine in found:
            live = parsed > read and not (mine and parsed in self._direct)  # still to come from the reader
            if live or not _included(session.rooms, broadcast.opts):
                continue
            opts = options(broadcast.opts)
            packet = Packet(PacketType.EVENT, self.namespace.name, broadcast.packet.data)
            if not self._keeps(packet, opts):
                continue
            missed.append(self.encoder.encode(with_offset(packet, raw_id)))
        timer = self.link.reactor.callLater(self.link.requests_timeout, self._check_restored, session.sid)
        self._restored[session.sid] = (pid, raw, timer)
        return RestoredSession(session=session, missed=missed)

    async def _read_after(
        self, start: tuple[int, int], found: list[tuple[tuple[int, int], str, Broadcast, bool]], pid: str
    ) -> tuple[int, int] | None:
        """Add this namespace's broadcasts after ``start`` to ``found``, up to at least what this node has read;
        the last id read, or ``None`` if there were more than a restore reads."""
        covered = start
        for _ in range(_MAX_PAGES):
            after = format_entry_id((covered[0], covered[1] + 1))
            page = await self.link.entries(after, "+", _PAGE)
            for raw_id, fields in page:
                parsed = entry_id(raw_id)
                if parsed is None:
                    continue
                covered = max(covered, parsed)
                if fields.get(b"type") != b"3":
                    continue
                try:
                    message = decode_entry(fields)
                except WireError:
                    continue
                if message is not None and message.nsp == self.namespace.name and isinstance(message.body, Broadcast):
                    found.append((parsed, raw_id, message.body, message.uid == self.uid))
            if len(page) < _PAGE and (self.link.last_read or (0, 0)) <= covered:
                return covered
        log.warn("Session {pid} not restored: more than {n} entries to read", pid=pid, n=_PAGE * _MAX_PAGES)
        return None

    def _check_restored(self, sid: str) -> None:
        """A session handed out whose socket never got connected (its connection closed meanwhile) goes back to
        Redis, for its client to try again."""
        pid, raw, timer = self._restored.pop(sid)
        cancel(timer)
        socket = self.namespace.sockets.get(sid)
        if (socket is not None and getattr(socket, "connected", False)) or sid in self._live or sid in self._kept:
            return
        assert self.recovery is not None
        ms = int(self.recovery.options.max_disconnection_duration * 1000)
        log.info("Session of socket {sid} put back: its socket did not connect", sid=sid)
        self.link.command("SET", self.link.session_key_prefix + pid, raw, "PX", ms, "NX").addErrback(lambda _: None)


def streams_adapter(link: RedisStreamsLink) -> Callable[[Any], RedisStreamsAdapter]:
    """An adapter factory for :class:`txrealtime.socketio.Server`: ``Server(adapter=streams_adapter(link))``.

    Starts the link if it is not started yet.
    """
    link.start()
    return lambda namespace: RedisStreamsAdapter(namespace, link)
