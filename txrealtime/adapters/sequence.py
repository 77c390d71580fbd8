"""Numbered broadcasts between txrealtime nodes, so that a node counts exactly what it missed.

Redis pub/sub keeps nothing for a subscriber that is away (reconnecting, or
cut off by Redis for a full output buffer): what was published meanwhile
never arrives, and nothing says so. txrealtime senders therefore number their
broadcasts, one sequence per adapter (one per namespace and process), and a
receiver that sees a sender's number jump counts the broadcasts in between
in its link's ``missed``.

Where the number goes, without changing what Node's nodes read:

- the classic adapter: a fourth element after ``[uid, packet, opts]``,
  always a MessagePack uint64 (``0xcf`` and eight bytes) so a receiver reads
  it from the message's last nine bytes before deciding whether the
  broadcast is for it; Node's adapter ignores elements after the third;
- the sharded adapter: a ``seq`` key in the messages of the namespace's main
  channel (every node of the namespace subscribes to it); Node ignores
  unknown keys.

What this cannot count: broadcasts from Node nodes and emitters (they carry
no number), the sharded adapter's broadcasts to one room (on the room's own
channel, which only the nodes holding that room hear), and the last
broadcasts of an outage when the sender sends nothing after them (a gap is
seen at the next number).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["Sequences"]

_SENDERS = 4096
"""Senders remembered per adapter (the least recently heard forgotten first)."""


class Sequences:
    """One adapter's own numbering, and the last number heard from each other sender.

    ``link.missed`` counts the broadcasts found missing.
    """

    def __init__(self, link: Any) -> None:
        self.link = link
        self._next = 0
        self._last: OrderedDict[Any, int] = OrderedDict()

    def next(self) -> int:
        """The number of the broadcast about to be published."""
        self._next += 1
        return self._next

    def unsent(self) -> None:
        """The broadcast just numbered was not handed to the link (counted there): its number is reused."""
        self._next -= 1

    def seen(self, sender: Any, number: int) -> None:
        """Broadcast ``number`` of ``sender`` arrived."""
        last = self._last.get(sender)
        if last is not None:
            if number <= last:
                return  # not newer (a sender does not go back): nothing to learn
            if number > last + 1:
                self.link.missed += number - last - 1
            self._last.move_to_end(sender)
        self._last[sender] = number
        if len(self._last) > _SENDERS:
            self._last.popitem(last=False)

    # -- the classic adapter's MessagePack arrays ---------------------------------------------------

    def stamp(self, data: bytes) -> bytes:
        """``[uid, packet, opts]`` (MessagePack) with the next number as a fourth element."""
        if data[:1] != b"\x93":
            return data
        return b"\x94" + data[1:] + b"\xcf" + self.next().to_bytes(8, "big")

    def check(self, data: bytes, own: bytes) -> None:
        """Note the number of a stamped broadcast (others carry none); ``own`` is this adapter's uid."""
        if data[:1] != b"\x94" or len(data) < 12 or data[-9] != 0xCF:
            return
        header = data[1]
        if 0xA0 <= header <= 0xBF:  # a fixstr uid, as every adapter's is
            sender = data[2 : 2 + (header & 0x1F)]
            if sender != own:
                self.seen(sender, int.from_bytes(data[-8:], "big"))
