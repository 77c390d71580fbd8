"""What the Engine.IO client and its two transports (:mod:`txrealtime.client.polling`,
:mod:`txrealtime.client.websocket`) need of each other, so that neither transport imports the client."""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.web.iweb import IAgent

from ..engineio.packets import Packet

__all__: list[str] = []


class _Transport(Protocol):
    name: str

    @property
    def gone(self) -> Deferred[None]: ...

    @property
    def writable(self) -> bool: ...

    def send(self, packets: list[Packet]) -> None: ...

    def close(self) -> None: ...


class _Engine(Protocol):
    """The Engine.IO client, as its transports see it."""

    sid: str | None
    headers: dict[str, str]
    agent: IAgent
    tls_policy: Any
    ping_timeout: float

    reactor: Any
    def _url(self, transport: str, sid: str | None) -> str: ...

    def _headers(self) -> dict[bytes | str, bytes | str]: ...

    def _packet(self, transport: _Transport, packet: Packet) -> None: ...

    def _transport_open(self, transport: Any) -> None: ...

    def _transport_closed(self, transport: _Transport, reason: str, description: str) -> None: ...

    def _writable(self, transport: _Transport) -> None: ...
