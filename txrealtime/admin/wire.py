"""The protocol of ``@socket.io/admin-ui`` 0.5: pure builders of what the UI is sent, and a strict reader of
its commands. No I/O.

The UI is an ordinary Socket.IO client of the admin namespace (``/admin`` by
default). Every message is a Socket.IO EVENT; dates are JavaScript's
``Date.toISOString()`` strings, as ``JSON.stringify`` writes a ``Date``::

    ; server -> UI
    session             = ["session", session-id]                   ; after a login with credentials
    config              = ["config", {"supportedFeatures": [feature, ...]}]
    server-stats        = ["server_stats", {"serverId", "hostname", "pid", "uptime", "clientsCount",
                                            "pollingClientsCount", "aggregatedEvents": [aggregate, ...],
                                            "namespaces": [{"name", "socketsCount"}, ...]}]
    aggregate           = {"timestamp": ms, "type": type [, "subType": string], "count": n}
    type                = "rawConnection" / "rawDisconnection" / "packetsIn" / "packetsOut"
                          / "bytesIn" / "bytesOut"          ; rawDisconnection's subType: the close reason
    all-sockets         = ["all_sockets", [socket, ...]]                         ; development mode
    socket-connected    = ["socket_connected", socket, date]
    socket-updated      = ["socket_updated", {"id", "nsp", "transport"}]        ; after an upgrade
    socket-disconnected = ["socket_disconnected", nsp, id, reason, date]
    room-joined         = ["room_joined", nsp, room, id, date]
    room-left           = ["room_left", nsp, room, id, date]
    event-received      = ["event_received", nsp, id, [event, arg, ...], date]
    event-sent          = ["event_sent", nsp, id, [event, arg, ...], date]
    socket              = {"id", "clientId", "transport", "nsp", "data", "rooms": [room, ...],
                           "handshake": {"address", "headers", "query", "issued", "secure", "time",
                                         "url", "xdomain"}}
    feature             = "EMIT" / "JOIN" / "LEAVE" / "DISCONNECT" / "MJOIN" / "MLEAVE" / "MDISCONNECT"
                          / "AGGREGATED_EVENTS" / "ALL_EVENTS"

    ; UI -> server (refused, i.e. ignored, in read-only mode)
    emit                = ["emit", nsp, filter, event, arg, ...]    ; filter: a room, or null for everyone
    join                = ["join", nsp, room [, filter]]
    leave               = ["leave", nsp, room [, filter]]
    disconnect          = ["_disconnect", nsp, close [, filter]]    ; close: boolean

The login is the CONNECT packet's ``auth``: ``{"username", "password"}``, or
``{"sessionId"}`` from an earlier ``session`` event.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..protocol.handlers import RESERVED_EVENTS

__all__ = [
    "COMMANDS",
    "Command",
    "Disconnect",
    "Emit",
    "EventBuffer",
    "Feature",
    "Join",
    "Leave",
    "iso_date",
    "parse_command",
    "serialize_data",
    "serialize_handshake",
    "serialize_socket",
    "supported_features",
]


class Feature(StrEnum):
    """What the UI may offer, as the ``config`` event lists it."""

    EMIT = "EMIT"
    """Emit to sockets."""
    JOIN = "JOIN"
    """Make a socket join a room."""
    LEAVE = "LEAVE"
    """Make a socket leave a room."""
    DISCONNECT = "DISCONNECT"
    """Disconnect a socket."""
    MJOIN = "MJOIN"
    """Make several sockets join a room."""
    MLEAVE = "MLEAVE"
    """Make several sockets leave a room."""
    MDISCONNECT = "MDISCONNECT"
    """Disconnect several sockets."""
    AGGREGATED_EVENTS = "AGGREGATED_EVENTS"
    """Event counts per period (the dashboard's charts)."""
    ALL_EVENTS = "ALL_EVENTS"
    """Every event, one by one (development mode)."""


_COMMAND_FEATURES = (Feature.EMIT, Feature.JOIN, Feature.LEAVE, Feature.DISCONNECT, Feature.MJOIN, Feature.MLEAVE,
                     Feature.MDISCONNECT)


def supported_features(read_only: bool, development: bool) -> list[str]:
    """The ``supportedFeatures`` of ``config``, in Node's order."""
    features = [] if read_only else [f.value for f in _COMMAND_FEATURES]
    features.append(Feature.AGGREGATED_EVENTS.value)
    if development:
        features.append(Feature.ALL_EVENTS.value)
    return features


def iso_date(seconds: float) -> str:
    """``seconds`` since the epoch as JavaScript's ``Date.toISOString()`` writes it: ``2026-01-02T03:04:05.678Z``."""
    moment = datetime.datetime.fromtimestamp(int(seconds * 1000) / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- sockets ---------------------------------------------------------------------------------------------------------

ADMIN_KEY = "_admin"
"""The key of ``socket.data`` where, as in Node, the client id and transport travel to other nodes."""


def serialize_data(data: Any) -> Any:
    """``socket.data`` without its ``_admin`` entry (Node's ``serializeData``)."""
    if isinstance(data, Mapping):
        return {k: v for k, v in data.items() if k != ADMIN_KEY}
    return data if data is not None else {}


def serialize_handshake(handshake: Any) -> dict[str, Any]:
    """The handshake as the UI shows it, from a local socket's ``SocketHandshake`` or another node's mapping.

    The address is ``cf-connecting-ip`` or ``x-forwarded-for`` when present, as
    in Node; ``auth`` is never included.
    """
    get = handshake.get if isinstance(handshake, Mapping) else lambda key, default=None: getattr(
        handshake, key, default
    )
    headers = dict(get("headers") or {})
    return {
        "address": headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") or get("address"),
        "headers": headers,
        "query": dict(get("query") or {}),
        "issued": get("issued"),
        "secure": get("secure"),
        "time": get("time"),
        "url": get("url"),
        "xdomain": get("xdomain"),
    }


def serialize_socket(
    sid: str,
    nsp: str,
    handshake: Any,
    rooms: Iterable[str],
    data: Any,
    client_id: str | None = None,
    transport: str | None = None,
) -> dict[str, Any]:
    """One socket as ``all_sockets`` and ``socket_connected`` carry it.

    Without ``client_id``/``transport`` (a socket of another node), they come
    from ``data["_admin"]`` as that node's instrumentation left them.
    """
    admin = data.get(ADMIN_KEY) if isinstance(data, Mapping) else None
    if isinstance(admin, Mapping):
        client_id = client_id or admin.get("clientId")
        transport = transport or admin.get("transport")
    return {
        "id": sid,
        "clientId": client_id,
        "transport": transport,
        "nsp": nsp,
        "data": serialize_data(data),
        "handshake": serialize_handshake(handshake),
        "rooms": sorted(rooms),
    }


# -- aggregated events -------------------------------------------------------------------------------------------------


class EventBuffer:
    """Counts per second and type, emptied by each ``server_stats`` (Node's ``EventBuffer``)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, str, str | None], int] = {}

    def push(self, now: float, type: str, sub_type: str | None = None, count: int = 1) -> None:
        """Count ``count`` more ``type`` events (of ``sub_type``) in the second of ``now``."""
        key = (int(now) * 1000, type, sub_type)
        self._counts[key] = self._counts.get(key, 0) + count

    def __len__(self) -> int:
        return len(self._counts)

    def values_and_clear(self) -> list[dict[str, Any]]:
        """The ``aggregatedEvents`` of ``server_stats``; the buffer starts over."""
        counts, self._counts = self._counts, {}
        values = []
        for (timestamp, type, sub_type), count in counts.items():
            value: dict[str, Any] = {"timestamp": timestamp, "type": type, "count": count}
            if sub_type is not None:
                value["subType"] = sub_type
            values.append(value)
        return values


# -- commands ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Emit:
    """``emit``: send ``event`` with ``args`` to namespace ``nsp`` (to room ``filter`` only, if given)."""

    nsp: str
    filter: str | None
    event: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Join:
    """``join``: make the sockets of ``nsp`` (in room ``filter``, if given) join ``room``."""

    nsp: str
    room: str
    filter: str | None


@dataclass(frozen=True, slots=True)
class Leave:
    """``leave``: make the sockets of ``nsp`` (in room ``filter``, if given) leave ``room``."""

    nsp: str
    room: str
    filter: str | None


@dataclass(frozen=True, slots=True)
class Disconnect:
    """``_disconnect``: disconnect the sockets of ``nsp`` (in room ``filter``; a socket's id names one socket)."""

    nsp: str
    close: bool
    filter: str | None


Command = Emit | Join | Leave | Disconnect
"""A command of the UI, read by :func:`parse_command`."""

COMMANDS = ("emit", "join", "leave", "_disconnect")
"""The events the UI sends commands with."""


def _namespace(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith("/") else None


def _filter(args: list[Any], index: int) -> tuple[bool, str | None]:
    """Whether the optional filter at ``index`` is valid, and the room it names (``None``: every socket).

    As in Node, a missing, ``null`` or empty filter means every socket.
    """
    if len(args) <= index or args[index] is None or args[index] == "":
        return True, None
    value = args[index]
    return isinstance(value, str), value if isinstance(value, str) else None


def parse_command(event: str, args: list[Any]) -> Command | None:
    """The command the UI sent as ``event`` with ``args``; ``None`` if it is not a well-formed one."""
    nsp = _namespace(args[0]) if args else None
    if nsp is None:
        return None
    if event == "emit":
        ok, room = _filter(args, 1)
        if not ok or len(args) < 3 or not isinstance(args[2], str) or args[2] in RESERVED_EVENTS:
            return None
        return Emit(nsp, room, args[2], tuple(args[3:]))
    if event in ("join", "leave"):
        ok, room = _filter(args, 2)
        if not ok or len(args) < 2 or not isinstance(args[1], str) or len(args) > 3:
            return None
        return (Join if event == "join" else Leave)(nsp, args[1], room)
    if event == "_disconnect":
        ok, room = _filter(args, 2)
        if not ok or len(args) < 2 or not isinstance(args[1], bool) or len(args) > 3:
            return None
        return Disconnect(nsp, args[1], room)
    return None
