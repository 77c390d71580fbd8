"""What the Engine.IO client and its two transports (:mod:`txrealtime.client.polling`,
:mod:`txrealtime.client.websocket`) need of each other, so that neither transport imports the client."""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.web.iweb import IAgent

from ..engineio.packets import Packet

__all__ = ["ClientTransport", "EngineLink"]


class ClientTransport(Protocol):
    """A transport of the Engine.IO client, as the client sees it."""

    name: str
    """``polling`` or ``websocket``."""

    @property
    def gone(self) -> Deferred[None]:
        """Fires once the transport's connections are really closed."""

    @property
    def writable(self) -> bool:
        """Whether :meth:`send` would write now (else packets wait in the client)."""

    def send(self, packets: list[Packet]) -> None:
        """Write ``packets`` to the server."""

    def close(self) -> None:
        """Close the transport (the client says goodbye first, if it should)."""


class EngineLink(Protocol):
    """The Engine.IO client (:class:`txrealtime.client.EngineIOClient`), as its transports see it: where they
    connect to, and what they report."""

    sid: str | None
    """The session's id, once the server gave it."""
    headers: dict[str, str]
    """More headers for every request (and the WebSocket handshake)."""
    agent: IAgent
    """What polling requests go through."""
    tls_policy: Any
    """Which servers to trust over ``wss://`` (a ``creatorForNetloc`` policy)."""
    ping_timeout: float
    """Seconds the server gives a ping: how long the last POST of a goodbye may take."""
    reactor: Any
    """The reactor the transports connect with."""

    def request_url(self, transport: str, sid: str | None) -> str:
        """The URL of a request of ``transport`` (``polling`` or ``websocket``), for session ``sid`` if given."""

    def request_headers(self) -> dict[bytes | str, bytes | str]:
        """The headers every request carries."""

    def transport_packet(self, transport: ClientTransport, packet: Packet) -> None:
        """``transport`` received ``packet`` from the server."""

    def transport_open(self, transport: ClientTransport) -> None:
        """``transport`` (a WebSocket) is open."""

    def transport_closed(self, transport: ClientTransport, reason: str, description: str) -> None:
        """``transport`` closed, for Engine.IO's ``reason`` (``transport error``, ``parse error`` ...)."""

    def transport_writable(self, transport: ClientTransport) -> None:
        """``transport`` can take more: what waits may be sent."""
