"""Dates between Node and Python nodes: a MessagePack timestamp is a ``datetime`` here and a ``Date`` there."""

from __future__ import annotations

import datetime

from txrealtime.adapters.redis.wire import pack, unpack
from txrealtime.protocol.packets import Packet, PacketType, encode


def test_timestamps_read_as_aware_datetimes_and_go_to_clients_as_iso_strings() -> None:
    moment = datetime.datetime(2026, 11, 29, 5, 6, 7, 891000, tzinfo=datetime.UTC)
    # notepack.io writes a Date as the timestamp extension (type -1), as msgpack does for a datetime.
    raw = pack(["news", moment])
    assert raw[:3] == b"\x92\xa4n" and b"\xd7\xff" in raw
    data = unpack(raw)
    assert data == ["news", moment]
    assert encode(Packet(PacketType.EVENT, "/", data)) == ['2["news","2026-11-29T05:06:07.891Z"]']
