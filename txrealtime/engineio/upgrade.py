"""Answering a WebSocket's opening handshake: attaching the probe of an upgrade to its session, and the
headers of the ``101`` in the form Autobahn's ``onConnect`` takes.

Shared by the WebSocket transport (:mod:`txrealtime.engineio.websocket`) and the WebSockets another node
relays to this one (:mod:`txrealtime.forwarding.forwarder`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .events import Handshake
from .manager import Session, SessionError, SessionManager, Transport

__all__ = ["handshake_answer", "probe_upgrade"]


def probe_upgrade(
    manager: SessionManager, sid: str, transport: Transport, describe: Callable[[], Handshake]
) -> tuple[Session | None, list[tuple[str, str]]]:
    """Attach ``transport`` (a WebSocket asking to upgrade session ``sid``) to its session as the probe.

    Returns the session and the headers to answer with; no session if the
    connection is to be accepted and closed at once (as Node's engine.io
    does with a second WebSocket for an upgraded or upgrading session: the
    first one carries on). Raises :class:`SessionError`, reported to the
    manager's subscribers, if the upgrade is refused.
    """
    session = manager.get(sid)
    if session is not None and (session.upgrading or session.transport.name == transport.name):
        return None, session.response_headers(describe)
    try:
        session = manager.probe(sid, transport)
    except SessionError as e:
        manager.refused(e, describe(), "GET", upgrade=True)
        raise
    return session, session.response_headers(describe)


def handshake_answer(headers: list[tuple[str, str]]) -> Any:
    """What Autobahn's ``onConnect`` returns to accept with no subprotocol and these extra headers."""
    if not headers:
        return None
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name, []).append(value)
    return None, grouped
