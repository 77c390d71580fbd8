"""The Engine.IO client's long-polling transport, on treq: one GET in flight, POSTs one at a time.

Used by :mod:`txrealtime.client.engineio`.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import treq
from twisted.internet.defer import CancelledError, Deferred, DeferredList, ensureDeferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import gate
from ..engineio.packets import Packet, decode_payload, encode_payload, utf8
from .events import EngineError
from .transport import EngineLink

__all__: list[str] = []

log = Logger(__name__, observer=gate)
_T = TypeVar("_T")


class _PollingTransport:
    """The long-polling transport: one GET in flight, POSTs one at a time."""

    name = "polling"

    def __init__(self, engine: EngineLink) -> None:
        self.engine = engine
        self.closed = False
        self.paused = False
        self._get: Deferred[Any] | None = None
        self._post: Deferred[Any] | None = None
        self._queue: list[Packet] = []
        self._drained: list[Deferred[None]] = []
        self._goodbye: Deferred[None] | None = None

    def handshake(self) -> Deferred[list[Packet]]:
        """The first GET: fires with the OPEN packet and anything sent with it. :meth:`close` cancels it
        (and drops its connection), as it does any GET in flight."""
        self._get = ensureDeferred(self._request_packets())
        return self._get.addBoth(self._handshook)

    def _handshook(self, result: _T) -> _T:
        self._get = None
        return result

    def start(self) -> None:
        self._poll()

    @property
    def writable(self) -> bool:
        """No POST in flight: messages wait in the engine meanwhile, to go in the next one."""
        return self._post is None and not self.closed

    def _poll(self) -> None:
        if self.closed or self.paused or self._get is not None:
            return
        self._get = ensureDeferred(self._request_packets())
        self._get.addCallbacks(self._got, self._get_failed)

    async def _request_packets(self) -> list[Packet]:
        engine = self.engine
        response = await treq.get(
            engine.request_url("polling", engine.sid), headers=engine.request_headers(), agent=engine.agent
        )
        body = await response.text("utf-8")
        if response.code != 200:
            raise EngineError(f"polling GET answered {response.code}: {body[:200]}")
        return decode_payload(body)

    def _got(self, packets: list[Packet]) -> None:
        self._get = None
        for packet in packets:
            if self.closed:
                return
            self.engine.transport_packet(self, packet)
        if self.paused:
            self._check_drained()
        else:
            self._poll()

    def _get_failed(self, failure: Failure) -> None:
        self._get = None
        if not self.closed and not failure.check(CancelledError):
            self.closed = True
            self.engine.transport_closed(self, "transport error", failure.getErrorMessage())

    def send(self, packets: list[Packet]) -> None:
        self._queue.extend(packets)
        self._flush()

    def _flush(self) -> None:
        if self._post is not None or not self._queue or self.closed:
            return
        packets, self._queue = self._queue, []
        self._post = ensureDeferred(self._send(packets))
        self._post.addCallbacks(self._posted, self._post_failed)

    async def _send(self, packets: list[Packet], timeout: float | None = None) -> None:
        response = await treq.post(
            self.engine.request_url("polling", self.engine.sid),
            data=utf8(encode_payload(packets)),
            headers={**self.engine.request_headers(), "Content-Type": "text/plain;charset=UTF-8"},
            agent=self.engine.agent,
            timeout=timeout,
        )
        body = await response.text("utf-8")
        if response.code != 200:
            raise EngineError(f"polling POST answered {response.code}: {body[:200]}")

    def _posted(self, _: object) -> None:
        self._post = None
        if self._queue:
            self._flush()
        else:
            self.engine.transport_writable(self)
        if self._post is None:
            self._check_drained()

    def _post_failed(self, failure: Failure) -> None:
        self._post = None
        if not self.closed and not failure.check(CancelledError):
            self.closed = True
            self.engine.transport_closed(self, "transport error", failure.getErrorMessage())

    def pause(self) -> Deferred[None]:
        """Stop polling; fire once no GET or POST is in flight (for the upgrade)."""
        self.paused = True
        d: Deferred[None] = Deferred()
        self._drained.append(d)
        self._check_drained()
        return d

    def _check_drained(self) -> None:
        if self._get is None and self._post is None and not self._queue:
            waiting, self._drained = self._drained, []
            for d in waiting:
                d.callback(None)

    def close(self) -> None:
        if self._goodbye is not None:
            return  # the last POST is on its way
        self.closed = True
        for d in (self._get, self._post):
            if d is not None:
                d.cancel()

    def say_goodbye(self, packets: list[Packet]) -> None:
        """Close after one last POST with what is queued and ``packets`` (the CLOSE), as Node's client does."""
        last, self._queue = self._queue + packets, []
        self.closed = True
        if self._get is not None:
            self._get.cancel()
        self._goodbye = ensureDeferred(self._last_post(self._post, last))

    async def _last_post(self, previous: Deferred[Any] | None, packets: list[Packet]) -> None:
        try:
            if previous is not None:
                await previous
            await self._send(packets, timeout=self.engine.ping_timeout)
        except Exception as e:  # the server is gone or slow: nothing more to tell it
            log.info("Engine.IO client {sid}: last POST failed: {error}", sid=self.engine.sid, error=str(e))

    @property
    def gone(self) -> Deferred[None]:
        """Fires once the last POST is done and aborted requests had a reactor turn to drop their connections."""
        turn = deferLater(cast(Any, self.engine.reactor), 0, lambda: None)
        if self._goodbye is None:
            return turn
        return DeferredList([self._goodbye, turn], consumeErrors=True).addCallback(lambda _: None)
