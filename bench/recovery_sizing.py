"""What the recovery log's byte count costs per broadcast: measuring the decoded packet, or the encoded one.

The log could bound its memory by walking each packet's decoded data (``sys.getsizeof`` of every object,
and keep that data) or by keeping the encoded messages the broadcast sends anyway (``sys.getsizeof`` of a
few strings). This prints, for bench/cpu.sh's ~2.5 KB broadcast and for a 1 MB array of empty JSON objects
(issue 23's case), the encoding time every broadcast pays, each way's counting time, and what each keeps.
Best of seven process-CPU timings; loopback-free, bounded.

    .venv/bin/python bench/recovery_sizing.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.protocol.parser import JSON

ENCODER = JSON.encoder()


def decoded_size(value: Any) -> int:
    """Bytes of ``value`` and everything in it, as a log keeping the decoded packet would count them."""
    stack, total = [value], 0
    while stack:
        item = stack.pop()
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return total


def encoded_size(messages: list[str | bytes]) -> int:
    """Bytes of the encoded messages, as txrealtime's log counts them (besides its fixed per-entry part)."""
    return sys.getsizeof(messages) + sum(map(sys.getsizeof, messages))


def best(call: Callable[[], object], times: int) -> float:
    """Microseconds of process CPU per call, the best of seven runs."""
    runs = []
    for _ in range(7):
        start = time.process_time()
        for _ in range(times):
            call()
        runs.append((time.process_time() - start) / times)
    return min(runs) * 1e6


def main() -> None:
    cases: list[tuple[str, list[Any], int]] = [
        ("~2.5 KB broadcast (bench/cpu.sh)", ["b", {"n": 1, "pad": "z" * 2500}, "0a1b2c3d-1"], 20_000),
        ("1 MB array of empty objects", ["say", [{} for _ in range(333_000)], "0a1b2c3d-1"], 3),
    ]
    for name, data, times in cases:
        report(name, data, times)


def report(name: str, data: list[Any], times: int) -> None:
    """One line: the encoding every broadcast pays, then each way's counting time and what it keeps."""
    packet = Packet(PacketType.EVENT, "/", data)
    messages = ENCODER.encode(packet)
    print(f"{name}: encoding {best(lambda: ENCODER.encode(packet), times):.1f} µs; counting the decoded "
          f"data {best(lambda: decoded_size(data), times):.1f} µs, keeping {decoded_size(data) / 1e3:,.1f} KB; "
          f"counting the encoded messages {best(lambda: encoded_size(messages), times):.2f} µs, keeping "
          f"{encoded_size(messages) / 1e3:,.1f} KB")

if __name__ == "__main__":
    main()
