"""A server's CPU time from /proc, all its processes included: ``python -m bench.cpustat PID`` prints seconds.

The user + system time of the process and of every descendant (twistd's ``--workers``, Node's cluster
children), plus what each already reaped of its exited children (``cutime``/``cstime``), so that the sum does
not drop when a child is reaped. Differences of two readings, divided by the operations the load generator
counted, are the CPU per operation that ``bench/bench.py`` and ``bench/cpu.sh`` report: steadier than rates on
a machine whose speed varies, since time the server does not run is not counted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    return text[text.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses


def tree_cpu_seconds(pid: int) -> float:
    """User + system seconds of ``pid`` and all its descendants (and of the children they reaped)."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None:
            continue
        # After the name: state, ppid, ...; utime, stime, cutime, cstime are fields 14-17 of the whole line.
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        ticks[int(entry.name)] = sum(int(f) for f in fields[11:15])
    total, frontier = 0, [pid]
    while frontier:
        process = frontier.pop()
        total += ticks.get(process, 0)
        frontier += children.get(process, [])
    return total / HZ


if __name__ == "__main__":
    print(f"{tree_cpu_seconds(int(sys.argv[1])):.2f}")
