"""Validation cost per event in one process, by backend: ``python -m bench.validation [N]``.

Runs a :class:`txrealtime.socketio.validation.Validator` over the echo benchmark's payload
(``bench/apps/tx_typed_app.py``) N times (100,000 by default) per backend and prints the CPU time
per call; ``bench/cpu.sh echo`` with ``TXREALTIME_APP=bench.apps.tx_typed_app:setup`` measures
the whole server.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from bench.apps.tx_typed_app import Bench
from txrealtime.socketio.validation import Backend, Validator


def per_call(backend: Backend, count: int) -> float:
    """Microseconds of CPU per validated event."""
    validator = Validator(Bench, backend=backend)
    args: list[Any] = [{"t": 1733540000000.5, "pad": "x" * 32}]
    started = time.process_time()
    for _ in range(count):
        validator("echo", args)
    return (time.process_time() - started) * 1e6 / count


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for backend in ("msgspec", "pydantic"):
        print(f"{backend}: {min(per_call(backend, count) for _ in range(5)):.2f} µs of CPU per event")


if __name__ == "__main__":
    main()
