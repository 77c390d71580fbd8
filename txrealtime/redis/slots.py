"""Redis Cluster's key space: hash slots, the map of which node serves which slot, redirections; no I/O.

A key (or a shard channel) lives in slot ``CRC16(key) mod 16384`` (CRC-16/XMODEM), where only the part
between the first ``{`` and the next ``}`` is hashed when that part is not empty (a *hash tag*)::

    slot      = crc16(tag or key) & 16383
    tag       = the bytes between the first "{" and the first "}" after it, if there are any

The map comes from ``CLUSTER SHARDS`` (Redis 7) or, for older servers, ``CLUSTER SLOTS``::

    CLUSTER SHARDS   [{slots: [start, end, ...], nodes: [{ip, port, endpoint, role, health, ...}]}]
                     (a map under RESP3, a flat [key, value, ...] list under RESP2)
    CLUSTER SLOTS    [[start, end, [ip, port, id, ...] (the master), [replica ...]...]]

A node's address is its ``endpoint`` (else ``ip``); ``?`` or an empty one means the address of the node
that answered, as Redis documents. Redirections are error replies::

    MOVED slot host:port      the slot lives there now: update the map, ask there
    ASK slot host:port        this one command only: send ASKING, then the command, there

(an empty host again meaning the answering node's).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .resp import argument

__all__ = ["SLOTS", "Address", "Redirect", "SlotMap", "crc16", "key_slot", "parse_redirect"]

SLOTS = 16384
"""How many hash slots a Redis Cluster has."""

Address = tuple[str, int]
"""A node as ``(host, port)``."""


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_TABLE = _table()


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM (polynomial 0x1021, initial value 0), as Redis Cluster hashes keys."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


@functools.lru_cache(maxsize=4096)
def key_slot(key: bytes | str) -> int:
    """The hash slot of ``key`` (hash tags respected); ``str`` keys are UTF-8 (U+FFFD for lone surrogates, as
    they are sent). The last 4,096 keys' slots are kept: a link publishes to a few channels many times."""
    if isinstance(key, str):
        key = argument(key)
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc16(key) % SLOTS


@dataclass(frozen=True, slots=True)
class Redirect:
    """A ``MOVED`` or ``ASK`` error: where slot ``slot`` is to be asked."""

    kind: str
    """``MOVED`` or ``ASK``."""
    slot: int
    address: Address


def parse_redirect(message: str, answered_by: Address) -> Redirect | None:
    """The redirection an error message (``MOVED 3999 127.0.0.1:6381``) names, or ``None`` if it is not one."""
    parts = message.split(" ")
    if len(parts) != 3 or parts[0] not in ("MOVED", "ASK") or not parts[1].isdigit():
        return None
    host, sep, port = parts[2].rpartition(":")
    if not sep or not port.isdigit():
        return None
    slot = int(parts[1])
    if slot >= SLOTS:
        return None
    host = host.strip("[]") or answered_by[0]
    return Redirect(parts[0], slot, (host, int(port)))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _fields(value: Any) -> dict[str, Any]:
    """A map (RESP3) or a flat ``[key, value, ...]`` list (RESP2) as a dict with text keys."""
    if isinstance(value, dict):
        return {_text(k): v for k, v in value.items()}
    if isinstance(value, list):
        return {_text(value[i]): value[i + 1] for i in range(0, len(value) - 1, 2)}
    raise ValueError("not a map")


def _host(node: dict[str, Any], answered_by: Address) -> str:
    endpoint = node.get("endpoint")
    host = _text(endpoint) if endpoint is not None else _text(node.get("ip", b""))
    return answered_by[0] if host in ("", "?") else host


class SlotMap:
    """Which master serves each slot (``None`` for a slot no master serves)."""

    def __init__(self, ranges: Iterable[tuple[int, int, Address]] = ()) -> None:
        self._owners: list[Address | None] = [None] * SLOTS
        for start, end, address in ranges:
            if not 0 <= start <= end < SLOTS:
                raise ValueError(f"bad slot range {start}-{end}")
            for slot in range(start, end + 1):
                self._owners[slot] = address

    @classmethod
    def from_shards(cls, reply: Any, answered_by: Address) -> SlotMap:
        """The map a ``CLUSTER SHARDS`` reply describes (healthy masters only)."""
        if not isinstance(reply, list):
            raise ValueError("CLUSTER SHARDS did not answer a list")
        ranges = []
        for shard in reply:
            fields = _fields(shard)
            slots, nodes = fields.get("slots", []), fields.get("nodes", [])
            master = None
            for node in nodes:
                info = _fields(node)
                if _text(info.get("role")) == "master" and _text(info.get("health", b"online")) == "online":
                    master = (_host(info, answered_by), int(info["port"]))
            if master is None:
                continue
            for i in range(0, len(slots) - 1, 2):
                ranges.append((int(slots[i]), int(slots[i + 1]), master))
        return cls(ranges)

    @classmethod
    def from_slots(cls, reply: Any, answered_by: Address) -> SlotMap:
        """The map a ``CLUSTER SLOTS`` reply describes."""
        if not isinstance(reply, list):
            raise ValueError("CLUSTER SLOTS did not answer a list")
        ranges = []
        for entry in reply:
            start, end, master = entry[0], entry[1], entry[2]
            host = _text(master[0])
            ranges.append((int(start), int(end), (host if host not in ("", "?") else answered_by[0], int(master[1]))))
        return cls(ranges)

    def owner(self, slot: int) -> Address | None:
        """The master serving ``slot``."""
        return self._owners[slot]

    def move(self, slot: int, address: Address) -> None:
        """Record that ``slot`` is served by ``address`` now (a ``MOVED`` reply)."""
        self._owners[slot] = address

    def masters(self) -> list[Address]:
        """Every master serving a slot, in slot order."""
        return list(dict.fromkeys(a for a in self._owners if a is not None))

    @property
    def complete(self) -> bool:
        """Whether every slot has a master."""
        return all(a is not None for a in self._owners)
