"""The master of ``--workers N``: listens, starts and restarts the workers, routes connections, relays pub/sub.

:class:`MasterService` owns every ``--listen`` endpoint. Each worker is a
child process (``python -m txrealtime._worker ... --worker-channel 3:INDEX``) joined
to the master by a Unix socket pair (:class:`MasterChannel`). Each accepted
connection is a :class:`txrealtime.cluster.router.Router` until its first
request line is in; then :class:`MasterService` picks the worker
(:class:`txrealtime.cluster.routing.Balancer`) and passes it the socket. The
master also relays the workers' pub/sub (:class:`txrealtime.cluster.hub.Hub`)
unless they share Redis, and prefixes their log lines with ``worker N``.

A worker that exits while the master runs is started again after a delay
that doubles with each quick failure (up to :data:`MAX_RESTART_DELAY`). On
SIGTERM the master sends SIGTERM to every worker, which drains as a single
process does, and stops listening once all have exited; it exits with status
0 when every worker did.
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
from collections.abc import Callable
from typing import Any, cast

from twisted.application import service, strports
from twisted.internet import defer
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure

from .._compat import forget_exit_signal
from .._logging import gate
from .._reactor import cancel
from .hub import Hub
from .router import Router, RouterFactory, release
from .routing import Balancer
from .wire import (
    MAX_FRAME,
    Adopted,
    Connection,
    Frame,
    Hello,
    Load,
    Members,
    Message,
    NumSub,
    NumSubReply,
    PSubscribe,
    Publish,
    PUnsubscribe,
    Subscribe,
    Unsubscribe,
    WireError,
    decode,
    encode,
)

__all__ = ["MAX_RESTART_DELAY", "MasterChannel", "MasterService", "WorkerProcess"]

log = Logger(__name__, observer=gate)
relay = Logger(namespace="txrealtime.worker")
"""Relays the workers' own log lines, which each worker's level already filtered."""

MAX_RESTART_DELAY = 10.0
"""Longest wait before starting a worker again after it died."""
STABLE_AFTER = 10.0
"""A worker that ran this long before dying is restarted at once (its restart delay starts over)."""
CHANNEL_FD = 3
"""The worker's file descriptor for its end of the Unix socket pair."""


class MasterChannel(Int32StringReceiver):
    """The master's end of a worker's Unix socket."""

    transport: Any

    MAX_LENGTH = MAX_FRAME

    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker
        self.open = True

    def send(self, frame: Frame) -> None:
        """Send ``frame`` to the worker."""
        if self.open:
            self.sendString(encode(frame))  # type: ignore[no-untyped-call]

    def stringReceived(self, string: bytes) -> None:
        try:
            frame = decode(string)
        except WireError as e:
            log.error("Bad frame from worker {index} ({error})", index=self.worker.index, error=str(e))
            self.transport.loseConnection()
            return
        self.worker.master.received(self.worker, frame)

    def lengthLimitExceeded(self, length: int) -> None:
        log.error("Frame of {length} bytes from worker {index}", length=length, index=self.worker.index)
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.open = False
        self.worker.channel_lost(self)


class WorkerProcess(ProcessProtocol):
    """One worker slot: its current process, channel, load and the connections it has not adopted yet."""

    def __init__(self, master: MasterService, index: int) -> None:
        self.master = master
        self.index = index
        self.pid: int | None = None
        self.channel: MasterChannel | None = None
        self.ready = False
        self.load = 0
        self.pending: dict[int, Any] = {}
        self.failures = 0
        self.started_at = 0.0
        self.exited: defer.Deferred[int | None] | None = None
        self._lines: dict[int, bytes] = {1: b"", 2: b""}

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        buffered = self._lines.get(childFD, b"") + data
        *lines, rest = buffered.split(b"\n")
        self._lines[childFD] = rest[-65536:]
        for line in lines:
            self.master.worker_log(self, line.decode("utf-8", "replace"))

    def processEnded(self, reason: Failure) -> None:
        status = getattr(reason.value, "exitCode", None)
        signal = getattr(reason.value, "signal", None)
        self.master.ended(self, status, signal)

    def channel_lost(self, channel: MasterChannel) -> None:
        """The worker's channel closed: the connections it did not adopt are closed, its subscriptions dropped."""
        if self.channel is channel:
            self.channel = None
            self.ready = False
            self.master.hub.forget(self)
            for transport in self.pending.values():
                transport.loseConnection()
            self.pending.clear()
            self.master.announce_members()


class MasterService(service.MultiService):
    """Listens on every endpoint and shares the connections out between ``workers`` worker processes."""

    def __init__(
        self,
        workers: int,
        endpoints: list[str],
        worker_args: list[str],
        header_timeout: float | None = 10.0,
        grace: float = 5.0,
        daemon: bool = False,
        listening: Callable[[Any, Callable[[], object], str | None], None] | None = None,
        reactor: Any = None,
    ) -> None:
        from twisted.internet import reactor as default

        super().__init__()  # type: ignore[no-untyped-call]
        self.reactor: Any = reactor or default
        self.workers = [WorkerProcess(self, i) for i in range(workers)]
        self.worker_args = worker_args
        self.grace = grace
        self.daemon = daemon
        self.hub: Hub[WorkerProcess] = Hub()
        self.balancer = Balancer()
        self.stopping = False
        self._listening = listening
        self._waiting: list[tuple[Router, bytes, bytes]] = []
        self._ids = itertools.count(1)
        self._timers: dict[int, Any] = {}
        self._endpoints: dict[Any, str] = {}
        factory = RouterFactory(self, header_timeout, self.reactor)
        for description in endpoints:
            port = strports.service(description, cast(IProtocolFactory, factory))
            port.setServiceParent(self)
            self._endpoints[port] = description

    # -- lifecycle ---------------------------------------------------------------------

    def privilegedStartService(self) -> None:
        service.Service.privilegedStartService(self)
        for child in self:
            self._start(child, child.privilegedStartService)

    def startService(self) -> None:
        service.Service.startService(self)
        for child in self:
            self._start(child, child.startService)
        for worker in self.workers:
            self._spawn(worker)

    def _start(self, child: Any, start: Callable[[], object]) -> None:
        if self._listening is None:
            start()
        else:
            self._listening(child, start, self._endpoints.get(child))

    def _spawn(self, worker: WorkerProcess) -> None:
        self._timers.pop(worker.index, None)
        if self.stopping:
            return
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            factory = Factory.forProtocol(lambda: MasterChannel(worker))
            transport = self.reactor.adoptStreamConnection(mine.fileno(), socket.AF_UNIX, factory)
            args = [sys.executable, "-m", "txrealtime._worker", *self.worker_args,
                    "--worker-channel", f"{CHANNEL_FD}:{worker.index}"]
            process = self.reactor.spawnProcess(
                worker, sys.executable, args, env=dict(os.environ), path=os.getcwd(),
                childFDs={0: "w", 1: "r", 2: "r", CHANNEL_FD: theirs.fileno()},
            )
        finally:
            mine.close()
            theirs.close()
        worker.channel = transport.protocol if transport is not None else None
        worker.pid = process.pid
        worker.exited = defer.Deferred()
        worker.started_at = self.reactor.seconds()
        log.info("Worker {index} started (pid {pid})", index=worker.index, pid=worker.pid)

    def ended(self, worker: WorkerProcess, status: int | None, signal: int | None) -> None:
        """Worker ``worker``'s process ended with ``status`` (or by ``signal``)."""
        how = f"status {status}" if signal is None else f"signal {signal}"
        exited, worker.exited = worker.exited, None
        pid, worker.pid = worker.pid, None
        channel = worker.channel
        if channel is not None:  # forget it now, before a new process takes the slot
            worker.channel_lost(channel)
            channel.transport.loseConnection()
        if self.stopping:
            log.info("Worker {index} (pid {pid}) exited ({how})", index=worker.index, pid=pid, how=how)
        else:
            lived = self.reactor.seconds() - worker.started_at
            worker.failures = 0 if lived >= STABLE_AFTER else worker.failures + 1
            delay = 0.0 if worker.failures == 0 else min(MAX_RESTART_DELAY, 0.1 * 2 ** worker.failures)
            log.error("Worker {index} (pid {pid}) exited ({how}): restarting it in {delay:.1f}s",
                      index=worker.index, pid=pid, how=how, delay=delay)
            self._timers[worker.index] = self.reactor.callLater(delay, self._spawn, worker)
        if exited is not None:
            exited.callback(status if signal is None else None)

    def stopService(self) -> Any:
        """SIGTERM to every worker, wait for all to drain and exit, then stop listening."""
        self.stopping = True
        for timer in self._timers.values():
            cancel(timer)
        self._timers.clear()
        for router, _, _ in self._waiting:
            router.unavailable()
        self._waiting.clear()
        running = [w for w in self.workers if w.exited is not None]
        log.info("Shutting down: draining {count} workers", count=len(running))
        waits = [cast(defer.Deferred[Any], w.exited) for w in running]
        for worker in running:
            if worker.pid is not None:
                try:
                    os.kill(worker.pid, 15)
                except OSError:
                    pass
        killer = self.reactor.callLater(self.grace + 30.0, self._kill_all)
        d = defer.gatherResults(waits) if waits else defer.succeed([])

        def done(statuses: list[int | None]) -> Any:
            cancel(killer)
            clean = all(s == 0 for s in statuses)
            log.info("Shutdown {how}", how="clean" if clean else "not clean: a worker failed to drain")
            if clean:
                forget_exit_signal(self.reactor)  # a clean stop is a success, as for one process
            return super(MasterService, self).stopService()  # type: ignore[no-untyped-call]

        return d.addCallback(done)

    def _kill_all(self) -> None:
        for worker in self.workers:
            if worker.pid is not None:
                log.error("Worker {index} (pid {pid}) did not exit: killing it", index=worker.index, pid=worker.pid)
                try:
                    os.kill(worker.pid, 9)
                except OSError:
                    pass

    # -- routing ---------------------------------------------------------------------------

    def dispatch(self, router: Router, line: bytes, data: bytes) -> None:
        """Hand ``router``'s socket to the worker its request line calls for (see :class:`Dispatcher`)."""
        up = [w.index for w in self.workers if w.ready and w.channel is not None]
        choice = self.balancer.choose(line, up, [w.load for w in self.workers])
        if choice is None:
            if self.stopping or len(self._waiting) >= 4096:
                router.unavailable()
            else:
                self._waiting.append((router, line, data))
            return
        worker = self.workers[choice]
        channel = cast(MasterChannel, worker.channel)
        if b"sid=" not in line:
            worker.load += 1  # counted until the worker reports its load again
        connection_id = next(self._ids)
        transport = router.transport
        worker.pending[connection_id] = transport
        channel.transport.sendFileDescriptor(transport.fileno())
        channel.send(Connection(connection_id, data))

    def _flush_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for router, line, data in waiting:
            if router.transport.connected:
                self.dispatch(router, line, data)

    # -- frames from the workers ---------------------------------------------------------------

    def received(self, worker: WorkerProcess, frame: Frame) -> None:
        """Act on ``frame`` from ``worker``."""
        if isinstance(frame, Adopted):
            transport = worker.pending.pop(frame.id, None)
            if transport is not None:
                release(transport)
        elif isinstance(frame, Publish):
            for delivery in self.hub.publish(frame.channel, frame.message):
                channel = delivery.worker.channel
                if channel is not None:
                    channel.send(Message(delivery.pattern, delivery.channel, delivery.message))
        elif isinstance(frame, Subscribe):
            self.hub.subscribe(worker, frame.channel)
        elif isinstance(frame, Unsubscribe):
            self.hub.unsubscribe(worker, frame.channel)
        elif isinstance(frame, PSubscribe):
            self.hub.psubscribe(worker, frame.pattern)
        elif isinstance(frame, PUnsubscribe):
            self.hub.punsubscribe(worker, frame.pattern)
        elif isinstance(frame, NumSub):
            if worker.channel is not None:
                worker.channel.send(NumSubReply(frame.id, self.hub.numsub(frame.channel)))
        elif isinstance(frame, Load):
            worker.load = frame.sessions
        elif isinstance(frame, Hello):
            worker.ready = True
            log.info("Worker {index} ready (pid {pid})", index=worker.index, pid=frame.pid)
            self.announce_members()
            self._flush_waiting()
        else:
            log.error("Unexpected {kind} frame from worker {index}", kind=type(frame).__name__, index=worker.index)

    def announce_members(self) -> None:
        """Tell every connected worker which workers are connected (what their links' ``nodes()`` list)."""
        up = [w for w in self.workers if w.ready and w.channel is not None]
        members = Members(",".join(str(w.index) for w in up))
        for worker in up:
            cast(MasterChannel, worker.channel).send(members)

    def worker_log(self, worker: WorkerProcess, line: str) -> None:
        """Log a line a worker wrote, prefixed by its index (without the worker's own timestamp)."""
        stamp, sep, rest = line.partition(" ")
        if sep and stamp[:4].isdigit() and "T" in stamp:
            line = rest
        if line:
            relay.info("worker {index} | {line}", index=worker.index, line=line)
